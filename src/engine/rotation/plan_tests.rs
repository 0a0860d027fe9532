//! Table-driven tests of the rotation planner. Each row builds a role in
//! some state and either asks `decide` (and `before`) for the next step,
//! or feeds the cloud's answer to that step to `apply` and compares the
//! role as stored, and how the step ended, with one line:
//!
//! `<status> <phase>[+reset][+marker] f<failures> next=<due> [err=<class>]
//! [left=<dcs tries>] [events=<n>] [deps=<copies>] [check=<drift check>]
//! pw=<old|new> => <outcome> [hist=<history outcome>/<class>]`
//!
//! Times are relative to `NOW`; `idle` is a role with no rotation in
//! flight. Each row's name is printed before it runs, so a failure names
//! it. Tuning is the default (10s backoff base, 6 failures, 1m deferral)
//! and the jitter 0, so a backoff is half its range.

// Provider errors are large (request ids, codes) and rare; see providers.
#![allow(clippy::result_large_err)]

use std::time::Duration;

use time::OffsetDateTime;
use time::macros::datetime;

use crate::framework::Error;
use crate::providers::{ErrorClass, ErrorKind, ProviderError, Service};

use super::super::cloud::{JobState, TargetState};
use super::super::role::{
    CheckState, Checkout, Dependent, DependentStatus, Drift, DriftKind, LastError, Phase, Role,
    RoleKind, Rotation, Status, Target, Trigger,
};
use super::super::schedule::Schedule;
use super::super::tuning::Tuning;
use super::plan::{
    self, Action, Applied, Begin, Context, MarkerWrite, Observation, Run, RunOutcome, Start,
};

pub(super) const NOW: OffsetDateTime = datetime!(2026-12-07 10:00 UTC);
const HOUR: Duration = Duration::from_secs(3600);
const OWNER: &str = "00000000000000aa";
pub(super) const OTHER_OWNER: &str = "00000000000000bb";
/// The rotation in flight.
const FLIGHT: &str = "1111111111111111";
/// The rotation that set the old password.
const CURRENT: &str = "2222222222222222";
/// A rotation of this mount this Vault does not know (a restore).
const UNKNOWN: &str = "3333333333333333";
/// An earlier rotation whose marker is still on the target.
const BEHIND: &str = "4444444444444444";
pub(super) const OLD: &str = "Old-pass-1234";
const NEW: &str = "New-pass-5678";
const DESC: &str = "app account";

const SYNCED: DependentStatus = DependentStatus::InSync;
const PENDING: DependentStatus = DependentStatus::Pending;
const DEFERRED: DependentStatus = DependentStatus::Deferred;
const FAILED: DependentStatus = DependentStatus::Failed;

pub(super) fn polardb_target() -> Target {
    Target::PolardbAccount {
        connection: "ali".into(),
        cluster_id: "pc-1".into(),
    }
}

pub(super) fn dcs_target() -> Target {
    Target::DcsInstance {
        connection: "hw".into(),
        instance_id: "dcs-1".into(),
    }
}

pub(super) fn dts() -> Dependent {
    Dependent::parse("dts:ali/dtsj1/src/app", None).expect("a DTS dependent")
}

fn drs() -> Dependent {
    Dependent::parse("drs:hw/drsj1/ta", None).expect("a DRS dependent")
}

/// A role as the planner finds it.
#[derive(Clone)]
pub(super) struct Scenario(pub(super) Role);

/// A static role rotating every 24h, last rotated an hour ago (so next due
/// in 23h), holding the old password; no rotation in flight.
pub(super) fn at_rest(target: Target) -> Scenario {
    let mut role = Role::new(RoleKind::Static, target);
    role.username = Some("app".into());
    role.schedule.period = Some(24 * HOUR);
    let state = &mut role.state;
    state.password = Some(OLD.into());
    state.last_vault_rotation = Some(NOW - HOUR);
    state.next_rotation = Some(NOW + 23 * HOUR);
    state.generation = Some(CURRENT.into());
    state.marker_generation = Some(CURRENT.into());
    Scenario(role)
}

/// A rotation to `NEW` recorded and due now, as the runner resumes it.
fn rotating(target: Target, start: Start) -> Scenario {
    let Scenario(mut role) = at_rest(target);
    plan::start(&mut role, start, NEW.into(), FLIGHT.into(), NOW);
    role.state.next_rotation = Some(NOW);
    Scenario(role)
}

pub(super) fn manual() -> Start {
    Start {
        trigger: Trigger::Manual,
        phase: Phase::Prepared,
        password: None,
        given: false,
        account: None,
    }
}

pub(super) fn polardb() -> Scenario {
    rotating(polardb_target(), manual())
}

fn dcs() -> Scenario {
    rotating(dcs_target(), manual())
}

/// A DCS role set to change its password with reset.
fn dcs_reset() -> Scenario {
    dcs().with(|role| role.dcs_reset = true)
}

/// An external target given `NEW` with rotate-role.
fn external() -> Scenario {
    let given = Start {
        phase: Phase::TargetApplied,
        password: Some(NEW.into()),
        given: true,
        ..manual()
    };
    rotating(Target::External, given)
}

impl Scenario {
    pub(super) fn with(mut self, change: impl FnOnce(&mut Role)) -> Self {
        change(&mut self.0);
        self
    }

    fn flight(self, change: impl FnOnce(&mut Rotation)) -> Self {
        self.with(|role| change(role.state.in_flight.as_mut().expect("in flight")))
    }

    /// A copy in sync, or pending once the target holds the new password.
    fn copy(self, dependent: Dependent) -> Self {
        self.with(|role| {
            let applied = role
                .state
                .in_flight
                .as_ref()
                .is_some_and(|f| f.phase == Phase::TargetApplied);
            let state = role.state.dependents.entry(dependent.to_string());
            state.or_default().status = if applied { PENDING } else { SYNCED };
            role.dependents.push(dependent);
        })
    }

    pub(super) fn dts(self) -> Self {
        self.copy(dts())
    }

    pub(super) fn drs(self) -> Self {
        self.copy(drs())
    }

    /// Sets the copies' states, in the order of the dependents.
    fn deps(self, states: &[DependentStatus]) -> Self {
        self.with(|role| {
            for (dependent, status) in role.dependents.iter().zip(states) {
                let state = role.state.dependents.entry(dependent.to_string());
                state.or_default().status = *status;
            }
        })
    }

    fn uncertain(self) -> Self {
        self.flight(|f| f.phase = Phase::TargetUncertain)
    }

    /// The target took the new password (in an earlier run).
    fn applied(self) -> Self {
        self.flight(|f| f.phase = Phase::TargetApplied)
            .with(|role| {
                role.state.last_password = role.state.password.replace(NEW.into());
                role.state.generation = Some(FLIGHT.into());
            })
            .deps(&[PENDING, PENDING])
    }

    /// The marker step is done.
    fn marked(self) -> Self {
        self.flight(|f| f.marker_written = true)
    }

