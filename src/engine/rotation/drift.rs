//! Drift: whether the password Vault holds is still the one the target
//! holds, told by the ownership marker in the target's description (see
//! `engine::marker`) without spending a DCS password attempt. The marker is
//! compared before every change of a target (the saga's target precheck),
//! every `drift_check_interval` over every role, and once shortly after
//! the engine starts (a snapshot restore re-initialises the mounts).

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use crate::framework::Error;

use super::super::Engine;
use super::super::history::{self, Entry};
use super::super::marker::{self, Marker};
use super::super::role::{
    CheckState, Drift, DriftCheck, DriftKind, Phase, Role, RoleKind, Status, Target,
};
use super::super::scheduler::Job;
use super::cloud;
use super::targets::TargetState;

/// How soon after the engine starts the first check runs.
pub const FIRST_CHECK_AFTER: Duration = Duration::from_secs(2);

/// What the marker on the target says about the role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// This mount's marker naming the current password.
    InSync,
    /// No marker.
    Unverified,
    /// The marker names the rotation in flight, which Vault has not seen
    /// confirmed (its record is older than the target): it was applied.
    AlreadyApplied,
    /// This mount's marker naming an earlier password Vault set: a marker
    /// write failed after that; Vault's password is the newer one.
    MarkerBehind,
    Drifted(DriftKind, String),
}

/// The drift comparison table.
pub fn compare(marker: Option<&Marker>, owner: &str, role: &Role) -> Finding {
    let Some(marker) = marker else {
        return Finding::Unverified;
    };
    if marker.owner != owner {
        return Finding::Drifted(
            DriftKind::ClaimedElsewhere,
            format!(
                "the target is claimed by another Vault mount (owner {}; this mount is {owner}): each of them rotating it would invalidate the other's password",
                marker.owner
            ),
        );
    }
    let state = &role.state;
    if let Some(flight) = state
        .in_flight
        .as_ref()
        .filter(|f| f.id == marker.generation)
    {
        return if flight.phase == Phase::TargetApplied {
            Finding::InSync
        } else {
            Finding::AlreadyApplied
        };
    }
    if state.generation.as_deref() == Some(marker.generation.as_str()) {
        return Finding::InSync;
    }
    if state.marker_generation.as_deref() == Some(marker.generation.as_str()) {
        return Finding::MarkerBehind;
    }
    Finding::Drifted(
        DriftKind::NewerPassword,
        format!(
            "the target holds a password set by rotation {} of this mount, which this Vault does not know; Vault's storage was probably restored from a snapshot taken before it",
            marker.generation
        ),
    )
}

/// Whether the target can take a password change now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    Ready,
    /// In a passing state: defer and look again.
    Transient(String),
    /// In a state that will not pass by itself.
    Broken(String),
}

/// DCS instance states (appendix "DCS Instance Statuses",
/// https://support.huaweicloud.com/intl/en-us/api-dcs/dcs-api-0312047.html)
/// that pass by themselves.
const DCS_PASSING: &[&str] = &[
    "CREATING",
    "RESTARTING",
    "EXTENDING",
    "RESTORING",
    "FLUSHING",
    "CLOSING",
    "STARTING",
    "UPGRADING",
    "ROLLBACKING",
    "IPEXCHANGING",
];
/// ... and those that need someone to act.
const DCS_STUCK: &[&str] = &["CREATEFAILED", "ERROR", "FROZEN", "CLOSED", "DELETED"];
/// PolarDB `AccountStatus` values that pass (SDK
/// `_describe_accounts_response_body.py`: Creating, Available, Deleting).
const POLARDB_PASSING: &[&str] = &["Creating", "Deleting"];

