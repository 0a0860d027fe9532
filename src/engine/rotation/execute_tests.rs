//! The executor over a scripted cloud: what it calls, what it stores, and
//! which password the target and every copy end with, including a run
//! crashed before each of its steps and run again from storage.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::engine::ManualClock;
use crate::framework::{Error, MemoryStorage, StaticSystemView, Storage, StorageError};

use super::super::cloud::fake::{self, FakeCloud, FakeJob, FakeTarget, Op};
use super::super::connection::{Connection, Provider};
use super::super::core::Engine;
use super::super::history::{self, Entry, Outcome};
use super::super::marker;
use super::super::role::{
    self, DependentStatus, DriftKind, FailureClass, Phase, Role, Status, Target, Trigger,
};
use super::super::tuning::Tuning;
use super::execute::{self, RotateRequest};
use super::plan::RunOutcome;
use super::plan_tests::{
    NOW, OLD, OTHER_OWNER, Scenario, at_rest, auth, dcs_target, dts, polardb, polardb_target, step,
    throttled, timeout, token,
};

const HOUR: Duration = Duration::from_secs(3600);
/// A password an operator gives.
const GIVEN: &str = "Given-pass-42";
/// The password someone set on the target behind Vault's back.
const BY_HAND: &str = "Set-by-hand-1";

/// Storage that dies with the fake cloud: each role write is one of the
/// cloud's steps, and nothing is written once it crashed.
pub(super) struct Crashing {
    pub(super) inner: MemoryStorage,
    pub(super) cloud: FakeCloud,
}

#[async_trait]
impl Storage for Crashing {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        self.inner.get(key).await
    }

    async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), StorageError> {
        let alive = if key.starts_with(role::STORAGE_PREFIX) {
            self.cloud.step()
        } else {
            !self.cloud.crashed()
        };
        if !alive {
            return Err(StorageError::Unavailable("crashed".into()));
        }
        self.inner.put(key, value).await
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.inner.delete(key).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        self.inner.list(prefix).await
    }
}

/// A mount with connections `ali` and `hw`, the role `app`, and its target
/// and jobs on the fake cloud, all holding the old password.
pub(super) struct World {
    pub(super) engine: Arc<Engine>,
    pub(super) storage: Arc<Crashing>,
    pub(super) cloud: FakeCloud,
    pub(super) clock: Arc<ManualClock>,
    pub(super) target: Target,
}

pub(super) fn engine(
    storage: &Arc<Crashing>,
    cloud: &FakeCloud,
    clock: &Arc<ManualClock>,
) -> Arc<Engine> {
    Arc::new(Engine::new(
        storage.clone(),
        Arc::new(StaticSystemView::default()),
        clock.clone(),
        Arc::new(cloud.clone()),
        Tuning::default(),
        "uuid".into(),
    ))
}

/// A mount over crashing storage and a fake cloud, with connections
/// `ali` and `hw`.
pub(super) async fn mount() -> (Arc<Engine>, Arc<Crashing>, FakeCloud, Arc<ManualClock>) {
    let cloud = FakeCloud::default();
    let storage = Arc::new(Crashing {
        inner: MemoryStorage::new(),
        cloud: cloud.clone(),
    });
    let clock = Arc::new(ManualClock::new(NOW));
    let engine = engine(&storage, &cloud, &clock);
    for (name, provider) in [("ali", Provider::Alicloud), ("hw", Provider::Huaweicloud)] {
        let mut connection = Connection::new(provider);
        connection.access_key = format!("AK-{name}");
        engine
            .store
            .commit_connection(name, &connection)
            .await
            .expect("stored");
    }
    (engine, storage, cloud, clock)
}

impl World {
    pub(super) async fn new(Scenario(role): Scenario) -> Self {
        let (engine, storage, cloud, clock) = mount().await;
        let status = match role.target {
            Target::DcsInstance { .. } => "RUNNING",
            _ => "Available",
        };
        if role.target != Target::External {
            let target = FakeTarget {
                status: Some(status.into()),
                description: "app account".into(),
                password: OLD.into(),
                ..FakeTarget::default()
            };
            cloud.add_target(&role.target, "app", target);
        }
        for dependent in &role.dependents {
            let job = FakeJob {
                status: "Synchronizing".into(),
                accepts: true,
                password: OLD.into(),
            };
            cloud.add_job(dependent, job);
        }
        engine
            .store
            .commit_role("app", &role)
            .await
            .expect("stored");
        Self {
            engine,
            storage,
            cloud,
            clock,
            target: role.target,
        }
    }

