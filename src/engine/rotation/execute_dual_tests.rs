//! The executor over a scripted cloud for dual-account roles (`app_a`
//! active, `app_b` inactive at rest): a rotation changes only the inactive
//! account and the DTS copy pinned to it, flips `active` once, and
//! converges the same way when crashed before any of its steps or when a
//! change's answer is lost; a role write that adds copies gives each its
//! own account's password.

use crate::framework::Error;

use super::super::clock::Clock;
use super::super::cloud::fake::{FakeJob, FakeTarget, Op};
use super::super::history::{Entry, Outcome};
use super::super::marker;
use super::super::role::{Dependent, DependentStatus, Role, Status, Target, Trigger};
use super::execute::RotateRequest;
use super::execute_tests::World;
use super::plan::{self, RunOutcome};
use super::plan_dual_tests::{GEN_A, GEN_B, PW_A, PW_B, at_rest, pinned};
use super::plan_tests::{NOW, Scenario, dcs_target, polardb_target, timeout, token};

/// Runs a rotation may take to converge (settle polls, deferrals).
const MAX_RUNS: usize = 12;
/// What the job of a copy a write adds holds: no password Vault set.
const JOB_PW: &str = "Job-pass-0000";

/// A dual role at rest (the planner tables' `at_rest`); PolarDB roles keep
/// a DTS copy pinned to each account, in sync.
fn dual_role(target: Target) -> Role {
    let mut role = at_rest(target);
    if matches!(role.target, Target::PolardbAccount { .. }) {
        role.dependents = vec![pinned("a"), pinned("b")];
        for copy in &role.dependents {
            role.state
                .dependents
                .insert(copy.to_string(), Default::default());
        }
    }
    role
}

/// The executor tests' world, with a dual role `app`: both accounts
/// marked by the rotations that set them, each DTS copy holding its
/// account's password.
type Dual = World;

impl World {
    pub(super) async fn dual(target: Target) -> Self {
        let role = dual_role(target.clone());
        let world = World::new(Scenario(role.clone())).await;
        let owner = world.engine.owner_id().await.expect("an owner");
        let dcs = matches!(target, Target::DcsInstance { .. });
        let described = |generation: &str| format!("app account {}", token(&owner, generation));
        for (name, password, generation) in [("app_a", PW_A, GEN_A), ("app_b", PW_B, GEN_B)] {
            let account = FakeTarget {
                status: Some(if dcs { "AVAILABLE" } else { "Available" }.into()),
                description: described(generation),
                password: password.into(),
                settle_reads: 2,
                ..FakeTarget::default()
            };
            world.cloud.add_account(&target, name, account);
        }
        if dcs {
            world.edit_target(|instance| instance.description = described(GEN_A));
        }
        for (dependent, password) in role.dependents.iter().zip([PW_A, PW_B]) {
            let job = FakeJob {
                status: "Synchronizing".into(),
                accepts: true,
                password: password.into(),
            };
            world.cloud.add_job(dependent, job);
        }
        world
    }

    async fn run_dual(&self, trigger: Trigger) -> Result<RunOutcome, Error> {
        self.request(RotateRequest::new(trigger)).await
    }

    pub(super) fn password_of(&self, account: &str) -> String {
        self.cloud
            .account(&self.target, account)
            .expect("an account")
            .password
    }

    fn job_password(&self, account: &str) -> String {
        self.cloud.job(&pinned(account)).expect("a job").password
    }

    /// Runs the rotation (rotate-role, then the scheduler's runs when due)
    /// until it is rotated; gives the number of runs.
    async fn converge(&self, context: &str) -> usize {
        let mut trigger = Trigger::Manual;
        for runs in 1..=MAX_RUNS {
            let outcome = self.run_dual(trigger).await;
            match outcome {
                Ok(RunOutcome::Rotated { .. }) => return runs,
                Ok(RunOutcome::Retrying { .. } | RunOutcome::Deferred { .. }) => {}
                other => panic!("{context}: run {runs}: {other:?}"),
            }
            let due = self.role().await.state.next_rotation.expect("scheduled");
            self.clock.set(due.max(self.clock.now()));
            trigger = Trigger::Schedule;
        }
        panic!("{context}: not rotated in {MAX_RUNS} runs");
    }