    /// DCS: the old password was offered already.
    fn reset_only(self) -> Self {
        self.flight(|f| f.dcs_reset_only = true)
    }

    /// DCS: tries left before the instance locks, as last reported.
    fn left(self, tries: u32) -> Self {
        self.with(|role| role.state.dcs_retry_times_left = Some(tries))
    }

    /// Earlier attempts of this cycle failed.
    fn failures(self, count: u32) -> Self {
        self.with(|role| {
            role.state.failures = count;
            role.state.last_error = Some(LastError::new(NOW - HOUR, &throttled()));
        })
    }

    fn trigger(self, trigger: Trigger) -> Self {
        self.flight(|f| f.trigger = trigger)
    }

    /// Vault never held a password for the target.
    fn no_password(self) -> Self {
        self.with(|role| {
            role.state.password = None;
            if let Some(flight) = role.state.in_flight.as_mut() {
                flight.old_password = None;
            }
        })
    }

    /// A library service account, its lease ending for good in 2h.
    fn leased(self) -> Self {
        self.with(|role| {
            role.kind = RoleKind::Library;
            role.schedule = Schedule::default();
            role.state.checkout = Some(Checkout {
                id: "lease-1".into(),
                issued_at: NOW - HOUR,
                expires_at: NOW + HOUR,
                max_expires_at: NOW + 2 * HOUR,
                borrower_entity_id: None,
                borrower_client_token: None,
            });
            if role.state.in_flight.is_none() {
                role.state.next_rotation = Some(NOW + 2 * HOUR);
            }
        })
    }

    /// Rotated only with rotate-role.
    fn manual_only(self) -> Self {
        self.with(|role| role.schedule = Schedule::default())
    }

    /// The last marker write failed: the target names `BEHIND`.
    fn marker_behind(self) -> Self {
        self.with(|role| role.state.marker_generation = Some(BEHIND.into()))
    }

    fn due_in(self, seconds: i64) -> Self {
        self.with(|role| role.state.next_rotation = Some(NOW + time::Duration::seconds(seconds)))
    }

    fn drifted(self) -> Self {
        self.with(|role| {
            role.state.status = Status::Drifted;
            role.state.drift = Some(Drift {
                found_at: NOW - HOUR,
                kind: DriftKind::ClaimedElsewhere,
                detail: "claimed by another mount".into(),
            });
        })
    }

    /// Daily at 03:00 with a 1h window; today's slot (7h ago) is missed.
    pub(super) fn cron_missed(self) -> Self {
        self.with(|role| {
            role.schedule = Schedule {
                cron: Some("0 3 * * *".into()),
                window: Some(HOUR),
                ..Schedule::default()
            };
            role.state.next_rotation = Some(datetime!(2026-12-07 03:00 UTC));
        })
    }
}

// ---------------------------------------------------------------------
// What a run has seen.

fn fresh() -> Run {
    Run::default()
}

pub(super) fn read(description: &str) -> Run {
    Run {
        target_read: true,
        description: Some(description.into()),
        dependents_checked: false,
    }
}

/// The target could not be read (not for a reason that stops the run).
fn unread() -> Run {
    Run {
        target_read: true,
        ..Run::default()
    }
}

pub(super) fn checked(description: &str) -> Run {
    Run {
        dependents_checked: true,
        ..read(description)
    }
}

pub(super) fn token(owner: &str, generation: &str) -> String {
    format!("vault-cloudrotate:{owner}:{generation}")
}

/// A description carrying this mount's marker for `generation`.
pub(super) fn ours(generation: &str) -> String {
    format!("{DESC} {}", token(OWNER, generation))
}

fn theirs() -> String {
    format!("{DESC} {}", token(OTHER_OWNER, CURRENT))
}

// ---------------------------------------------------------------------
// The cloud's answers.

pub(super) fn error(class: ErrorClass, kind: ErrorKind) -> ProviderError {
    ProviderError::new(
        class,
        kind,
        Service::Polardb,
        "Test",
        "the cloud says no",
        &[],
    )
}

/// The errors the rows name: `name: class / kind`.
macro_rules! errors {
    ($($vis:vis $name:ident: $class:ident / $kind:ident;)*) => {$(
        $vis fn $name() -> ProviderError {
            error(ErrorClass::$class, ErrorKind::$kind)
        }
    )*};
}

#[rustfmt::skip]
errors! {
    pub(super) throttled: Retryable / Throttled;
    busy: Retryable / Busy;
    pub(super) timeout: OutcomeUnknown / Timeout;
    invalid: Permanent / InvalidParameter;
    bad_state: Permanent / InvalidState;
    pub(super) auth: Permanent / Auth;
    denied: Permanent / PermissionDenied;
    gone: Permanent / NotFound;
    // DTS refused the `Password` parameter.
    refused: Permanent / PasswordRefused;
}

fn lockout(tries_left: Option<u32>, locked_minutes: Option<u32>) -> ProviderError {
    let class = ErrorClass::Lockout {
        retry_times_left: tries_left,
        lock_time_left_minutes: locked_minutes,
    };
    error(class, ErrorKind::PasswordLockout)
}

fn wait(error: ProviderError, seconds: u64) -> ProviderError {
    error.with_retry_after(Some(Duration::from_secs(seconds)))
}

pub(super) fn target(status: &str, description: &str) -> Observation {
    Observation::Target(Ok(TargetState {
        status: Some(status.into()),
        description: description.into(),
        account_status: None,
    }))
}

fn read_failed(error: ProviderError) -> Observation {
    Observation::Target(Err(error))
}

fn job(accepts: bool) -> Result<JobState, ProviderError> {
    let status = if accepts {
        "Synchronizing"
    } else {
        "Suspending"
    };
    Ok(JobState {
        status: status.into(),
        accepts_password_change: accepts,
    })
}

pub(super) fn changed() -> Observation {
    Observation::Changed(Ok(Some("req-1".into())))
}

pub(super) fn change_failed(error: ProviderError) -> Observation {
    Observation::Changed(Err(error))
}

/// A copy's answer: `None` sent, else its error.
fn copy(error: Option<ProviderError>) -> Result<Option<String>, ProviderError> {
    error.map_or(Ok(Some("req-2".into())), Err)
}

// ---------------------------------------------------------------------
// Running a row, and saying what came of it in one line.

pub(super) fn step(action: &Action) -> String {
    match action {
        Action::ReadTarget => "read".into(),
        Action::CheckDependents => "check".into(),
        Action::AwaitSettled => "await".into(),
        Action::ChangeTarget(method) => format!("change:{}", method.action()),
        Action::WriteMarker(MarkerWrite::Send(_)) => "marker:send".into(),
        Action::WriteMarker(MarkerWrite::Unchanged) => "marker:unchanged".into(),
        Action::WriteMarker(MarkerWrite::Refused(_)) => "marker:refused".into(),
        Action::WriteMarker(MarkerWrite::Skip) => "marker:skip".into(),
        Action::UpdateDependents(pending) => {
            let kinds: Vec<&str> = pending
                .iter()
                .map(|d| match d {
                    Dependent::Dts { .. } => "dts",
                    Dependent::Drs { .. } => "drs",
                })
                .collect();
            format!("update:{}", kinds.join(","))
        }
        Action::Finish => "finish".into(),
    }
}

