//! Table-driven tests of the planner for dual-account roles (two accounts
//! that take turns: `a` active, `b` inactive at rest). Each row builds a
//! role, feeds one answer to the step the planner decides (or asks
//! `decide`/`begin`), and compares the role as stored with one line:
//!
//! `<status> <phase> f<failures> next=<due> act=<a|b> acct=<a|b|-> pw=<x>
//! last=<x> gen=<active pair>|<inactive pair> [deps=<a copy>,<b copy>]
//! => <outcome> [hist=<outcome> <before>-><after>]`
//!
//! Passwords: `a0`/`b0` the accounts' at rest, `new` the flight's.
//! Generations: `A` set a's password, `B` b's, `F` the flight's.

// Provider errors are large (request ids, codes) and rare; see providers.
#![allow(clippy::result_large_err)]

use time::OffsetDateTime;

use crate::framework::Error;
use crate::providers::{ErrorClass, ErrorKind};

use super::super::cloud::{JobState, TargetState};
use super::super::role::{
    Dependent, DependentStatus, Phase, Role, RoleKind, Status, Target, Trigger,
};
use super::super::schedule::Schedule;
use super::super::tuning::Tuning;
use super::drift::{self, Condition};
use super::plan::{self, Action, Applied, Begin, Context, Observation, Run, RunOutcome, Start};
use super::plan_tests::{
    self, NOW, OTHER_OWNER, change_failed, changed, checked, dcs_target, error, manual, ours,
    polardb_target, read, step, target, timeout, token,
};

const OWNER: &str = "00000000000000aa";
const FLIGHT: &str = "1111111111111111";
/// The rotation that set a's password (the last one).
pub(super) const GEN_A: &str = "2222222222222222";
/// The rotation that set b's password (the one before).
pub(super) const GEN_B: &str = "5555555555555555";
const UNKNOWN: &str = "3333333333333333";
pub(super) const PW_A: &str = "A-pass-1234";
pub(super) const PW_B: &str = "B-pass-1234";
const NEW: &str = "New-pass-5678";
const DESC: &str = "app account";

const SYNCED: DependentStatus = DependentStatus::InSync;

pub(super) fn pinned(account: &str) -> Dependent {
    Dependent::parse(&format!("dts:ali/dtsj_{account}/src/app_{account}"), None)
        .expect("a DTS dependent")
}

/// A dual role at rest: `app_a` active, `app_b` inactive; last rotated an
/// hour ago, due in 23h.
pub(super) fn at_rest(target: Target) -> Role {
    let mut role = Role::new(RoleKind::Static, target);
    role.usernames = vec!["app_a".into(), "app_b".into()];
    role.schedule.period = Some(std::time::Duration::from_secs(24 * 3600));
    let s = &mut role.state;
    s.password = Some(PW_A.into());
    s.last_password = Some(PW_B.into());
    s.last_vault_rotation = Some(NOW - time::Duration::HOUR);
    s.next_rotation = Some(NOW + 23 * time::Duration::HOUR);
    s.generation = Some(GEN_A.into());
    s.marker_generation = Some(GEN_A.into());
    s.last_generation = Some(GEN_B.into());
    s.last_marker_generation = Some(GEN_B.into());
    role
}

/// A rotation to `NEW` recorded and due now.
fn rotating(target: Target) -> Role {
    let mut role = at_rest(target);
    plan::start(&mut role, manual(), NEW.into(), FLIGHT.into(), NOW);
    role.state.next_rotation = Some(NOW);
    role
}

fn polardb() -> Role {
    rotating(polardb_target())
}

fn dcs() -> Role {
    rotating(dcs_target())
}

/// With a DTS copy pinned to each account, in sync.
fn copies(mut role: Role) -> Role {
    for account in ["a", "b"] {
        let dependent = pinned(account);
        role.state
            .dependents
            .entry(dependent.to_string())
            .or_default()
            .status = SYNCED;
        role.dependents.push(dependent);
    }
    role
}

fn phase(mut role: Role, phase: Phase) -> Role {
    role.state.in_flight.as_mut().expect("in flight").phase = phase;
    role
}

/// The target took the flight's password in an earlier run (flipped).
fn applied(mut role: Role) -> Role {
    let run = &mut Run::default();
    let action = Action::ChangeTarget(super::super::cloud::ChangeMethod::Modify);
    plan::apply(&mut role, run, &action, changed(), &ctx(&Tuning::default()));
    role
}

