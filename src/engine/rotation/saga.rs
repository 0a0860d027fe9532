//! The rotation saga. Every step is recorded in the role's storage entry
//! before the next one runs:
//!
//! 1. generate a password that fits the target's rules and store it with
//!    the old one as the in-flight record (durable before any provider call);
//! 2. precheck the dependents; if one cannot take a change now, defer
//!    without touching anything;
//! 3. change the authoritative target; store the new password as current;
//! 4. update every dependent copy (DRS batched per connection);
//! 5. clear the record and write history.
//!
//! Any run after a crash, a timeout or an error resumes from the record and
//! never generates another password. Ambiguity is resolved per provider:
//! PolarDB and DRS accept the same password again; DTS accepts it or
//! refuses the `Password` parameter, which (the password meeting the rules)
//! confirms the change; DCS is reset to the recorded password instead of
//! spending old-password attempts.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::framework::Error;
use crate::providers::{ErrorClass, ErrorKind, ProviderError};

use super::super::Engine;
use super::super::history::Entry;
use super::super::role::{
    Dependent, DependentStatus, LastError, Phase, Role, RoleKind, Rotation, Status, Target, Trigger,
};
use super::cloud;

pub struct RotateRequest {
    pub trigger: Trigger,
    /// External targets: the password the operator gives.
    pub password: Option<String>,
    /// Lease end: the checkout being ended, cleared in the same write that
    /// records the rotation.
    pub end_checkout: Option<String>,
}