    /// A new process over the same storage and clouds.
    pub(super) fn restart(&mut self) {
        self.cloud.crash_after(None);
        self.engine = engine(&self.storage, &self.cloud, &self.clock);
    }

    pub(super) async fn request(&self, request: RotateRequest) -> Result<RunOutcome, Error> {
        execute::run(&self.engine, "app", request).await
    }

    async fn rotate(&self, trigger: Trigger) -> RunOutcome {
        self.request(RotateRequest::new(trigger))
            .await
            .expect("the run completes")
    }

    /// The run (rotate-role, or the scheduler's) finishes a rotation.
    async fn rotated(&self, trigger: Trigger) {
        let outcome = self.rotate(trigger).await;
        assert!(matches!(outcome, RunOutcome::Rotated { .. }), "{outcome:?}");
    }

    /// rotate-role fails an attempt: the role, in `status`, retries later.
    async fn retries(&self, status: Status) {
        let outcome = self.rotate(Trigger::Manual).await;
        assert!(
            matches!(outcome, RunOutcome::Retrying { status: s, .. } if s == status),
            "{outcome:?}"
        );
    }

    /// When the role is next due, the scheduler's run finishes it.
    async fn finish_when_due(&self) {
        self.until_due().await;
        self.rotated(Trigger::Schedule).await;
    }

    /// rotate-role with the password an operator gives: it is rotated.
    async fn give(&self, password: &str) {
        let request = RotateRequest {
            password: Some(password.into()),
            ..RotateRequest::new(Trigger::Manual)
        };
        let outcome = self.request(request).await;
        assert!(
            matches!(outcome, Ok(RunOutcome::Rotated { .. })),
            "{outcome:?}"
        );
    }

    /// Stores `role` as the role `app`.
    pub(super) async fn store(&self, role: &Role) {
        let stored = self.engine.store.commit_role("app", role).await;
        stored.expect("stored");
    }

    /// The role as stored.
    pub(super) async fn role(&self) -> Role {
        let role = self.engine.store.load_role("app").await.expect("readable");
        role.expect("the role exists")
    }

    pub(super) async fn history(&self) -> Vec<Entry> {
        history::load(self.storage.as_ref(), "app")
            .await
            .expect("readable")
    }

    fn fake_target(&self) -> FakeTarget {
        self.cloud.target(&self.target, "app").expect("a target")
    }

    pub(super) fn edit_target(&self, change: impl FnOnce(&mut FakeTarget)) {
        let mut target = self.fake_target();
        change(&mut target);
        self.cloud.add_target(&self.target, "app", target);
    }

    /// Someone set the target's password behind Vault's back; a DCS
    /// counts wrong old passwords from `tries_left`.
    fn set_by_hand(&self, tries_left: Option<u32>) {
        self.edit_target(|t| {
            t.password = BY_HAND.into();
            t.tries_left = tries_left;
        });
    }

    fn calls_since(&self, from: usize) -> Vec<String> {
        self.cloud.calls().split_off(from)
    }

    /// Moves the clock to when the role is next due.
    async fn until_due(&self) {
        let due = self.role().await.state.next_rotation.expect("scheduled");
        self.clock.set(due);
    }

    /// The rotation's history entry tells the operator `what`.
    async fn assert_noted(&self, what: &str) {
        let events = &self.history().await[0].events;
        assert!(events.iter().any(|e| e.contains(what)), "{events:?}");
    }

    fn assert_everywhere(&self, password: &str, context: &str) {
        let all = fake::passwords(&self.cloud);
        assert!(all.values().all(|p| p == password), "{context}: {all:?}");
    }