fn marked(mut role: Role) -> Role {
    role.state
        .in_flight
        .as_mut()
        .expect("in flight")
        .marker_written = true;
    role
}

fn failures(mut role: Role, count: u32) -> Role {
    role.state.failures = count;
    role
}

fn ctx(tuning: &Tuning) -> Context<'_> {
    Context {
        name: "app",
        now: NOW,
        tuning,
        owner: OWNER,
        jitter: 0.0,
        rejection: None,
    }
}

fn acl(instance: &str, account: Option<&str>) -> Observation {
    Observation::Target(Ok(TargetState {
        status: Some(instance.into()),
        description: DESC.into(),
        account_status: account.map(str::to_owned),
    }))
}

fn jobs(accepts: &[bool]) -> Observation {
    Observation::Jobs(
        accepts
            .iter()
            .map(|ok| {
                Ok(JobState {
                    status: if *ok { "Synchronizing" } else { "Suspending" }.into(),
                    accepts_password_change: *ok,
                })
            })
            .collect(),
    )
}

// ---------------------------------------------------------------------
// Saying what came of a row in one line.

fn short(role: &Role, name: Option<&str>) -> &'static str {
    match name {
        Some(n) if Some(n) == role.usernames.first().map(String::as_str) => "a",
        Some(_) => "b",
        None => "-",
    }
}

fn password(value: Option<&str>) -> &'static str {
    match value {
        Some(PW_A) => "a0",
        Some(PW_B) => "b0",
        Some(NEW) => "new",
        Some(_) => "other",
        None => "none",
    }
}

fn generation(value: Option<&String>) -> &'static str {
    match value.map(String::as_str) {
        Some(GEN_A) => "A",
        Some(GEN_B) => "B",
        Some(FLIGHT) => "F",
        Some(_) => "?",
        None => "-",
    }
}

fn when(at: Option<OffsetDateTime>) -> String {
    at.map_or("none".into(), |at| match (at - NOW).whole_seconds() {
        0 => "now".into(),
        s if s % 3600 == 0 => format!("{:+}h", s / 3600),
        s => format!("{s:+}s"),
    })
}

fn state(role: &Role) -> String {
    let s = &role.state;
    let flight = s.in_flight.as_ref();
    let mut parts = vec![
        s.status.as_str().to_owned(),
        flight.map_or("idle".into(), |f| {
            let marker = if f.marker_written { "+marker" } else { "" };
            format!("{}{marker}", f.phase.as_str())
        }),
        format!("f{}", s.failures),
        format!("next={}", when(s.next_rotation)),
        format!("act={}", short(role, role.active_username())),
        format!(
            "acct={}",
            short(role, flight.and_then(|f| f.account.as_deref()))
        ),
        format!("pw={}", password(s.password.as_deref())),
        format!("last={}", password(s.last_password.as_deref())),
        format!(
            "gen={}{}|{}{}",
            generation(s.generation.as_ref()),
            generation(s.marker_generation.as_ref()),
            generation(s.last_generation.as_ref()),
            generation(s.last_marker_generation.as_ref()),
        ),
    ];
    parts.extend(s.dcs_retry_times_left.map(|left| format!("left={left}")));
    parts.extend(plan_tests::copies(role));
    parts.join(" ")
}

fn ended(role: &Role, applied: &Applied) -> String {
    let mut out = match &applied.outcome {
        None if applied.commit => "next+commit",
        None => "next",
        Some(RunOutcome::Rotated { .. }) => "rotated",
        Some(RunOutcome::Deferred { .. }) => "deferred",
        Some(RunOutcome::Retrying { status, .. }) if *status == Status::Rotating => {
            "retrying:rotating"
        }
        Some(RunOutcome::Retrying { .. }) => "retrying",
        Some(RunOutcome::Failed { .. }) => "failed",
        Some(RunOutcome::Drifted { .. }) => "drifted",
        Some(RunOutcome::NotDue) => "not-due",
    }
    .to_owned();
    if let Some(entry) = &applied.history {
        out += &format!(
            " hist={} {}->{}",
            entry.outcome.as_str(),
            short(role, entry.active_before.as_deref()),
            short(role, entry.active_after.as_deref()),
        );
    }
    out
}

