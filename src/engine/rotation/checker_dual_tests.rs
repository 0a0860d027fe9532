//! The periodic drift check over a scripted cloud for dual-account roles
//! (`app_a` active, `app_b` inactive): each PolarDB account carries its
//! own marker, compared with that account's generation; drift on either
//! is reported naming it, and a rotation in flight on one account is not
//! drift.

use super::super::cloud::fake::Op;
use super::super::role::{DriftKind, Phase, Target, Trigger};
use super::super::scheduler::Job;
use super::checker;
use super::execute::RotateRequest;
use super::execute_tests::World;
use super::plan::{self, RunOutcome};
use super::plan_dual_tests::{GEN_A, GEN_B};
use super::plan_tests::{NOW, OTHER_OWNER, dcs_target, manual, polardb_target, timeout, token};

const UNKNOWN: &str = "3333333333333333";
const NEW: &str = "New-pass-5678";

impl World {
    /// The marker on account `account` names `generation` of `owner`
    /// (this mount's when `None`); no marker when `generation` is empty.
    async fn mark(&self, account: &str, owner: Option<&str>, generation: &str) {
        let ours = self.engine.owner_id().await.expect("an owner");
        let mut fake = self
            .cloud
            .account(&self.target, account)
            .expect("an account");
        fake.description = if generation.is_empty() {
            "app account".into()
        } else {
            format!("app account {}", token(owner.unwrap_or(&ours), generation))
        };
        self.cloud.add_account(&self.target, account, fake);
    }

    /// A dual role with a rotation of b to `NEW` recorded, in `phase`,
    /// waiting for its next attempt.
    async fn rotating(target: Target, phase: Phase) -> Self {
        let world = World::dual(target).await;
        let mut role = world.role().await;
        plan::start(&mut role, manual(), NEW.into(), UNKNOWN.into(), NOW);
        role.state.in_flight.as_mut().expect("recorded").phase = phase;
        role.state.next_rotation = Some(NOW + time::Duration::MINUTE);
        world.store(&role).await;
        world
    }

    /// One drift check; gives the role's status, drift kind and check
    /// state (`-`: none), and what it says up to its first colon (this
    /// mount's owner id shown as `<ours>`).
    async fn checked(&self) -> String {
        checker::check_all(&self.engine).await.expect("checked");
        let role = self.role().await;
        let state = &role.state;
        let kind = state.drift.as_ref().map_or("-", |d| match d.kind {
            DriftKind::ClaimedElsewhere => "claimed_elsewhere",
            DriftKind::NewerPassword => "newer_password",
        });
        let check = state.drift_check.as_ref();
        let said = state
            .status_reason
            .as_deref()
            .or(check.and_then(|c| c.detail.as_deref()))
            .unwrap_or_default();
        let said = said.split(':').next().unwrap_or_default();
        let ours = self.engine.owner_id().await.expect("an owner");
        format!(
            "{} {kind} {}: {said}",
            state.status.as_str(),
            check.map_or("-", |c| c.state.as_str())
        )
        .replace(&ours, "<ours>")
    }
}

#[tokio::test]
async fn drift_on_either_account_is_reported_for_that_account() {
    // (case, account, marker owner (None: this mount), generation ("": no
    // marker), what the check finds)
    #[rustfmt::skip]
    let rows = [
        ("both in step", "app_b", None, GEN_B, "ok - in_sync: "),
        ("inactive b: a rotation this Vault does not know", "app_b", None, UNKNOWN,
            "drifted newer_password -: the target (account app_b) holds a password set by rotation 3333333333333333 of this mount, which this Vault does not know; Vault's storage was probably restored from a snapshot taken before it; the password Vault holds is stale"),
        ("inactive b: claimed by another mount", "app_b", Some(OTHER_OWNER), GEN_B,
            "drifted claimed_elsewhere -: the target (account app_b) is claimed by another Vault mount (owner 00000000000000bb; this mount is <ours>)"),
        ("inactive b: a's generation", "app_b", None, GEN_A,
            "drifted newer_password -: the target (account app_b) holds a password set by rotation 2222222222222222 of this mount, which this Vault does not know; Vault's storage was probably restored from a snapshot taken before it; the password Vault holds is stale"),
        ("active a: a rotation this Vault does not know", "app_a", None, UNKNOWN,
            "drifted newer_password -: the target (account app_a) holds a password set by rotation 3333333333333333 of this mount, which this Vault does not know; Vault's storage was probably restored from a snapshot taken before it; the password Vault holds is stale"),
        ("inactive b: no marker", "app_b", None, "",
            "ok - unverified: the target (account app_b) carries no ownership marker; the next rotation writes one"),
    ];
    for (case, account, owner, generation, expected) in rows {
        let world = World::dual(polardb_target()).await;
        world.mark(account, owner, generation).await;
        assert_eq!(world.checked().await, expected, "{case}");
        let calls = world.cloud.calls();
        assert_eq!(
            calls,
            [
                "ReadTarget polardb:pc-1/app_a",
                "ReadTarget polardb:pc-1/app_b"
            ],
            "{case}: both accounts read, nothing changed"
        );
    }
    assert_eq!(rows.len(), 6);
}