    /// One rotation of the inactive account finished: only it changed
    /// (to the recorded password, once), `active` points at it, the copy
    /// pinned to it holds it and the other copy is untouched, one flip.
    async fn assert_flipped(&self, from: &str, to: &str, old_of_from: &str, context: &str) -> Role {
        let role = self.role().await;
        let state = &role.state;
        assert_eq!(state.status, Status::Ok, "{context}");
        assert!(state.in_flight.is_none(), "{context}");
        assert_eq!(role.active_username(), Some(to), "{context}: active");
        let new = state.password.clone().expect("a password");
        assert_eq!(self.password_of(to), new, "{context}: the changed account");
        assert_eq!(self.password_of(from), old_of_from, "{context}: untouched");
        assert_eq!(
            state.last_password.as_deref(),
            Some(old_of_from),
            "{context}"
        );
        if !role.dependents.is_empty() {
            assert_eq!(self.job_password(&to[4..]), new, "{context}: copy on {to}");
            assert_eq!(
                self.job_password(&from[4..]),
                old_of_from,
                "{context}: copy on {from}"
            );
        }
        let marked = match self.target {
            Target::PolardbAccount { .. } => self.cloud.account(&self.target, to),
            _ => self.cloud.target(&self.target, to),
        };
        let found = marker::find(&marked.expect("a target").description).map(|m| m.generation);
        assert_eq!(found, state.generation, "{context}: the marker");
        let history = self.history().await;
        let flips: Vec<&Entry> = history
            .iter()
            .filter(|e| e.active_before != e.active_after)
            .collect();
        assert_eq!(flips.len(), 1, "{context}: one flip: {history:?}");
        let flip = flips[0];
        assert_eq!(flip.outcome, Outcome::Succeeded, "{context}");
        assert_eq!(
            (flip.active_before.as_deref(), flip.active_after.as_deref()),
            (Some(from), Some(to)),
            "{context}"
        );
        assert_eq!(flip.account.as_deref(), Some(to), "{context}");
        assert_eq!(
            Some(&flip.rotation_id),
            state.generation.as_ref(),
            "{context}"
        );
        role
    }

    fn changes_of(&self, account: &str) -> usize {
        self.cloud
            .calls()
            .iter()
            .filter(|c| c.starts_with("ChangeTarget") && c.ends_with(&format!("/{account}")))
            .count()
    }
}

fn updates_of(calls: &[String], account: &str) -> usize {
    let job = format!("UpdateJob dts:dtsj_{account}/");
    calls.iter().filter(|c| c.starts_with(&job)).count()
}

#[tokio::test]
async fn dual_rotations_change_the_inactive_account_and_flip() {
    // (target, runs of the first rotation: a DCS reset settles after two
    // UPDATING reads, each a scheduled run 2 s later)
    let cases = [(polardb_target(), 1), (dcs_target(), 3)];
    for (target, runs) in &cases {
        let kind = target.kind().as_str();
        let world = Dual::dual(target.clone()).await;
        assert_eq!(world.converge(kind).await, *runs, "{kind}");
        let role = world
            .assert_flipped("app_a", "app_b", PW_A, &format!("{kind}: first"))
            .await;
        assert_eq!(world.changes_of("app_a"), 0, "{kind}");
        assert_eq!(world.changes_of("app_b"), 1, "{kind}");
        let calls = world.cloud.calls();
        assert_eq!(updates_of(&calls, "a"), 0, "{kind}: {calls:?}");
        assert_eq!(
            updates_of(&calls, "b"),
            role.dependents.len() / 2,
            "{kind}: {calls:?}"
        );
        // The next rotation changes app_a back; app_b keeps its password.
        let first = role.state.password.clone().expect("a password");
        world
            .clock
            .set(role.state.next_rotation.expect("scheduled"));
        world.converge(kind).await;
        let role = world.role().await;
        assert_eq!(role.active_username(), Some("app_a"), "{kind}");
        assert_eq!(world.password_of("app_b"), first, "{kind}");
        assert_eq!(role.state.last_password.as_deref(), Some(first.as_str()));
        assert_eq!(
            world.password_of("app_a"),
            role.state.password.clone().unwrap(),
            "{kind}"
        );
        assert_eq!(world.changes_of("app_a"), 1, "{kind}");
        assert_eq!(world.changes_of("app_b"), 1, "{kind}");
        let history = world.history().await;
        let flips: Vec<_> = history
            .iter()
            .map(|e| (e.active_before.clone(), e.active_after.clone()))
            .filter(|(before, after)| before != after)
            .collect();
        assert_eq!(flips.len(), 2, "{kind}: {history:?}");
    }
    assert_eq!(cases.len(), 2);
}

