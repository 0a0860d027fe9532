//! `library/:name/rotate`: the rotation saga on service accounts that are
//! not checked out.

use std::sync::Arc;

use serde_json::json;

use crate::framework::{Error, FieldData, HandlerResult, Request, Response};

use super::super::clock::rfc3339;
use super::super::core::Engine;
use super::super::library;
use super::super::role::Trigger;
use super::super::rotation::execute::{self, RotateRequest};
use super::super::rotation::plan::RunOutcome;
use super::super::store::LockKey;
use super::{
    load_member, load_set, missing_set, outcome_warning, requested_accounts, with_warnings,
};

pub(super) async fn rotate(engine: &Arc<Engine>, _: &Request, data: &FieldData) -> HandlerResult {
    let name = data.str("name").unwrap_or_default();
    let set = load_set(engine, name)
        .await?
        .ok_or_else(|| missing_set(name))?;
    let asked = requested_accounts(data);
    for account in &asked {
        if !set.service_account_names.contains(account) {
            return Err(Error::bad_request(format!(
                "{account:?} is not a service account of library set {name:?} (its accounts: {})",
                set.service_account_names.join(", ")
            )));
        }
    }
    let accounts = if asked.is_empty() {
        set.service_account_names.clone()
    } else {
        asked.clone()
    };
    let mut rotated = Vec::new();
    let mut warnings = Vec::new();
    for account in accounts {
        let member = library::member_role(name, &account);
        let Some(_guard) = engine.store.try_lock(LockKey::Role(&member)) else {
            warnings.push(format!(
                "service account {account:?} is busy (being checked out, in or rotated); try again shortly"
            ));
            continue;
        };
        let Some(role) = load_member(engine, name, &account).await? else {
            continue;
        };
        if let Some(checkout) = &role.state.checkout {
            if asked.is_empty() {
                continue;
            }
            return Err(Error::conflict(format!(
                "service account {account:?} of library set {name:?} is checked out (until {} unless renewed): check it in instead, which rotates it",
                rfc3339(checkout.expires_at)
            )));
        }
        let (outcome, _) =
            execute::rotate(engine, &member, role, RotateRequest::new(Trigger::Manual)).await?;
        match outcome {
            RunOutcome::Rotated { .. } => rotated.push(account),
            other => warnings.extend(outcome_warning(name, &account, "its rotation", &other)),
        }
    }
    Ok(Some(with_warnings(
        Response::with_data(json!({ "rotated": rotated })),
        warnings,
    )))
}
