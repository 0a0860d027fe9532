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

use crate::framework::Error;
use crate::providers::{ErrorClass, ErrorKind, ProviderError, Service};

use super::super::clock::rfc3339;
use super::super::cloud::{ChangeMethod, JobState, TargetState};
use super::super::history::{Entry, Outcome as Recorded};
use super::super::marker::{self, Marker};
use super::super::role::{
    AttemptsReport, CheckState, Dependent, DependentStatus, Drift, DriftCheck, DriftKind,
    FailureClass, LastError, Phase, Role, RoleKind, Rotation, Status, Target, Trigger,
};
use super::super::tuning::Tuning;
use super::drift::{self, Condition, Finding};

/// DCS locks password changes after 5 wrong old passwords in a row.
pub const DCS_PASSWORD_TRIES: u32 = 5;

/// Vault never spends the last two of the DCS tries, so a drifted password
/// can still be fixed by hand.
pub const DCS_RESERVED_ATTEMPTS: u32 = 2;

/// What the planner knows besides the role.
pub struct Context<'a> {
    pub name: &'a str,
    pub now: OffsetDateTime,
    pub tuning: &'a Tuning,
    /// This mount's owner id (the marker's `<owner>`).
    pub owner: &'a str,
    /// Where in its range a backoff falls, in [0, 1).
    pub jitter: f64,
    /// What to do about a rejected key of a connection the role uses.
    pub rejection: Option<String>,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
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

impl RunOutcome {
    pub fn status(&self) -> Status {
        match self {
            Self::Rotated { .. } | Self::NotDue => Status::Ok,
            Self::Deferred { .. } => Status::Deferred,
            Self::Retrying { status, .. } => *status,
            Self::Failed { .. } => Status::Failed,
            Self::Drifted { .. } => Status::Drifted,
        }
    }
}

// ---------------------------------------------------------------------
// Starting a rotation.

/// What a request for a rotation finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// A rotation is in flight: resume it with its recorded password.
    Resume,
    /// Start one; `generate` when Vault must make the new password.
    Start(Start),
    /// A scheduled run found nothing due.
    NotDue,
    /// A scheduled run missed its window: wait for the next slot.
    MissedWindow(Option<OffsetDateTime>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    pub trigger: Trigger,
    pub phase: Phase,
    /// The password to use, unless Vault generates one.
    pub password: Option<String>,
    /// The operator gave it.
    pub given: bool,
}