    /// The rotation finished: one password on the target and every copy,
    /// the target's marker naming it, its history entry a success.
    async fn assert_converged(&self, context: &str) -> Role {
        let role = self.role().await;
        assert_eq!(role.state.status, Status::Ok, "{context}");
        assert!(role.state.in_flight.is_none(), "{context}");
        self.assert_everywhere(role.state.password.as_deref().expect("a password"), context);
        if self.target != Target::External {
            let found = marker::find(&self.fake_target().description).map(|m| m.generation);
            assert_eq!(found, role.state.generation, "{context}: the marker");
        }
        let history = self.history().await;
        let last = history.last().expect("a history entry");
        assert_eq!(last.outcome, Outcome::Succeeded, "{context}");
        assert_eq!(
            Some(&last.rotation_id),
            role.state.generation.as_ref(),
            "{context}"
        );
        role
    }
}

fn polardb_and_copies() -> Scenario {
    at_rest(polardb_target()).dts().drs()
}

fn dcs_and_copy() -> Scenario {
    at_rest(dcs_target()).drs()
}

/// What a rotation of `polardb_and_copies` reads before changing anything.
const PRECHECKS: [&str; 3] = [
    "ReadTarget polardb:pc-1/app",
    "DescribeJob dts:dtsj1/src",
    "DescribeJob drs:drsj1/ta",
];

fn count(calls: &[String], prefix: &str) -> usize {
    calls.iter().filter(|c| c.starts_with(prefix)).count()
}

#[tokio::test]
async fn rotates_a_polardb_account_and_both_copies_in_one_run() {
    let world = World::new(polardb_and_copies()).await;
    let outcome = world.rotate(Trigger::Manual).await;
    assert!(
        matches!(&outcome, RunOutcome::Rotated { dependents_updated, .. } if dependents_updated.len() == 2),
        "{outcome:?}"
    );
    assert_eq!(
        world.cloud.calls(),
        [
            "ReadTarget polardb:pc-1/app",
            "DescribeJob dts:dtsj1/src",
            "DescribeJob drs:drsj1/ta",
            "ChangeTarget:Modify polardb:pc-1/app",
            "WriteDescription polardb:pc-1/app",
            "UpdateJob dts:dtsj1/src",
            "UpdateJob drs:drsj1/ta",
        ]
    );
    let role = world.assert_converged("one run").await;
    assert_ne!(role.state.password.as_deref(), Some(OLD));
    assert_eq!(role.state.next_rotation, Some(NOW + 24 * HOUR));
}

#[tokio::test]
async fn dcs_offers_the_old_password_once_then_resets_when_refused() {
    let world = World::new(dcs_and_copy()).await;
    world.set_by_hand(Some(5));
    world.rotated(Trigger::Manual).await;
    assert_eq!(
        world.cloud.calls(),
        [
            "ReadTarget dcs:dcs-1",
            "DescribeJob drs:drsj1/ta",
            "ChangeTarget:DcsUpdate dcs:dcs-1",
            "ChangeTarget:DcsReset dcs:dcs-1",
            "WriteDescription dcs:dcs-1",
            "UpdateJob drs:drsj1/ta",
        ]
    );
    let role = world.assert_converged("refused, then reset").await;
    assert_eq!(world.fake_target().tries_left, Some(4));
    assert_eq!(role.state.dcs_attempts_reported.map(|r| r.left), Some(4));
    // The count is of consecutive refusals: a change succeeded since.
    assert_eq!(role.state.dcs_retry_times_left, None);
    world.assert_noted("4 attempts left").await;
}

#[tokio::test]
async fn dcs_with_two_tries_left_resets_without_offering() {
    let role = dcs_and_copy().with(|r| r.state.dcs_retry_times_left = Some(2));
    let world = World::new(role).await;
    world.rotate(Trigger::Manual).await;
    let calls = world.cloud.calls();
    assert_eq!(count(&calls, "ChangeTarget:DcsUpdate"), 0, "{calls:?}");
    assert_eq!(count(&calls, "ChangeTarget:DcsReset"), 1, "{calls:?}");
    world.assert_converged("reset").await;
}

