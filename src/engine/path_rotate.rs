//! `rotate-role/:name`: rotate a role now (or, with dry_run, show the plan:
//! every call that would be made and the prechecks with their results).
//! `rotate-root/:name`: replace a connection's own access key.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::framework::{
    Error, Field, FieldData, HandlerResult, Operation, Path, Request, Response,
};
use crate::handler;

use super::Engine;
use super::connection::rfc3339;
use super::marker;
use super::path_config;
use super::role::{Dependent, Phase, Role, RoleKind, Status, Target, Trigger};
use super::rotation::cloud;
use super::rotation::drift::{self, Condition, Finding};
use super::rotation::root::{self, RootOutcome};
use super::rotation::saga::{self, Outcome, RotateRequest};

pub fn paths() -> Vec<Path<Engine>> {
    vec![
        Path::new("rotate-role/{name}")
            .fields([
                Field::string("name", "Name of the static or leased role."),
                Field::bool("dry_run", "Change nothing; return every call that would be made and the prechecks with their results.")
                    .default(false),
                Field::string(
                    "password",
                    "The password to make current without Vault generating one (write-only): an external target's new password, or the password a PolarDB account or DCS instance holds now (adoption: the target is not changed; its marker is written). Pushed to every dependent after checking the target's and the dependents' rules.",
                )
                .sensitive()
                .max_len(256),
            ])
            .on(Operation::Update, "Rotate a role's password now.", handler!(rotate_role))
            .help(
                "Rotate a role's password now.",
                "Runs the rotation saga at once: prechecks of the target (a busy target defers; a target whose ownership \
                 marker says the password drifted stops the rotation) and of the dependents (a job that cannot take a \
                 change defers the rotation without touching anything), the change of the target, its ownership marker, \
                 then every dependent. A rotation already in flight is resumed with its recorded password rather than \
                 a new one. On a drifted role it repairs: a new password set without the old one. password=... gives \
                 the password instead: an external target's new one, or adopts the one a PolarDB or DCS target holds.",
            ),
        Path::new("rotate-root/{name}")
            .fields([Field::string("name", "Name of the connection.")])
            .on(Operation::Update, "Rotate the connection's own access key.", handler!(rotate_root))
            .help(
                "Rotate the access key the connection signs with.",
                "Creates a second access key for iam_user, verifies it works, stores it, and deletes the old key. \
                 Crash-safe: each step is recorded first and an interrupted rotation resumes. Returns no secret.",
            ),
    ]
}

async fn rotate_role(engine: &Arc<Engine>, _: &Request, data: &FieldData) -> HandlerResult {
    let name = data.str("name").unwrap_or_default();
    if data.bool("dry_run").unwrap_or(false) {
        let role = engine.load_role(name).await?.ok_or_else(|| missing(name))?;
        return Ok(Some(Response::with_data(plan(engine, &role).await)));
    }
    let _guard = engine.locks.try_lock(&Engine::role_lock(name)).ok_or_else(|| {
        Error::conflict(format!("role {name:?} is busy: a rotation or a check of its target is running; try again shortly, and read static-roles/{name} or roles/{name} for its status"))
    })?;
    let role = engine.load_role(name).await?.ok_or_else(|| missing(name))?;
    if let Some(checkout) = &role.state.checkout {
        return Err(Error::conflict(format!(
            "role {name:?} is checked out until {}; revoke the lease (which rotates it) instead",
            rfc3339(checkout.expires_at)
        )));
    }
    let password = data
        .str("password")
        .filter(|p| !p.is_empty())
        .map(str::to_owned);
    // A given password is propagated (external) or adopted; a drifted
    // role's manual rotation repairs: the saga decides from the role.
    let trigger = if password.is_some() {
        Trigger::Propagate
    } else {
        Trigger::Manual
    };
    let outcome = saga::run(
        engine,
        name,
        RotateRequest {
            password,
            ..RotateRequest::new(trigger)
        },
    )
    .await?;
    let role = engine.load_role(name).await?.ok_or_else(|| missing(name))?;
    let next = role.state.next_rotation.map(rfc3339);
    match outcome {
        Outcome::Rotated { rotation_id, dependents_updated } => Ok(Some(Response::with_data(json!({
            "rotation_id": rotation_id,
            "status": "ok",
            "dependents_updated": dependents_updated,
            "last_vault_rotation": role.state.last_vault_rotation.map(rfc3339),
            "next_vault_rotation": next,
        })))),
        Outcome::Deferred { reason } => Ok(Some(
            Response::with_data(json!({ "status": "deferred", "reason": reason, "next_attempt": next }))
                .warn(format!("rotation deferred: {reason}; it resumes with the same password once the jobs accept changes")),
        )),
        Outcome::NotDue => Ok(None),
        Outcome::Retrying { status, message } => Err(Error::Coded {
            status: 502,
            message: format!(
                "rotation of role {name:?} did not finish ({}): {message}; retries continue in the background (next at {}), and it is safe to run rotate-role again",
                status.as_str(),
                next.unwrap_or_default()
            ),
        }),
        Outcome::Failed { message } => Err(Error::Coded {
            status: 502,
            message: format!("rotation of role {name:?} failed: {message}; read static-roles/{name} or roles/{name} for details"),
        }),
        Outcome::Drifted { message } => Err(Error::conflict(format!(
            "rotation of role {name:?} stopped before changing anything: {message}"
        ))),
    }
}