/// Runs the step the planner decides with `answer`, as the executor does.
fn answer(mut role: Role, mut run: Run, answer: Observation) -> String {
    let tuning = Tuning::default();
    let action = plan::decide(&role, &run, OWNER);
    plan::before(&mut role, &action);
    let applied = plan::apply(&mut role, &mut run, &action, answer, &ctx(&tuning));
    let json = serde_json::to_value(&role).expect("a role serialises");
    let stored: Role = serde_json::from_value(json).expect("a stored role reads back");
    format!("{} => {}", state(&stored), ended(&stored, &applied))
}

fn decided(role: &Role, run: &Run) -> String {
    match plan::decide(role, run, OWNER) {
        Action::UpdateDependents(pending) => {
            let jobs: Vec<String> = pending.iter().map(ToString::to_string).collect();
            format!("update:{}", jobs.join(","))
        }
        action => step(&action),
    }
}

// ---------------------------------------------------------------------
// The tables.

#[test]
fn a_dual_rotation_starts_on_the_inactive_account() {
    let role = polardb();
    assert_eq!(
        state(&role),
        "rotating prepared f0 next=now act=a acct=b pw=a0 last=b0 gen=AA|BB"
    );
    let flight = role.state.in_flight.as_ref().unwrap();
    assert_eq!(flight.old_password.as_deref(), Some(PW_B));
    assert_eq!(flight.account.as_deref(), Some("app_b"));
    // Propagating the current password is the active account's.
    let mut propagate = copies(at_rest(polardb_target()));
    let start = Start {
        trigger: Trigger::Propagate,
        phase: Phase::TargetApplied,
        password: Some(PW_A.into()),
        given: false,
        account: None,
    };
    plan::start(&mut propagate, start, PW_A.into(), FLIGHT.into(), NOW);
    assert_eq!(
        state(&propagate),
        "rotating target_applied+marker f0 next=+23h act=a acct=a pw=a0 last=b0 gen=AA|BB deps=pending,in_sync"
    );
    // A single role records no account and offers its current password.
    let mut single = Role::new(RoleKind::Static, polardb_target());
    single.username = Some("app".into());
    single.state.password = Some(PW_A.into());
    plan::start(&mut single, manual(), NEW.into(), FLIGHT.into(), NOW);
    let flight = single.state.in_flight.as_ref().unwrap();
    assert_eq!(
        (flight.account.as_deref(), flight.old_password.as_deref()),
        (None, Some(PW_A))
    );
}

/// Copies pinned to each account, `behind` (pending) as given; with
/// `known`, Vault knows b's password.
fn pushing(behind: [bool; 2], known: bool) -> Role {
    let mut role = copies(at_rest(polardb_target()));
    for (account, behind) in ["a", "b"].into_iter().zip(behind) {
        if behind {
            let copy = role.state.dependents.get_mut(&pinned(account).to_string());
            copy.expect("a copy").status = DependentStatus::Pending;
        }
    }
    if !known {
        role.state.last_password = None;
    }
    role
}

#[test]
fn a_push_gives_each_copy_its_own_accounts_password() {
    // (case, copies behind on a and b, b's password known, the account
    // pushed and its password, whether b's copies are still due a push)
    #[rustfmt::skip]
    let rows = [
        ("a new copy on b: b's password", [false, true], true, "b b0", true),
        ("a new copy on a: a's", [true, false], true, "a a0", false),
        ("new copies on both: a's first, b's next", [true, true], true, "a a0", true),
        ("none behind: a's, as a push always was", [false, false], true, "a a0", false),
        ("b's password unknown: nothing of b's to push", [false, true], false, "a a0", false),
    ];
    for (name, behind, known, expected, due) in rows {
        let role = pushing(behind, known);
        let Ok(Begin::Start(start)) = plan::begin(&role, "app", Trigger::Propagate, None, NOW)
        else {
            panic!("{name}: not started");
        };
        let pushed = format!(
            "{} {}",
            short(&role, start.account.as_deref()),
            password(start.password.as_deref())
        );
        assert_eq!(pushed, expected, "{name}");
        assert_eq!(plan::inactive_copies_behind(&role), due, "{name}");
    }
    assert_eq!(rows.len(), 5);
}