fn when(at: Option<OffsetDateTime>) -> String {
    let Some(at) = at else {
        return "none".into();
    };
    match (at - NOW).whole_seconds() {
        0 => "now".into(),
        s if s % 3600 == 0 => format!("{:+}h", s / 3600),
        s if s % 60 == 0 => format!("{:+}m", s / 60),
        s => format!("{s:+}s"),
    }
}

/// Each copy's state, in the order of the dependents (`None` without).
pub(super) fn copies(role: &Role) -> Option<String> {
    let states = &role.state.dependents;
    let copies: Vec<&str> = role
        .dependents
        .iter()
        .map(|d| {
            states
                .get(&d.to_string())
                .map_or("-", |c| c.status.as_str())
        })
        .collect();
    (!copies.is_empty()).then(|| format!("deps={}", copies.join(",")))
}

/// The role as `read static-roles/app` would show it, in one line.
fn state(role: &Role) -> String {
    let s = &role.state;
    let flight = s.in_flight.as_ref().map_or("idle".to_owned(), |f| {
        let mut label = f.phase.as_str().to_owned();
        if f.dcs_reset_only {
            label += "+reset";
        }
        if f.marker_written {
            label += "+marker";
        }
        label
    });
    let mut parts = vec![
        s.status.as_str().to_owned(),
        flight,
        format!("f{}", s.failures),
        format!("next={}", when(s.next_rotation)),
    ];
    parts.extend(s.last_error.as_ref().map(|e| format!("err={:?}", e.class)));
    parts.extend(s.dcs_retry_times_left.map(|left| format!("left={left}")));
    let events = s.in_flight.as_ref().map_or(0, |f| f.events.len());
    if events > 0 {
        parts.push(format!("events={events}"));
    }
    parts.extend(copies(role));
    parts.extend(
        s.drift_check
            .as_ref()
            .map(|c| format!("check={}", c.state.as_str())),
    );
    let password = match s.password.as_deref() {
        Some(OLD) => "old",
        Some(NEW) => "new",
        Some(_) => "other",
        None => "none",
    };
    parts.push(format!("pw={password}"));
    parts.join(" ")
}

fn ended(applied: &Applied) -> String {
    let mut out = match &applied.outcome {
        None if applied.commit => "next+commit",
        None => "next",
        Some(RunOutcome::Rotated { .. }) => "rotated",
        Some(RunOutcome::Deferred { .. }) => "deferred",
        Some(RunOutcome::Retrying { .. }) => "retrying",
        Some(RunOutcome::Failed { .. }) => "failed",
        Some(RunOutcome::Drifted { .. }) => "drifted",
        Some(RunOutcome::NotDue) => "not-due",
    }
    .to_owned();
    if applied.outcome.is_some() && !applied.commit {
        out += " uncommitted";
    }
    if let Some(entry) = &applied.history {
        out += &format!(" hist={}", entry.outcome.as_str());
        if let Some(class) = entry.error_class {
            out += &format!("/{class:?}");
        }
    }
    out
}

/// Decides the next step; "commit, <step>" when the record must be stored
/// before it is sent.
fn next_step(role: &mut Role, run: &Run) -> String {
    let action = plan::decide(role, run, OWNER);
    let label = step(&action);
    if plan::before(role, &action) {
        format!("commit, {label}")
    } else {
        label
    }
}

/// Runs the step the planner decides with the cloud's `answer`, as the
/// executor does; the role as stored (a JSON round trip) and the end.
fn answer(role: &mut Role, run: &mut Run, answer: Observation) -> String {
    let tuning = Tuning::default();
    let ctx = Context {
        name: "app",
        now: NOW,
        tuning: &tuning,
        owner: OWNER,
        jitter: 0.0,
        rejection: None,
    };
    let action = plan::decide(role, run, OWNER);
    plan::before(role, &action);
    let applied = plan::apply(role, run, &action, answer, &ctx);
    let json = serde_json::to_value(&*role).expect("a role serialises");
    let stored: Role = serde_json::from_value(json).expect("a stored role reads back");
    format!("{} => {}", state(&stored), ended(&applied))
}

type Decision = (&'static str, Scenario, Run, &'static str);
type Answer = (&'static str, Scenario, Run, Observation, &'static str);

fn check_decisions(rows: Vec<Decision>) -> usize {
    let count = rows.len();
    for (name, Scenario(mut role), run, expected) in rows {
        println!("case: {name}");
        assert_eq!(next_step(&mut role, &run), expected, "{name}");
    }
    count
}

fn check_answers(rows: Vec<Answer>) -> usize {
    let count = rows.len();
    for (name, Scenario(mut role), mut run, observation, expected) in rows {
        println!("case: {name}");
        assert_eq!(answer(&mut role, &mut run, observation), expected, "{name}");
    }
    count
}

// ---------------------------------------------------------------------
// The tables.

