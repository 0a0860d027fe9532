//! The rotation saga. Every step is recorded in the role's storage entry
//! before the next one runs:
//!
//! 1. generate a password that fits the target's rules and store it with
//!    the old one as the in-flight record (durable before any provider call);
//! 2. precheck the target (its state, and its ownership marker: drift) and
//!    the dependents; if one cannot take a change now, defer without
//!    touching anything; if the target drifted, stop;
//! 3. change the authoritative target; store the new password as current;
//! 4. write this mount's ownership marker naming the rotation into the
//!    target's description (never fails the rotation);
//! 5. update every dependent copy (DRS batched per connection);
//! 6. clear the record and write history.
//!
//! Any run after a crash, a timeout or an error resumes from the record and
//! never generates another password. Ambiguity is resolved per provider:
//! PolarDB and DRS accept the same password again; DTS accepts it or
//! refuses the `Password` parameter, which (the password meeting the rules)
//! confirms the change; DCS is reset to the recorded password: before a DCS
//! `UpdatePassword` is sent the record says so, and a resumed run never
//! offers the old password again.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::framework::Error;
use crate::providers::{ErrorClass, ErrorKind, ProviderError, Service};

use super::super::Engine;
use super::super::history::Entry;
use super::super::marker;
use super::super::role::{
    CREDENTIALS_REJECTED, CheckState, Dependent, DependentStatus, LastError, Phase, Role, RoleKind,
    Rotation, Status, Target, Trigger,
};
use super::cloud;
use super::drift::{self, Condition, Finding};
use super::targets::TargetState;

pub struct RotateRequest {
    pub trigger: Trigger,
    /// The password the operator gives: an external target's new one, or
    /// the one a PolarDB or DCS target holds (adoption).
    pub password: Option<String>,
    /// Lease end: the checkout being ended, cleared in the same write that
    /// records the rotation.
    pub end_checkout: Option<String>,
    /// The target as the request that starts this rotation read it moments
    /// ago (a role write's claim check), so the precheck does not read it
    /// again.
    pub target: Option<TargetState>,
}