#[test]
fn a_push_of_the_inactive_account_updates_only_its_copies_and_never_flips() {
    let tuning = Tuning::default();
    let mut role = pushing([false, true], true);
    let Ok(Begin::Start(start)) = plan::begin(&role, "app", Trigger::Propagate, None, NOW) else {
        panic!("not started");
    };
    let pushed = start.password.clone().expect("a password");
    plan::start(&mut role, start, pushed, FLIGHT.into(), NOW);
    assert_eq!(
        state(&role),
        "rotating target_applied+marker f0 next=+23h act=a acct=b pw=a0 last=b0 gen=AA|BB deps=in_sync,pending"
    );
    let flight = role.state.in_flight.as_ref().expect("recorded");
    assert_eq!(flight.new_password, PW_B, "b's own password, recorded");
    assert_eq!(
        decided(&role, &read(DESC)),
        "update:dts:ali/dtsj_b/src/app_b"
    );
    let updated = Observation::Updated(vec![Ok(None)]);
    let action = plan::decide(&role, &read(DESC), OWNER);
    let applied = plan::apply(&mut role, &mut read(DESC), &action, updated, &ctx(&tuning));
    assert_eq!(
        format!("{} => {}", state(&role), ended(&role, &applied)),
        "ok idle f0 next=+23h act=a acct=- pw=a0 last=b0 gen=AA|BB deps=in_sync,in_sync => rotated hist=succeeded a->a"
    );
    let entry = applied.history.expect("history");
    assert_eq!(
        (entry.trigger, entry.account.as_deref()),
        (Trigger::Propagate, Some("app_b"))
    );
    assert!(!plan::inactive_copies_behind(&role));
}

#[test]
fn begin_refuses_a_given_password_on_dual_roles() {
    let role = at_rest(polardb_target());
    for (trigger, given) in [
        (Trigger::Manual, Some(NEW.to_owned())),
        (Trigger::Propagate, Some(NEW.to_owned())),
        (Trigger::Adopt, None),
    ] {
        let refused = plan::begin(&role, "app", trigger, given, NOW);
        assert!(
            matches!(refused, Err(Error::BadRequest(ref why)) if why.contains("two accounts")),
            "{trigger:?}: {refused:?}"
        );
    }
    assert!(matches!(
        plan::begin(&role, "app", Trigger::Manual, None, NOW),
        Ok(Begin::Start(Start {
            phase: Phase::Prepared,
            ..
        }))
    ));
    assert!(matches!(
        plan::begin(&role, "app", Trigger::Propagate, None, NOW),
        Ok(Begin::Start(Start {
            phase: Phase::TargetApplied,
            ..
        }))
    ));
}

type Decision = (&'static str, Role, Run, &'static str);

#[test]
fn decide_on_dual_roles() {
    #[rustfmt::skip]
    let rows: Vec<Decision> = vec![
        ("polardb: read first", polardb(), Run::default(), "read"),
        ("polardb, copies: check the one pinned to b", copies(polardb()), read(DESC), "check"),
        ("polardb, no copy on b: no check", { let mut r = copies(polardb()); r.dependents.remove(1); r }, read(DESC),
            "change:ModifyAccountPassword"),
        ("polardb, checked: Modify", copies(polardb()), checked(DESC), "change:ModifyAccountPassword"),
        ("dcs: ACL reset, never UpdatePassword", dcs(), read(DESC), "change:ResetAclAccountPassWord"),
        ("dcs, 5 tries left: still ACL reset", { let mut r = dcs(); r.state.dcs_retry_times_left = Some(5); r }, read(DESC),
            "change:ResetAclAccountPassWord"),
        ("dcs uncertain: the same reset again", phase(dcs(), Phase::TargetUncertain), read(DESC),
            "change:ResetAclAccountPassWord"),
        ("dcs settling: await, not read", phase(dcs(), Phase::Settling), Run::default(), "await"),
        ("dcs settling, target read: still await", phase(dcs(), Phase::Settling), read(DESC), "await"),
        ("applied: marker on b", applied(copies(polardb())), read(DESC), "marker:send"),
        ("applied, marked: only b's copy", marked(applied(copies(polardb()))), read(DESC),
            "update:dts:ali/dtsj_b/src/app_b"),
        ("b's copy in sync: finish", { let mut r = marked(applied(copies(polardb())));
            r.state.dependents.get_mut("dts:ali/dtsj_b/src/app_b").unwrap().status = SYNCED; r }, read(DESC), "finish"),
    ];
    for (name, role, run, expected) in &rows {
        println!("case: {name}");
        assert_eq!(decided(role, run), *expected, "{name}");
        // `before` records nothing for an ACL reset.
        let mut copy = role.clone();
        assert!(
            !plan::before(&mut copy, &plan::decide(role, run, OWNER)),
            "{name}"
        );
    }
    assert_eq!(rows.len(), 12);
}