pub fn condition(target: &Target, state: &TargetState) -> Condition {
    let Some(status) = state.status.as_deref() else {
        return Condition::Ready;
    };
    match target {
        Target::DcsInstance { instance_id, .. } => {
            let upper = status.to_ascii_uppercase();
            if DCS_PASSING.contains(&upper.as_str()) {
                Condition::Transient(format!(
                    "DCS instance {instance_id} is {status}, which does not accept password changes until it is RUNNING again"
                ))
            } else if DCS_STUCK.contains(&upper.as_str()) {
                Condition::Broken(format!(
                    "DCS instance {instance_id} is {status}: check it in the DCS console (a frozen instance needs its account topped up; a failed or faulty one needs support); password changes need RUNNING"
                ))
            } else {
                Condition::Ready
            }
        }
        Target::PolardbAccount { cluster_id, .. } if POLARDB_PASSING.contains(&status) => {
            Condition::Transient(format!(
                "PolarDB account in cluster {cluster_id} is {status}, which does not accept password changes until it is Available"
            ))
        }
        _ => Condition::Ready,
    }
}

/// Records a new drift check result; `true` when it changed (so the role
/// needs saving). Unchanged results are not stored again, so a check of
/// thousands of quiet roles writes nothing.
pub fn set_check(
    role: &mut Role,
    engine: &Engine,
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
            since: engine.clock.now(),
            detail,
        });
    }
    !unchanged
}

/// Marks the role drifted: automated rotation stops, any rotation in flight
/// is dropped (its password is not the target's), and the role says what
/// was found and what to do. Saves the role.
pub async fn mark_drifted(
    engine: &Engine,
    name: &str,
    role: &mut Role,
    kind: DriftKind,
    detail: String,
) -> Result<(), Error> {
    let now = engine.clock.now();
    let drift = Drift {
        found_at: now,
        kind,
        detail,
    };
    let what_to_do = drift.what_to_do(role.kind.path(), name);
    tracing::warn!(role = name, kind = ?kind, "the target drifted: {}", drift.detail);
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
    engine.save_role(name, role).await?;
    engine
        .timetable
        .set(Job::Role(name.into()), role.state.next_rotation);
    if let Some(flight) = dropped {
        let entry = Entry {
            rotation_id: flight.id.clone(),
            started_at: flight.started_at,
            updated_at: now,
            trigger: flight.trigger.as_str().to_owned(),
            outcome: "drifted".into(),
            error_class: None,
            error: role.state.status_reason.clone(),
            request_ids: flight.request_ids.clone(),
            dependents_updated: Vec::new(),
            attempts: flight.attempts,
            events: flight.events.clone(),
        };
        if let Err(err) = history::record(engine.storage.as_ref(), name, entry).await {
            tracing::warn!(role = name, error = %err, "could not write rotation history");
        }
    }
    Ok(())
}

/// Writes this mount's marker for `generation` into the target's
/// description (as it was read: `description`), keeping the operator's
/// text. Never fails a rotation: the result is recorded on the role's
/// `drift_check`, and the next check tries again.
pub async fn write_marker(
    engine: &Engine,
    role: &mut Role,
    description: &str,
    generation: &str,
) -> Result<(), Error> {
    let Some(rule) = role.target.description_rule() else {
        return Ok(());
    };
    let marker = Marker {
        owner: engine.owner_id().await?,
        generation: generation.to_owned(),
    };
    let problem = match marker::merge(description, &marker, rule) {
        Err(why) => Some(format!("the ownership marker cannot be written: {why}")),
        Ok(merged) if merged == description => None,
        Ok(merged) => cloud::write_description(engine, role, &merged)
            .await
            .err()
            .map(|error| {
                format!(
                    "could not write the ownership marker: {error}; it needs permission for {}",
                    match role.target {
                        Target::PolardbAccount { .. } => "polardb:ModifyAccountDescription",
                        _ => "dcs:instance:modify (UpdateInstance)",
                    }
                )
            }),
    };
    match problem {
        None => {
            role.state.marker_generation = Some(generation.to_owned());
            set_check(role, engine, CheckState::InSync, None);
        }
        Some(why) => {
            set_check(role, engine, CheckState::Unavailable, Some(why));
        }
    }
    Ok(())
}

