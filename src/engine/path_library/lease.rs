//! A check-out's lease (secret type [`super::SECRET_TYPE`]): renew
//! extends it up to the check-out's max TTL, revoke or expiry gives the
//! service account back, which rotates.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::framework::{Error, FieldData, HandlerResult, LeaseGrant, Request, Response};

use super::super::clock::rfc3339;
use super::super::core::Engine;
use super::super::library;
use super::super::role::Trigger;
use super::super::rotation::execute::{self, RotateRequest};
use super::super::store::LockKey;
use super::check_out::lending;
use super::{SECRET_TYPE, load_member, load_set};

/// The lease's set, account and check-out.
fn lease_fields(request: &Request) -> Result<(String, String, String), Error> {
    let lease = request
        .secret
        .as_ref()
        .ok_or_else(|| Error::bad_request("no lease given"))?;
    let field = |key: &str| {
        lease
            .internal_data
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    match (
        field("set_name"),
        field("service_account_name"),
        field("checkout_id"),
    ) {
        (Some(set), Some(account), Some(checkout)) => Ok((set, account, checkout)),
        _ => Err(Error::bad_request(
            "the lease's data is incomplete (set_name, service_account_name, checkout_id)",
        )),
    }
}

pub(super) async fn renew(engine: &Arc<Engine>, request: &Request, _: &FieldData) -> HandlerResult {
    let (set_name, account, checkout_id) = lease_fields(request)?;
    let member = library::member_role(&set_name, &account);
    let _guard = engine.store.lock(LockKey::Role(&member)).await;
    let gone = || {
        Error::bad_request(format!(
            "service account {account:?} is no longer in library set {set_name:?}; this check-out cannot be renewed"
        ))
    };
    let set = load_set(engine, &set_name).await?.ok_or_else(gone)?;
    let mut role = load_member(engine, &set_name, &account)
        .await?
        .ok_or_else(gone)?;
    let (ttl, _, _) = lending(engine, &set, None).await?;
    let now = engine.clock.now();
    let Some(checkout) = role.state.checkout.as_mut().filter(|c| c.id == checkout_id) else {
        return Err(Error::bad_request(format!(
            "service account {account:?} of library set {set_name:?} is already checked in (this check-out ended and its password was rotated); check out again with library/{set_name}/check-out"
        )));
    };
    let increment = request
        .secret
        .as_ref()
        .map(|lease| lease.increment)
        .filter(|i| !i.is_zero())
        .unwrap_or(ttl);
    let left = Duration::try_from(checkout.max_expires_at - now).unwrap_or_default();
    if left.is_zero() {
        return Err(Error::bad_request(format!(
            "this check-out of {account:?} reached its max_ttl at {}; check it in and out again",
            rfc3339(checkout.max_expires_at)
        )));
    }
    let granted = increment.min(left);
    checkout.expires_at = now + granted;
    let max_ttl =
        Duration::try_from(checkout.max_expires_at - checkout.issued_at).unwrap_or_default();
    let internal = request
        .secret
        .as_ref()
        .map(|lease| lease.internal_data.clone())
        .unwrap_or_default();
    engine.store.commit_role(&member, &role).await?;
    Ok(Some(Response::default().with_lease(LeaseGrant {
        secret_type: SECRET_TYPE.into(),
        internal_data: internal,
        ttl: granted,
        max_ttl,
        renewable: true,
    })))
}

/// The lease ended (revoke or expiry): its service account comes back and
/// rotates, unless that check-out already ended (checked in by hand, and
/// maybe lent again since): then nothing happens.
pub(super) async fn revoke(
    engine: &Arc<Engine>,
    request: &Request,
    _: &FieldData,
) -> HandlerResult {
    let (set_name, account, checkout_id) = lease_fields(request)?;
    let member = library::member_role(&set_name, &account);
    let _guard = engine.store.lock(LockKey::Role(&member)).await;
    let Some(role) = load_member(engine, &set_name, &account).await? else {
        return Ok(None);
    };
    if role
        .state
        .checkout
        .as_ref()
        .is_none_or(|c| c.id != checkout_id)
    {
        return Ok(None);
    }
    let request = RotateRequest {
        end_checkout: Some(checkout_id),
        ..RotateRequest::new(Trigger::LeaseEnd)
    };
    let (outcome, _) = execute::rotate(engine, &member, role, request).await?;
    tracing::info!(set = %set_name, account = %account, outcome = outcome.status().as_str(), "check-out lease ended; rotated the service account");
    Ok(None)
}
