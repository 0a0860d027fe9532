//! `rotate-role/:name`: rotate a role now (or, with dry_run, show the plan:
//! every call that would be made and the prechecks with their results).
//! `rotate-root/:name`: replace a connection's own access key.

use std::sync::Arc;

use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::framework::{
    Error, Field, FieldData, HandlerResult, Operation, Path, Request, Response,
};
use crate::handler;

use super::clock::rfc3339;
use super::core::Engine;
use super::marker;
use super::role::{Dependent, Role, RoleKind, Target, Trigger};
use super::rotation::drift::{self, Condition, Finding};
use super::rotation::execute::{self, DryRun, RotateRequest};
use super::rotation::plan::{Action, MarkerWrite, Observation, RunOutcome};
use super::rotation::root::{self, RootOutcome};
use super::store::LockKey;

pub fn paths() -> Vec<Path<Engine>> {
    vec![
        Path::new("rotate-role/{name}")
            .fields([
                Field::string("name", "Name of the static role."),
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
        let role = engine
            .store
            .load_role(name)
            .await?
            .filter(|role| role.kind == RoleKind::Static)
            .ok_or_else(|| missing(name))?;
        return Ok(Some(Response::with_data(plan(engine, name, &role).await?)));
    }
    let _guard = engine.store.try_lock(LockKey::Role(name)).ok_or_else(|| {
        Error::conflict(format!("role {name:?} is busy: a rotation or a check of its target is running; try again shortly, and read static-roles/{name} for its status"))
    })?;
    let role = engine
        .store
        .load_role(name)
        .await?
        .filter(|role| role.kind == RoleKind::Static)
        .ok_or_else(|| missing(name))?;
    let password = data
        .str("password")
        .filter(|p| !p.is_empty())
        .map(str::to_owned);
    // A given password is propagated (external) or adopted; a drifted
    // role's manual rotation repairs: the planner decides from the role.
    let trigger = if password.is_some() {
        Trigger::Propagate
    } else {
        Trigger::Manual
    };
    let hurried = hurried_dual_rotation(&role, name, engine.clock.now());
    let (outcome, role) = execute::rotate(
        engine,
        name,
        role,
        RotateRequest {
            password,
            ..RotateRequest::new(trigger)
        },
    )
    .await?;
    let next = role.state.next_rotation.map(rfc3339);
    let answer = answer(name, outcome, &role, next)?;
    Ok(match (answer, hurried) {
        (Some(response), Some(text)) => Some(response.warn(text)),
        (None, Some(text)) => Some(Response::default().warn(text)),
        (answer, None) => answer,
    })
}

/// What a client of Vault Agent still holds a while after a dual role's
/// rotation: the TTL it read before that rotation ends at the next
/// scheduled one, or after the agent's default render interval (5 min)
/// for a role without a schedule.
const AGENT_RENDER_INTERVAL: time::Duration = time::Duration::minutes(5);

/// A rotation of a dual-account role changes the account static-creds
/// served before its last rotation: clients that have not re-read since
/// still use it. Refusing would block an emergency rotation, so it warns.
fn hurried_dual_rotation(role: &Role, name: &str, now: OffsetDateTime) -> Option<String> {
    let last = role.state.last_vault_rotation?;
    if !role.is_dual() || role.state.in_flight.is_some() {
        return None;
    }
    let settled = role
        .schedule
        .next_cycle_after(last)
        .unwrap_or(last + AGENT_RENDER_INTERVAL);
    if now >= settled {
        return None;
    }
    let account = role.inactive_username().unwrap_or_default();
    Some(format!(
        "role {name:?} rotated at {}: clients that have not re-read static-creds/{name} since still use account {account:?}, which this rotation changes, so their logins fail until they re-read (Vault Agent re-reads by {} at the latest)",
        rfc3339(last),
        rfc3339(settled)
    ))
}

/// The answer to a rotation that ran.
fn answer(
    name: &str,
    outcome: RunOutcome,
    role: &Role,
    next: Option<String>,
) -> Result<Option<Response>, Error> {
    match outcome {
        RunOutcome::Rotated { rotation_id, dependents_updated } => Ok(Some(Response::with_data(json!({
            "rotation_id": rotation_id,
            "status": "ok",
            "dependents_updated": dependents_updated,
            "last_vault_rotation": role.state.last_vault_rotation.map(rfc3339),
            "next_vault_rotation": next,
        })))),
        RunOutcome::Deferred { reason } => Ok(Some(
            Response::with_data(json!({ "status": "deferred", "reason": reason, "next_attempt": next }))
                .warn(format!("rotation deferred: {reason}; it resumes with the same password once the jobs accept changes")),
        )),
        RunOutcome::NotDue => Ok(None),
        RunOutcome::Retrying { status, message } => Err(Error::Coded {
            status: 502,
            message: format!(
                "rotation of role {name:?} did not finish ({}): {message}; retries continue in the background (next at {}), and it is safe to run rotate-role again",
                status.as_str(),
                next.unwrap_or_default()
            ),
        }),
        RunOutcome::Failed { message } => Err(Error::Coded {
            status: 502,
            message: format!("rotation of role {name:?} failed: {message}; read static-roles/{name} for details"),
        }),
        RunOutcome::Drifted { message } => Err(Error::conflict(format!(
            "rotation of role {name:?} stopped before changing anything: {message}"
        ))),
    }
}

fn missing(name: &str) -> Error {
    Error::bad_request(format!(
        "static role {name:?} does not exist (a library set's service accounts rotate at check-in, or with library/<set>/rotate)"
    ))
}

/// One provider call a step makes, as a dry run shows it.
fn call(service: &str, action: &str, connection: &str, resource: &str) -> Value {
    json!({ "service": service, "action": action, "connection": connection, "resource": resource })
}

/// The provider calls of one step; `account` is the one a dual role's
/// rotation changes.
fn calls_of(role: &Role, account: Option<&str>, action: &Action) -> Vec<Value> {
    let (connection, resource) = match &role.target {
        Target::PolardbAccount {
            connection,
            cluster_id,
        } => (
            connection.as_str(),
            format!(
                "{cluster_id}/{}",
                account.or(role.username.as_deref()).unwrap_or_default()
            ),
        ),
        Target::DcsInstance {
            connection,
            instance_id,
        } => (connection.as_str(), instance_id.clone()),
        Target::External => ("", String::new()),
    };
    let (service, read, describe) = match role.target {
        Target::DcsInstance { .. } => ("dcs", "ShowInstance", "UpdateInstance"),
        _ => ("polardb", "DescribeAccounts", "ModifyAccountDescription"),
    };
    match action {
        Action::ReadTarget => vec![call(service, read, connection, &resource)],
        Action::AwaitSettled => vec![call(service, "ListAclAccounts", connection, &resource)],
        Action::ChangeTarget(method) => vec![call(service, method.action(), connection, &resource)],
        Action::WriteMarker(MarkerWrite::Send(_)) => {
            vec![call(service, describe, connection, &resource)]
        }
        Action::CheckDependents => dependent_calls(
            &role.dependents_of(account),
            "DescribeDtsJobDetail",
            "BatchListJobStatus",
        ),
        Action::UpdateDependents(pending) => {
            dependent_calls(pending, "ModifyDtsJobPassword", "BatchResetPassword")
        }
        Action::WriteMarker(_) | Action::Finish => Vec::new(),
    }
}

/// One DTS call per job; one DRS batch per connection.
fn dependent_calls(dependents: &[Dependent], dts: &str, drs: &str) -> Vec<Value> {
    let mut calls = Vec::new();
    let mut batches: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    for dependent in dependents {
        match dependent {
            Dependent::Dts {
                connection, job_id, ..
            } => {
                let mut one = call("dts", dts, connection, &dependent.to_string());
                one["job_id"] = job_id.as_str().into();
                calls.push(one);
            }
            Dependent::Drs { connection, .. } => batches
                .entry(connection)
                .or_default()
                .push(dependent.to_string()),
        }
    }
    for (connection, items) in batches {
        calls.push(json!({ "service": "drs", "action": drs, "connection": connection, "resources": items }));
    }
    calls
}

/// The reads a dry run made, with what they found.
fn prechecks(engine_owner: &str, role: &Role, run: &DryRun) -> Vec<Value> {
    let mut out = Vec::new();
    for (action, observation) in &run.steps {
        match (action, observation) {
            (Action::ReadTarget, Observation::Target(Err(error))) => {
                out.push(
                    json!({ "target": role.target.kind().as_str(), "error": error.to_string() }),
                );
            }
            (Action::ReadTarget, Observation::Target(Ok(target))) => {
                let marker = match drift::compare_account(
                    marker::find(&target.description).as_ref(),
                    engine_owner,
                    role,
                    run.account.as_deref(),
                ) {
                    Finding::InSync | Finding::AlreadyApplied => "in_sync".to_owned(),
                    Finding::Unverified => "no marker".to_owned(),
                    Finding::MarkerBehind => {
                        "marker behind: rewritten by the next check".to_owned()
                    }
                    Finding::Drifted(_, detail) => detail,
                };
                out.push(json!({
                    "target": role.target.kind().as_str(),
                    "state": target.status,
                    "accepts_change": drift::condition(&role.target, target) == Condition::Ready,
                    "marker": marker,
                }));
            }
            (Action::CheckDependents, Observation::Jobs(jobs)) => {
                for (dependent, job) in role.dependents_of(run.account.as_deref()).iter().zip(jobs)
                {
                    out.push(match job {
                        Ok(job) => json!({ "dependent": dependent.to_string(), "state": job.status, "accepts_change": job.accepts_password_change }),
                        Err(error) => json!({ "dependent": dependent.to_string(), "error": error.to_string() }),
                    });
                }
            }
            _ => {}
        }
    }
    out
}

/// A rotation of `role` walked without changing anything: the calls it
/// would make, the prechecks it made, and how it would end.
async fn plan(engine: &Engine, name: &str, role: &Role) -> Result<Value, Error> {
    let run = execute::dry_run(engine, name, role).await?;
    let owner = engine.owner_id().await?;
    let calls: Vec<Value> = run
        .steps
        .iter()
        .flat_map(|(action, _)| calls_of(role, run.account.as_deref(), action))
        .collect();
    let prechecks = prechecks(&owner, role, &run);
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
    let blocked = prechecks
        .iter()
        .any(|p| p["accepts_change"] == Value::Bool(false) || p.get("error").is_some());
    let resuming = role.state.in_flight.as_ref().filter(|_| run.resumes);
    Ok(json!({
        "dry_run": true,
        "role": role.kind.path(),
        "resumes_rotation": resuming.map(|f| json!({ "id": f.id, "phase": f.phase.as_str(), "started_at": rfc3339(f.started_at) })),
        "calls": calls,
        "prechecks": prechecks,
        "would_defer": blocked,
        "would_end": run.outcome.status().as_str(),
        "password_check": password_check,
    }))
}

async fn rotate_root(engine: &Arc<Engine>, _: &Request, data: &FieldData) -> HandlerResult {
    let name = data.str("name").unwrap_or_default();
    let _guard = engine
        .store
        .try_lock(LockKey::Connection(name))
        .ok_or_else(|| {
            Error::conflict(format!(
                "connection {name:?} is being changed or rotated right now; try again shortly"
            ))
        })?;
    match root::run(engine, name, Trigger::Manual).await? {
        RootOutcome::Rotated { access_key } => {
            let connection = engine.store.load_connection(name).await?;
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use time::macros::datetime;

    use super::*;

    fn dual(period: Option<Duration>) -> Role {
        let mut role = Role::new(
            RoleKind::Static,
            Target::PolardbAccount {
                connection: "ali".into(),
                cluster_id: "pc-1".into(),
            },
        );
        role.usernames = vec!["app_blue".into(), "app_green".into()];
        role.schedule.period = period;
        role.state.last_vault_rotation = Some(datetime!(2026-12-07 10:00 UTC));
        role
    }

    #[test]
    fn a_dual_rotation_warns_while_clients_may_still_hold_the_account_it_changes() {
        let hour = Some(Duration::from_secs(3600));
        let soon = datetime!(2026-12-07 10:30 UTC);
        let text = hurried_dual_rotation(&dual(hour), "r", soon).expect("a warning");
        assert!(text.contains("\"app_green\"") && text.contains("2026-12-07T11:00:00Z"));
        // A period later every agent following its TTL has re-read.
        assert_eq!(
            hurried_dual_rotation(&dual(hour), "r", datetime!(2026-12-07 11:00 UTC)),
            None
        );
        // Without a schedule, the agent's render interval bounds it.
        let unscheduled = dual(None);
        assert!(
            hurried_dual_rotation(&unscheduled, "r", datetime!(2026-12-07 10:04 UTC)).is_some()
        );
        assert_eq!(
            hurried_dual_rotation(&unscheduled, "r", datetime!(2026-12-07 10:05 UTC)),
            None
        );
        // Single roles, and a dual role never rotated, have nothing to warn about.
        let mut single = dual(hour);
        single.usernames.clear();
        assert_eq!(hurried_dual_rotation(&single, "r", soon), None);
        let mut fresh = dual(hour);
        fresh.state.last_vault_rotation = None;
        assert_eq!(hurried_dual_rotation(&fresh, "r", soon), None);
    }
}