#[tokio::test]
async fn a_dcs_lockout_is_waited_out_then_reset() {
    let world = World::new(dcs_and_copy()).await;
    world.set_by_hand(Some(1));
    world.retries(Status::Rotating).await;
    let role = world.role().await;
    let error = role.state.last_error.expect("why");
    assert_eq!(
        (error.class, error.tries_left, error.locked_minutes),
        (FailureClass::Lockout, Some(0), Some(fake::DCS_LOCK_MINUTES))
    );
    assert_eq!(role.state.dcs_retry_times_left, Some(0));
    // Five minutes of lock and five seconds.
    assert_eq!(
        role.state.next_rotation,
        Some(NOW + Duration::from_secs(305))
    );
    let offered = world.cloud.calls().len();
    world.finish_when_due().await;
    let resumed = world.calls_since(offered);
    assert_eq!(count(&resumed, "ChangeTarget:DcsUpdate"), 0, "{resumed:?}");
    assert_eq!(count(&resumed, "ChangeTarget:DcsReset"), 1, "{resumed:?}");
    world.assert_converged("after the lock").await;
}

#[tokio::test]
async fn a_change_applied_but_its_answer_lost_is_sent_again_with_the_same_password() {
    let world = World::new(at_rest(polardb_target()).dts()).await;
    world.cloud.fail(Op::ChangeTarget, timeout(), true);
    world.retries(Status::Rotating).await;
    let flight = world.role().await.state.in_flight.expect("kept");
    assert_eq!(flight.phase, Phase::TargetUncertain);
    assert_eq!(world.fake_target().password, flight.new_password);
    world.finish_when_due().await;
    assert_eq!(count(&world.cloud.calls(), "ChangeTarget:Modify"), 2);
    let role = world.assert_converged("sent again").await;
    assert_eq!(role.state.password, Some(flight.new_password));
}

#[tokio::test]
async fn a_dcs_offer_of_unknown_outcome_is_followed_by_a_reset_in_the_same_run() {
    for applied in [true, false] {
        let world = World::new(dcs_and_copy()).await;
        world.cloud.fail(Op::ChangeTarget, timeout(), applied);
        let outcome = world.rotate(Trigger::Manual).await;
        assert!(
            matches!(outcome, RunOutcome::Rotated { .. }),
            "applied {applied}: {outcome:?}"
        );
        let changes: Vec<String> = world
            .cloud
            .calls()
            .into_iter()
            .filter(|c| c.starts_with("ChangeTarget"))
            .collect();
        assert_eq!(
            changes,
            [
                "ChangeTarget:DcsUpdate dcs:dcs-1",
                "ChangeTarget:DcsReset dcs:dcs-1"
            ],
            "applied {applied}"
        );
        world.assert_converged(&format!("applied {applied}")).await;
    }
}

#[tokio::test]
async fn a_dts_copy_whose_answer_was_lost_is_confirmed_by_its_refusal() {
    let world = World::new(polardb_and_copies()).await;
    world.cloud.fail(Op::UpdateJob, timeout(), true);
    world.retries(Status::PendingDependents).await;
    let role = world.role().await;
    let copies: Vec<DependentStatus> = role.state.dependents.values().map(|d| d.status).collect();
    // Ordered by id: drs, then dts.
    assert_eq!(copies, [DependentStatus::InSync, DependentStatus::Pending]);
    let recorded = role.state.in_flight.expect("kept").new_password;
    assert_eq!(world.cloud.job(&dts()).expect("a job").password, recorded);
    let sent = world.cloud.calls().len();
    world.finish_when_due().await;
    // DTS refuses the password it already holds, which confirms it.
    assert_eq!(
        world.calls_since(sent),
        ["ReadTarget polardb:pc-1/app", "UpdateJob dts:dtsj1/src"]
    );
    world.assert_converged("confirmed").await;
}

#[tokio::test]
async fn a_job_that_does_not_accept_changes_defers_until_it_does() {
    let world = World::new(polardb_and_copies()).await;
    world.cloud.set_job(&dts(), "Suspending", false);
    let outcome = world.rotate(Trigger::Manual).await;
    assert!(
        matches!(outcome, RunOutcome::Deferred { ref reason } if reason.contains("Suspending")),
        "{outcome:?}"
    );
    assert_eq!(world.cloud.calls(), PRECHECKS);
    world.assert_everywhere(OLD, "nothing changed");
    let role = world.role().await;
    assert_eq!(role.state.status, Status::Deferred);
    assert_eq!(
        role.state.next_rotation,
        Some(NOW + Duration::from_secs(60))
    );
    assert_eq!(
        role.state.dependents[&dts().to_string()].status,
        DependentStatus::Deferred
    );
    let deferred = world.history().await;
    assert_eq!(deferred.len(), 1);
    assert_eq!(deferred[0].outcome, Outcome::Deferred);

    world.cloud.set_job(&dts(), "Synchronizing", true);
    world.finish_when_due().await;
    world.assert_converged("accepted").await;
    let history = world.history().await;
    assert_eq!(history.len(), 1, "one rotation, deferred then finished");
    assert_eq!(history[0].rotation_id, deferred[0].rotation_id);
}