#[tokio::test]
async fn a_lost_answer_is_sent_again_once_with_the_same_password() {
    let cases = [polardb_target(), dcs_target()];
    for target in &cases {
        let kind = target.kind().as_str();
        let world = Dual::dual(target.clone()).await;
        world.cloud.fail(Op::ChangeTarget, timeout(), true);
        let first = world.run_dual(Trigger::Manual).await;
        assert!(
            matches!(first, Ok(RunOutcome::Retrying { .. })),
            "{kind}: {first:?}"
        );
        let flight = world.role().await.state.in_flight.expect("kept");
        assert_eq!(world.password_of("app_b"), flight.new_password, "{kind}");
        assert_eq!(
            world.role().await.active_username(),
            Some("app_a"),
            "{kind}: no flip before the target confirmed"
        );
        world
            .clock
            .set(world.role().await.state.next_rotation.unwrap());
        world.converge(kind).await;
        let role = world
            .assert_flipped("app_a", "app_b", PW_A, &format!("{kind}: lost answer"))
            .await;
        assert_eq!(role.state.password, Some(flight.new_password), "{kind}");
        assert_eq!(world.changes_of("app_b"), 2, "{kind}: re-sent once");
        assert_eq!(world.changes_of("app_a"), 0, "{kind}");
    }
    assert_eq!(cases.len(), 2);
}

/// Crashes a dual rotation before each of its steps in turn (a cloud call
/// or a role write, over every run it takes: a DCS reset settles over
/// three), restarts from storage and runs it to convergence. Gives the
/// number of crash points.
async fn crash_at_each_step(target: fn() -> Target) -> usize {
    let mut steps = 0;
    loop {
        let mut world = Dual::dual(target()).await;
        let context = format!("{} crash before step {steps}", target().kind().as_str());
        world.cloud.crash_after(Some(steps));
        let mut trigger = Trigger::Manual;
        let mut rotated = false;
        for _ in 0..MAX_RUNS {
            let outcome = world.run_dual(trigger).await;
            if world.cloud.crashed() {
                assert!(
                    outcome.is_err(),
                    "{context}: the run stops at its next write"
                );
                break;
            }
            if matches!(outcome, Ok(RunOutcome::Rotated { .. })) {
                rotated = true;
                break;
            }
            let due = world.role().await.state.next_rotation.expect("scheduled");
            world.clock.set(due.max(world.clock.now()));
            trigger = Trigger::Schedule;
        }
        if rotated {
            world
                .assert_flipped("app_a", "app_b", PW_A, "no crash")
                .await;
            assert_eq!(world.changes_of("app_b"), 1, "no crash");
            return steps;
        }
        let recorded = world.role().await.state.in_flight;
        if recorded.is_none() {
            assert_eq!(world.cloud.calls().len(), 0, "{context}: nothing sent");
        }
        world.restart();
        world.converge(&context).await;
        let role = world.assert_flipped("app_a", "app_b", PW_A, &context).await;
        if let Some(flight) = recorded {
            assert_eq!(role.state.password, Some(flight.new_password), "{context}");
            assert_eq!(role.state.generation, Some(flight.id), "{context}");
        }
        assert_eq!(world.changes_of("app_a"), 0, "{context}");
        let changes = world.changes_of("app_b");
        assert!((1..=2).contains(&changes), "{context}: {changes} changes");
        steps += 1;
    }
}

#[tokio::test]
async fn a_dual_polardb_rotation_crashed_at_each_step_converges() {
    // Record, read app_b, check the copy pinned to it, change, record the
    // flip, marker, update that copy, finish.
    assert_eq!(crash_at_each_step(polardb_target).await, 8);
}

#[tokio::test]
async fn a_dual_dcs_rotation_crashed_at_each_step_converges() {
    // Record, read the instance and app_b, reset, record settling; two
    // runs each reading UPDATING and recording the retry; a run reading
    // AVAILABLE, recording the flip, reading the target, marker, finish.
    assert_eq!(crash_at_each_step(dcs_target).await, 13);
}