#[test]
fn decide_names_the_next_step() {
    let unverified = "https://wiki/app";
    #[rustfmt::skip]
    let rows: Vec<Decision> = vec![
        ("polardb: a run reads the target first", polardb(), fresh(), "read"),
        ("dcs: a run reads the target first", dcs(), fresh(), "read"),
        ("polardb uncertain: read before changing again", polardb().uncertain(), fresh(), "read"),
        ("polardb applied: read for the marker", polardb().dts().applied(), fresh(), "read"),
        ("external: nothing to read or mark", external(), fresh(), "marker:skip"),
        ("external + dts, marker step done: copy", external().dts().marked(), fresh(), "update:dts"),
        ("external, no copies, marker step done: finish", external().marked(), fresh(), "finish"),
        ("polardb, no copies: change", polardb(), read(DESC), "change:ModifyAccountPassword"),
        ("polardb + dts: ask the job first", polardb().dts(), read(DESC), "check"),
        ("polardb + drs: ask the job first", polardb().drs(), read(DESC), "check"),
        ("polardb + both: ask both jobs", polardb().dts().drs(), read(DESC), "check"),
        ("polardb + both, unreadable target: still ask", polardb().dts().drs(), unread(), "check"),
        ("polardb + both, jobs accept: change", polardb().dts().drs(), checked(DESC), "change:ModifyAccountPassword"),
        ("polardb uncertain + dts: no second job check", polardb().dts().uncertain(), read(DESC),
            "change:ModifyAccountPassword"),
        ("polardb applied: write the marker", polardb().applied(), read(DESC), "marker:send"),
        ("polardb applied, marker already there", polardb().applied(), read(&ours(FLIGHT)), "marker:unchanged"),
        ("polardb applied, description the rule refuses", polardb().applied(), read(unverified), "marker:refused"),
        ("polardb applied, target unreadable: no marker", polardb().applied(), unread(), "marker:skip"),
        ("polardb applied + both pending: update both", polardb().dts().drs().applied().marked(), read(DESC),
            "update:dts,drs"),
        ("dts in sync, drs pending: only drs", polardb().dts().drs().applied().marked().deps(&[SYNCED, PENDING]), read(DESC),
            "update:drs"),
        ("deferred and failed copies are sent again", polardb().dts().drs().applied().marked().deps(&[DEFERRED, FAILED]), read(DESC),
            "update:dts,drs"),
        ("every copy in sync: finish", polardb().dts().drs().applied().marked().deps(&[SYNCED, SYNCED]), read(DESC),
            "finish"),
        ("polardb applied, no copies: finish", polardb().applied().marked(), read(DESC), "finish"),
        ("dcs, tries unknown: record, then offer the old password", dcs(), read(DESC), "commit, change:UpdatePassword"),
        ("dcs, 5 tries left: offer", dcs().left(5), read(DESC), "commit, change:UpdatePassword"),
        ("dcs, 3 tries left: offer", dcs().left(3), read(DESC), "commit, change:UpdatePassword"),
        ("dcs, 2 tries left (reserved): reset", dcs().left(2), read(DESC), "change:ResetPassword"),
        ("dcs, 1 try left: reset", dcs().left(1), read(DESC), "change:ResetPassword"),
        ("dcs, locked (0 left): reset", dcs().left(0), read(DESC), "change:ResetPassword"),
        ("dcs, old password offered before: reset", dcs().reset_only(), read(DESC), "change:ResetPassword"),
        ("dcs uncertain after an offer: reset", dcs().reset_only().uncertain(), read(DESC), "change:ResetPassword"),
        ("dcs, no old password known: reset", dcs().no_password(), read(DESC), "change:ResetPassword"),
        ("dcs role set to reset", dcs_reset(), read(DESC), "change:ResetPassword"),
        ("dcs role set to reset, 5 tries left", dcs_reset().left(5), read(DESC), "change:ResetPassword"),
        ("dcs + drs: ask the job first", dcs().drs(), read(DESC), "check"),
        ("dcs + drs, job accepts: record, then offer", dcs().drs(), checked(DESC), "commit, change:UpdatePassword"),
        ("dcs applied: write the marker", dcs().applied(), read(DESC), "marker:send"),
        ("dcs applied, description too long for the marker", dcs().applied(), read(&"d".repeat(1000)),
            "marker:refused"),
        ("dcs applied + drs pending: update it", dcs().drs().applied().marked(), read(DESC), "update:drs"),
    ];
    assert_eq!(check_decisions(rows), 39);
}

/// How a request starts (or does not start) a rotation, and the record
/// `start` writes.
fn begin(Scenario(mut role): Scenario, trigger: Trigger, given: Option<&str>) -> String {
    match plan::begin(&role, "app", trigger, given.map(str::to_owned), NOW) {
        Err(Error::BadRequest(_)) => "refused 400".into(),
        Err(Error::Coded { status, .. }) => format!("refused {status}"),
        Err(other) => format!("error {other}"),
        Ok(Begin::Resume) => "resume".into(),
        Ok(Begin::NotDue) => "not-due".into(),
        Ok(Begin::MissedWindow(next)) => format!("missed-window next={}", when(next)),
        Ok(Begin::Start(start)) => {
            let given = if start.given { " given" } else { "" };
            let label = format!("start {}{given}", start.trigger);
            let password = start.password.clone().unwrap_or_else(|| NEW.into());
            plan::start(&mut role, start, password, FLIGHT.into(), NOW);
            format!("{label} => {}", state(&role))
        }
    }
}

#[test]
fn begin_and_start_record_the_rotation() {
    use Trigger::{CheckIn, Create, LeaseEnd, Manual, Propagate, Schedule};
    let polar = || at_rest(polardb_target());
    #[rustfmt::skip]
    let rows: Vec<(&str, Scenario, Trigger, Option<&str>, &str)> = vec![
        ("manual at rest: a new rotation", polar(), Manual, None,
            "start manual => rotating prepared f0 next=+23h pw=old"),
        ("manual, a rotation in flight: resume it", polardb(), Manual, None, "resume"),
        ("schedule, a rotation in flight: resume it", polardb().due_in(3600), Schedule, None, "resume"),
        ("another password given while one is in flight", polardb(), Manual, Some("Other-pass-99"), "refused 409"),
        ("the flight's own password given again: resume", polardb(), Manual, Some(NEW), "resume"),
        ("schedule, not yet due", polar(), Schedule, None, "not-due"),
        ("schedule, due a minute ago", polar().due_in(-60), Schedule, None,
            "start schedule => rotating prepared f0 next=-1m pw=old"),
        ("schedule, manual-only role", polar().manual_only().with(|r| r.state.next_rotation = None), Schedule, None,
            "not-due"),
        ("schedule, due but drifted: waits for an operator", polar().drifted().due_in(-60), Schedule, None, "not-due"),
        ("schedule, window missed: wait for the next slot", polar().cron_missed(), Schedule, None,
            "missed-window next=+17h"),
        ("manual on a drifted polardb: repair", polar().drifted(), Manual, None,
            "start repair => rotating prepared+reset f0 next=+23h pw=old"),
        ("manual on a drifted dcs: repair resets", at_rest(dcs_target()).drifted(), Manual, None,
            "start repair => rotating prepared+reset f0 next=+23h pw=old"),
        ("create takes the target", polar(), Create, None, "start create => rotating prepared f0 next=+23h pw=old"),
        ("lease end of a lent service account", polar().leased(), LeaseEnd, None,
            "start lease-end => rotating prepared f0 next=+2h pw=old"),
        ("check-in of a lent service account", polar().leased(), CheckIn, None,
            "start check-in => rotating prepared f0 next=+2h pw=old"),
        ("a given password is adopted, copies pending", polar().dts(), Manual, Some(NEW),
            "start adopt given => rotating target_applied f0 next=+23h deps=pending pw=new"),
        ("a given password the target's rules refuse", polar(), Manual, Some("short"), "refused 400"),
        ("the current password given, a DTS copy refuses it", polar().dts(), Manual, Some(OLD), "refused 400"),
        ("the current password given, DRS only: adopted", polar().drs(), Manual, Some(OLD),
            "start adopt given => rotating target_applied f0 next=+23h deps=pending pw=old"),
        ("propagate the current password to the copies", polar().dts(), Propagate, None,
            "start propagate => rotating target_applied+marker f0 next=+23h deps=pending pw=old"),
        ("propagate from a drifted role", polar().dts().drifted(), Propagate, None, "refused 409"),
        ("propagate with no password yet", polar().no_password(), Propagate, None, "refused 400"),
        ("external without a password", at_rest(Target::External), Manual, None, "refused 400"),
        ("external with a given password", at_rest(Target::External).dts(), Manual, Some(NEW),
            "start manual given => rotating target_applied f0 next=+23h deps=pending pw=new"),
        ("external, a password with spaces", at_rest(Target::External).dts(), Manual, Some("has spaces 123"),
            "refused 400"),
    ];
    for (name, role, trigger, given, expected) in &rows {
        println!("case: {name}");
        assert_eq!(begin(role.clone(), *trigger, *given), *expected, "{name}");
    }
    assert_eq!(rows.len(), 25);
}