#[tokio::test]
async fn a_busy_target_defers_and_later_takes_the_recorded_password() {
    let world = World::new(dcs_and_copy()).await;
    world.edit_target(|t| t.status = Some("RESTARTING".into()));
    assert!(matches!(
        world.rotate(Trigger::Manual).await,
        RunOutcome::Deferred { .. }
    ));
    assert_eq!(count(&world.cloud.calls(), "ChangeTarget"), 0);
    let recorded = world
        .role()
        .await
        .state
        .in_flight
        .expect("kept")
        .new_password;
    world.edit_target(|t| t.status = Some("RUNNING".into()));
    world.finish_when_due().await;
    let role = world.assert_converged("after the restart").await;
    assert_eq!(role.state.password, Some(recorded));
}

#[tokio::test]
async fn gives_up_after_max_failures_and_resumes_at_the_next_cycle() {
    let world = World::new(at_rest(polardb_target()).dts()).await;
    for _ in 0..Tuning::default().max_failures {
        world.cloud.fail(Op::ChangeTarget, throttled(), false);
    }
    let mut trigger = Trigger::Manual;
    for attempt in 1..Tuning::default().max_failures {
        let outcome = world.rotate(trigger).await;
        assert!(
            matches!(outcome, RunOutcome::Retrying { .. }),
            "attempt {attempt}: {outcome:?}"
        );
        assert_eq!(world.role().await.state.failures, attempt);
        world.until_due().await;
        trigger = Trigger::Schedule;
    }
    assert!(matches!(
        world.rotate(trigger).await,
        RunOutcome::Failed { .. }
    ));
    let role = world.role().await;
    assert_eq!(
        (role.state.status, role.state.failures),
        (Status::Failed, 0)
    );
    // The next regular rotation: a day after the last one, an hour before NOW.
    assert_eq!(role.state.next_rotation, Some(NOW + 23 * HOUR));
    let recorded = role.state.in_flight.expect("kept for the next cycle");
    let history = world.history().await;
    assert_eq!(
        (history[0].outcome, history[0].attempts),
        (Outcome::Failed, 6)
    );

    world.finish_when_due().await;
    let role = world.assert_converged("next cycle").await;
    assert_eq!(role.state.password, Some(recorded.new_password));
    assert_eq!(count(&world.cloud.calls(), "ChangeTarget:Modify"), 7);
    assert_eq!(world.history().await.len(), 1);
}

#[tokio::test]
async fn a_scheduled_run_that_is_not_due_does_nothing() {
    let world = World::new(polardb_and_copies()).await;
    let before = serde_json::to_value(world.role().await).expect("json");
    assert_eq!(world.rotate(Trigger::Schedule).await, RunOutcome::NotDue);
    assert!(world.cloud.calls().is_empty());
    assert_eq!(
        serde_json::to_value(world.role().await).expect("json"),
        before
    );
}

#[tokio::test]
async fn a_due_scheduled_run_rotates() {
    let world = World::new(polardb_and_copies().with(|r| r.state.next_rotation = Some(NOW))).await;
    world.rotated(Trigger::Schedule).await;
    world.assert_converged("due").await;
    assert_eq!(world.history().await[0].trigger, Trigger::Schedule);
}

#[tokio::test]
async fn a_missed_window_waits_for_the_next_slot() {
    let world = World::new(polardb_and_copies().cron_missed()).await;
    assert_eq!(world.rotate(Trigger::Schedule).await, RunOutcome::NotDue);
    assert!(world.cloud.calls().is_empty());
    let role = world.role().await;
    assert!(role.state.in_flight.is_none());
    assert_eq!(role.state.next_rotation, Some(NOW + 17 * HOUR));
}

