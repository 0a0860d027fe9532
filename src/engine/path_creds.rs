//! `static-creds/:name`: the current password of a static role.
//! `creds/:name`: an exclusive, leased check-out of a leased role's
//! password; renew extends it up to max_ttl; its end rotates the password.

use std::sync::Arc;

use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::framework::{
    Error, Field, FieldData, HandlerResult, LeaseGrant, Operation, Path, Request, Response,
};
use crate::handler;

use super::clock::rfc3339;
use super::core::Engine;
use super::path_roles::{lease_ttls, load_kind};
use super::role::{Checkout, Role, RoleKind, Status, Target, Trigger};
use super::rotation::execute::{self, RotateRequest};
use super::store::LockKey;

pub const SECRET_TYPE: &str = "creds";

pub fn paths() -> Vec<Path<Engine>> {
    vec![
        Path::new("static-creds/{name}")
            .fields([Field::string("name", "Name of the static role.")])
            .on(Operation::Read, "Read the current password of a static role.", handler!(read_static))
            .help(
                "The current password of a static role.",
                "Returns username, password, last_password, last_vault_rotation and status. A role with a next \
                 rotation also returns ttl (seconds until then, at least 1) and rotation_period, or rotation_schedule \
                 and rotation_window; a role with none (drifted, external target, disable_automated_rotation) returns \
                 none of them, so Vault Agent re-reads at its static_secret_render_interval. While a rotation is in \
                 flight this is the password the target holds; a drifted role's answer carries a warning saying what \
                 to do. A dual-account role (usernames) answers the active account as username with its password, \
                 and the inactive one as last_username with last_password: it keeps working until the next rotation \
                 changes it and makes it the active one (last_password is empty while Vault has not set it yet).",
            ),
        Path::new("creds/{name}")
            .fields([Field::string("name", "Name of the leased role.")])
            .on(Operation::Read, "Check out the password of a leased role under a lease.", handler!(check_out))
            .help(
                "Check out a leased role's password.",
                "Returns the password under a lease. Only one check-out at a time: a second read while the password is \
                 out is refused with the time it comes back. Renew the lease to keep it (up to max_ttl); when the lease \
                 ends the password rotates.",
            ),
    ]
}

async fn read_static(engine: &Arc<Engine>, _: &Request, data: &FieldData) -> HandlerResult {
    let name = data.str("name").unwrap_or_default();
    let Some(role) = engine.store.load_role(name).await? else {
        return Ok(None);
    };
    if role.kind != RoleKind::Static {
        return Err(Error::bad_request(format!(
            "{name:?} is a leased role: check its password out with creds/{name}"
        )));
    }
    let state = &role.state;
    let Some(password) = &state.password else {
        return Err(Error::bad_request(format!(
            "static role {name:?} has no password yet (status {}); read static-roles/{name} for details",
            state.status.as_str()
        )));
    };
    let mut out: Map<String, Value> = json!({
        "username": role.active_username().unwrap_or_default(),
        "password": password,
        "last_password": state.last_password.clone().unwrap_or_default(),
        "last_vault_rotation": state.last_vault_rotation.map(rfc3339),
        "status": state.status.as_str(),
    })
    .as_object()
    .cloned()
    .unwrap_or_default();
    if let Some(inactive) = role.inactive_username() {
        out.insert("last_username".into(), inactive.into());
    }
    out.extend(agent_fields(&role, engine.clock.now()));
    let mut response = Response {
        data: out,
        ..Response::default()
    };
    if let Some(drift) = &state.drift {
        response = response.warn(format!(
            "role {name:?} is drifted: this password may not be the target's ({}); {}",
            drift.detail,
            drift.what_to_do(role.kind.path(), name, role.is_dual())
        ));
    }
    Ok(Some(response))
}

/// What tells Vault Agent (and consul-template, which it embeds) when to
/// read again. The agent re-reads a secret without a lease `ttl + 1`
/// seconds after a read whenever the answer holds `rotation_period` (its
/// value is not used), and otherwise every `static_secret_render_interval`
/// (default 5 minutes); it never looks at `rotation_schedule`. So a role
/// with a next rotation answers `ttl`, the seconds until then (at least 1:
/// a `ttl` of 0 made the agent read every second), with `rotation_period`
/// for period roles, `rotation_schedule` and `rotation_window` for cron
/// roles, as Vault's database engine does; a role with none (a drifted role,
/// an external target, `disable_automated_rotation`) answers none of them,
/// so the agent falls back to its render interval.
fn agent_fields(role: &Role, now: OffsetDateTime) -> Map<String, Value> {
    let mut out = Map::new();
    let next = role
        .state
        .next_rotation
        .filter(|_| role.state.status != Status::Drifted && role.target != Target::External);
    let Some(next) = next else {
        return out;
    };
    out.insert("ttl".into(), (next - now).whole_seconds().max(1).into());
    let schedule = &role.schedule;
    if let Some(period) = schedule.period {
        out.insert("rotation_period".into(), period.as_secs().into());
    } else if let Some(cron) = &schedule.cron {
        out.insert("rotation_schedule".into(), cron.clone().into());
        out.insert(
            "rotation_window".into(),
            schedule.window.map_or(0, |w| w.as_secs()).into(),
        );
    }
    out
}

