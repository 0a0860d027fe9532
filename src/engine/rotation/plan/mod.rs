//! The rotation planner: every decision of a rotation, as pure functions
//! over the role's stored state. No I/O, no clock, no randomness: the
//! time, the jitter and the cloud's answers come in as values.
//!
//! A rotation is a write-ahead record (`Rotation`) stored before any
//! provider is called. Each run walks the same steps, each recorded before
//! the next runs:
//!
//! 1. read the target (its state, and its ownership marker: drift);
//! 2. while nothing changed yet, ask each dependent whether its job
//!    accepts a change; if one cannot, defer without touching anything;
//! 3. change the authoritative target; the new password becomes current;
//! 4. write this mount's marker naming the rotation on the target (never
//!    fails the rotation);
//! 5. update every dependent copy;
//! 6. finish: clear the record, write history.
//!
//! [`decide`] names the next step from the record and what this run has
//! seen; [`apply`] folds the cloud's answer into the record. A run after a
//! crash, a timeout or an error starts again from the stored record and
//! never generates another password. Ambiguity is resolved per provider:
//! PolarDB and DRS accept the same password again; DTS accepts it or
//! refuses the `Password` parameter, which (the password meeting the rules)
//! confirms the change; DCS is reset to the recorded password: before a DCS
//! `UpdatePassword` is sent the record says so, and a resumed run never
//! offers the old password again.

// Provider errors are large (request ids, codes) and rare; see providers.
#![allow(clippy::result_large_err)]

use time::OffsetDateTime;

use crate::providers::{ErrorClass, ErrorKind, ProviderError, Service};

use super::super::cloud::{ChangeMethod, JobState, TargetState};
use super::super::marker::{self, Marker};
use super::super::role::{
    AttemptsReport, CheckState, Dependent, DependentStatus, Phase, Role, Rotation, Status, Target,
};
use super::drift::{self, Condition, Finding};

/// DCS locks password changes after 5 wrong old passwords in a row.
pub const DCS_PASSWORD_TRIES: u32 = 5;

/// Vault never spends the last two of the DCS tries, so a drifted password
/// can still be fixed by hand.
pub const DCS_RESERVED_ATTEMPTS: u32 = 2;

mod ending;
mod start;
mod state;

pub use ending::{drifted, set_check};
pub use start::{Begin, Start, begin, end_checkout, inactive_copies_behind, missed_window, start};
pub use state::{Applied, Context, RunOutcome};

use ending::{defer, failed_attempt, finish, refused};
use state::{flight, flight_mut, note};

// ---------------------------------------------------------------------
// One run: decide, execute, apply.

/// What this run has seen (not stored: a resumed run checks again).
#[derive(Debug, Default, Clone)]
pub struct Run {
    pub target_read: bool,
    /// The target's description as read, for the marker write; `None`
    /// when it could not be read (or there is none).
    pub description: Option<String>,
    pub dependents_checked: bool,
}

/// How the marker step goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarkerWrite {
    /// Write this description (the operator's text with the marker).
    Send(String),
    /// The description already carries it.
    Unchanged,
    /// The marker does not fit the description's rules: why.
    Refused(String),
    /// The target was not read (or is external): nothing to write on.
    Skip,
}

/// The next step of a rotation in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    ReadTarget,
    CheckDependents,
    ChangeTarget(ChangeMethod),
    /// DCS dual-account roles: read the ACL account a reset was sent for
    /// (the flight's), until it is no longer `UPDATING`. Never re-sends.
    AwaitSettled,
    WriteMarker(MarkerWrite),
    UpdateDependents(Vec<Dependent>),
    Finish,
}

/// The cloud's answer to an action.
#[derive(Debug, Clone)]
pub enum Observation {
    Target(Result<TargetState, ProviderError>),
    Jobs(Vec<Result<JobState, ProviderError>>),
    Changed(Result<Option<String>, ProviderError>),
    MarkerWritten(Result<(), ProviderError>),
    Updated(Vec<Result<Option<String>, ProviderError>>),
    /// The action called nothing.
    Nothing,
}

/// A run begins: counts the attempt and forgets the state of dependents
/// no longer configured.
pub fn begin_run(role: &mut Role) {
    let configured: Vec<String> = role.dependents.iter().map(ToString::to_string).collect();
    role.state
        .dependents
        .retain(|id, _| configured.contains(id));
    flight_mut(role).attempts += 1;
}