#[tokio::test]
async fn another_mounts_marker_stops_rotation_until_a_repair_takes_the_target() {
    let world = World::new(dcs_and_copy()).await;
    let claim = format!("app {}", token(OTHER_OWNER, "2222222222222222"));
    world.edit_target(|t| t.description = claim);
    assert!(matches!(
        world.rotate(Trigger::Manual).await,
        RunOutcome::Drifted { .. }
    ));
    assert_eq!(world.cloud.calls(), ["ReadTarget dcs:dcs-1"]);
    world.assert_everywhere(OLD, "nothing changed");
    let role = world.role().await;
    assert_eq!(role.state.status, Status::Drifted);
    assert!(role.state.in_flight.is_none());
    assert_eq!(
        role.state.drift.map(|d| d.kind),
        Some(DriftKind::ClaimedElsewhere)
    );
    assert_eq!(world.history().await[0].outcome, Outcome::Drifted);

    // rotate-role on a drifted role sets a new password without the old one.
    world.rotated(Trigger::Manual).await;
    assert_eq!(
        world.calls_since(1),
        [
            "ReadTarget dcs:dcs-1",
            "DescribeJob drs:drsj1/ta",
            "ChangeTarget:DcsReset dcs:dcs-1",
            "WriteDescription dcs:dcs-1",
            "UpdateJob drs:drsj1/ta"
        ]
    );
    let role = world.assert_converged("repaired").await;
    assert!(role.state.drift.is_none());
    assert_eq!(world.history().await[1].trigger, Trigger::Repair);
}

#[tokio::test]
async fn a_rejected_key_stops_every_call_through_the_connection() {
    let world = World::new(at_rest(polardb_target()).dts()).await;
    world.cloud.fail(Op::ReadTarget, auth(), false);
    assert!(matches!(
        world.rotate(Trigger::Manual).await,
        RunOutcome::Failed { .. }
    ));
    let role = world.role().await;
    assert!(role.state.stopped_by_rejected_credentials());
    let reason = role.state.status_reason.unwrap_or_default();
    assert!(reason.contains("config/ali"), "{reason}");
    let connection = world
        .engine
        .store
        .load_connection("ali")
        .await
        .expect("readable");
    assert!(connection.expect("exists").credentials_rejected.is_some());
    assert!(matches!(
        world.rotate(Trigger::Manual).await,
        RunOutcome::Failed { .. }
    ));
    assert_eq!(
        world.cloud.calls(),
        ["ReadTarget polardb:pc-1/app"],
        "nothing sent again"
    );
    world.assert_everywhere(OLD, "nothing changed");
}

#[tokio::test]
async fn an_external_target_copies_the_given_password() {
    let world = World::new(at_rest(Target::External).dts().drs()).await;
    world.give(GIVEN).await;
    assert_eq!(
        world.cloud.calls(),
        ["UpdateJob dts:dtsj1/src", "UpdateJob drs:drsj1/ta"]
    );
    let role = world.assert_converged("copied").await;
    assert_eq!(role.state.password.as_deref(), Some(GIVEN));
}

#[tokio::test]
async fn adopting_a_password_changes_nothing_upstream() {
    let world = World::new(at_rest(polardb_target()).dts()).await;
    world.edit_target(|t| t.password = GIVEN.into());
    world.give(GIVEN).await;
    assert_eq!(
        world.cloud.calls(),
        [
            "ReadTarget polardb:pc-1/app",
            "WriteDescription polardb:pc-1/app",
            "UpdateJob dts:dtsj1/src"
        ]
    );
    let role = world.assert_converged("adopted").await;
    assert_eq!(role.state.password.as_deref(), Some(GIVEN));
    assert_eq!(world.history().await[0].trigger, Trigger::Adopt);
}

#[tokio::test]
async fn a_restored_record_whose_change_was_applied_is_not_sent_again() {
    let world = World::new(polardb().dts()).await;
    let flight = world.role().await.state.in_flight.expect("in flight");
    let owner = world.engine.owner_id().await.expect("an owner");
    world.edit_target(|t| {
        t.password = flight.new_password.clone();
        t.description = format!("app {}", token(&owner, &flight.id));
    });
    world.rotated(Trigger::Manual).await;
    assert_eq!(
        world.cloud.calls(),
        ["ReadTarget polardb:pc-1/app", "UpdateJob dts:dtsj1/src"]
    );
    let role = world.assert_converged("restored").await;
    assert_eq!(role.state.password, Some(flight.new_password));
    world.assert_noted("already applied").await;
}