type Row = (&'static str, Role, Run, Observation, &'static str);

/// Checks every row; gives how many.
fn check_answers(rows: Vec<Row>) -> usize {
    for (name, role, run, observation, expected) in rows.iter().cloned() {
        println!("case: {name}");
        assert_eq!(answer(role, run, observation), expected, "{name}");
    }
    rows.len()
}

#[test]
fn apply_on_dual_roles() {
    let locked = ErrorClass::Lockout {
        retry_times_left: None,
        lock_time_left_minutes: Some(5),
    };
    #[rustfmt::skip]
    let rows: Vec<Row> = vec![
        // PolarDB: the flip comes with the confirmation.
        ("polardb change OK: applied and flipped, pairs swapped", copies(polardb()), checked(DESC), changed(),
            "rotating target_applied f0 next=now act=b acct=b pw=new last=a0 gen=FB|AA deps=in_sync,pending => next+commit"),
        ("polardb change timeout: uncertain, no flip", polardb(), read(DESC), change_failed(timeout()),
            "rotating target_uncertain f1 next=+5s act=a acct=b pw=a0 last=b0 gen=AA|BB => retrying:rotating"),
        ("polardb change refused: record dropped, no flip",
            polardb(), read(DESC), change_failed(error(ErrorClass::Permanent, ErrorKind::InvalidParameter)),
            "failed idle f0 next=+23h act=a acct=- pw=a0 last=b0 gen=AA|BB => failed hist=failed a->a"),
        // Drift, per account: the marker read is b's.
        ("b's marker names b's generation: in sync", polardb(), Run::default(), target("Available", &ours(GEN_B)),
            "rotating prepared f0 next=now act=a acct=b pw=a0 last=b0 gen=AA|BB => next"),
        ("b's marker names the flight: already applied, flipped", copies(polardb()), Run::default(),
            target("Available", &ours(FLIGHT)),
            "rotating target_applied f0 next=now act=b acct=b pw=new last=a0 gen=FB|AA deps=in_sync,pending => next+commit"),
        ("b's marker names a's generation: drifted, no flip", polardb(), Run::default(), target("Available", &ours(GEN_A)),
            "drifted idle f0 next=none act=a acct=- pw=a0 last=b0 gen=AA|BB => drifted hist=drifted a->a"),
        ("b's marker names an unknown generation: drifted, flight dropped", polardb(), Run::default(),
            target("Available", &ours(UNKNOWN)),
            "drifted idle f0 next=none act=a acct=- pw=a0 last=b0 gen=AA|BB => drifted hist=drifted a->a"),
        ("b's marker claimed by another mount: drifted", polardb(), Run::default(),
            target("Available", &format!("{DESC} {}", token(OTHER_OWNER, GEN_B))),
            "drifted idle f0 next=none act=a acct=- pw=a0 last=b0 gen=AA|BB => drifted hist=drifted a->a"),
        ("after the flip, b's new marker: in sync", applied(polardb()), Run::default(), target("Available", &ours(FLIGHT)),
            "rotating target_applied f0 next=now act=b acct=b pw=new last=a0 gen=FB|AA => next"),
        // Dependents pinned to b only.
        ("b's job refuses changes: deferred, a's untouched", copies(polardb()), read(DESC), jobs(&[false]),
            "deferred prepared f0 next=+60s act=a acct=b pw=a0 last=b0 gen=AA|BB deps=in_sync,deferred => deferred hist=deferred a->a"),
        ("b's job accepts: change next", copies(polardb()), read(DESC), jobs(&[true]),
            "rotating prepared f0 next=now act=a acct=b pw=a0 last=b0 gen=AA|BB deps=in_sync,in_sync => next"),
        ("b's copy updated: rotated, a->b in history", marked(applied(copies(polardb()))), read(DESC),
            Observation::Updated(vec![Ok(Some("req-2".into()))]),
            "ok idle f0 next=+24h act=b acct=- pw=new last=a0 gen=FB|AA deps=in_sync,in_sync => rotated hist=succeeded a->b"),
        ("b's copy times out: retrying, flip stays", marked(applied(copies(polardb()))), read(DESC),
            Observation::Updated(vec![Err(timeout())]),
            "pending_dependents target_applied+marker f1 next=+5s act=b acct=b pw=new last=a0 gen=FB|AA deps=in_sync,pending => retrying"),
        ("b's copy fails for good: failed after the flip", failures(marked(applied(copies(polardb()))), 5), read(DESC),
            Observation::Updated(vec![Err(timeout())]),
            "failed target_applied+marker f0 next=+24h act=b acct=b pw=new last=a0 gen=FB|AA deps=in_sync,pending => failed hist=failed a->b"),
        ("no copies: finish after the marker", marked(applied(polardb())), read(DESC), Observation::Nothing,
            "ok idle f0 next=+24h act=b acct=- pw=new last=a0 gen=FB|AA => rotated hist=succeeded a->b"),
        // DCS: reset, settle, then flip.
        ("dcs reset OK: settling, no flip", dcs(), read(DESC), changed(),
            "rotating settling f0 next=now act=a acct=b pw=a0 last=b0 gen=AA|BB => next+commit"),
        ("settling, UPDATING: retry in 2s, not a failure", phase(dcs(), Phase::Settling), Run::default(),
            acl("RUNNING", Some("UPDATING")),
            "rotating settling f0 next=+2s act=a acct=b pw=a0 last=b0 gen=AA|BB => retrying:rotating"),
        ("settling, UPDATING after failures: count kept", failures(phase(dcs(), Phase::Settling), 2), Run::default(),
            acl("RUNNING", Some("UPDATING")),
            "rotating settling f2 next=+2s act=a acct=b pw=a0 last=b0 gen=AA|BB => retrying:rotating"),
        ("settling, AVAILABLE: applied and flipped (one instance marker)", phase(dcs(), Phase::Settling), Run::default(),
            acl("RUNNING", Some("AVAILABLE")),
            "rotating target_applied f0 next=now act=b acct=b pw=new last=a0 gen=FA|AB => next+commit"),
        ("settling, ERROR: failed, record kept", phase(dcs(), Phase::Settling), Run::default(),
            acl("RUNNING", Some("ERROR")),
            "failed settling f0 next=+23h act=a acct=b pw=a0 last=b0 gen=AA|BB => failed hist=failed a->a"),
        ("settling, account not listed: failed, record kept", phase(dcs(), Phase::Settling), Run::default(),
            acl("RUNNING", None),
            "failed settling f0 next=+23h act=a acct=b pw=a0 last=b0 gen=AA|BB => failed hist=failed a->a"),
        ("settling, read throttled: backoff", phase(dcs(), Phase::Settling), Run::default(),
            Observation::Target(Err(error(ErrorClass::Retryable, ErrorKind::Throttled))),
            "rotating settling f1 next=+5s act=a acct=b pw=a0 last=b0 gen=AA|BB => retrying:rotating"),
        ("reset timeout: uncertain, no flip", dcs(), read(DESC), change_failed(timeout()),
            "rotating target_uncertain f1 next=+5s act=a acct=b pw=a0 last=b0 gen=AA|BB => retrying:rotating"),
        ("reset locked (5 min): waits it out, no tries counted", dcs(), read(DESC),
            change_failed(error(locked, ErrorKind::PasswordLockout)),
            "rotating prepared f1 next=+305s act=a acct=b pw=a0 last=b0 gen=AA|BB => retrying:rotating"),
        ("DCS.4026 busy: backoff", dcs(), read(DESC), change_failed(error(ErrorClass::Retryable, ErrorKind::Busy)),
            "rotating prepared f1 next=+5s act=a acct=b pw=a0 last=b0 gen=AA|BB => retrying:rotating"),
        ("dcs, ACL account UPDATING before the reset: deferred", dcs(), Run::default(),
            acl("RUNNING", Some("UPDATING")),
            "deferred prepared f0 next=+60s act=a acct=b pw=a0 last=b0 gen=AA|BB => deferred hist=deferred a->a"),
        ("dcs, ACL account ERROR before the reset: refused, dropped", dcs(), Run::default(),
            acl("RUNNING", Some("ERROR")),
            "failed idle f0 next=+23h act=a acct=- pw=a0 last=b0 gen=AA|BB => failed hist=failed a->a"),
        ("dcs applied, instance marker names a's last rotation: marker behind", applied_dcs(), Run::default(),
            target("RUNNING", &ours(GEN_A)),
            "rotating target_applied f0 next=now act=b acct=b pw=new last=a0 gen=FA|AB => next"),
        ("dcs settled, rotated: a->b", marked(applied_dcs()), read(DESC), Observation::Nothing,
            "ok idle f0 next=+24h act=b acct=- pw=new last=a0 gen=FA|AB => rotated hist=succeeded a->b"),
    ];
    assert_eq!(check_answers(rows), 29);
}