impl RotateRequest {
    pub fn new(trigger: Trigger) -> Self {
        Self {
            trigger,
            password: None,
            end_checkout: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Rotated {
        rotation_id: String,
        dependents_updated: Vec<String>,
    },
    Deferred {
        reason: String,
    },
    /// Not finished; the runner tries again at `next_rotation`.
    Retrying {
        status: Status,
        message: String,
    },
    Failed {
        message: String,
    },
    /// The scheduler raced with another change: nothing was due.
    NotDue,
}

impl Outcome {
    pub fn status(&self) -> &'static str {
        match self {
            Self::Rotated { .. } | Self::NotDue => Status::Ok.as_str(),
            Self::Deferred { .. } => Status::Deferred.as_str(),
            Self::Retrying { status, .. } => status.as_str(),
            Self::Failed { .. } => Status::Failed.as_str(),
        }
    }
}

/// Runs (or resumes) a rotation of `name`. The caller holds the role's lock.
pub async fn run(
    engine: &Arc<Engine>,
    name: &str,
    request: RotateRequest,
) -> Result<Outcome, Error> {
    engine.ensure_writable().await?;
    let mut role = engine
        .load_role(name)
        .await?
        .ok_or_else(|| Error::bad_request(format!("role {name:?} does not exist")))?;
    let now = engine.clock.now();
    match &role.state.in_flight {
        Some(flight) => {
            if request
                .password
                .as_ref()
                .is_some_and(|given| *given != flight.new_password)
            {
                return Err(Error::conflict(format!(
                    "a rotation of role {name:?} started at {} is not finished; it must complete (rotate-role without password) before another password can be propagated",
                    super::super::connection::rfc3339(flight.started_at)
                )));
            }
            if let Some(checkout) = &request.end_checkout {
                end_checkout(&mut role, checkout);
            }
        }
        None => {
            if request.trigger == Trigger::Schedule {
                let Some(due) = role.state.next_rotation.filter(|due| *due <= now) else {
                    return Ok(Outcome::NotDue);
                };
                if !role.schedule.in_window(due, now) {
                    // Missed the window: wait for the next slot, as Vault does.
                    role.state.next_rotation = role.schedule.next_slot_after(now);
                    engine.save_role(name, &role).await?;
                    engine.timetable.set(
                        super::super::scheduler::Job::Role(name.to_owned()),
                        role.state.next_rotation,
                    );
                    tracing::info!(
                        role = name,
                        "missed the rotation window; waiting for the next slot"
                    );
                    return Ok(Outcome::NotDue);
                }
            }
            start(engine, name, &mut role, request, now).await?;
        }
    }
    advance(engine, name, &mut role).await
}

fn end_checkout(role: &mut Role, checkout: &str) {
    if role
        .state
        .checkout
        .as_ref()
        .is_some_and(|c| c.id == checkout)
    {
        role.state.checkout = None;
    }
}

async fn start(
    engine: &Engine,
    name: &str,
    role: &mut Role,
    request: RotateRequest,
    now: OffsetDateTime,
) -> Result<(), Error> {
    let (new_password, phase) = match (&role.target, request.password, request.trigger) {
        (Target::External, Some(given), _) => {
            role.target
                .rules()
                .check(&given)
                .map_err(Error::BadRequest)?;
            (given, Phase::TargetApplied)
        }
        (Target::External, None, _) => {
            return Err(Error::bad_request(format!(
                "role {name:?} has an external target: give the new password with rotate-role/{name} password=..."
            )));
        }
        (_, Some(_), _) => {
            return Err(Error::bad_request(
                "password is only accepted for external targets; Vault generates the passwords of PolarDB and DCS targets",
            ));
        }
        (_, None, Trigger::Propagate) => {
            let current = role.state.password.clone().ok_or_else(|| {
                Error::bad_request(format!(
                    "role {name:?} has no password yet to propagate; rotate it first"
                ))
            })?;
            (current, Phase::TargetApplied)
        }
        (_, None, _) => (engine.generate_password(role).await?, Phase::Prepared),
    };
    if phase == Phase::TargetApplied && role.target == Target::External {
        // The operator's password is current from now on: nothing to change
        // upstream, every copy to update.
        role.state.last_password = role.state.password.replace(new_password.clone());
        role.state.last_vault_rotation = Some(now);
    }
    role.state.in_flight = Some(Rotation {
        id: new_rotation_id(),
        trigger: request.trigger,
        started_at: now,
        old_password: role.state.password.clone(),
        new_password,
        phase,
        dcs_reset_only: false,
        attempts: 0,
        request_ids: Vec::new(),
    });
    if let Some(checkout) = &request.end_checkout {
        end_checkout(role, checkout);
    }
    if phase == Phase::TargetApplied {
        mark_dependents_pending(role);
    }
    role.state.status = Status::Rotating;
    role.state.status_reason = None;
    engine.save_role(name, role).await
}

fn new_rotation_id() -> String {
    let bytes: [u8; 8] = rand::random();
    hex::encode(bytes)
}

fn mark_dependents_pending(role: &mut Role) {
    for dependent in &role.dependents {
        role.state
            .dependents
            .entry(dependent.to_string())
            .or_default()
            .status = DependentStatus::Pending;
    }
}

enum Step {
    Continue,
    Stop(Outcome),
}

async fn advance(engine: &Arc<Engine>, name: &str, role: &mut Role) -> Result<Outcome, Error> {
    let flight = role.state.in_flight.as_mut().expect("a rotation in flight");
    flight.attempts += 1;
    if flight.phase == Phase::Prepared {
        match cloud::precheck_dependents(engine, &role.dependents).await {
            Err(error) => return failed_attempt(engine, name, role, &error).await,
            Ok(refusals) if !refusals.is_empty() => {
                return defer(engine, name, role, refusals).await;
            }
            Ok(_) => {}
        }
    }
    if role
        .state
        .in_flight
        .as_ref()
        .is_some_and(|f| f.phase != Phase::TargetApplied)
        && let Step::Stop(outcome) = change_target(engine, name, role).await?
    {
        return Ok(outcome);
    }
    update_dependents(engine, name, role).await
}

/// Changes the authoritative target, resolving an unknown outcome or a DCS
/// old-password refusal with one more (idempotent) try in the same run.
async fn change_target(engine: &Arc<Engine>, name: &str, role: &mut Role) -> Result<Step, Error> {
    for _ in 0..2 {
        let flight = role.state.in_flight.as_ref().expect("a rotation in flight");
        let result = cloud::change_target(engine, role, flight).await;
        let now = engine.clock.now();
        let is_dcs = matches!(role.target, Target::DcsInstance { .. });
        match result {
            Ok(request_id) => {
                let state = &mut role.state;
                let flight = state.in_flight.as_mut().expect("a rotation in flight");
                flight.request_ids.extend(request_id);
                flight.phase = Phase::TargetApplied;
                state.last_password = state.password.replace(flight.new_password.clone());
                state.last_vault_rotation = Some(now);
                if is_dcs {
                    state.dcs_retry_times_left = None;
                }
                mark_dependents_pending(role);
                engine.save_role(name, role).await?;
                return Ok(Step::Continue);
            }
            Err(error) => {
                let flight = role.state.in_flight.as_mut().expect("a rotation in flight");
                flight.request_ids.extend(error.request_id.clone());
                match error.class {
                    ErrorClass::OutcomeUnknown => {
                        flight.phase = Phase::TargetUncertain;
                        if is_dcs && !flight.dcs_reset_only {
                            // The old password may already be gone: never
                            // offer it again, reset to the recorded one.
                            flight.dcs_reset_only = true;
                            engine.save_role(name, role).await?;
                            continue;
                        }
                        engine.save_role(name, role).await?;
                    }
                    ErrorClass::Lockout {
                        retry_times_left,
                        lock_time_left_minutes,
                    } => {
                        // DCS.4080 (password verification failed) gives no
                        // count: it spent one try all the same.
                        let known = role.state.dcs_retry_times_left;
                        role.state.dcs_retry_times_left = retry_times_left.or_else(|| {
                            Some(known.unwrap_or(cloud::DCS_PASSWORD_TRIES).saturating_sub(1))
                        });
                        let flight = role.state.in_flight.as_mut().expect("a rotation in flight");
                        let first_refusal = !flight.dcs_reset_only;
                        flight.dcs_reset_only = true;
                        if first_refusal && lock_time_left_minutes.unwrap_or(0) == 0 {
                            engine.save_role(name, role).await?;
                            continue;
                        }
                    }
                    ErrorClass::Permanent if flight.phase == Phase::Prepared => {
                        return abandon(engine, name, role, &error).await.map(Step::Stop);
                    }
                    ErrorClass::Permanent | ErrorClass::Retryable => {}
                }
                return failed_attempt(engine, name, role, &error)
                    .await
                    .map(Step::Stop);
            }
        }
    }
    Err(Error::internal(
        "target change loop ended without an outcome",
    ))
}

async fn update_dependents(
    engine: &Arc<Engine>,
    name: &str,
    role: &mut Role,
) -> Result<Outcome, Error> {
    let configured: Vec<String> = role.dependents.iter().map(ToString::to_string).collect();
    role.state
        .dependents
        .retain(|id, _| configured.contains(id));
    let pending: Vec<Dependent> = role
        .dependents
        .iter()
        .filter(|d| {
            role.state
                .dependents
                .get(&d.to_string())
                .is_none_or(|s| s.status != DependentStatus::InSync)
        })
        .cloned()
        .collect();
    if pending.is_empty() {
        return finish(engine, name, role).await;
    }
    let password = role
        .state
        .in_flight
        .as_ref()
        .expect("a rotation in flight")
        .new_password
        .clone();
    let results = cloud::update_dependents(engine, &pending, &password).await;
    let now = engine.clock.now();
    let mut first_error: Option<ProviderError> = None;
    for (dependent, result) in results {
        let state = role
            .state
            .dependents
            .entry(dependent.to_string())
            .or_default();
        state.updated_at = Some(now);
        match result {
            Ok(request_id) => {
                state.status = DependentStatus::InSync;
                state.last_error = None;
                role.state
                    .in_flight
                    .as_mut()
                    .expect("a rotation in flight")
                    .request_ids
                    .extend(request_id);
            }
            Err(error) if error.is_password_refused() => {
                // The password meets the rules (generated, or checked when
                // given), so DTS's one documented reason to refuse it is
                // that the copy already holds it: an earlier send whose
                // answer was lost (or a crash after sending) did apply it.
                state.status = DependentStatus::InSync;
                state.last_error = None;
            }
            Err(error) => {
                state.status = match (error.class, error.kind) {
                    (_, ErrorKind::InvalidState) => DependentStatus::Deferred,
                    (ErrorClass::Permanent, _) => DependentStatus::Failed,
                    _ => DependentStatus::Pending,
                };
                state.last_error = Some(error.to_string());
                role.state
                    .in_flight
                    .as_mut()
                    .expect("a rotation in flight")
                    .request_ids
                    .extend(error.request_id.clone());
                first_error.get_or_insert(error);
            }
        }
    }
    match first_error {
        None => finish(engine, name, role).await,
        Some(error) => failed_attempt(engine, name, role, &error).await,
    }
}

/// When a role that gave up (or whose target refused the change) tries
/// again: its next regular rotation if that is still ahead, else the next
/// slot of its schedule; a leased role, which has none, after the longest
/// backoff; a manual-only role waits for rotate-role.
fn next_cycle(engine: &Engine, role: &Role, now: OffsetDateTime) -> Option<OffsetDateTime> {
    match role.kind {
        RoleKind::Static => next_regular_rotation(role, now)
            .filter(|due| *due > now)
            .or_else(|| role.schedule.next_cycle_after(now)),
        RoleKind::Leased => Some(now + engine.tuning.retry_cap),
    }
}

fn next_regular_rotation(role: &Role, now: OffsetDateTime) -> Option<OffsetDateTime> {
    match role.kind {
        // A password Vault never rotated (adopted, then propagated) counts
        // from now, as the write that adopted it did: counting from "never"
        // would make the role due at once, defeating skip_import_rotation.
        RoleKind::Static => role
            .schedule
            .next_after(Some(role.state.last_vault_rotation.unwrap_or(now)), now),
        // A leased role rotates when its lease ends; this is only the safety
        // net for a lease the host lost.
        RoleKind::Leased => role.state.checkout.as_ref().map(|c| c.max_expires_at),
    }
}

/// Every dependent now holds this rotation's password, whichever run
/// updated it.
async fn finish(engine: &Arc<Engine>, name: &str, role: &mut Role) -> Result<Outcome, Error> {
    let now = engine.clock.now();
    let flight = role.state.in_flight.take().expect("a rotation in flight");
    let next = next_regular_rotation(role, now);
    let state = &mut role.state;
    state.status = Status::Ok;
    state.status_reason = None;
    state.failures = 0;
    state.last_error = None;
    state.next_rotation = next;
    engine.save_role(name, role).await?;
    engine.timetable.set(
        super::super::scheduler::Job::Role(name.to_owned()),
        role.state.next_rotation,
    );
    let dependents: Vec<String> = role.dependents.iter().map(ToString::to_string).collect();
    record(engine, name, &flight, "succeeded", None, dependents.clone()).await;
    Ok(Outcome::Rotated {
        rotation_id: flight.id,
        dependents_updated: dependents,
    })
}

/// A dependent cannot take a change now: nothing was touched; check again
/// later with the same recorded password.
async fn defer(
    engine: &Arc<Engine>,
    name: &str,
    role: &mut Role,
    refusals: Vec<(String, String)>,
) -> Result<Outcome, Error> {
    let now = engine.clock.now();
    let reason = refusals
        .iter()
        .map(|(id, why)| format!("{id}: {why}"))
        .collect::<Vec<_>>()
        .join("; ");
    let state = &mut role.state;
    state.status = Status::Deferred;
    state.status_reason = Some(reason.clone());
    state.next_rotation = Some(now + engine.tuning.defer_retry);
    for (id, why) in refusals {
        let dependent_state = state.dependents.entry(id).or_default();
        dependent_state.status = DependentStatus::Deferred;
        dependent_state.last_error = Some(why);
        dependent_state.updated_at = Some(now);
    }
    engine.save_role(name, role).await?;
    engine.timetable.set(
        super::super::scheduler::Job::Role(name.to_owned()),
        role.state.next_rotation,
    );
    let flight = role.state.in_flight.clone().expect("a rotation in flight");
    record(
        engine,
        name,
        &flight,
        "deferred",
        Some(("deferred", reason.as_str())),
        Vec::new(),
    )
    .await;
    Ok(Outcome::Deferred { reason })
}

/// The target refused a change that was never applied: the generated
/// password was never used anywhere, so the record is dropped.
async fn abandon(
    engine: &Arc<Engine>,
    name: &str,
    role: &mut Role,
    error: &ProviderError,
) -> Result<Outcome, Error> {
    let now = engine.clock.now();
    let flight = role.state.in_flight.take().expect("a rotation in flight");
    let message = error.to_string();
    let next = next_cycle(engine, role, now);
    let state = &mut role.state;
    state.status = Status::Failed;
    state.status_reason = Some("the target refused the change; nothing was changed".into());
    state.last_error = Some(LastError {
        at: now,
        class: error.class.to_string(),
        message: message.clone(),
    });
    state.failures = 0;
    state.next_rotation = next;
    engine.save_role(name, role).await?;
    engine.timetable.set(
        super::super::scheduler::Job::Role(name.to_owned()),
        role.state.next_rotation,
    );
    record(
        engine,
        name,
        &flight,
        "failed",
        Some((&error.class.to_string(), &message)),
        Vec::new(),
    )
    .await;
    Ok(Outcome::Failed { message })
}

/// An attempt failed: back off and retry, or after `max_failures` give up
/// until the next cycle (the record stays, so that cycle resumes it).
async fn failed_attempt(
    engine: &Arc<Engine>,
    name: &str,
    role: &mut Role,
    error: &ProviderError,
) -> Result<Outcome, Error> {
    let now = engine.clock.now();
    let tuning = &engine.tuning;
    let message = error.to_string();
    let target_applied = role
        .state
        .in_flight
        .as_ref()
        .is_some_and(|f| f.phase == Phase::TargetApplied);
    let lock_wait = match error.class {
        ErrorClass::Lockout {
            lock_time_left_minutes: Some(minutes),
            ..
        } if minutes > 0 => Some(std::time::Duration::from_secs(u64::from(minutes) * 60 + 5)),
        _ => None,
    };
    let state = &mut role.state;
    state.failures += 1;
    state.last_error = Some(LastError {
        at: now,
        class: error.class.to_string(),
        message: message.clone(),
    });
    let gave_up = state.failures >= tuning.max_failures;
    let outcome = if gave_up {
        state.status = Status::Failed;
        state.failures = 0;
        let next = next_cycle(engine, role, now);
        role.state.status_reason = Some(match next {
            Some(at) => format!(
                "gave up after {} attempts; trying again at {}",
                tuning.max_failures,
                super::super::connection::rfc3339(at)
            ),
            None => format!(
                "gave up after {} attempts; run rotate-role/{name} to try again",
                tuning.max_failures
            ),
        });
        role.state.next_rotation = next;
        Outcome::Failed {
            message: message.clone(),
        }
    } else {
        let status = if target_applied {
            Status::PendingDependents
        } else {
            Status::Rotating
        };
        state.status = status;
        state.status_reason = Some(format!("attempt {} failed; retrying", state.failures));
        let wait = tuning
            .backoff(state.failures)
            .max(error.retry_after.unwrap_or_default())
            .max(lock_wait.unwrap_or_default());
        state.next_rotation = Some(now + wait);
        Outcome::Retrying {
            status,
            message: message.clone(),
        }
    };
    engine.save_role(name, role).await?;
    engine.timetable.set(
        super::super::scheduler::Job::Role(name.to_owned()),
        role.state.next_rotation,
    );
    if gave_up {
        let flight = role.state.in_flight.clone().expect("a rotation in flight");
        record(
            engine,
            name,
            &flight,
            "failed",
            Some((&error.class.to_string(), &message)),
            Vec::new(),
        )
        .await;
    }
    Ok(outcome)
}

/// History is best effort: losing an entry must never fail a rotation that
/// already changed a password.
async fn record(
    engine: &Engine,
    name: &str,
    flight: &Rotation,
    outcome: &str,
    error: Option<(&str, &str)>,
    dependents_updated: Vec<String>,
) {
    let entry = Entry {
        rotation_id: flight.id.clone(),
        started_at: flight.started_at,
        updated_at: engine.clock.now(),
        trigger: flight.trigger.as_str().to_owned(),
        outcome: outcome.to_owned(),
        error_class: error.map(|(class, _)| class.to_owned()),
        error: error.map(|(_, message)| message.to_owned()),
        request_ids: flight.request_ids.clone(),
        dependents_updated,
        attempts: flight.attempts,
    };
    if let Err(err) = super::super::history::record(engine.storage.as_ref(), name, entry).await {
        tracing::warn!(role = name, error = %err, "could not write rotation history");
    }
}
