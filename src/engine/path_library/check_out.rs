//! `library/:name/check-out`: lending the first free service account
//! under a lease.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, json};

use crate::framework::{Error, FieldData, HandlerResult, LeaseGrant, Request, Response};

use super::super::clock::rfc3339;
use super::super::core::Engine;
use super::super::library::{self, Borrower, LibrarySet};
use super::super::role::Status;
use super::super::store::LockKey;
use super::{SECRET_TYPE, load_member, load_set, missing_set};

/// The lending period of a check-out and its cap: the set's (0: the
/// mount's default and max), never past the mount's max; a shorter `ttl`
/// asked for wins. Also whether a longer one was asked for.
pub(super) async fn lending(
    engine: &Engine,
    set: &LibrarySet,
    asked: Option<Duration>,
) -> Result<(Duration, Duration, bool), Error> {
    let mount_default = engine.system.default_lease_ttl().await?;
    let mount_max = engine.system.max_lease_ttl().await?;
    let max = match set.max_ttl_secs {
        0 => mount_max,
        secs => Duration::from_secs(secs).min(mount_max),
    };
    let mut ttl = match set.ttl_secs {
        0 => mount_default,
        secs => Duration::from_secs(secs),
    };
    let mut cut = false;
    if let Some(asked) = asked.filter(|a| !a.is_zero()) {
        if asked < ttl {
            ttl = asked;
        } else if asked > ttl {
            cut = true;
        }
    }
    Ok((ttl.min(max), max, cut))
}

/// What a check-out finds looking at one service account.
enum Look {
    /// Lent: its password and the check-out's id.
    Lent(String, String),
    /// Out until then (unless renewed).
    Out(time::OffsetDateTime),
    /// Neither out nor ready: its status.
    NotReady(Status),
    /// No record (a set write was interrupted).
    Missing,
}

/// Lends `account` if it is free; the caller holds its lock.
async fn lend(
    engine: &Engine,
    set: &str,
    account: &str,
    (ttl, max_ttl): (Duration, Duration),
    borrower: &Borrower,
) -> Result<Look, Error> {
    let Some(mut role) = load_member(engine, set, account).await? else {
        return Ok(Look::Missing);
    };
    if let Some(checkout) = &role.state.checkout {
        return Ok(Look::Out(checkout.expires_at));
    }
    let ready = role.state.in_flight.is_none() && role.state.status == Status::Ok;
    let Some(password) = role.state.password.clone().filter(|_| ready) else {
        return Ok(Look::NotReady(role.state.status));
    };
    let checkout = library::checkout(engine.clock.now(), ttl, max_ttl, borrower);
    let id = checkout.id.clone();
    role.state.next_rotation = Some(checkout.max_expires_at);
    role.state.checkout = Some(checkout);
    engine
        .store
        .commit_role(&library::member_role(set, account), &role)
        .await?;
    Ok(Look::Lent(password, id))
}

pub(super) async fn check_out(
    engine: &Arc<Engine>,
    request: &Request,
    data: &FieldData,
) -> HandlerResult {
    let name = data.str("name").unwrap_or_default();
    let set = load_set(engine, name)
        .await?
        .ok_or_else(|| missing_set(name))?;
    let key = engine.borrower_key().await?;
    let borrower = Borrower::of(&request.client, &key);
    let asked = data.duration("ttl").filter(|_| data.provided("ttl"));
    let (ttl, max_ttl, cut) = lending(engine, &set, asked).await?;
    // An account someone is working on (a check-out, a rotation) is passed
    // over at first, so a check-out never waits behind a rotation while
    // another account is free; those are looked at last, waiting.
    let mut passed: Vec<&String> = Vec::new();
    let mut looks: Vec<(&String, Look)> = Vec::new();
    for account in &set.service_account_names {
        let member = library::member_role(name, account);
        let Some(_guard) = engine.store.try_lock(LockKey::Role(&member)) else {
            passed.push(account);
            continue;
        };
        looks.push((
            account,
            lend(engine, name, account, (ttl, max_ttl), &borrower).await?,
        ));
        if matches!(looks.last(), Some((_, Look::Lent(..)))) {
            break;
        }
    }
    if !matches!(looks.last(), Some((_, Look::Lent(..)))) {
        for account in passed {
            let member = library::member_role(name, account);
            let _guard = engine.store.lock(LockKey::Role(&member)).await;
            looks.push((
                account,
                lend(engine, name, account, (ttl, max_ttl), &borrower).await?,
            ));
            if matches!(looks.last(), Some((_, Look::Lent(..)))) {
                break;
            }
        }
    }
    let mut first_back: Option<time::OffsetDateTime> = None;
    let mut out = 0usize;
    let mut busy = Vec::new();
    for (account, look) in looks {
        match look {
            Look::Lent(password, checkout_id) => {
                return Ok(Some(lent(
                    name,
                    account,
                    password,
                    checkout_id,
                    (ttl, max_ttl),
                    cut,
                    &borrower,
                )));
            }
            Look::Out(until) => {
                out += 1;
                first_back = Some(first_back.map_or(until, |t| t.min(until)));
            }
            Look::NotReady(status) => busy.push(format!("{account} ({})", status.as_str())),
            Look::Missing => busy.push(format!("{account} (missing)")),
        }
    }
    let mut why = vec![format!(
        "no service account of library set {name:?} is available for check-out"
    )];
    if let Some(back) = first_back {
        why.push(format!(
            "{out} checked out, the first lease ends at {} unless renewed (or sooner, at a check-in)",
            rfc3339(back)
        ));
    }
    if !busy.is_empty() {
        why.push(format!(
            "not ready: {} (being rotated after a check-in, or failed: read library/{name})",
            busy.join(", ")
        ));
    }
    Err(Error::bad_request(format!(
        "{}; try again then, or add service accounts to the set",
        why.join("; ")
    )))
}

/// The answer to a check-out: the account and its password under a lease
/// whose data names the set, the account and this check-out.
fn lent(
    set: &str,
    account: &str,
    password: String,
    checkout_id: String,
    (ttl, max_ttl): (Duration, Duration),
    cut: bool,
    borrower: &Borrower,
) -> Response {
    let mut internal = Map::new();
    internal.insert("set_name".into(), set.into());
    internal.insert("service_account_name".into(), account.into());
    internal.insert("checkout_id".into(), checkout_id.into());
    let mut response = Response::with_data(json!({
        "service_account_name": account,
        "password": password,
    }))
    .with_lease(LeaseGrant {
        secret_type: SECRET_TYPE.into(),
        internal_data: internal,
        ttl,
        max_ttl,
        renewable: true,
    });
    if cut {
        response = response.warn(format!(
            "the ttl asked for is longer than library set {set:?} lends for; the lease lasts {}s (renew it up to max_ttl)",
            ttl.as_secs()
        ));
    }
    if !borrower.is_known() {
        response = response.warn(
            "the request carried neither an entity nor a token, so only library/manage/<set>/check-in (or a set with disable_check_in_enforcement) can check this account in before its lease ends",
        );
    }
    response
}