#[test]
fn a_second_confirmation_never_flips_back() {
    // The same answer applied twice (a resumed run, a lost commit).
    let once = applied(copies(polardb()));
    let twice = applied(once.clone());
    assert_eq!(state(&twice), state(&once));
    assert_eq!(
        state(&twice),
        "rotating target_applied f0 next=now act=b acct=b pw=new last=a0 gen=FB|AA deps=in_sync,pending"
    );
    let flips = twice.state.in_flight.as_ref().unwrap().events.iter();
    assert_eq!(flips.filter(|e| e.starts_with("active account")).count(), 1);
}

/// A DCS dual rotation whose reset settled (flipped) in an earlier run.
fn applied_dcs() -> Role {
    let mut role = phase(dcs(), Phase::Settling);
    let tuning = Tuning::default();
    plan::apply(
        &mut role,
        &mut Run::default(),
        &Action::AwaitSettled,
        acl("RUNNING", Some("AVAILABLE")),
        &ctx(&tuning),
    );
    role
}

#[test]
fn the_next_rotation_changes_a_again_and_flips_back() {
    // After a->b, the next rotation changes a (now inactive) with a's
    // password as the old one, and flips to a.
    let tuning = Tuning::default();
    let mut role = marked(applied(polardb()));
    plan::apply(
        &mut role,
        &mut read(DESC),
        &Action::Finish,
        Observation::Nothing,
        &ctx(&tuning),
    );
    plan::start(
        &mut role,
        manual(),
        "Next-pass-9012".into(),
        UNKNOWN.into(),
        NOW,
    );
    let flight = role.state.in_flight.as_ref().unwrap();
    assert_eq!(flight.account.as_deref(), Some("app_a"));
    assert_eq!(flight.old_password.as_deref(), Some(PW_A));
    // a's marker names the rotation that set a's password (now last_*).
    let found = crate::engine::marker::find(&ours(GEN_A));
    assert_eq!(
        drift::compare_account(found.as_ref(), OWNER, &role, Some("app_a")),
        drift::Finding::InSync
    );
    let action = Action::ChangeTarget(super::super::cloud::ChangeMethod::Modify);
    plan::apply(
        &mut role,
        &mut checked(DESC),
        &action,
        changed(),
        &ctx(&tuning),
    );
    assert_eq!(role.active_username(), Some("app_a"));
    assert_eq!(role.state.last_password.as_deref(), Some(NEW));
    assert_eq!(role.state.last_generation.as_deref(), Some(FLIGHT));
    assert_eq!(role.state.generation.as_deref(), Some(UNKNOWN));
}