/// Decides how a rotation request proceeds. Refuses (4xx) what cannot be
/// done, with what to do instead.
pub fn begin(
    role: &Role,
    name: &str,
    trigger: Trigger,
    given: Option<String>,
    now: OffsetDateTime,
) -> Result<Begin, Error> {
    if let Some(flight) = &role.state.in_flight {
        if given.as_ref().is_some_and(|g| *g != flight.new_password) {
            return Err(Error::conflict(format!(
                "a rotation of role {name:?} started at {} is not finished; it must complete (rotate-role without password) before another password can be propagated",
                rfc3339(flight.started_at)
            )));
        }
        return Ok(Begin::Resume);
    }
    if trigger == Trigger::Schedule {
        let Some(due) = role
            .state
            .next_rotation
            .filter(|due| *due <= now && role.state.status != Status::Drifted)
        else {
            return Ok(Begin::NotDue);
        };
        if !role.schedule.in_window(due, now) {
            // Missed the window: wait for the next slot, as Vault does.
            return Ok(Begin::MissedWindow(role.schedule.next_slot_after(now)));
        }
    }
    let drifted = role.state.status == Status::Drifted;
    let start = match (&role.target, given) {
        (_, Some(given)) => {
            check_given_password(role, &given)?;
            Start {
                trigger: if role.target == Target::External {
                    trigger
                } else {
                    Trigger::Adopt
                },
                phase: Phase::TargetApplied,
                password: Some(given),
                given: true,
            }
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
            Start {
                trigger,
                phase: Phase::TargetApplied,
                password: Some(current),
                given: false,
            }
        }
        (Target::External, None) => {
            return Err(Error::bad_request(format!(
                "role {name:?} has an external target: give the new password with rotate-role/{name} password=..."
            )));
        }
        (_, None) => Start {
            trigger: if drifted { Trigger::Repair } else { trigger },
            phase: Phase::Prepared,
            password: None,
            given: false,
        },
    };
    Ok(Begin::Start(start))
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
    if let Err(why) = role.target.rules().check(given) {
        let rule = match role.target {
            Target::External => format!(
                "the plugin's rule for every password it copies into DTS/DRS jobs, so that no job or shell mangles it (dependents: {})",
                role.dependents
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
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

/// Records the rotation `start` describes, with `password` (given, current
/// or generated) and the id `id`: the write-ahead record.
pub fn start(role: &mut Role, start: Start, password: String, id: String, now: OffsetDateTime) {
    let old_password = role.state.password.clone();
    if start.given {
        // The given password is current from now on: nothing to change
        // upstream, every copy to update.
        role.state.last_password = role.state.password.replace(password.clone());
        role.state.last_vault_rotation = Some(now);
    }
    let adopts = start.given || start.trigger == Trigger::Adopt;
    if adopts {
        role.state.generation = Some(id.clone());
    }
    if start.trigger.takes_the_target() {
        role.state.drift = None;
    }
    role.state.in_flight = Some(Rotation {
        id,
        trigger: start.trigger,
        started_at: now,
        old_password,
        new_password: password,
        phase: start.phase,
        // A repair never offers the old password: the target holds another.
        dcs_reset_only: start.trigger == Trigger::Repair,
        attempts: 0,
        request_ids: Vec::new(),
        // Pushing an unchanged password to new copies sets no generation.
        marker_written: start.phase == Phase::TargetApplied && !adopts,
        events: Vec::new(),
    });
    if start.phase == Phase::TargetApplied {
        mark_dependents_pending(role);
    }
    role.state.status = Status::Rotating;
    role.state.status_reason = None;
}

/// A scheduled run that missed its window waits for `next`.
pub fn missed_window(role: &mut Role, next: Option<OffsetDateTime>) {
    role.state.next_rotation = next;
}

/// The lease being ended is no longer out (cleared in the same write that
/// records the rotation).
pub fn end_checkout(role: &mut Role, checkout: &str) {
    if role
        .state
        .checkout
        .as_ref()
        .is_some_and(|c| c.id == checkout)
    {
        role.state.checkout = None;
    }
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

/// What applying an answer did.
#[derive(Debug, Clone)]
pub struct Applied {
    /// `Some` when the run ends.
    pub outcome: Option<RunOutcome>,
    /// The record must be stored before the next step.
    pub commit: bool,
    /// A history entry to write (before the record).
    pub history: Option<Entry>,
}

impl Applied {
    fn next(commit: bool) -> Self {
        Self {
            outcome: None,
            commit,
            history: None,
        }
    }

    fn stop(outcome: RunOutcome, history: Option<Entry>) -> Self {
        Self {
            outcome: Some(outcome),
            commit: true,
            history,
        }
    }
}

fn flight(role: &Role) -> &Rotation {
    role.state
        .in_flight
        .as_ref()
        .expect("the planner runs only with a rotation in flight")
}

fn flight_mut(role: &mut Role) -> &mut Rotation {
    role.state
        .in_flight
        .as_mut()
        .expect("the planner runs only with a rotation in flight")
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
        Target::DcsInstance { .. } if dcs_offers_old_password(role, flight) => {
            ChangeMethod::DcsUpdate
        }
        Target::DcsInstance { .. } => ChangeMethod::DcsReset,
        _ => ChangeMethod::Modify,
    }
}

/// The dependents that do not hold this rotation's password yet.
fn pending_dependents(role: &Role) -> Vec<Dependent> {
    role.dependents
        .iter()
        .filter(|d| {
            role.state
                .dependents
                .get(&d.to_string())
                .is_none_or(|s| s.status != DependentStatus::InSync)
        })
        .cloned()
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
    let Some(rule) = role.target.description_rule() else {
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
    if !run.target_read && role.target.connection().is_some() {
        return Action::ReadTarget;
    }
    if flight.phase == Phase::Prepared && !run.dependents_checked && !role.dependents.is_empty() {
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
    let mut commit = false;
    match drift::compare(marker::find(&target.description).as_ref(), ctx.owner, role) {
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
    for (dependent, job) in role.dependents.iter().zip(jobs) {
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

/// Adds an event to the rotation's history entry.
fn note(role: &mut Role, event: &str) {
    flight_mut(role).events.push(event.to_owned());
}

/// The target holds the flight's password from now on.
fn target_applied(role: &mut Role, now: OffsetDateTime, request_id: Option<String>) {
    let is_dcs = matches!(role.target, Target::DcsInstance { .. });
    let state = &mut role.state;
    let flight = state
        .in_flight
        .as_mut()
        .expect("the planner runs only with a rotation in flight");
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
            role.state.marker_generation = Some(generation.to_owned());
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

// ---------------------------------------------------------------------
// How a run ends.

fn history(
    flight: &Rotation,
    now: OffsetDateTime,
    outcome: Recorded,
    error: Option<(FailureClass, String)>,
    dependents_updated: Vec<String>,
) -> Entry {
    let (error_class, error) = error.unzip();
    Entry {
        rotation_id: flight.id.clone(),
        started_at: flight.started_at,
        updated_at: now,
        trigger: flight.trigger,
        outcome,
        error_class,
        error,
        request_ids: flight.request_ids.clone(),
        dependents_updated,
        attempts: flight.attempts,
        events: flight.events.clone(),
    }
}

/// When a role that gave up (or whose target refused the change) tries
/// again: its next regular rotation if that is still ahead, else the next
/// slot of its schedule; a leased role, which has none, after the longest
/// backoff; a manual-only role waits for rotate-role.
fn next_cycle(role: &Role, ctx: &Context) -> Option<OffsetDateTime> {
    match role.kind {
        RoleKind::Static => next_regular_rotation(role, ctx.now)
            .filter(|due| *due > ctx.now)
            .or_else(|| role.schedule.next_cycle_after(ctx.now)),
        RoleKind::Leased => Some(ctx.now + ctx.tuning.retry_cap),
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
/// updated it. History goes first: whoever sees the role `ok` also finds
/// the rotation in its history (a resumed run rewrites the same entry).
fn finish(role: &mut Role, ctx: &Context) -> Applied {
    let flight = role
        .state
        .in_flight
        .take()
        .expect("the planner runs only with a rotation in flight");
    let next = next_regular_rotation(role, ctx.now);
    let state = &mut role.state;
    state.status = Status::Ok;
    state.status_reason = None;
    state.failures = 0;
    state.last_error = None;
    state.next_rotation = next;
    let dependents: Vec<String> = role.dependents.iter().map(ToString::to_string).collect();
    let entry = history(
        &flight,
        ctx.now,
        Recorded::Succeeded,
        None,
        dependents.clone(),
    );
    Applied::stop(
        RunOutcome::Rotated {
            rotation_id: flight.id,
            dependents_updated: dependents,
        },
        Some(entry),
    )
}

/// The target or a dependent cannot take a change now: nothing was
/// touched; check again later with the same recorded password.
fn defer(role: &mut Role, refusals: Vec<(String, String)>, ctx: &Context) -> Applied {
    let reason = refusals
        .iter()
        .map(|(id, why)| format!("{id}: {why}"))
        .collect::<Vec<_>>()
        .join("; ");
    let state = &mut role.state;
    state.status = Status::Deferred;
    state.status_reason = Some(reason.clone());
    state.next_rotation = Some(ctx.now + ctx.tuning.defer_retry);
    for (id, why) in refusals {
        if !role.dependents.iter().any(|d| d.to_string() == id) {
            continue;
        }
        let dependent_state = state.dependents.entry(id).or_default();
        dependent_state.status = DependentStatus::Deferred;
        dependent_state.last_error = Some(why);
        dependent_state.updated_at = Some(ctx.now);
    }
    let entry = history(
        flight(role),
        ctx.now,
        Recorded::Deferred,
        Some((FailureClass::Deferred, reason.clone())),
        Vec::new(),
    );
    Applied::stop(RunOutcome::Deferred { reason }, Some(entry))
}

/// The target refused a change that was never applied (or is in a state
/// that will not pass by itself): the generated password was never used
/// anywhere, so the record is dropped; a record whose change may have been
/// applied stays, and the next cycle resumes it.
fn refused(role: &mut Role, error: &ProviderError, ctx: &Context) -> Applied {
    let flight = if flight(role).phase == Phase::Prepared {
        role.state
            .in_flight
            .take()
            .expect("the planner runs only with a rotation in flight")
    } else {
        flight(role).clone()
    };
    let message = error.to_string();
    let next = next_cycle(role, ctx);
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
    state.last_error = Some(LastError::new(ctx.now, error));
    state.failures = 0;
    state.next_rotation = next;
    let entry = history(
        &flight,
        ctx.now,
        Recorded::Failed,
        Some((FailureClass::of(error.class), message.clone())),
        Vec::new(),
    );
    Applied::stop(RunOutcome::Failed { message }, Some(entry))
}

/// An attempt failed: back off and retry, or after `max_failures` give up
/// until the next cycle (the record stays, so that cycle resumes it).
fn failed_attempt(role: &mut Role, error: &ProviderError, ctx: &Context) -> Applied {
    if error.kind == ErrorKind::Auth {
        return stopped_by_credentials(role, error, ctx);
    }
    let tuning = ctx.tuning;
    let message = error.to_string();
    let target_applied = flight(role).phase == Phase::TargetApplied;
    let lock_wait = match error.class {
        ErrorClass::Lockout {
            lock_time_left_minutes: Some(minutes),
            ..
        } if minutes > 0 => Some(std::time::Duration::from_secs(u64::from(minutes) * 60 + 5)),
        _ => None,
    };
    role.state.failures += 1;
    role.state.last_error = Some(LastError::new(ctx.now, error));
    if role.state.failures >= tuning.max_failures {
        let next = next_cycle(role, ctx);
        let state = &mut role.state;
        state.status = Status::Failed;
        state.failures = 0;
        state.status_reason = Some(match next {
            Some(at) => format!(
                "gave up after {} attempts; trying again at {}",
                tuning.max_failures,
                rfc3339(at)
            ),
            None => format!(
                "gave up after {} attempts; run rotate-role/{} to try again",
                tuning.max_failures, ctx.name
            ),
        });
        state.next_rotation = next;
        let entry = history(
            flight(role),
            ctx.now,
            Recorded::Failed,
            Some((FailureClass::of(error.class), message.clone())),
            Vec::new(),
        );
        return Applied::stop(RunOutcome::Failed { message }, Some(entry));
    }
    let status = if target_applied {
        Status::PendingDependents
    } else {
        Status::Rotating
    };
    let state = &mut role.state;
    state.status = status;
    state.status_reason = Some(format!("attempt {} failed; retrying", state.failures));
    let wait = tuning
        .backoff_at(state.failures, ctx.jitter)
        .max(error.retry_after.unwrap_or_default())
        .max(lock_wait.unwrap_or_default());
    state.next_rotation = Some(ctx.now + wait);
    Applied::stop(RunOutcome::Retrying { status, message }, None)
}

/// The cloud rejected a connection's key: retrying cannot help and, on
/// Huawei, would lock the key. The role stops (its record stays) and says
/// what to do; writing the connection resumes it.
fn stopped_by_credentials(role: &mut Role, error: &ProviderError, ctx: &Context) -> Applied {
    let message = ctx.rejection.clone().unwrap_or_else(|| {
        format!(
            "the cloud rejected a connection's access key: {error}; write the current key to the connection"
        )
    });
    let state = &mut role.state;
    state.status = Status::Failed;
    state.status_reason = Some(message.clone());
    state.last_error = Some(LastError {
        class: FailureClass::CredentialsRejected,
        ..LastError::new(ctx.now, error)
    });
    state.failures = 0;
    state.next_rotation = None;
    Applied::stop(RunOutcome::Failed { message }, None)
}

/// Marks the role drifted: automated rotation stops, any rotation in flight
/// is dropped (its password is not the target's), and the role says what
/// was found and what to do.
pub fn drifted(role: &mut Role, kind: DriftKind, detail: String, ctx: &Context) -> Applied {
    let drift = Drift {
        found_at: ctx.now,
        kind,
        detail,
    };
    let what_to_do = drift.what_to_do(role.kind.path(), ctx.name);
    let dropped = role.state.in_flight.take();
    let state = &mut role.state;
    state.status = Status::Drifted;
    state.status_reason = Some(format!("{}; {what_to_do}", drift.detail));
    state.failures = 0;
    // A leased role keeps its lease-end safety net; nothing else is due.
    state.next_rotation = match role.kind {
        RoleKind::Leased => state.checkout.as_ref().map(|c| c.max_expires_at),
        RoleKind::Static => None,
    };
    state.drift = Some(drift);
    let message = state.status_reason.clone().unwrap_or_default();
    let entry = dropped.map(|flight| {
        let mut entry = history(&flight, ctx.now, Recorded::Drifted, None, Vec::new());
        entry.error = Some(message.clone());
        entry
    });
    Applied::stop(RunOutcome::Drifted { message }, entry)
}

/// Records a new drift check result; `true` when it changed (so the role
/// needs storing). Unchanged results are not stored again, so a check of
/// thousands of quiet roles writes nothing.
pub fn set_check(
    role: &mut Role,
    now: OffsetDateTime,
    state: CheckState,
    detail: Option<String>,
) -> bool {
    let unchanged = role
        .state
        .drift_check
        .as_ref()
        .is_some_and(|c| c.state == state && c.detail == detail);
    if !unchanged {
        role.state.drift_check = Some(DriftCheck {
            state,
            since: now,
            detail,
        });
    }
    !unchanged
}