/// The target's state and what its ownership marker says, now.
async fn target_precheck(engine: &Engine, role: &Role) -> Option<Value> {
    let target = match cloud::read_target(engine, role).await? {
        Ok(target) => target,
        Err(error) => {
            return Some(json!({ "target": role.target.kind(), "error": error.to_string() }));
        }
    };
    let accepts = drift::condition(&role.target, &target) == Condition::Ready;
    let owner = match engine.owner_id().await {
        Ok(owner) => owner,
        Err(error) => {
            return Some(json!({ "target": role.target.kind(), "error": error.to_string() }));
        }
    };
    let marker = match drift::compare(marker::find(&target.description).as_ref(), &owner, role) {
        Finding::InSync | Finding::AlreadyApplied => "in_sync".to_owned(),
        Finding::Unverified => "no marker".to_owned(),
        Finding::MarkerBehind => "marker behind: rewritten by the next check".to_owned(),
        Finding::Drifted(_, detail) => detail,
    };
    Some(json!({
        "target": role.target.kind(),
        "state": target.status,
        "accepts_change": accepts,
        "marker": marker,
    }))
}

fn missing(name: &str) -> Error {
    Error::bad_request(format!("role {name:?} does not exist"))
}

/// The calls a rotation of `role` would make, and the prechecks run now.
async fn plan(engine: &Engine, role: &Role) -> Value {
    let mut calls = Vec::new();
    let resuming = role.state.in_flight.as_ref();
    let target_pending = resuming.is_none_or(|flight| flight.phase != Phase::TargetApplied);
    let marker_pending = resuming.is_none_or(|flight| !flight.marker_written);
    let drifted = role.state.status == Status::Drifted;
    match &role.target {
        Target::PolardbAccount {
            connection,
            cluster_id,
        } => {
            let resource = format!("{cluster_id}/{}", role.username.clone().unwrap_or_default());
            calls.push(json!({ "service": "polardb", "action": "DescribeAccounts", "connection": connection, "resource": resource }));
            if target_pending {
                calls.push(json!({ "service": "polardb", "action": "ModifyAccountPassword", "connection": connection, "resource": resource }));
            }
            if marker_pending {
                calls.push(json!({ "service": "polardb", "action": "ModifyAccountDescription", "connection": connection, "resource": resource }));
            }
        }
        Target::DcsInstance {
            connection,
            instance_id,
        } => {
            calls.push(json!({ "service": "dcs", "action": "ShowInstance", "connection": connection, "resource": instance_id }));
            if target_pending {
                let update = !drifted
                    && role.state.password.is_some()
                    && match resuming {
                        Some(flight) => cloud::dcs_offers_old_password(role, flight),
                        None => {
                            !role.dcs_reset
                                && role
                                    .state
                                    .dcs_retry_times_left
                                    .is_none_or(|left| left > cloud::DCS_RESERVED_ATTEMPTS)
                        }
                    };
                calls.push(json!({
                    "service": "dcs", "action": if update { "UpdatePassword" } else { "ResetPassword" },
                    "connection": connection, "resource": instance_id,
                }));
            }
            if marker_pending {
                calls.push(json!({ "service": "dcs", "action": "UpdateInstance", "connection": connection, "resource": instance_id }));
            }
        }
        Target::External => {}
    }
    let mut drs_batches: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    for dependent in &role.dependents {
        match dependent {
            Dependent::Dts { connection, job_id, .. } => calls.push(json!({
                "service": "dts", "action": "ModifyDtsJobPassword", "connection": connection, "resource": dependent.to_string(), "job_id": job_id,
            })),
            Dependent::Drs { connection, .. } => drs_batches.entry(connection).or_default().push(dependent.to_string()),
        }
    }
    for (connection, items) in drs_batches {
        calls.push(json!({ "service": "drs", "action": "BatchResetPassword", "connection": connection, "resources": items }));
    }
    let mut prechecks = target_precheck(engine, role)
        .await
        .into_iter()
        .collect::<Vec<_>>();
    match cloud::describe_dependents(engine, &role.dependents).await {
        Ok(states) => prechecks.extend(
            states
                .into_iter()
                .map(|(dependent, state, accepts)| json!({ "dependent": dependent, "state": state, "accepts_change": accepts })),
        ),
        Err(error) => prechecks.push(json!({ "error": error.to_string() })),
    }
    let password_check = match (&role.target, &role.password_policy) {
        (Target::External, _) => "external: the password is given to rotate-role".to_owned(),
        (_, Some(policy)) => match engine.system.generate_password_from_policy(policy).await {
            Ok(sample) => match role.target.rules().check(&sample) {
                Ok(()) => format!(
                    "policy {policy:?} generates passwords that fit {}",
                    role.target.rules().name
                ),
                Err(problem) => {
                    format!("policy {policy:?} generated a password the target rejects: {problem}")
                }
            },
            Err(err) => format!("policy {policy:?} cannot generate passwords: {err}"),
        },
        (_, None) => format!("built-in generator for {} rules", role.target.rules().name),
    };
    let blocked: Vec<&Value> = prechecks
        .iter()
        .filter(|p| p["accepts_change"] == Value::Bool(false) || p.get("error").is_some())
        .collect();
    json!({
        "dry_run": true,
        "role": role.kind.path(),
        "resumes_rotation": resuming.map(|f| json!({ "id": f.id, "phase": format!("{:?}", f.phase), "started_at": rfc3339(f.started_at) })),
        "calls": calls,
        "prechecks": prechecks,
        "would_defer": !blocked.is_empty(),
        "password_check": password_check,
        "checked_out": role.kind == RoleKind::Leased && role.state.checkout.is_some(),
    })
}

async fn rotate_root(engine: &Arc<Engine>, _: &Request, data: &FieldData) -> HandlerResult {
    let name = data.str("name").unwrap_or_default();
    let _guard = engine
        .locks
        .try_lock(&Engine::connection_lock(name))
        .ok_or_else(|| {
            Error::conflict(format!(
                "connection {name:?} is being changed or rotated right now; try again shortly"
            ))
        })?;
    match root::run(engine, name, "manual").await? {
        RootOutcome::Rotated { access_key } => {
            let connection = path_config::load(engine, name).await?;
            Ok(Some(Response::with_data(json!({
                "access_key": access_key,
                "last_root_rotation": connection.and_then(|c| c.root.last_rotation).map(rfc3339),
            }))))
        }
        RootOutcome::Retrying { message } => Err(Error::Coded {
            status: 502,
            message: format!(
                "access key rotation of {name:?} did not finish: {message}; it resumes in the background, and it is safe to run rotate-root again"
            ),
        }),
        RootOutcome::Failed { message } => Err(Error::Coded {
            status: 502,
            message: format!("access key rotation of {name:?} failed: {message}"),
        }),
    }
}
