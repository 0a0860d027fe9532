//! `library/:name/check-in` (the borrower's) and
//! `library/manage/:name/check-in` (anyone a policy lets through): each
//! service account checked in rotates.

use std::sync::Arc;

use serde_json::json;

use crate::framework::{Error, FieldData, HandlerResult, Request, Response};

use super::super::core::Engine;
use super::super::library::{self, Borrower};
use super::super::role::Trigger;
use super::super::rotation::execute::{self, RotateRequest};
use super::super::store::LockKey;
use super::{
    load_member, load_set, missing_set, outcome_warning, requested_accounts, with_warnings,
};

pub(super) async fn check_in(
    engine: &Arc<Engine>,
    request: &Request,
    data: &FieldData,
) -> HandlerResult {
    check_in_as(engine, request, data, false).await
}

pub(super) async fn manage_check_in(
    engine: &Arc<Engine>,
    request: &Request,
    data: &FieldData,
) -> HandlerResult {
    check_in_as(engine, request, data, true).await
}

/// Checks service accounts in: each rotates, in the same write that ends
/// its check-out, and is lent again once the rotation finished.
async fn check_in_as(
    engine: &Arc<Engine>,
    request: &Request,
    data: &FieldData,
    manage: bool,
) -> HandlerResult {
    let name = data.str("name").unwrap_or_default();
    let set = load_set(engine, name)
        .await?
        .ok_or_else(|| missing_set(name))?;
    let key = engine.borrower_key().await?;
    let caller = Borrower::of(&request.client, &key);
    let enforced = !manage && !set.disable_check_in_enforcement;
    // Who has what now (read without locks; each is checked again under
    // its lock before it is checked in).
    let mut out: Vec<(String, String, bool)> = Vec::new();
    for account in &set.service_account_names {
        if let Some(checkout) = load_member(engine, name, account)
            .await?
            .and_then(|role| role.state.checkout)
        {
            out.push((
                account.clone(),
                checkout.id.clone(),
                caller.borrowed(&checkout),
            ));
        }
    }
    let asked = requested_accounts(data);
    let chosen: Vec<(String, String)> = if asked.is_empty() {
        let own: Vec<(String, String)> = out
            .iter()
            .filter(|(_, _, mine)| *mine)
            .map(|(a, id, _)| (a.clone(), id.clone()))
            .collect();
        if !own.is_empty() || enforced {
            own
        } else if out.len() > 1 {
            let names: Vec<&str> = out.iter().map(|(a, _, _)| a.as_str()).collect();
            return Err(Error::bad_request(format!(
                "several service accounts of library set {name:?} are checked out ({}) and none by the caller: say which to check in with service_account_names",
                names.join(", ")
            )));
        } else {
            out.iter()
                .map(|(a, id, _)| (a.clone(), id.clone()))
                .collect()
        }
    } else {
        let mut chosen = Vec::new();
        for account in &asked {
            if !set.service_account_names.contains(account) {
                return Err(Error::bad_request(format!(
                    "{account:?} is not a service account of library set {name:?} (its accounts: {})",
                    set.service_account_names.join(", ")
                )));
            }
            let Some((_, id, mine)) = out.iter().find(|(a, _, _)| a == account) else {
                // Already in: nothing to do, as the LDAP engine does.
                continue;
            };
            if enforced && !mine {
                return Err(Error::Coded {
                    status: 403,
                    message: format!(
                        "service account {account:?} of library set {name:?} was checked out by someone else: only its borrower (the same entity, or the same token) checks it in here; library/manage/{name}/check-in checks in anyone's, for whoever a policy lets write it"
                    ),
                });
            }
            chosen.push((account.clone(), id.clone()));
        }
        chosen
    };
    let mut check_ins = Vec::new();
    let mut warnings = Vec::new();
    for (account, checkout_id) in chosen {
        let member = library::member_role(name, &account);
        let _guard = engine.store.lock(LockKey::Role(&member)).await;
        let Some(role) = load_member(engine, name, &account).await? else {
            continue;
        };
        if role
            .state
            .checkout
            .as_ref()
            .is_none_or(|c| c.id != checkout_id)
        {
            // Its lease ended meanwhile: it is in already.
            continue;
        }
        let rotation = RotateRequest {
            end_checkout: Some(checkout_id),
            ..RotateRequest::new(Trigger::CheckIn)
        };
        let (outcome, _) = execute::rotate(engine, &member, role, rotation).await?;
        tracing::info!(set = %name, account = %account, forced = manage, outcome = outcome.status().as_str(), "checked in; rotated the service account");
        warnings.extend(outcome_warning(
            name,
            &account,
            "its rotation at check-in",
            &outcome,
        ));
        check_ins.push(account);
    }
    Ok(Some(with_warnings(
        Response::with_data(json!({ "check_ins": check_ins })),
        warnings,
    )))
}