#[test]
fn reading_the_target() {
    let available = |description: &str| target("Available", description);
    #[rustfmt::skip]
    let rows: Vec<Answer> = vec![
        ("no marker: unverified, go on", polardb(), fresh(), available(DESC),
            "rotating prepared f0 next=now check=unverified pw=old => next"),
        ("our marker for the current password", polardb(), fresh(), available(&ours(CURRENT)),
            "rotating prepared f0 next=now pw=old => next"),
        ("our marker one rotation behind", polardb().marker_behind(), fresh(), available(&ours(BEHIND)),
            "rotating prepared f0 next=now pw=old => next"),
        ("another mount's marker: drifted, rotation dropped", polardb(), fresh(), available(&theirs()),
            "drifted idle f0 next=none pw=old => drifted hist=drifted"),
        ("a marker of ours this Vault never saw: drifted", polardb().dts(), fresh(), available(&ours(UNKNOWN)),
            "drifted idle f0 next=none deps=in_sync pw=old => drifted hist=drifted"),
        ("drifted service account keeps its lease-end net", polardb().leased(), fresh(), available(&theirs()),
            "drifted idle f0 next=+2h pw=old => drifted hist=drifted"),
        ("create takes another mount's target", polardb().trigger(Trigger::Create), fresh(), available(&theirs()),
            "rotating prepared f0 next=now pw=old => next"),
        ("repair takes a restored target", polardb().trigger(Trigger::Repair), fresh(), available(&ours(UNKNOWN)),
            "rotating prepared f0 next=now pw=old => next"),
        ("our marker names this rotation: already applied", polardb().dts(), fresh(), available(&ours(FLIGHT)),
            "rotating target_applied f0 next=now events=1 deps=pending pw=new => next+commit"),
        ("uncertain, marker names this rotation: applied", polardb().dts().uncertain(), fresh(), available(&ours(FLIGHT)),
            "rotating target_applied f0 next=now events=1 deps=pending pw=new => next+commit"),
        ("applied, marker names this rotation", polardb().applied(), fresh(), available(&ours(FLIGHT)),
            "rotating target_applied f0 next=now pw=new => next"),
        ("applied, the previous marker still there", polardb().applied(), fresh(), available(&ours(CURRENT)),
            "rotating target_applied f0 next=now pw=new => next"),
        ("applied, no marker: written next", polardb().applied(), fresh(), available(DESC),
            "rotating target_applied f0 next=now pw=new => next"),
        ("polardb account Creating: defer", polardb(), fresh(), target("Creating", DESC),
            "deferred prepared f0 next=+1m pw=old => deferred hist=deferred/Deferred"),
        ("polardb account Deleting: defer", polardb(), fresh(), target("Deleting", DESC),
            "deferred prepared f0 next=+1m pw=old => deferred hist=deferred/Deferred"),
        ("dcs RESTARTING: defer", dcs(), fresh(), target("RESTARTING", DESC),
            "deferred prepared f0 next=+1m pw=old => deferred hist=deferred/Deferred"),
        ("dcs EXTENDING: defer, the copy untouched", dcs().drs(), fresh(), target("EXTENDING", DESC),
            "deferred prepared f0 next=+1m deps=in_sync pw=old => deferred hist=deferred/Deferred"),
        ("dcs uncertain, RESTARTING: defer", dcs().reset_only().uncertain(), fresh(), target("RESTARTING", DESC),
            "deferred target_uncertain+reset f0 next=+1m pw=old => deferred hist=deferred/Deferred"),
        ("dcs FROZEN: refused, unused password dropped", dcs(), fresh(), target("FROZEN", DESC),
            "failed idle f0 next=+23h err=Permanent pw=old => failed hist=failed/Permanent"),
        ("dcs uncertain, ERROR: failed, record kept", dcs().uncertain(), fresh(), target("ERROR", DESC),
            "failed target_uncertain f0 next=+23h err=Permanent pw=old => failed hist=failed/Permanent"),
        ("dcs applied, FROZEN: state no longer matters", dcs().applied(), fresh(), target("FROZEN", DESC),
            "rotating target_applied f0 next=now pw=new => next"),
        ("dcs running (any case)", dcs(), fresh(), target("running", DESC),
            "rotating prepared f0 next=now check=unverified pw=old => next"),
        ("throttled: back off", polardb(), fresh(), read_failed(throttled()),
            "rotating prepared f1 next=+5s err=Retryable pw=old => retrying"),
        ("throttled, Retry-After 2m: wait 2m", polardb(), fresh(), read_failed(wait(throttled(), 120)),
            "rotating prepared f1 next=+2m err=Retryable pw=old => retrying"),
        ("timed out: back off", polardb(), fresh(), read_failed(timeout()),
            "rotating prepared f1 next=+5s err=OutcomeUnknown pw=old => retrying"),
        ("key rejected: stop, record kept", polardb(), fresh(), read_failed(auth()),
            "failed prepared f0 next=none err=CredentialsRejected pw=old => failed"),
        ("account not found: go on, the change says", polardb(), fresh(), read_failed(gone()),
            "rotating prepared f0 next=now check=unavailable pw=old => next"),
        ("read not allowed: go on", polardb(), fresh(), read_failed(denied()),
            "rotating prepared f0 next=now check=unavailable pw=old => next"),
        ("third failure: longer backoff", polardb().failures(2), fresh(), read_failed(busy()),
            "rotating prepared f3 next=+20s err=Retryable pw=old => retrying"),
        ("sixth failure: give up until the next cycle", polardb().failures(5), fresh(), read_failed(throttled()),
            "failed prepared f0 next=+23h err=Retryable pw=old => failed hist=failed/Retryable"),
        ("service account gives up: longest backoff", polardb().leased().failures(5), fresh(), read_failed(throttled()),
            "failed prepared f0 next=+15m err=Retryable pw=old => failed hist=failed/Retryable"),
        ("manual-only role gives up: waits for rotate-role", polardb().manual_only().failures(5), fresh(), read_failed(throttled()),
            "failed prepared f0 next=none err=Retryable pw=old => failed hist=failed/Retryable"),
        ("applied, throttled: pending copies", polardb().dts().applied(), fresh(), read_failed(throttled()),
            "pending_dependents target_applied f1 next=+5s err=Retryable deps=pending pw=new => retrying"),
    ];
    assert_eq!(check_answers(rows), 33);
}