/// A dual role as a write creates it: Vault knows neither password; its
/// first import rotation (to `NEW`, of b) recorded.
fn importing(target: Target) -> Role {
    let mut role = at_rest(target);
    let s = &mut role.state;
    (s.password, s.last_password, s.last_vault_rotation) = (None, None, None);
    (s.generation, s.marker_generation) = (None, None);
    (s.last_generation, s.last_marker_generation) = (None, None);
    s.next_rotation = Some(NOW + 24 * time::Duration::HOUR);
    let create = Start {
        trigger: Trigger::Create,
        ..manual()
    };
    plan::start(&mut role, create, NEW.into(), FLIGHT.into(), NOW);
    role
}

/// The first import rotation confirmed (PolarDB: changed; DCS: settled)
/// and its marker written.
fn imported(target: Target) -> Role {
    let tuning = Tuning::default();
    let mut role = importing(target);
    let (action, answer) = match role.target {
        Target::DcsInstance { .. } => {
            role.state.in_flight.as_mut().expect("in flight").phase = Phase::Settling;
            (Action::AwaitSettled, acl("RUNNING", Some("AVAILABLE")))
        }
        _ => (
            Action::ChangeTarget(super::super::cloud::ChangeMethod::Modify),
            changed(),
        ),
    };
    plan::apply(
        &mut role,
        &mut Run::default(),
        &action,
        answer,
        &ctx(&tuning),
    );
    marked(role)
}