/// Whether the next change of a DCS target offers the old password
/// (`UpdatePassword`) rather than resetting: only when Vault knows it, the
/// role allows it, this rotation never offered it before, and DCS has
/// attempts to spare.
pub fn dcs_offers_old_password(role: &Role, flight: &Rotation) -> bool {
    let attempts_to_spare = role
        .state
        .dcs_retry_times_left
        .is_none_or(|left| left > DCS_RESERVED_ATTEMPTS);
    matches!(role.target, Target::DcsInstance { .. })
        && flight.old_password.is_some()
        && !role.dcs_reset
        && !flight.dcs_reset_only
        && attempts_to_spare
}

fn change_method(role: &Role, flight: &Rotation) -> ChangeMethod {
    match role.target {
        // ACL accounts (a dual role's, a library service account) are
        // reset: no old password, no tries to count, safe to send again.
        Target::DcsInstance { .. } if role.uses_acl_accounts() => ChangeMethod::AclReset,
        Target::DcsInstance { .. } if dcs_offers_old_password(role, flight) => {
            ChangeMethod::DcsUpdate
        }
        Target::DcsInstance { .. } => ChangeMethod::DcsReset,
        _ => ChangeMethod::Modify,
    }
}

/// The dependents this rotation checks and updates: every copy of a
/// single role; on a dual role, the DTS copies pinned to the flight's
/// account. `CheckDependents` is answered in this order.
pub fn flight_dependents(role: &Role) -> Vec<Dependent> {
    role.dependents_of(flight(role).account.as_deref())
}

/// The dependents that do not hold this rotation's password yet.
fn pending_dependents(role: &Role) -> Vec<Dependent> {
    flight_dependents(role)
        .into_iter()
        .filter(|d| !role.copy_in_sync(d))
        .collect()
}

fn marker_write(role: &Role, run: &Run, owner: &str) -> MarkerWrite {
    match &run.description {
        Some(description) => merge_marker(role, description, owner, &flight(role).id),
        None => MarkerWrite::Skip,
    }
}

/// How the target's description (as read) takes this mount's marker for
/// `generation`, keeping the operator's text.
pub fn merge_marker(role: &Role, description: &str, owner: &str, generation: &str) -> MarkerWrite {
    let Some(rule) = role.marker_rule() else {
        return MarkerWrite::Skip;
    };
    let marker = Marker {
        owner: owner.to_owned(),
        generation: generation.to_owned(),
    };
    match marker::merge(description, &marker, rule) {
        Err(why) => MarkerWrite::Refused(why),
        Ok(merged) if merged == description => MarkerWrite::Unchanged,
        Ok(merged) => MarkerWrite::Send(merged),
    }
}

/// The next step of the rotation in flight.
pub fn decide(role: &Role, run: &Run, owner: &str) -> Action {
    let flight = flight(role);
    if flight.phase == Phase::Settling {
        // The reset was accepted: only its account is read, never the
        // target's condition (the account is UPDATING by design).
        return Action::AwaitSettled;
    }
    if !run.target_read && role.target.connection().is_some() {
        return Action::ReadTarget;
    }
    if flight.phase == Phase::Prepared
        && !run.dependents_checked
        && !flight_dependents(role).is_empty()
    {
        return Action::CheckDependents;
    }
    if flight.phase != Phase::TargetApplied {
        return Action::ChangeTarget(change_method(role, flight));
    }
    if !flight.marker_written {
        return Action::WriteMarker(marker_write(role, run, owner));
    }
    let pending = pending_dependents(role);
    if pending.is_empty() {
        Action::Finish
    } else {
        Action::UpdateDependents(pending)
    }
}

/// What must be recorded before `action` is executed: before a DCS
/// `UpdatePassword` is sent, that the old password may be spent, so no
/// later run offers it again. `true` when the role changed.
pub fn before(role: &mut Role, action: &Action) -> bool {
    if *action == Action::ChangeTarget(ChangeMethod::DcsUpdate) && !flight(role).dcs_reset_only {
        flight_mut(role).dcs_reset_only = true;
        return true;
    }
    false
}