#[tokio::test]
async fn a_dry_run_reads_but_changes_nothing() {
    let world = World::new(polardb_and_copies()).await;
    let role = world.role().await;
    let before = serde_json::to_value(&role).expect("json");
    let dry = execute::dry_run(&world.engine, "app", &role)
        .await
        .expect("a plan");
    let steps: Vec<String> = dry.steps.iter().map(|(action, _)| step(action)).collect();
    assert_eq!(
        steps,
        [
            "read",
            "check",
            "change:ModifyAccountPassword",
            "marker:send",
            "update:dts,drs"
        ]
    );
    assert!(!dry.resumes);
    assert!(matches!(dry.outcome, RunOutcome::Rotated { .. }));
    assert_eq!(world.cloud.calls(), PRECHECKS);
    world.assert_everywhere(OLD, "dry run");
    assert_eq!(
        serde_json::to_value(world.role().await).expect("json"),
        before
    );
}

/// Crashes a rotation of the role `build` makes before each of its steps
/// in turn (a cloud call or a role write; from then on nothing takes
/// effect), then runs it again from storage in a new engine: it converges
/// on the password recorded before the crash, and a DCS target once
/// offered the old password is never offered it again. Gives the number
/// of crash points.
async fn crash_at_each_step(build: fn() -> Scenario, setup: fn(&World)) -> usize {
    let mut steps = 0;
    loop {
        let mut world = World::new(build()).await;
        setup(&world);
        world.cloud.crash_after(Some(steps));
        let first = world.request(RotateRequest::new(Trigger::Manual)).await;
        if !world.cloud.crashed() {
            assert!(matches!(first, Ok(RunOutcome::Rotated { .. })), "{first:?}");
            world.assert_converged("no crash").await;
            return steps;
        }
        let context = format!("crash before step {steps}");
        assert!(first.is_err(), "{context}: the run stops at its next write");
        let recorded = world.role().await.state.in_flight;
        let sent = world.cloud.calls().len();
        let offered = count(&world.cloud.calls(), "ChangeTarget:DcsUpdate") > 0;
        if recorded.is_none() {
            assert_eq!(sent, 0, "{context}: nothing is sent before the record");
        }
        world.restart();
        let outcome = world.rotate(Trigger::Manual).await;
        assert!(
            matches!(outcome, RunOutcome::Rotated { .. }),
            "{context}: {outcome:?}"
        );
        let role = world.assert_converged(&context).await;
        if let Some(flight) = recorded {
            assert_eq!(
                role.state.password,
                Some(flight.new_password),
                "{context}: one password"
            );
            assert_eq!(
                role.state.generation,
                Some(flight.id),
                "{context}: one rotation"
            );
        }
        if offered {
            let resumed = world.calls_since(sent);
            assert_eq!(
                count(&resumed, "ChangeTarget:DcsUpdate"),
                0,
                "{context}: {resumed:?}"
            );
        }
        assert_eq!(world.history().await.len(), 1, "{context}");
        steps += 1;
    }
}

fn untouched(_: &World) {}

fn changed_by_hand(world: &World) {
    world.set_by_hand(None);
}

#[tokio::test]
async fn a_polardb_rotation_crashed_at_each_step_converges() {
    // Record, read, two job checks, change, record, marker, two copies,
    // finish.
    assert_eq!(crash_at_each_step(polardb_and_copies, untouched).await, 10);
}

#[tokio::test]
async fn a_dcs_rotation_crashed_at_each_step_converges() {
    // Record, read, job check, record the offer, offer, record, marker,
    // copy, finish.
    assert_eq!(crash_at_each_step(dcs_and_copy, untouched).await, 9);
}

#[tokio::test]
async fn a_dcs_rotation_refused_the_old_password_crashed_at_each_step_converges() {
    // ... and the refusal recorded, then a reset.
    assert_eq!(crash_at_each_step(dcs_and_copy, changed_by_hand).await, 11);
}