async fn check_out(engine: &Arc<Engine>, _: &Request, data: &FieldData) -> HandlerResult {
    let name = data.str("name").unwrap_or_default();
    let _guard = engine.store.lock(LockKey::Role(name)).await;
    let Some(mut role) = load_kind(engine, name, RoleKind::Leased).await? else {
        return match engine.store.load_role(name).await? {
            Some(_) => Err(Error::bad_request(format!(
                "{name:?} is a static role: read static-creds/{name}"
            ))),
            None => Ok(None),
        };
    };
    let now = engine.clock.now();
    if let Some(checkout) = &role.state.checkout {
        let back_in = (checkout.expires_at - now).whole_seconds().max(0);
        return Err(Error::conflict(format!(
            "role {name:?} is checked out until {} (in {back_in}s); it comes back when that lease ends or is revoked",
            rfc3339(checkout.expires_at)
        )));
    }
    if role.state.in_flight.is_some() || role.state.status != Status::Ok {
        return Err(Error::conflict(format!(
            "role {name:?} is being rotated after its last check-out (status {}); try again shortly",
            role.state.status.as_str()
        )));
    }
    let Some(password) = role.state.password.clone() else {
        return Err(Error::bad_request(format!(
            "leased role {name:?} has no password yet; read roles/{name} for its status"
        )));
    };
    let (ttl, max_ttl) = lease_ttls(engine, &role).await?;
    let checkout = Checkout {
        id: hex::encode(rand::random::<[u8; 8]>()),
        issued_at: now,
        expires_at: now + ttl,
        max_expires_at: now + max_ttl,
    };
    let checkout_id = checkout.id.clone();
    role.state.next_rotation = Some(checkout.max_expires_at);
    role.state.checkout = Some(checkout);
    engine.store.commit_role(name, &role).await?;
    let mut internal = Map::new();
    internal.insert("role".into(), name.into());
    internal.insert("checkout".into(), checkout_id.into());
    Ok(Some(
        Response::with_data(json!({
            "username": role.username.clone().unwrap_or_default(),
            "password": password,
        }))
        .with_lease(LeaseGrant {
            secret_type: SECRET_TYPE.into(),
            internal_data: internal,
            ttl,
            max_ttl,
            renewable: true,
        }),
    ))
}

fn lease_fields(request: &Request) -> Result<(String, String), Error> {
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
    match (field("role"), field("checkout")) {
        (Some(role), Some(checkout)) => Ok((role, checkout)),
        _ => Err(Error::bad_request("lease data is incomplete")),
    }
}

pub(super) async fn renew(engine: &Arc<Engine>, request: &Request, _: &FieldData) -> HandlerResult {
    let (name, checkout_id) = lease_fields(request)?;
    let _guard = engine.store.lock(LockKey::Role(&name)).await;
    let mut role = load_kind(engine, &name, RoleKind::Leased)
        .await?
        .ok_or_else(|| Error::bad_request(format!("leased role {name:?} no longer exists")))?;
    let (ttl, _) = lease_ttls(engine, &role).await?;
    let now = engine.clock.now();
    let Some(checkout) = role.state.checkout.as_mut().filter(|c| c.id == checkout_id) else {
        return Err(Error::bad_request(format!(
            "this check-out of role {name:?} has ended; check it out again"
        )));
    };
    let increment = request
        .secret
        .as_ref()
        .map(|lease| lease.increment)
        .filter(|i| !i.is_zero())
        .unwrap_or(ttl);
    let left = std::time::Duration::try_from(checkout.max_expires_at - now).unwrap_or_default();
    let granted = increment.min(left);
    checkout.expires_at = now + granted;
    let max_ttl = std::time::Duration::try_from(checkout.max_expires_at - checkout.issued_at)
        .unwrap_or_default();
    let internal = request
        .secret
        .as_ref()
        .map(|lease| lease.internal_data.clone())
        .unwrap_or_default();
    engine.store.commit_role(&name, &role).await?;
    Ok(Some(Response::default().with_lease(LeaseGrant {
        secret_type: SECRET_TYPE.into(),
        internal_data: internal,
        ttl: granted,
        max_ttl,
        renewable: true,
    })))
}