/// Folds the cloud's answer to `action` into the role.
pub fn apply(
    role: &mut Role,
    run: &mut Run,
    action: &Action,
    observation: Observation,
    ctx: &Context,
) -> Applied {
    match (action, observation) {
        (Action::ReadTarget, Observation::Target(read)) => {
            run.target_read = true;
            target_read(role, run, read, ctx)
        }
        (Action::CheckDependents, Observation::Jobs(jobs)) => {
            run.dependents_checked = true;
            dependents_checked(role, jobs, ctx)
        }
        (Action::ChangeTarget(method), Observation::Changed(result)) => {
            target_changed(role, *method, result, ctx)
        }
        (Action::AwaitSettled, Observation::Target(read)) => settled(role, read, ctx),
        (Action::WriteMarker(write), observation) => {
            marker_written(role, write, observation, ctx);
            Applied::next(false)
        }
        (Action::UpdateDependents(pending), Observation::Updated(results)) => {
            dependents_updated(role, pending, results, ctx)
        }
        (Action::Finish, _) => finish(role, ctx),
        (action, observation) => unreachable!(
            "the executor answers each action with its observation: {action:?} got {observation:?}"
        ),
    }
}

fn target_read(
    role: &mut Role,
    run: &mut Run,
    read: Result<TargetState, ProviderError>,
    ctx: &Context,
) -> Applied {
    let target = match read {
        Ok(target) => target,
        Err(error)
            if error.is_retryable()
                || error.is_outcome_unknown()
                || error.kind == ErrorKind::Auth =>
        {
            return failed_attempt(role, &error, ctx);
        }
        Err(error) => {
            // Not knowing the state or marker does not stop a rotation: the
            // change itself says whether the target takes it.
            let why = format!("could not read the target: {error}");
            set_check(role, ctx.now, CheckState::Unavailable, Some(why));
            return Applied::next(false);
        }
    };
    let flight = flight(role);
    let (applied, trigger) = (flight.phase == Phase::TargetApplied, flight.trigger);
    if !applied {
        match drift::condition(&role.target, &target) {
            Condition::Ready => {}
            Condition::Transient(why) => {
                return defer(role, vec![("target".into(), why)], ctx);
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
                return refused(role, &error, ctx);
            }
        }
    }
    if role.marker_rule().is_none() {
        // No marker of this role's on the target: nothing to compare, and
        // no description to write back.
        return Applied::next(false);
    }
    let mut commit = false;
    let found = marker::find(&target.description);
    let account = flight.account.clone();
    match drift::compare_account(found.as_ref(), ctx.owner, role, account.as_deref()) {
        Finding::Drifted(kind, detail) if !trigger.takes_the_target() => {
            return drifted(role, kind, detail, ctx);
        }
        Finding::AlreadyApplied => {
            // Vault's record is older than the target (a restore taken
            // mid-rotation): the change was made; not again.
            target_applied(role, ctx.now, None);
            note(
                role,
                "the target's marker names this rotation: its change was already applied, so it was not sent again",
            );
            commit = true;
        }
        Finding::Unverified if !applied => {
            set_check(
                role,
                ctx.now,
                CheckState::Unverified,
                Some("the target carries no ownership marker; this rotation writes one".into()),
            );
        }
        _ => {}
    }
    run.description = Some(target.description);
    Applied::next(commit)
}

fn target_service(target: &Target) -> Service {
    match target {
        Target::DcsInstance { .. } => Service::Dcs,
        _ => Service::Polardb,
    }
}

fn dependents_checked(
    role: &mut Role,
    jobs: Vec<Result<JobState, ProviderError>>,
    ctx: &Context,
) -> Applied {
    let mut refusals = Vec::new();
    for (dependent, job) in flight_dependents(role).iter().zip(jobs) {
        match job {
            Err(error) => return failed_attempt(role, &error, ctx),
            Ok(job) if !job.accepts_password_change => refusals.push((
                dependent.to_string(),
                format!(
                    "the job is {}, which does not accept password changes",
                    job.status
                ),
            )),
            Ok(_) => {}
        }
    }
    if refusals.is_empty() {
        Applied::next(false)
    } else {
        defer(role, refusals, ctx)
    }
}