#[test]
fn asking_the_jobs() {
    let both = || polardb().dts().drs();
    let seen = || read(DESC);
    let jobs = Observation::Jobs;
    #[rustfmt::skip]
    let rows: Vec<Answer> = vec![
        ("both jobs accept: go on", both(), seen(), jobs(vec![job(true), job(true)]),
            "rotating prepared f0 next=now deps=in_sync,in_sync pw=old => next"),
        ("dts suspended: defer, nothing touched", both(), seen(), jobs(vec![job(false), job(true)]),
            "deferred prepared f0 next=+1m deps=deferred,in_sync pw=old => deferred hist=deferred/Deferred"),
        ("drs not accepting: defer", both(), seen(), jobs(vec![job(true), job(false)]),
            "deferred prepared f0 next=+1m deps=in_sync,deferred pw=old => deferred hist=deferred/Deferred"),
        ("neither accepts: defer", both(), seen(), jobs(vec![job(false), job(false)]),
            "deferred prepared f0 next=+1m deps=deferred,deferred pw=old => deferred hist=deferred/Deferred"),
        ("dts describe throttled: back off", both(), seen(), jobs(vec![Err(throttled()), job(true)]),
            "rotating prepared f1 next=+5s err=Retryable deps=in_sync,in_sync pw=old => retrying"),
        ("drs describe timed out: back off", both(), seen(), jobs(vec![job(true), Err(timeout())]),
            "rotating prepared f1 next=+5s err=OutcomeUnknown deps=in_sync,in_sync pw=old => retrying"),
        ("dts job not found: a failed attempt", both(), seen(), jobs(vec![Err(gone()), job(true)]),
            "rotating prepared f1 next=+5s err=Permanent deps=in_sync,in_sync pw=old => retrying"),
        ("drs key rejected: stop", both(), seen(), jobs(vec![job(true), Err(auth())]),
            "failed prepared f0 next=none err=CredentialsRejected deps=in_sync,in_sync pw=old => failed"),
        ("drs throttled, Retry-After 5m", both(), seen(), jobs(vec![job(true), Err(wait(throttled(), 300))]),
            "rotating prepared f1 next=+5m err=Retryable deps=in_sync,in_sync pw=old => retrying"),
        ("a refusal, then an error: back off and ask again", both(), seen(), jobs(vec![job(false), Err(busy())]),
            "rotating prepared f1 next=+5s err=Retryable deps=in_sync,in_sync pw=old => retrying"),
        ("a job deferred before now accepts", both().deps(&[DEFERRED, SYNCED]), seen(), jobs(vec![job(true), job(true)]),
            "rotating prepared f0 next=now deps=deferred,in_sync pw=old => next"),
        ("sixth failure asking: give up", both().failures(5), seen(), jobs(vec![Err(busy()), job(true)]),
            "failed prepared f0 next=+23h err=Retryable deps=in_sync,in_sync pw=old => failed hist=failed/Retryable"),
        ("dcs + drs paused: defer", dcs().drs(), seen(), jobs(vec![job(false)]),
            "deferred prepared f0 next=+1m deps=deferred pw=old => deferred hist=deferred/Deferred"),
    ];
    assert_eq!(check_answers(rows), 13);
}

#[test]
fn changing_the_target() {
    let polar = || polardb().dts();
    let seen_target = || read(DESC);
    let seen = || checked(DESC);
    #[rustfmt::skip]
    let rows: Vec<Answer> = vec![
        ("polardb changed: new password current, copy pending", polar(), seen(), changed(),
            "rotating target_applied f0 next=now deps=pending pw=new => next+commit"),
        ("polardb throttled: back off, nothing changed", polar(), seen(), change_failed(throttled()),
            "rotating prepared f1 next=+5s err=Retryable deps=in_sync pw=old => retrying"),
        ("polardb busy, Retry-After 90s", polar(), seen(), change_failed(wait(busy(), 90)),
            "rotating prepared f1 next=+90s err=Retryable deps=in_sync pw=old => retrying"),
        ("polardb timed out: uncertain, same password later", polar(), seen(), change_failed(timeout()),
            "rotating target_uncertain f1 next=+5s err=OutcomeUnknown deps=in_sync pw=old => retrying"),
        ("polardb invalid parameter: refused, password dropped", polar(), seen(), change_failed(invalid()),
            "failed idle f0 next=+23h err=Permanent deps=in_sync pw=old => failed hist=failed/Permanent"),
        ("polardb account gone: refused", polar(), seen(), change_failed(gone()),
            "failed idle f0 next=+23h err=Permanent deps=in_sync pw=old => failed hist=failed/Permanent"),
        ("polardb change not allowed: refused", polar(), seen(), change_failed(denied()),
            "failed idle f0 next=+23h err=Permanent deps=in_sync pw=old => failed hist=failed/Permanent"),
        ("polardb invalid state: defer, same password", polar(), seen(), change_failed(bad_state()),
            "deferred prepared f0 next=+1m deps=in_sync pw=old => deferred hist=deferred/Deferred"),
        ("polardb key rejected: stop, record kept", polar(), seen(), change_failed(auth()),
            "failed prepared f0 next=none err=CredentialsRejected deps=in_sync pw=old => failed"),
        ("polardb a lockout answer: a failed attempt", polar(), seen(), change_failed(lockout(None, None)),
            "rotating prepared f1 next=+5s err=Lockout deps=in_sync pw=old => retrying"),
        ("polardb uncertain, now changed", polar().uncertain(), seen_target(), changed(),
            "rotating target_applied f0 next=now deps=pending pw=new => next+commit"),
        ("polardb uncertain, invalid parameter: may be applied, retry", polar().uncertain(), seen_target(), change_failed(invalid()),
            "rotating target_uncertain f1 next=+5s err=Permanent deps=in_sync pw=old => retrying"),
        ("polardb uncertain, timed out again: second backoff", polar().uncertain().failures(1), seen_target(), change_failed(timeout()),
            "rotating target_uncertain f2 next=+10s err=OutcomeUnknown deps=in_sync pw=old => retrying"),
        ("polardb uncertain, sixth failure: give up, record kept", polar().uncertain().failures(5), seen_target(), change_failed(timeout()),
            "failed target_uncertain f0 next=+23h err=OutcomeUnknown deps=in_sync pw=old => failed hist=failed/OutcomeUnknown"),
        ("polardb uncertain, invalid state: defer", polar().uncertain(), seen_target(), change_failed(bad_state()),
            "deferred target_uncertain f0 next=+1m deps=in_sync pw=old => deferred hist=deferred/Deferred"),
        ("dcs updated with the old password", dcs(), seen_target(), changed(),
            "rotating target_applied+reset f0 next=now pw=new => next+commit"),
        ("dcs updated: the tries count is forgotten", dcs().left(4), seen_target(), changed(),
            "rotating target_applied+reset f0 next=now pw=new => next+commit"),
        ("dcs + drs updated: copy pending", dcs().drs(), seen(), changed(),
            "rotating target_applied+reset f0 next=now deps=pending pw=new => next+commit"),
        ("dcs refused the old password, 3 left: reset now", dcs(), seen_target(), change_failed(lockout(Some(3), None)),
            "rotating prepared+reset f0 next=now left=3 events=1 pw=old => next+commit"),
        ("dcs refused, no count: one try counted of 5", dcs(), seen_target(), change_failed(lockout(None, None)),
            "rotating prepared+reset f0 next=now left=4 events=1 pw=old => next+commit"),
        ("dcs refused, no count, 4 known: 3 left", dcs().left(4), seen_target(), change_failed(lockout(None, None)),
            "rotating prepared+reset f0 next=now left=3 events=1 pw=old => next+commit"),
        ("dcs refused, 2 left, lock 0 minutes: reset now", dcs(), seen_target(), change_failed(lockout(Some(2), Some(0))),
            "rotating prepared+reset f0 next=now left=2 events=1 pw=old => next+commit"),
        ("dcs locked for 5 minutes: wait the lock out", dcs(), seen_target(), change_failed(lockout(Some(0), Some(5))),
            "rotating prepared+reset f1 next=+305s err=Lockout left=0 events=1 pw=old => retrying"),
        ("dcs offer timed out: reset at once", dcs(), seen_target(), change_failed(timeout()),
            "rotating target_uncertain+reset f0 next=now pw=old => next+commit"),
        ("dcs offer throttled: back off, reset then", dcs(), seen_target(), change_failed(throttled()),
            "rotating prepared+reset f1 next=+5s err=Retryable pw=old => retrying"),
        ("dcs offer invalid parameter: refused, dropped", dcs(), seen_target(), change_failed(invalid()),
            "failed idle f0 next=+23h err=Permanent pw=old => failed hist=failed/Permanent"),
        ("dcs offer, instance busy: defer", dcs(), seen_target(), change_failed(bad_state()),
            "deferred prepared+reset f0 next=+1m pw=old => deferred hist=deferred/Deferred"),
        ("dcs offer, key rejected: stop", dcs(), seen_target(), change_failed(auth()),
            "failed prepared+reset f0 next=none err=CredentialsRejected pw=old => failed"),
        ("dcs reset done", dcs().reset_only().left(3), seen_target(), changed(),
            "rotating target_applied+reset f0 next=now pw=new => next+commit"),
        ("dcs role set to reset: done", dcs_reset(), seen_target(), changed(),
            "rotating target_applied f0 next=now pw=new => next+commit"),
        ("dcs 2 left: reset, count forgotten", dcs().left(2), seen_target(), changed(),
            "rotating target_applied f0 next=now pw=new => next+commit"),
        ("dcs no old password: reset done", dcs().no_password(), seen_target(), changed(),
            "rotating target_applied f0 next=now pw=new => next+commit"),
        ("dcs reset timed out: uncertain, back off", dcs().reset_only(), seen_target(), change_failed(timeout()),
            "rotating target_uncertain+reset f1 next=+5s err=OutcomeUnknown pw=old => retrying"),
        ("dcs reset on a locked instance: wait 30 minutes", dcs().reset_only().left(0), seen_target(), change_failed(lockout(Some(0), Some(30))),
            "rotating prepared+reset f1 next=+1805s err=Lockout left=0 pw=old => retrying"),
        ("dcs reset refused: dropped", dcs_reset(), seen_target(), change_failed(invalid()),
            "failed idle f0 next=+23h err=Permanent pw=old => failed hist=failed/Permanent"),
        ("dcs uncertain reset, invalid parameter: retried", dcs().reset_only().uncertain(), seen_target(), change_failed(invalid()),
            "rotating target_uncertain+reset f1 next=+5s err=Permanent pw=old => retrying"),
    ];
    assert_eq!(check_answers(rows), 36);
}