/// A DTS copy pinned to `app_<account>` that a role write adds.
fn new_copy(account: &str) -> Dependent {
    Dependent::parse(
        &format!("dts:ali/dtsj_new_{account}/src/app_{account}"),
        None,
    )
    .expect("a DTS dependent")
}

impl World {
    /// A role write added a copy pinned to each of `accounts`: stored
    /// pending, as the write stores it, its job holding `JOB_PW`.
    async fn add_copies(&self, accounts: &[&str]) {
        let mut role = self.role().await;
        for account in accounts {
            let copy = new_copy(account);
            let job = FakeJob {
                status: "Synchronizing".into(),
                accepts: true,
                password: JOB_PW.into(),
            };
            self.cloud.add_job(&copy, job);
            let state = role.state.dependents.entry(copy.to_string()).or_default();
            state.status = DependentStatus::Pending;
            role.dependents.push(copy);
        }
        self.store(&role).await;
    }

    fn new_copy_password(&self, account: &str) -> String {
        self.cloud.job(&new_copy(account)).expect("a job").password
    }
}

#[tokio::test]
async fn copies_a_write_adds_take_their_own_accounts_password() {
    let world = Dual::dual(polardb_target()).await;
    world.add_copies(&["a", "b"]).await;
    // The write's follow-ups: a push, then the inactive account's while
    // its copies are behind.
    let first = world.run_dual(Trigger::Propagate).await;
    assert!(matches!(first, Ok(RunOutcome::Rotated { .. })), "{first:?}");
    assert!(plan::inactive_copies_behind(&world.role().await));
    let second = world.run_dual(Trigger::Propagate).await;
    assert!(
        matches!(second, Ok(RunOutcome::Rotated { .. })),
        "{second:?}"
    );
    assert_eq!(world.new_copy_password("a"), PW_A);
    assert_eq!(world.new_copy_password("b"), PW_B);
    let role = world.role().await;
    assert_eq!(role.active_username(), Some("app_a"), "no flip");
    assert_eq!(role.state.password.as_deref(), Some(PW_A));
    assert_eq!(role.state.last_password.as_deref(), Some(PW_B));
    assert!(role.dependents.iter().all(|d| role.copy_in_sync(d)));
    assert_eq!(world.changes_of("app_a") + world.changes_of("app_b"), 0);
    let pushes: Vec<_> = world
        .history()
        .await
        .into_iter()
        .map(|e| (e.trigger, e.account, e.active_before, e.active_after))
        .collect();
    let entry = |account: &str| {
        let a = Some("app_a".to_owned());
        (Trigger::Propagate, Some(account.to_owned()), a.clone(), a)
    };
    assert_eq!(pushes, [entry("app_a"), entry("app_b")]);
}

/// The push of the inactive account's password, crashed before each of
/// its steps (record, read app_b, the copy pinned to it before, the new
/// one, finish) and resumed as the runner does after a restart: once
/// recorded it finishes with that password; before, nothing was sent and
/// the copy says it is pending. Gives the number of crash points.
#[tokio::test]
async fn a_push_of_the_inactive_account_crashed_at_each_step_resumes_with_its_password() {
    let mut steps = 0;
    loop {
        let mut world = Dual::dual(polardb_target()).await;
        world.add_copies(&["b"]).await;
        let context = format!("crash before step {steps}");
        world.cloud.crash_after(Some(steps));
        let outcome = world.run_dual(Trigger::Propagate).await;
        if !world.cloud.crashed() {
            assert!(
                matches!(outcome, Ok(RunOutcome::Rotated { .. })),
                "{outcome:?}"
            );
            assert_eq!(world.new_copy_password("b"), PW_B, "no crash");
            break;
        }
        assert!(
            outcome.is_err(),
            "{context}: the run stops at its next write"
        );
        let recorded = world.role().await.state.in_flight;
        world.restart();
        let resumed = world.run_dual(Trigger::Schedule).await;
        let role = world.role().await;
        match recorded {
            Some(flight) => {
                assert_eq!(
                    flight.new_password, PW_B,
                    "{context}: b's password recorded"
                );
                assert_eq!(flight.account.as_deref(), Some("app_b"), "{context}");
                assert!(
                    matches!(resumed, Ok(RunOutcome::Rotated { .. })),
                    "{context}: {resumed:?}"
                );
                assert_eq!(world.new_copy_password("b"), PW_B, "{context}");
                assert!(role.copy_in_sync(&new_copy("b")), "{context}");
            }
            None => {
                assert_eq!(resumed, Ok(RunOutcome::NotDue), "{context}");
                assert!(world.cloud.calls().is_empty(), "{context}: nothing sent");
                assert_eq!(world.new_copy_password("b"), JOB_PW, "{context}");
                assert!(!role.copy_in_sync(&new_copy("b")), "{context}: pending");
            }
        }
        assert_eq!(world.job_password("b"), PW_B, "{context}");
        assert_eq!(role.active_username(), Some("app_a"), "{context}");
        steps += 1;
    }
    assert_eq!(steps, 5);
}

