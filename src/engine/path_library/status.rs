//! `library/:name/status` (which service accounts are free, who has the
//! others) and `library/:name/history` (their last rotations).

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::framework::{FieldData, HandlerResult, Request, Response};

use super::super::clock::rfc3339;
use super::super::core::Engine;
use super::super::history;
use super::super::library;
use super::super::role::Status;
use super::{load_member, load_set};

pub(super) async fn status(engine: &Arc<Engine>, _: &Request, data: &FieldData) -> HandlerResult {
    let name = data.str("name").unwrap_or_default();
    let Some(set) = load_set(engine, name).await? else {
        return Ok(None);
    };
    let mut out = Map::new();
    for account in &set.service_account_names {
        let role = load_member(engine, name, account).await?;
        let mut entry = Map::new();
        match role.as_ref().and_then(|r| r.state.checkout.as_ref()) {
            Some(checkout) => {
                entry.insert("available".into(), false.into());
                if let Some(entity) = &checkout.borrower_entity_id {
                    entry.insert("borrower_entity_id".into(), entity.clone().into());
                }
                if let Some(token) = &checkout.borrower_client_token {
                    entry.insert("borrower_client_token".into(), token.clone().into());
                }
                entry.insert("expires_at".into(), rfc3339(checkout.expires_at).into());
            }
            None => {
                let ready = role.as_ref().is_some_and(|r| {
                    r.state.in_flight.is_none()
                        && r.state.status == Status::Ok
                        && r.state.password.is_some()
                });
                entry.insert("available".into(), ready.into());
                if !ready {
                    let (status, reason) = match &role {
                        Some(role) => (
                            role.state.status.as_str(),
                            role.state
                                .status_reason
                                .clone()
                                .unwrap_or_else(|| "waiting for its rotation to finish".to_owned()),
                        ),
                        None => (
                            "missing",
                            "its record is missing: write the set again to add it".to_owned(),
                        ),
                    };
                    entry.insert("status".into(), status.into());
                    entry.insert("status_reason".into(), reason.into());
                }
            }
        }
        out.insert(account.clone(), Value::Object(entry));
    }
    Ok(Some(Response {
        data: out,
        ..Response::default()
    }))
}

pub(super) async fn read_history(
    engine: &Arc<Engine>,
    _: &Request,
    data: &FieldData,
) -> HandlerResult {
    let name = data.str("name").unwrap_or_default();
    let Some(set) = load_set(engine, name).await? else {
        return Ok(None);
    };
    let mut accounts = Map::new();
    for account in &set.service_account_names {
        let entries = history::load(
            engine.store.storage.as_ref(),
            &library::member_role(name, account),
        )
        .await?;
        let rotations: Vec<Value> = entries.iter().rev().map(history::Entry::describe).collect();
        accounts.insert(account.clone(), Value::from(rotations));
    }
    Ok(Some(Response::with_data(
        json!({ "service_accounts": accounts }),
    )))
}