fn target_changed(
    role: &mut Role,
    method: ChangeMethod,
    result: Result<Option<String>, ProviderError>,
    ctx: &Context,
) -> Applied {
    let error = match result {
        Ok(request_id) if method == ChangeMethod::AclReset => {
            // DCS took the reset as a task: the account is the flight's
            // once it is AVAILABLE again; nothing is sent again.
            let flight = flight_mut(role);
            flight.request_ids.extend(request_id);
            flight.phase = Phase::Settling;
            return Applied::next(true);
        }
        Ok(request_id) => {
            target_applied(role, ctx.now, request_id);
            return Applied::next(true);
        }
        Err(error) => error,
    };
    let offered_old_password = method == ChangeMethod::DcsUpdate;
    let flight = flight_mut(role);
    flight.request_ids.extend(error.request_id.clone());
    match error.class {
        ErrorClass::OutcomeUnknown => {
            flight.phase = Phase::TargetUncertain;
            if offered_old_password {
                // The old password may already be gone: reset to the
                // recorded one, now.
                return Applied::next(true);
            }
        }
        ErrorClass::Lockout {
            retry_times_left,
            lock_time_left_minutes,
        } => {
            if offered_old_password {
                dcs_refused_old_password(role, retry_times_left, ctx.now);
                if lock_time_left_minutes.unwrap_or(0) == 0 {
                    return Applied::next(true);
                }
            }
        }
        _ if error.kind == ErrorKind::InvalidState => {
            // The target is busy (restarting, changing): the same
            // password, later.
            let why = format!("the target refused the change for now: {error}");
            return defer(role, vec![("target".into(), why)], ctx);
        }
        ErrorClass::Permanent
            if flight.phase == Phase::Prepared && error.kind != ErrorKind::Auth =>
        {
            return refused(role, &error, ctx);
        }
        ErrorClass::Permanent | ErrorClass::Retryable => {}
    }
    failed_attempt(role, &error, ctx)
}

/// DCS refused the old password Vault offered (one attempt of its five
/// spent): said on the role and in the rotation's history.
fn dcs_refused_old_password(role: &mut Role, attempts_left: Option<u32>, now: OffsetDateTime) {
    let left = attempts_left.map_or("an unknown number of".to_owned(), |n| n.to_string());
    // DCS.4080 (password verification failed) gives no count: it spent
    // one try all the same.
    let known = role.state.dcs_retry_times_left;
    role.state.dcs_retry_times_left =
        attempts_left.or_else(|| Some(known.unwrap_or(DCS_PASSWORD_TRIES).saturating_sub(1)));
    if let Some(left) = attempts_left {
        role.state.dcs_attempts_reported = Some(AttemptsReport { left, at: now });
    }
    note(
        role,
        &format!("DCS refused the old password ({left} attempts left); reset instead"),
    );
}

/// What an ACL account read after a reset says: settled (the flight's
/// password holds), still `UPDATING` (look again soon; not a failure), or
/// stuck (the existing failure path; the record stays).
fn settled(role: &mut Role, read: Result<TargetState, ProviderError>, ctx: &Context) -> Applied {
    let status = match read {
        Ok(target) => target.account_status,
        Err(error) => return failed_attempt(role, &error, ctx),
    };
    let account = role.acting_account().to_owned();
    match status.as_deref().map(str::to_ascii_uppercase).as_deref() {
        Some("AVAILABLE") => {
            target_applied(role, ctx.now, None);
            Applied::next(true)
        }
        Some("UPDATING") => {
            let message = format!(
                "DCS is still applying the new password of ACL account {account}; looking again in {}s",
                ctx.tuning.settle_poll.as_secs_f64()
            );
            let state = &mut role.state;
            state.status = Status::Rotating;
            state.status_reason = Some(message.clone());
            state.next_rotation = Some(ctx.now + ctx.tuning.settle_poll);
            Applied::stop(
                RunOutcome::Retrying {
                    status: Status::Rotating,
                    message,
                },
                None,
            )
        }
        _ => {
            let shown = status.as_deref().unwrap_or("not listed");
            let error = ProviderError::new(
                ErrorClass::Permanent,
                ErrorKind::InvalidState,
                Service::Dcs,
                "ListAclAccounts",
                &format!(
                    "ACL account {account} is {shown} after its password reset: check it in the DCS console (Accounts); the rotation resumes with the same password at its next cycle or with rotate-role"
                ),
                &[],
            );
            refused(role, &error, ctx)
        }
    }
}