/// Checks every PolarDB and DCS role of the mount, then schedules the next
/// check. Reads are coalesced per connection; only roles whose result
/// changed are written.
pub async fn check_all(engine: &Arc<Engine>) -> Result<(), Error> {
    let names = engine
        .index()
        .await?
        .lock()
        .expect("index lock")
        .all_names();
    let mut checks = JoinSet::new();
    let mut checked = 0usize;
    for name in names {
        while checks.len() >= engine.tuning.concurrency {
            checks.join_next().await;
        }
        let engine = engine.clone();
        checks.spawn(async move {
            if let Err(err) = check_one(&engine, &name).await {
                tracing::warn!(role = %name, error = %err, "drift check failed");
            }
        });
        checked += 1;
    }
    while checks.join_next().await.is_some() {}
    tracing::debug!(roles = checked, "drift check done");
    engine.timetable.set(
        Job::DriftCheck,
        Some(engine.clock.now() + engine.tuning.drift_check_interval),
    );
    Ok(())
}

async fn check_one(engine: &Arc<Engine>, name: &str) -> Result<(), Error> {
    let Some(role) = engine.load_role(name).await? else {
        return Ok(());
    };
    if role.state.status == Status::Drifted {
        return Ok(());
    }
    // Read without the role's lock, so a rotate-role meanwhile is not
    // refused as "already running"; act only if nothing changed since.
    let Some(read) = cloud::read_target(engine, &role).await else {
        return Ok(());
    };
    let Some(_guard) = engine.locks.try_lock(&Engine::role_lock(name)) else {
        // A rotation runs: its own precheck reads the target.
        return Ok(());
    };
    let Some(mut current) = engine.load_role(name).await? else {
        return Ok(());
    };
    let unchanged = |a: &Role, b: &Role| {
        a.state.status == b.state.status
            && a.state.generation == b.state.generation
            && a.state.marker_generation == b.state.marker_generation
            && a.state.in_flight.as_ref().map(|f| (&f.id, f.phase))
                == b.state.in_flight.as_ref().map(|f| (&f.id, f.phase))
    };
    if !unchanged(&role, &current) {
        return Ok(());
    }
    let role = &mut current;
    let target = match read {
        Ok(target) => target,
        Err(error) => {
            let why = format!("could not read the target: {error}");
            if set_check(role, engine, CheckState::Unavailable, Some(why)) {
                engine.save_role(name, role).await?;
            }
            return Ok(());
        }
    };
    let owner = engine.owner_id().await?;
    let changed = match compare(marker::find(&target.description).as_ref(), &owner, role) {
        Finding::Drifted(kind, detail) => {
            return mark_drifted(engine, name, role, kind, detail).await;
        }
        Finding::AlreadyApplied => {
            // The record resumes now; its own precheck advances it.
            engine
                .timetable
                .set(Job::Role(name.into()), Some(engine.clock.now()));
            false
        }
        Finding::MarkerBehind => {
            let generation = role.state.generation.clone().unwrap_or_default();
            write_marker(engine, role, &target.description, &generation).await?;
            true
        }
        Finding::InSync => set_check(role, engine, CheckState::InSync, None),
        Finding::Unverified => set_check(
            role,
            engine,
            CheckState::Unverified,
            Some("the target carries no ownership marker; the next rotation writes one".into()),
        ),
    };
    if changed {
        engine.save_role(name, role).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::role::{Rotation, Trigger};

    const OURS: &str = "00000000000000aa";
    const THEIRS: &str = "00000000000000bb";

    fn role(generation: Option<&str>, marker_generation: Option<&str>) -> Role {
        let mut role = Role::new(
            RoleKind::Static,
            Target::DcsInstance {
                connection: "hw".into(),
                instance_id: "dcs-1".into(),
            },
        );
        role.state.generation = generation.map(str::to_owned);
        role.state.marker_generation = marker_generation.map(str::to_owned);
        role
    }

    fn in_flight(role: &mut Role, id: &str, phase: Phase) {
        role.state.in_flight = Some(Rotation {
            id: id.into(),
            trigger: Trigger::Schedule,
            started_at: time::OffsetDateTime::UNIX_EPOCH,
            new_password: "x".into(),
            old_password: None,
            phase,
            dcs_reset_only: false,
            attempts: 0,
            request_ids: Vec::new(),
            marker_written: false,
            events: Vec::new(),
        });
    }

    fn marker(owner: &str, generation: &str) -> Marker {
        Marker {
            owner: owner.into(),
            generation: generation.into(),
        }
    }

    #[test]
    fn the_comparison_table() {
        let current = role(Some("1111111111111111"), Some("1111111111111111"));
        let m = |owner: &str, generation: &str| Some(marker(owner, generation));
        assert_eq!(compare(None, OURS, &current), Finding::Unverified);
        assert_eq!(
            compare(m(OURS, "1111111111111111").as_ref(), OURS, &current),
            Finding::InSync
        );
        assert!(matches!(
            compare(m(THEIRS, "1111111111111111").as_ref(), OURS, &current),
            Finding::Drifted(DriftKind::ClaimedElsewhere, ref detail) if detail.contains(THEIRS)
        ));
        assert!(matches!(
            compare(m(OURS, "9999999999999999").as_ref(), OURS, &current),
            Finding::Drifted(DriftKind::NewerPassword, ref detail) if detail.contains("snapshot")
        ));
        // A marker write failed after the last rotation: Vault is ahead.
        let ahead = role(Some("2222222222222222"), Some("1111111111111111"));
        assert_eq!(
            compare(m(OURS, "1111111111111111").as_ref(), OURS, &ahead),
            Finding::MarkerBehind
        );
        // A role that predates markers, then a restore: unknown generation.
        let old = role(None, None);
        assert!(matches!(
            compare(m(OURS, "1111111111111111").as_ref(), OURS, &old),
            Finding::Drifted(DriftKind::NewerPassword, _)
        ));
    }

    #[test]
    fn a_marker_naming_the_rotation_in_flight() {
        let mut waiting = role(Some("1111111111111111"), Some("1111111111111111"));
        in_flight(&mut waiting, "3333333333333333", Phase::Prepared);
        let m = marker(OURS, "3333333333333333");
        assert_eq!(compare(Some(&m), OURS, &waiting), Finding::AlreadyApplied);
        in_flight(&mut waiting, "3333333333333333", Phase::TargetUncertain);
        assert_eq!(compare(Some(&m), OURS, &waiting), Finding::AlreadyApplied);
        in_flight(&mut waiting, "3333333333333333", Phase::TargetApplied);
        assert_eq!(compare(Some(&m), OURS, &waiting), Finding::InSync);
        // The previous marker while the rotation's own write is pending.
        waiting.state.generation = Some("3333333333333333".into());
        let previous = marker(OURS, "1111111111111111");
        assert_eq!(
            compare(Some(&previous), OURS, &waiting),
            Finding::MarkerBehind
        );
    }

    #[test]
    fn target_states_that_defer_and_that_fail() {
        let dcs = Target::DcsInstance {
            connection: "hw".into(),
            instance_id: "dcs-1".into(),
        };
        let polardb = Target::PolardbAccount {
            connection: "ali".into(),
            cluster_id: "pc-1".into(),
        };
        let state = |status: &str| TargetState {
            status: Some(status.into()),
            description: String::new(),
        };
        assert_eq!(condition(&dcs, &state("RUNNING")), Condition::Ready);
        assert!(
            matches!(condition(&dcs, &state("RESTARTING")), Condition::Transient(ref w) if w.contains("RESTARTING"))
        );
        assert!(
            matches!(condition(&dcs, &state("FROZEN")), Condition::Broken(ref w) if w.contains("console"))
        );
        assert_eq!(condition(&polardb, &state("Available")), Condition::Ready);
        assert!(matches!(
            condition(&polardb, &state("Creating")),
            Condition::Transient(_)
        ));
    }
}