#[tokio::test]
async fn an_account_that_cannot_be_read_is_named() {
    let world = World::dual(polardb_target()).await;
    world.cloud.fail(Op::ReadTarget, timeout(), false);
    assert_eq!(
        world.checked().await,
        "ok - unavailable: could not read the target (account app_a)"
    );
}

#[tokio::test]
async fn a_rotation_in_flight_on_one_account_is_not_drift() {
    // b took the flight's password and marker; the answer was lost, so
    // the record still says uncertain. a keeps a's marker.
    let world = World::rotating(polardb_target(), Phase::TargetUncertain).await;
    world.mark("app_b", None, UNKNOWN).await;
    let mut b = world.cloud.account(&world.target, "app_b").expect("b");
    b.password = NEW.into();
    world.cloud.add_account(&world.target, "app_b", b);
    // Found applied: the record decides, not the check.
    assert_eq!(world.checked().await, "rotating - -: ");
    let role = world.role().await;
    assert!(role.state.drift.is_none());
    assert_eq!(role.active_username(), Some("app_a"), "no flip by a check");
    assert_eq!(
        world
            .engine
            .store
            .timetable
            .due_at(&Job::Role("app".into())),
        Some(NOW),
        "the record resumes at once"
    );
    // The resumed run finds the change applied and does not send it again.
    let resumed = world.request(RotateRequest::new(Trigger::Schedule)).await;
    assert!(
        matches!(resumed, Ok(RunOutcome::Rotated { .. })),
        "{resumed:?}"
    );
    let calls = world.cloud.calls();
    assert!(
        !calls.iter().any(|c| c.starts_with("ChangeTarget")),
        "{calls:?}"
    );
    assert_eq!(world.role().await.active_username(), Some("app_b"));

    // Flipped to b, but b's marker write failed and b's copy waits: b's
    // marker names b's previous rotation, which the check rewrites.
    let world = World::dual(polardb_target()).await;
    world.cloud.fail(Op::WriteDescription, timeout(), false);
    world.cloud.fail(Op::UpdateJob, timeout(), false);
    let first = world.request(RotateRequest::new(Trigger::Manual)).await;
    assert!(
        matches!(first, Ok(RunOutcome::Retrying { .. })),
        "{first:?}"
    );
    assert_eq!(
        world.checked().await,
        "pending_dependents - in_sync: attempt 1 failed; retrying"
    );
    let role = world.role().await;
    let flight = role.state.in_flight.as_ref().expect("kept");
    let b = world.cloud.account(&world.target, "app_b").expect("b");
    let marker = crate::engine::marker::find(&b.description).expect("a marker");
    assert_eq!(
        (role.active_username(), marker.generation.as_str()),
        (Some("app_b"), flight.id.as_str())
    );

    // DCS: a reset settling; the instance's one marker still names a's
    // rotation.
    let world = World::rotating(dcs_target(), Phase::Settling).await;
    assert_eq!(world.checked().await, "rotating - in_sync: ");
    let flight = world.role().await.state.in_flight.expect("kept");
    assert_eq!(flight.phase, Phase::Settling);
}