impl RotateRequest {
    pub fn new(trigger: Trigger) -> Self {
        Self {
            trigger,
            password: None,
            end_checkout: None,
            target: None,
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
    /// The target holds a password Vault did not set: nothing was changed;
    /// `message` says what was found and what to do.
    Drifted {
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
            Self::Drifted { .. } => Status::Drifted.as_str(),
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
    let mut request = request;
    let read = request.target.take();
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
                let Some(due) = role
                    .state
                    .next_rotation
                    .filter(|due| *due <= now && role.state.status != Status::Drifted)
                else {
                    return Ok(Outcome::NotDue);
                };
                if !role.schedule.in_window(due, now) {
                    // Missed the window: wait for the next slot, as Vault does.
                    role.state.next_rotation = role.schedule.next_slot_after(now);
                    engine.save_role(name, &role).await?;
                    engine.timetable.set(
                        super::super::scheduler::Job::Role(name.into()),
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
    advance(engine, name, &mut role, read).await
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
    let drifted = role.state.status == Status::Drifted;
    let mut trigger = request.trigger;
    let given = request.password.is_some();
    let (new_password, phase) = match (&role.target, request.password) {
        (_, Some(given)) => {
            check_given_password(role, &given)?;
            if role.target != Target::External {
                trigger = Trigger::Adopt;
            }
            (given, Phase::TargetApplied)
        }
        (_, None) if matches!(trigger, Trigger::Propagate | Trigger::Adopt) => {
            if drifted && trigger == Trigger::Propagate {
                return Err(Error::conflict(format!(
                    "role {name:?} is drifted: the password Vault holds is not the target's, so it is not pushed to new dependents; take a way out first (read static-roles/{name})"
                )));
            }
            let current = role.state.password.clone().ok_or_else(|| {
                Error::bad_request(format!(
                    "role {name:?} has no password yet to propagate; rotate it first"
                ))
            })?;
            (current, Phase::TargetApplied)
        }
        (Target::External, None) => {
            return Err(Error::bad_request(format!(
                "role {name:?} has an external target: give the new password with rotate-role/{name} password=..."
            )));
        }
        (_, None) => {
            if drifted {
                trigger = Trigger::Repair;
            }
            (engine.generate_password(role).await?, Phase::Prepared)
        }
    };
    let id = marker::new_id();
    let old_password = role.state.password.clone();
    if given {
        // The given password is current from now on: nothing to change
        // upstream, every copy to update.
        role.state.last_password = role.state.password.replace(new_password.clone());
        role.state.last_vault_rotation = Some(now);
    }
    let adopts = given || trigger == Trigger::Adopt;
    if adopts {
        role.state.generation = Some(id.clone());
    }
    if trigger.takes_the_target() {
        role.state.drift = None;
    }
    role.state.in_flight = Some(Rotation {
        id,
        trigger,
        started_at: now,
        old_password,
        new_password,
        phase,
        // A repair never offers the old password: the target holds another.
        dcs_reset_only: trigger == Trigger::Repair,
        attempts: 0,
        request_ids: Vec::new(),
        // Pushing an unchanged password to new copies sets no generation.
        marker_written: phase == Phase::TargetApplied && !adopts,
        events: Vec::new(),
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

/// A password an operator gives is checked before anything is pushed: the
/// target's rules (an adopted password must be one the target can hold; an
/// external target's is held to the plugin's baseline for passwords copied
/// into jobs), and each dependent's documented rules: DTS refuses a
/// password equal to the one the job holds (ModifyDtsJobPassword, SDK
/// `_modify_dts_job_password_request.py`); DRS documents none beyond being
/// the database password (`modify_pwd_end_point.py`). The password is never
/// quoted.
fn check_given_password(role: &Role, given: &str) -> Result<(), Error> {
    let dependents: Vec<String> = role.dependents.iter().map(ToString::to_string).collect();
    if let Err(why) = role.target.rules().check(given) {
        let rule = match role.target {
            Target::External => format!(
                "the plugin's rule for every password it copies into DTS/DRS jobs, so that no job or shell mangles it (dependents: {})",
                dependents.join(", ")
            ),
            _ => format!(
                "the {} rule: an adopted password must be one the target can hold",
                role.target.rules().name
            ),
        };
        return Err(Error::bad_request(format!(
            "password refused: {why}; {rule}"
        )));
    }
    if role.state.password.as_deref() == Some(given)
        && let Some(dts) = role
            .dependents
            .iter()
            .find(|d| matches!(d, Dependent::Dts { .. }))
    {
        return Err(Error::bad_request(format!(
            "password refused: it is the role's current password, and DTS refuses a password equal to the one its job holds (ModifyDtsJobPassword; dependent {dts}); give the new password"
        )));
    }
    Ok(())
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

async fn advance(
    engine: &Arc<Engine>,
    name: &str,
    role: &mut Role,
    read: Option<TargetState>,
) -> Result<Outcome, Error> {
    let flight = role.state.in_flight.as_mut().expect("a rotation in flight");
    flight.attempts += 1;
    let description = match precheck_target(engine, name, role, read).await? {
        Ok(description) => description,
        Err(outcome) => return Ok(outcome),
    };
    if phase(role) == Phase::Prepared {
        match cloud::precheck_dependents(engine, &role.dependents).await {
            Err(error) => return failed_attempt(engine, name, role, &error).await,
            Ok(refusals) if !refusals.is_empty() => {
                return defer(engine, name, role, refusals).await;
            }
            Ok(_) => {}
        }
    }
    if phase(role) != Phase::TargetApplied
        && let Step::Stop(outcome) = change_target(engine, name, role).await?
    {
        return Ok(outcome);
    }
    let flight = role.state.in_flight.as_ref().expect("a rotation in flight");
    if !flight.marker_written {
        let generation = flight.id.clone();
        if let Some(description) = &description {
            drift::write_marker(engine, role, description, &generation).await?;
        }
        // Recorded with the next save: writing it again is harmless.
        role.state
            .in_flight
            .as_mut()
            .expect("a rotation in flight")
            .marker_written = true;
    }
    update_dependents(engine, name, role).await
}

fn phase(role: &Role) -> Phase {
    role.state
        .in_flight
        .as_ref()
        .expect("a rotation in flight")
        .phase
}

/// Reads the target before anything changes (PolarDB and DCS): a passing
/// state defers, a stuck one fails, and the ownership marker tells whether
/// the target still holds the password Vault knows. Gives the target's
/// description (for the marker write; `None` when it could not be read), or
/// the outcome that ends this run.
async fn precheck_target(
    engine: &Arc<Engine>,
    name: &str,
    role: &mut Role,
    known: Option<TargetState>,
) -> Result<Result<Option<String>, Outcome>, Error> {
    let read = match known {
        Some(target) => Ok(target),
        None => match cloud::read_target(engine, role).await {
            Some(read) => read,
            None => return Ok(Ok(None)),
        },
    };
    let target = match read {
        Ok(target) => target,
        Err(error)
            if error.is_retryable()
                || error.is_outcome_unknown()
                || error.kind == ErrorKind::Auth =>
        {
            return failed_attempt(engine, name, role, &error).await.map(Err);
        }
        Err(error) => {
            // Not knowing the state or marker does not stop a rotation: the
            // change itself says whether the target takes it.
            let why = format!("could not read the target: {error}");
            drift::set_check(role, engine, CheckState::Unavailable, Some(why));
            return Ok(Ok(None));
        }
    };
    let flight = role.state.in_flight.as_ref().expect("a rotation in flight");
    let (applied, trigger) = (flight.phase == Phase::TargetApplied, flight.trigger);
    if !applied {
        match drift::condition(&role.target, &target) {
            Condition::Ready => {}
            Condition::Transient(why) => {
                return defer(engine, name, role, vec![("target".into(), why)])
                    .await
                    .map(Err);
            }
            Condition::Broken(why) => {
                let error = ProviderError::new(
                    ErrorClass::Permanent,
                    ErrorKind::InvalidState,
                    target_service(&role.target),
                    "precheck",
                    &why,
                    &[],
                );
                return refused(engine, name, role, &error).await.map(Err);
            }
        }
    }
    let owner = engine.owner_id().await?;
    match drift::compare(marker::find(&target.description).as_ref(), &owner, role) {
        Finding::Drifted(kind, detail) if !trigger.takes_the_target() => {
            drift::mark_drifted(engine, name, role, kind, detail).await?;
            let message = role.state.status_reason.clone().unwrap_or_default();
            return Ok(Err(Outcome::Drifted { message }));
        }
        Finding::AlreadyApplied => {
            // Vault's record is older than the target (a restore taken
            // mid-rotation): the change was made; not again.
            let now = engine.clock.now();
            target_applied(role, now, None);
            note(
                role,
                "the target's marker names this rotation: its change was already applied, so it was not sent again",
            );
            engine.save_role(name, role).await?;
        }
        Finding::Unverified if !applied => {
            drift::set_check(
                role,
                engine,
                CheckState::Unverified,
                Some("the target carries no ownership marker; this rotation writes one".into()),
            );
        }
        _ => {}
    }
    Ok(Ok(Some(target.description)))
}

fn target_service(target: &Target) -> Service {
    match target {
        Target::DcsInstance { .. } => Service::Dcs,
        _ => Service::Polardb,
    }
}

/// Adds an event to the rotation's history entry.
fn note(role: &mut Role, event: &str) {
    if let Some(flight) = role.state.in_flight.as_mut() {
        flight.events.push(event.to_owned());
    }
}

/// The target holds the flight's password from now on.
fn target_applied(role: &mut Role, now: OffsetDateTime, request_id: Option<String>) {
    let is_dcs = matches!(role.target, Target::DcsInstance { .. });
    let state = &mut role.state;
    let flight = state.in_flight.as_mut().expect("a rotation in flight");
    flight.request_ids.extend(request_id);
    flight.phase = Phase::TargetApplied;
    state.last_password = state.password.replace(flight.new_password.clone());
    state.generation = Some(flight.id.clone());
    state.last_vault_rotation = Some(now);
    if is_dcs {
        state.dcs_retry_times_left = None;
    }
    mark_dependents_pending(role);
}

/// Changes the authoritative target, resolving an unknown outcome or a DCS
/// old-password refusal with one more (idempotent) try in the same run.
/// Before a DCS `UpdatePassword` is sent, the record says the old password
/// may be spent, so no later run offers it again: it resets instead.
async fn change_target(engine: &Arc<Engine>, name: &str, role: &mut Role) -> Result<Step, Error> {
    for _ in 0..2 {
        let flight = role.state.in_flight.as_ref().expect("a rotation in flight");
        let offer_old_password = cloud::dcs_offers_old_password(role, flight);
        if offer_old_password {
            role.state
                .in_flight
                .as_mut()
                .expect("a rotation in flight")
                .dcs_reset_only = true;
            engine.save_role(name, role).await?;
        }
        let flight = role.state.in_flight.as_ref().expect("a rotation in flight");
        let result = cloud::change_target(engine, role, flight, offer_old_password).await;
        let now = engine.clock.now();
        match result {
            Ok(request_id) => {
                target_applied(role, now, request_id);
                engine.save_role(name, role).await?;
                return Ok(Step::Continue);
            }
            Err(error) => {
                let flight = role.state.in_flight.as_mut().expect("a rotation in flight");
                flight.request_ids.extend(error.request_id.clone());
                match error.class {
                    ErrorClass::OutcomeUnknown => {
                        flight.phase = Phase::TargetUncertain;
                        engine.save_role(name, role).await?;
                        if offer_old_password {
                            // The old password may already be gone: reset
                            // to the recorded one.
                            continue;
                        }
                    }
                    ErrorClass::Lockout {
                        retry_times_left,
                        lock_time_left_minutes,
                    } => {
                        if offer_old_password {
                            dcs_refused_old_password(engine, name, role, retry_times_left);
                        }
                        if offer_old_password && lock_time_left_minutes.unwrap_or(0) == 0 {
                            engine.save_role(name, role).await?;
                            continue;
                        }
                    }
                    _ if error.kind == ErrorKind::InvalidState => {
                        // The target is busy (restarting, changing): the same
                        // password, later.
                        let why = format!("the target refused the change for now: {error}");
                        return defer(engine, name, role, vec![("target".into(), why)])
                            .await
                            .map(Step::Stop);
                    }
                    ErrorClass::Permanent
                        if flight.phase == Phase::Prepared && error.kind != ErrorKind::Auth =>
                    {
                        return refused(engine, name, role, &error).await.map(Step::Stop);
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

/// DCS refused the old password Vault offered (one attempt of its five
/// spent): said in the log, on the role and in the rotation's history.
fn dcs_refused_old_password(
    engine: &Engine,
    name: &str,
    role: &mut Role,
    attempts_left: Option<u32>,
) {
    let left = attempts_left.map_or("an unknown number of".to_owned(), |n| n.to_string());
    tracing::warn!(
        role = name,
        attempts_left = attempts_left,
        "DCS refused the old password Vault offered; resetting instead"
    );
    // DCS.4080 (password verification failed) gives no count: it spent
    // one try all the same.
    let known = role.state.dcs_retry_times_left;
    role.state.dcs_retry_times_left = attempts_left
        .or_else(|| Some(known.unwrap_or(cloud::DCS_PASSWORD_TRIES).saturating_sub(1)));
    if let Some(left) = attempts_left {
        role.state.dcs_attempts_reported = Some(super::super::role::AttemptsReport {
            left,
            at: engine.clock.now(),
        });
    }
    note(
        role,
        &format!("DCS refused the old password ({left} attempts left); reset instead"),
    );
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
    // History first: whoever sees the role `ok` also finds the rotation in
    // its history (a resumed run rewrites the same entry).
    let dependents: Vec<String> = role.dependents.iter().map(ToString::to_string).collect();
    record(engine, name, &flight, "succeeded", None, dependents.clone()).await;
    engine.save_role(name, role).await?;
    engine.timetable.set(
        super::super::scheduler::Job::Role(name.into()),
        role.state.next_rotation,
    );
    Ok(Outcome::Rotated {
        rotation_id: flight.id,
        dependents_updated: dependents,
    })
}

/// The target or a dependent cannot take a change now: nothing was
/// touched; check again later with the same recorded password.
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
        if !role.dependents.iter().any(|d| d.to_string() == id) {
            continue;
        }
        let dependent_state = state.dependents.entry(id).or_default();
        dependent_state.status = DependentStatus::Deferred;
        dependent_state.last_error = Some(why);
        dependent_state.updated_at = Some(now);
    }
    engine.save_role(name, role).await?;
    engine.timetable.set(
        super::super::scheduler::Job::Role(name.into()),
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

/// The target refused a change that was never applied (or is in a state
/// that will not pass by itself): the generated password was never used
/// anywhere, so the record is dropped; a record whose change may have been
/// applied stays, and the next cycle resumes it.
async fn refused(
    engine: &Arc<Engine>,
    name: &str,
    role: &mut Role,
    error: &ProviderError,
) -> Result<Outcome, Error> {
    let now = engine.clock.now();
    let flight = if phase(role) == Phase::Prepared {
        role.state.in_flight.take().expect("a rotation in flight")
    } else {
        role.state.in_flight.clone().expect("a rotation in flight")
    };
    let message = error.to_string();
    let next = next_cycle(engine, role, now);
    let state = &mut role.state;
    state.status = Status::Failed;
    state.status_reason = Some(if state.in_flight.is_some() {
        format!(
            "the target cannot take the change: {}; the rotation resumes at its next cycle or with rotate-role",
            error.message
        )
    } else {
        "the target refused the change; nothing was changed".into()
    });
    state.last_error = Some(LastError {
        at: now,
        class: error.class.to_string(),
        message: message.clone(),
    });
    state.failures = 0;
    state.next_rotation = next;
    engine.save_role(name, role).await?;
    engine.timetable.set(
        super::super::scheduler::Job::Role(name.into()),
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
    if error.kind == ErrorKind::Auth {
        return stopped_by_credentials(engine, name, role, error).await;
    }
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
        super::super::scheduler::Job::Role(name.into()),
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

/// The cloud rejected a connection's key: retrying cannot help and, on
/// Huawei, would lock the key. The role stops (its record stays) and says
/// what to do; writing the connection resumes it.
async fn stopped_by_credentials(
    engine: &Arc<Engine>,
    name: &str,
    role: &mut Role,
    error: &ProviderError,
) -> Result<Outcome, Error> {
    let now = engine.clock.now();
    let message = role
        .connections()
        .into_iter()
        .find_map(|connection| engine.credentials_rejected(connection))
        .unwrap_or_else(|| {
            format!("the cloud rejected a connection's access key: {error}; write the current key to the connection")
        });
    let state = &mut role.state;
    state.status = Status::Failed;
    state.status_reason = Some(message.clone());
    state.last_error = Some(LastError {
        at: now,
        class: CREDENTIALS_REJECTED.into(),
        message: error.to_string(),
    });
    state.failures = 0;
    state.next_rotation = None;
    engine.save_role(name, role).await?;
    engine
        .timetable
        .set(super::super::scheduler::Job::Role(name.into()), None);
    Ok(Outcome::Failed { message })
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
        events: flight.events.clone(),
    };
    if let Err(err) = super::super::history::record(engine.storage.as_ref(), name, entry).await {
        tracing::warn!(role = name, error = %err, "could not write rotation history");
    }
}