pub(super) async fn revoke(
    engine: &Arc<Engine>,
    request: &Request,
    _: &FieldData,
) -> HandlerResult {
    let (name, checkout_id) = lease_fields(request)?;
    let _guard = engine.store.lock(LockKey::Role(&name)).await;
    let Some(role) = load_kind(engine, &name, RoleKind::Leased).await? else {
        return Ok(None);
    };
    if role
        .state
        .checkout
        .as_ref()
        .is_none_or(|c| c.id != checkout_id)
    {
        // Already ended (the safety net got there first): nothing to do.
        return Ok(None);
    }
    let request = RotateRequest {
        end_checkout: Some(checkout_id),
        ..RotateRequest::new(Trigger::LeaseEnd)
    };
    let outcome = execute::run(engine, &name, request).await?;
    tracing::info!(role = %name, outcome = outcome.status().as_str(), "lease ended; rotated the checked-out password");
    Ok(None)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use time::macros::datetime;

    use super::*;
    use crate::engine::role::{Drift, DriftKind};
    use crate::engine::schedule::Schedule;

    const NOW: OffsetDateTime = datetime!(2026-11-25 10:00:00 UTC);

    fn role(target: Target, schedule: Schedule, next: Option<OffsetDateTime>) -> Role {
        let mut role = Role::new(RoleKind::Static, target);
        role.schedule = schedule;
        role.state.next_rotation = next;
        role
    }

    fn dcs() -> Target {
        Target::DcsInstance {
            connection: "hw".into(),
            instance_id: "dcs-1".into(),
        }
    }

    fn keys(fields: &Map<String, Value>) -> Vec<&str> {
        let mut keys: Vec<&str> = fields.keys().map(String::as_str).collect();
        keys.sort_unstable();
        keys
    }

    #[test]
    fn a_period_role_answers_the_seconds_to_its_next_rotation() {
        let period = Schedule {
            period: Some(Duration::from_secs(86_400)),
            ..Schedule::default()
        };
        let fields = agent_fields(
            &role(dcs(), period.clone(), Some(NOW + time::Duration::hours(2))),
            NOW,
        );
        assert_eq!(keys(&fields), ["rotation_period", "ttl"]);
        assert_eq!(fields["ttl"], 7200);
        assert_eq!(fields["rotation_period"], 86_400);
        // Due now (or being retried late): never 0, which made the agent
        // read every second.
        let due = agent_fields(
            &role(dcs(), period, Some(NOW - time::Duration::minutes(1))),
            NOW,
        );
        assert_eq!(due["ttl"], 1);
    }

    #[test]
    fn a_cron_role_answers_its_schedule_and_ttl_without_rotation_period() {
        let cron = Schedule {
            cron: Some("0 3 * * *".into()),
            window: Some(Duration::from_secs(3600)),
            ..Schedule::default()
        };
        let fields = agent_fields(
            &role(dcs(), cron, Some(NOW + time::Duration::hours(17))),
            NOW,
        );
        assert_eq!(
            keys(&fields),
            ["rotation_schedule", "rotation_window", "ttl"]
        );
        assert_eq!(fields["rotation_window"], 3600);
    }

    #[test]
    fn roles_without_a_next_rotation_answer_nothing_for_the_agent() {
        let disabled = Schedule {
            period: Some(Duration::from_secs(86_400)),
            disabled: true,
            ..Schedule::default()
        };
        assert!(agent_fields(&role(dcs(), disabled, None), NOW).is_empty());
        assert!(agent_fields(&role(Target::External, Schedule::default(), None), NOW).is_empty());
        let mut drifted = role(
            dcs(),
            Schedule {
                period: Some(Duration::from_secs(60)),
                ..Schedule::default()
            },
            Some(NOW),
        );
        drifted.state.status = Status::Drifted;
        drifted.state.drift = Some(Drift {
            found_at: NOW,
            kind: DriftKind::NewerPassword,
            detail: "restored".into(),
        });
        assert!(agent_fields(&drifted, NOW).is_empty());
        // A manual-only role being retried has a next time, but no period
        // for the agent to follow: it keeps its render interval.
        let retrying = agent_fields(
            &role(
                dcs(),
                Schedule::default(),
                Some(NOW + time::Duration::seconds(30)),
            ),
            NOW,
        );
        assert_eq!(keys(&retrying), ["ttl"]);
    }
}