#[test]
fn writing_the_marker() {
    let marker_written = |result: Result<(), ProviderError>| Observation::MarkerWritten(result);
    #[rustfmt::skip]
    let rows: Vec<Answer> = vec![
        ("marker written: in sync", polardb().applied(), read(DESC), marker_written(Ok(())),
            "rotating target_applied+marker f0 next=now check=in_sync pw=new => next"),
        ("marker write denied: the rotation goes on", polardb().applied(), read(DESC), marker_written(Err(denied())),
            "rotating target_applied+marker f0 next=now check=unavailable pw=new => next"),
        ("marker write throttled: not retried now", polardb().applied(), read(DESC), marker_written(Err(throttled())),
            "rotating target_applied+marker f0 next=now check=unavailable pw=new => next"),
        ("marker write timed out", polardb().applied(), read(DESC), marker_written(Err(timeout())),
            "rotating target_applied+marker f0 next=now check=unavailable pw=new => next"),
        ("marker already there", polardb().applied(), read(&ours(FLIGHT)), Observation::Nothing,
            "rotating target_applied+marker f0 next=now check=in_sync pw=new => next"),
        ("marker refused by the description rule", polardb().applied(), read("https://wiki/app"), Observation::Nothing,
            "rotating target_applied+marker f0 next=now check=unavailable pw=new => next"),
        ("target unreadable: no marker, check unchanged", polardb().applied(), unread(), Observation::Nothing,
            "rotating target_applied+marker f0 next=now pw=new => next"),
        ("external: nothing to mark", external().dts(), fresh(), Observation::Nothing,
            "rotating target_applied+marker f0 next=now deps=pending pw=new => next"),
        ("dcs marker written", dcs().reset_only().applied(), read(DESC), marker_written(Ok(())),
            "rotating target_applied+reset+marker f0 next=now check=in_sync pw=new => next"),
    ];
    assert_eq!(check_answers(rows), 9);
}

