//! Drift: whether the password Vault holds is still the one the target
//! holds, told by the ownership marker in the target's description (see
//! `engine::marker`) without spending a DCS password attempt; and whether
//! the target's state takes a change now. Pure tables, used by the planner
//! before every change of a target and by the periodic check (`checker`).

use super::super::cloud::TargetState;
use super::super::marker::Marker;
use super::super::role::{DriftKind, Phase, Role, Target};

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

/// The generation pair (set, marked) of the account whose marker was
/// read: a dual PolarDB role's inactive account keeps the `last_*` pair;
/// everything else (single roles, a DCS instance's one marker, the active
/// account, `None`) the role-level pair.
pub fn generations<'a>(
    role: &'a Role,
    account: Option<&str>,
) -> (Option<&'a str>, Option<&'a str>) {
    let state = &role.state;
    let inactive = own_marker(role, account).is_some_and(|a| Some(a) != role.active_username());
    if inactive {
        (
            state.last_generation.as_deref(),
            state.last_marker_generation.as_deref(),
        )
    } else {
        (
            state.generation.as_deref(),
            state.marker_generation.as_deref(),
        )
    }
}

/// `account`, when it carries a marker of its own: an account of a dual
/// PolarDB role (a DCS instance has one marker, whatever its accounts).
fn own_marker<'a>(role: &Role, account: Option<&'a str>) -> Option<&'a str> {
    account.filter(|_| role.is_dual() && matches!(role.target, Target::PolardbAccount { .. }))
}

/// The drift comparison table for the marker read on `account` (a dual
/// PolarDB role's accounts each carry their own; `None`: the active one).
pub fn compare_account(
    marker: Option<&Marker>,
    owner: &str,
    role: &Role,
    account: Option<&str>,
) -> Finding {
    let Some(marker) = marker else {
        return Finding::Unverified;
    };
    // Which account drifted, where each carries its own marker.
    let target = match own_marker(role, account) {
        Some(account) => format!("the target (account {account})"),
        None => "the target".to_owned(),
    };
    if marker.owner != owner {
        return Finding::Drifted(
            DriftKind::ClaimedElsewhere,
            format!(
                "{target} is claimed by another Vault mount (owner {}; this mount is {owner}): each of them rotating it would invalidate the other's password",
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
    let (generation, marker_generation) = generations(role, account);
    if generation == Some(marker.generation.as_str()) {
        return Finding::InSync;
    }
    if marker_generation == Some(marker.generation.as_str()) {
        return Finding::MarkerBehind;
    }
    Finding::Drifted(
        DriftKind::NewerPassword,
        format!(
            "{target} holds a password set by rotation {} of this mount, which this Vault does not know; Vault's storage was probably restored from a snapshot taken before it",
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

/// DCS ACL account statuses (`ListAclAccounts`) that pass by themselves,
/// and those that need someone to act.
const ACL_PASSING: &[&str] = &["CREATING", "UPDATING", "DELETING"];
const ACL_STUCK: &[&str] = &["ERROR", "CREATEFAILED", "DELETEFAILED", "DELETED"];

/// The target's condition, then (DCS dual-account roles) its ACL
/// account's.
pub fn condition(target: &Target, state: &TargetState) -> Condition {
    match (
        target_condition(target, state),
        state.account_status.as_deref(),
    ) {
        (Condition::Ready, Some(status)) => {
            let upper = status.to_ascii_uppercase();
            if ACL_PASSING.contains(&upper.as_str()) {
                Condition::Transient(format!(
                    "the ACL account is {status}, which does not accept password changes until it is AVAILABLE again"
                ))
            } else if ACL_STUCK.contains(&upper.as_str()) {
                Condition::Broken(format!(
                    "the ACL account is {status}: check it in the DCS console (Accounts); password changes need AVAILABLE"
                ))
            } else {
                Condition::Ready
            }
        }
        (condition, _) => condition,
    }
}

fn target_condition(target: &Target, state: &TargetState) -> Condition {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::role::{RoleKind, Rotation, Trigger};

    /// The table for the account `static-creds` serves.
    fn compare(marker: Option<&Marker>, owner: &str, role: &Role) -> Finding {
        compare_account(marker, owner, role, None)
    }

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
            account: None,
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
            account_status: None,
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