/// The target holds the flight's password from now on. A dual role's
/// active account becomes the flight's, in the same write: idempotent (a
/// second confirmation changes nothing), never a toggle.
fn target_applied(role: &mut Role, now: OffsetDateTime, request_id: Option<String>) {
    let is_dcs = matches!(role.target, Target::DcsInstance { .. });
    let dual = role.is_dual();
    let flipped_to = flight(role)
        .account
        .as_ref()
        .and_then(|account| role.usernames.iter().position(|name| name == account))
        .and_then(|at| u8::try_from(at).ok());
    let state = &mut role.state;
    let flight = state
        .in_flight
        .as_mut()
        .expect("the planner runs only with a rotation in flight");
    flight.request_ids.extend(request_id);
    flight.phase = Phase::TargetApplied;
    state.last_vault_rotation = Some(now);
    match flipped_to {
        Some(at) if dual && state.active == at => {
            // Confirmed before: the flip and the swaps are done.
        }
        Some(at) if dual => {
            let previous = state.active;
            state.active = at;
            state.last_password = state.password.replace(flight.new_password.clone());
            state.last_generation = state.generation.replace(flight.id.clone());
            if !is_dcs {
                // Each PolarDB account carries its own marker; a DCS
                // instance has one, whatever account changed.
                std::mem::swap(
                    &mut state.marker_generation,
                    &mut state.last_marker_generation,
                );
            }
            let (from, to) = (
                role.usernames[usize::from(previous)].clone(),
                role.usernames[usize::from(at)].clone(),
            );
            note(role, &format!("active account {from} -> {to}"));
        }
        _ => {
            state.last_password = state.password.replace(flight.new_password.clone());
            state.generation = Some(flight.id.clone());
            if is_dcs && !dual {
                state.dcs_retry_times_left = None;
            }
        }
    }
    role.mark_dependents_pending();
}

fn marker_written(role: &mut Role, write: &MarkerWrite, observation: Observation, ctx: &Context) {
    let generation = flight(role).id.clone();
    let sent = match observation {
        Observation::MarkerWritten(result) => Some(result),
        _ => None,
    };
    record_marker(role, write, sent, ctx.now, &generation);
    // Recorded with the next commit: writing it again is harmless.
    flight_mut(role).marker_written = true;
}

/// Records how writing the marker for `generation` went (`sent`: the
/// answer, when a write was sent) on the role's drift check. A marker
/// never fails a rotation; the next check tries again.
pub fn record_marker(
    role: &mut Role,
    write: &MarkerWrite,
    sent: Option<Result<(), ProviderError>>,
    now: OffsetDateTime,
    generation: &str,
) {
    let problem = match (write, sent) {
        (MarkerWrite::Skip, _) => None,
        (MarkerWrite::Refused(why), _) => {
            Some(format!("the ownership marker cannot be written: {why}"))
        }
        (MarkerWrite::Unchanged, _) | (MarkerWrite::Send(_), Some(Ok(()))) => {
            *marked_generation(role, generation) = Some(generation.to_owned());
            set_check(role, now, CheckState::InSync, None);
            None
        }
        (MarkerWrite::Send(_), answer) => Some(format!(
            "could not write the ownership marker: {}; it needs permission for {}",
            match answer {
                Some(Err(error)) => error.to_string(),
                _ => "no answer".to_owned(),
            },
            marker_permission(&role.target)
        )),
    };
    if let Some(why) = problem {
        set_check(role, now, CheckState::Unavailable, Some(why));
    }
}

/// Where the marker of `generation` is recorded: a dual PolarDB role's
/// inactive account (the one whose password `generation` set before the
/// flip) keeps its own; everything else the role-level one.
fn marked_generation<'a>(role: &'a mut Role, generation: &str) -> &'a mut Option<String> {
    let per_account = role.is_dual() && matches!(role.target, Target::PolardbAccount { .. });
    let state = &mut role.state;
    let inactive = per_account
        && state.last_generation.as_deref() == Some(generation)
        && state.generation.as_deref() != Some(generation);
    if inactive {
        &mut state.last_marker_generation
    } else {
        &mut state.marker_generation
    }
}

/// The permission a marker write needs.
fn marker_permission(target: &Target) -> &'static str {
    match target {
        Target::PolardbAccount { .. } => "polardb:ModifyAccountDescription",
        _ => "dcs:instance:modify (UpdateInstance)",
    }
}

fn dependents_updated(
    role: &mut Role,
    pending: &[Dependent],
    results: Vec<Result<Option<String>, ProviderError>>,
    ctx: &Context,
) -> Applied {
    let mut first_error: Option<ProviderError> = None;
    let mut request_ids = Vec::new();
    for (dependent, result) in pending.iter().zip(results) {
        let state = role
            .state
            .dependents
            .entry(dependent.to_string())
            .or_default();
        state.updated_at = Some(ctx.now);
        match result {
            Ok(request_id) => {
                state.status = DependentStatus::InSync;
                state.last_error = None;
                request_ids.extend(request_id);
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
                request_ids.extend(error.request_id.clone());
                first_error.get_or_insert(error);
            }
        }
    }
    flight_mut(role).request_ids.extend(request_ids);
    match first_error {
        None => finish(role, ctx),
        Some(error) => failed_attempt(role, &error, ctx),
    }
}