#[test]
fn updating_the_copies() {
    let both = || polardb().dts().drs().applied().marked();
    let seen = || read(&ours(FLIGHT));
    let sent = |answers: Vec<Option<ProviderError>>| {
        Observation::Updated(answers.into_iter().map(copy).collect())
    };
    #[rustfmt::skip]
    let rows: Vec<Answer> = vec![
        ("both copies updated: rotated", both(), seen(), sent(vec![None, None]),
            "ok idle f0 next=+23h deps=in_sync,in_sync pw=new => rotated hist=succeeded"),
        ("dts refuses the password it holds: in sync", both(), seen(), sent(vec![Some(refused()), None]),
            "ok idle f0 next=+23h deps=in_sync,in_sync pw=new => rotated hist=succeeded"),
        ("dts throttled: pending, back off", both(), seen(), sent(vec![Some(throttled()), None]),
            "pending_dependents target_applied+marker f1 next=+5s err=Retryable deps=pending,in_sync pw=new => retrying"),
        ("dts timed out: pending", both(), seen(), sent(vec![Some(timeout()), None]),
            "pending_dependents target_applied+marker f1 next=+5s err=OutcomeUnknown deps=pending,in_sync pw=new => retrying"),
        ("dts invalid parameter: failed copy, retried", both(), seen(), sent(vec![Some(invalid()), None]),
            "pending_dependents target_applied+marker f1 next=+5s err=Permanent deps=failed,in_sync pw=new => retrying"),
        ("dts job not accepting now: deferred copy", both(), seen(), sent(vec![Some(bad_state()), None]),
            "pending_dependents target_applied+marker f1 next=+5s err=Permanent deps=deferred,in_sync pw=new => retrying"),
        ("dts job gone: failed copy", both(), seen(), sent(vec![Some(gone()), None]),
            "pending_dependents target_applied+marker f1 next=+5s err=Permanent deps=failed,in_sync pw=new => retrying"),
        ("dts key rejected: stop", both(), seen(), sent(vec![Some(auth()), None]),
            "failed target_applied+marker f0 next=none err=CredentialsRejected deps=failed,in_sync pw=new => failed"),
        ("drs busy: pending", both(), seen(), sent(vec![None, Some(busy())]),
            "pending_dependents target_applied+marker f1 next=+5s err=Retryable deps=in_sync,pending pw=new => retrying"),
        ("drs throttled, Retry-After 90s", both(), seen(), sent(vec![None, Some(wait(throttled(), 90))]),
            "pending_dependents target_applied+marker f1 next=+90s err=Retryable deps=in_sync,pending pw=new => retrying"),
        ("drs timed out: pending", both(), seen(), sent(vec![None, Some(timeout())]),
            "pending_dependents target_applied+marker f1 next=+5s err=OutcomeUnknown deps=in_sync,pending pw=new => retrying"),
        ("both failing: the first error is reported", both(), seen(), sent(vec![Some(throttled()), Some(bad_state())]),
            "pending_dependents target_applied+marker f1 next=+5s err=Retryable deps=pending,deferred pw=new => retrying"),
        ("fourth failure: 40s range, half of it", both().failures(3), seen(), sent(vec![Some(throttled()), None]),
            "pending_dependents target_applied+marker f4 next=+40s err=Retryable deps=pending,in_sync pw=new => retrying"),
        ("sixth failure: give up, record kept", both().failures(5), seen(), sent(vec![Some(throttled()), None]),
            "failed target_applied+marker f0 next=+23h err=Retryable deps=pending,in_sync pw=new => failed hist=failed/Retryable"),
        ("only the pending copy is sent", both().deps(&[SYNCED, PENDING]), seen(), sent(vec![None]),
            "ok idle f0 next=+23h deps=in_sync,in_sync pw=new => rotated hist=succeeded"),
        ("earlier failures are cleared", both().failures(3), seen(), sent(vec![None, None]),
            "ok idle f0 next=+23h deps=in_sync,in_sync pw=new => rotated hist=succeeded"),
        ("dts only: rotated", polardb().dts().applied().marked(), seen(), sent(vec![None]),
            "ok idle f0 next=+23h deps=in_sync pw=new => rotated hist=succeeded"),
        ("drs only, key rejected", polardb().drs().applied().marked(), seen(), sent(vec![Some(auth())]),
            "failed target_applied+marker f0 next=none err=CredentialsRejected deps=failed pw=new => failed"),
        ("lent service account: next is the lease's end", polardb().dts().leased().applied().marked(), seen(), sent(vec![None]),
            "ok idle f0 next=+2h deps=in_sync pw=new => rotated hist=succeeded"),
        ("manual-only role: nothing scheduled", polardb().dts().manual_only().applied().marked(), seen(), sent(vec![None]),
            "ok idle f0 next=none deps=in_sync pw=new => rotated hist=succeeded"),
        ("dcs + drs: rotated", dcs().drs().reset_only().applied().marked(), seen(), sent(vec![None]),
            "ok idle f0 next=+23h deps=in_sync pw=new => rotated hist=succeeded"),
        ("external + dts: rotated, next from now", external().dts().marked(), fresh(), sent(vec![None]),
            "ok idle f0 next=+24h deps=in_sync pw=new => rotated hist=succeeded"),
        ("external, dts already holds it", external().dts().marked(), fresh(), sent(vec![Some(refused())]),
            "ok idle f0 next=+24h deps=in_sync pw=new => rotated hist=succeeded"),
        ("no copies: finish", polardb().applied().marked(), seen(), Observation::Nothing,
            "ok idle f0 next=+23h pw=new => rotated hist=succeeded"),
    ];
    assert_eq!(check_answers(rows), 24);
}

#[test]
fn merging_the_marker_into_the_description() {
    let mine = token(OWNER, FLIGHT);
    let long_dcs = "d".repeat(900);
    #[rustfmt::skip]
    let rows: Vec<(&str, Target, String, String)> = vec![
        ("empty polardb description: the marker alone", polardb_target(), String::new(), "send:<marker>".into()),
        ("operator text kept, marker appended", polardb_target(), DESC.into(), "send:app account <marker>".into()),
        ("trailing spaces trimmed", polardb_target(), "app account  ".into(), "send:app account <marker>".into()),
        ("another mount's marker replaced in place", polardb_target(), format!("left {} right", token(OTHER_OWNER, CURRENT)),
            "send:left <marker> right".into()),
        ("our previous marker replaced", polardb_target(), ours(CURRENT), "send:app account <marker>".into()),
        ("already carries it", polardb_target(), ours(FLIGHT), "unchanged".into()),
        ("too long for polardb (256)", polardb_target(), "a".repeat(220), "refused".into()),
        ("polardb forbids https://", polardb_target(), "https://wiki".into(), "refused".into()),
        ("dcs takes up to 1024 characters", dcs_target(), long_dcs.clone(), format!("send:{long_dcs} <marker>")),
        ("dcs over 1024: refused", dcs_target(), "d".repeat(1000), "refused".into()),
        ("dcs empty description", dcs_target(), String::new(), "send:<marker>".into()),
        ("dcs allows http://", dcs_target(), "http://wiki".into(), "send:http://wiki <marker>".into()),
        ("external: nothing to write", Target::External, DESC.into(), "skip".into()),
    ];
    for (name, target, description, expected) in &rows {
        println!("case: {name}");
        let role = Role::new(RoleKind::Static, target.clone());
        let merged = match plan::merge_marker(&role, description, OWNER, FLIGHT) {
            MarkerWrite::Send(text) => format!("send:{}", text.replace(&mine, "<marker>")),
            MarkerWrite::Unchanged => "unchanged".into(),
            MarkerWrite::Refused(_) => "refused".into(),
            MarkerWrite::Skip => "skip".into(),
        };
        assert_eq!(merged, *expected, "{name}");
    }
    assert_eq!(rows.len(), 13);
}

#[test]
fn a_drift_check_result_is_stored_only_when_it_changes() {
    use CheckState::{InSync, Unavailable};
    let mut role = at_rest(polardb_target()).0;
    #[rustfmt::skip]
    let rows: Vec<(&str, CheckState, Option<&str>, bool)> = vec![
        ("first result", InSync, None, true),
        ("same again: nothing to store", InSync, None, false),
        ("a marker write failed", Unavailable, Some("denied"), true),
        ("failed again for the same reason", Unavailable, Some("denied"), false),
        ("failed for another reason", Unavailable, Some("throttled"), true),
    ];
    for (name, check, detail, changed) in &rows {
        println!("case: {name}");
        let at = NOW + HOUR;
        let stored = plan::set_check(&mut role, at, *check, detail.map(str::to_owned));
        assert_eq!(stored, *changed, "{name}");
        let result = role.state.drift_check.as_ref().expect("a result");
        assert_eq!(
            (result.state, result.detail.as_deref()),
            (*check, *detail),
            "{name}"
        );
    }
    assert_eq!(rows.len(), 5);
}