impl World {
    /// The role as a write creates it: Vault knows neither password (the
    /// accounts hold the ones they were made with) and every copy is
    /// pending; due in a day.
    async fn created(target: Target) -> Self {
        let world = Dual::dual(target).await;
        let mut role = world.role().await;
        role.state = Default::default();
        role.state.next_rotation = Some(world.clock.now() + 24 * time::Duration::HOUR);
        for copy in &role.dependents {
            let state = role.state.dependents.entry(copy.to_string()).or_default();
            state.status = DependentStatus::Pending;
        }
        world.store(&role).await;
        world
    }
}

/// Creating a dual role rotates both accounts. When the write's own run
/// does not finish the first import (a DCS reset settling; a PolarDB copy
/// whose job does not accept changes yet), nothing but the runner's
/// scheduled runs, across a restart, finishes it and then the second,
/// within its retries: both accounts and their copies end with passwords
/// Vault set, and history shows two create rotations.
#[tokio::test]
async fn both_import_rotations_finish_without_an_operator() {
    for target in [dcs_target(), polardb_target()] {
        let kind = target.kind().as_str();
        let mut world = Dual::created(target).await;
        let polardb = !world.role().await.dependents.is_empty();
        if polardb {
            world.cloud.set_job(&pinned("b"), "Suspending", false);
        }
        let first = world.run_dual(Trigger::Create).await;
        assert!(
            matches!(
                first,
                Ok(RunOutcome::Retrying { .. } | RunOutcome::Deferred { .. })
            ),
            "{kind}: {first:?}"
        );
        if polardb {
            world.cloud.set_job(&pinned("b"), "Synchronizing", true);
        }
        let mut restarted = false;
        for runs in 1.. {
            let role = world.role().await;
            let idle = role.state.in_flight.is_none();
            if idle && role.state.last_password.is_some() {
                break;
            }
            if idle && !restarted {
                // The first import finished: what is owed is stored.
                world.restart();
                restarted = true;
            }
            assert!(runs <= MAX_RUNS, "{kind}: not done in {MAX_RUNS} runs");
            let due = role.state.next_rotation.expect("scheduled");
            world.clock.set(due.max(world.clock.now()));
            let outcome = world.run_dual(Trigger::Schedule).await;
            assert!(
                !matches!(outcome, Ok(RunOutcome::NotDue) | Err(_)),
                "{kind}: run {runs}: {outcome:?}"
            );
        }
        assert!(restarted, "{kind}");
        let took = world.clock.now() - NOW;
        // Settle polls or one deferral, not the schedule's day.
        assert!(took <= 2 * time::Duration::MINUTE, "{kind}: took {took}");
        let role = world.role().await;
        assert_eq!(role.state.status, Status::Ok, "{kind}");
        assert_eq!(role.active_username(), Some("app_a"), "{kind}");
        let (a, b) = (world.password_of("app_a"), world.password_of("app_b"));
        assert_eq!(role.state.password.as_ref(), Some(&a), "{kind}");
        assert_eq!(role.state.last_password.as_ref(), Some(&b), "{kind}");
        assert!(a != PW_A && b != PW_B, "{kind}: both set by Vault");
        if polardb {
            assert_eq!((world.job_password("a"), world.job_password("b")), (a, b));
        }
        let imports: Vec<_> = world
            .history()
            .await
            .into_iter()
            .filter(|e| e.outcome == Outcome::Succeeded)
            .map(|e| (e.trigger, e.account))
            .collect();
        assert_eq!(
            imports,
            [
                (Trigger::Create, Some("app_b".to_owned())),
                (Trigger::Create, Some("app_a".to_owned()))
            ],
            "{kind}"
        );
    }
}