#[test]
fn the_second_import_rotation_is_due_as_soon_as_the_first_finishes() {
    #[rustfmt::skip]
    let rows: Vec<Row> = vec![
        ("polardb: the first import finished, the second is due now",
            imported(polardb_target()), read(DESC), Observation::Nothing,
            "ok idle f0 next=now act=b acct=- pw=new last=none gen=F-|-- => rotated hist=succeeded a->b"),
        ("dcs: the same once the reset settled",
            imported(dcs_target()), read(DESC), Observation::Nothing,
            "ok idle f0 next=now act=b acct=- pw=new last=none gen=F-|-- => rotated hist=succeeded a->b"),
        ("both set: the next rotation is the schedule's again", marked(applied(polardb())), read(DESC),
            Observation::Nothing,
            "ok idle f0 next=+24h act=b acct=- pw=new last=a0 gen=FB|AA => rotated hist=succeeded a->b"),
    ];
    assert_eq!(check_answers(rows), 3);
}

#[test]
fn the_runner_starts_the_owed_import_rotation_whatever_the_window() {
    let tuning = Tuning::default();
    let mut owed = imported(dcs_target());
    plan::apply(
        &mut owed,
        &mut read(DESC),
        &Action::Finish,
        Observation::Nothing,
        &ctx(&tuning),
    );
    // A cron schedule whose window closed an hour after 03:00.
    let mut outside = owed.clone();
    outside.schedule = Schedule {
        cron: Some("0 3 * * *".into()),
        window: Some(std::time::Duration::from_secs(3600)),
        ..Schedule::default()
    };
    let mut at_rest = at_rest(dcs_target());
    at_rest.state.next_rotation = Some(NOW);
    let begun = |role: &Role| match plan::begin(role, "app", Trigger::Schedule, None, NOW) {
        Ok(Begin::Start(start)) => format!("start {} {}", start.trigger, start.phase.as_str()),
        other => format!("{other:?}"),
    };
    assert_eq!(begun(&owed), "start create prepared");
    assert_eq!(begun(&outside), "start create prepared");
    assert_eq!(begun(&at_rest), "start schedule prepared", "nothing owed");
    // It changes the other account, a, whose password Vault never set.
    plan::start(
        &mut owed,
        plan_tests::manual(),
        NEW.into(),
        UNKNOWN.into(),
        NOW,
    );
    let flight = owed.state.in_flight.as_ref().expect("recorded");
    assert_eq!(
        (flight.account.as_deref(), flight.old_password.as_deref()),
        (Some("app_a"), None)
    );
}

#[test]
fn acl_account_conditions() {
    let dcs = dcs_target();
    let state = |account: &str| TargetState {
        status: Some("RUNNING".into()),
        description: String::new(),
        account_status: Some(account.into()),
    };
    assert_eq!(
        drift::condition(&dcs, &state("AVAILABLE")),
        Condition::Ready
    );
    for passing in ["CREATING", "UPDATING", "deleting"] {
        assert!(
            matches!(
                drift::condition(&dcs, &state(passing)),
                Condition::Transient(_)
            ),
            "{passing}"
        );
    }
    for stuck in ["ERROR", "CREATEFAILED", "DELETEFAILED"] {
        assert!(
            matches!(drift::condition(&dcs, &state(stuck)), Condition::Broken(ref w) if w.contains(stuck))
        );
    }
    // The instance's own condition comes first.
    let frozen = TargetState {
        status: Some("FROZEN".into()),
        ..state("UPDATING")
    };
    assert!(
        matches!(drift::condition(&dcs, &frozen), Condition::Broken(ref w) if w.contains("FROZEN"))
    );
}
