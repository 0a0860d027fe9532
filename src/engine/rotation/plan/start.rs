//! Starting a rotation: whether a request starts, resumes or waits, and
//! the write-ahead record a new rotation begins with.

use time::OffsetDateTime;

use crate::framework::Error;

use super::super::super::clock::rfc3339;
use super::super::super::role::{Dependent, Phase, Role, Rotation, Status, Target, Trigger};
use super::state::import_owed;

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
    /// A dual role's propagate: the account whose current password is
    /// pushed to the copies pinned to it. `None` otherwise: a rotation
    /// changes the inactive account.
    pub account: Option<String>,
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
    if role.is_dual() && (given.is_some() || trigger == Trigger::Adopt) {
        return Err(Error::bad_request(format!(
            "role {name:?} has two accounts that take turns: a given password cannot be adopted or propagated (it would say which account holds it, and this version cannot); rotate-role/{name} without password sets a new one on the inactive account"
        )));
    }
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
        // The second import rotation belongs to the role's creation, not
        // to its schedule: no window holds it back.
        if !import_owed(role) && !role.schedule.in_window(due, now) {
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
                account: None,
            }
        }
        (_, None) if matches!(trigger, Trigger::Propagate | Trigger::Adopt) => {
            if drifted && trigger == Trigger::Propagate {
                return Err(Error::conflict(format!(
                    "role {name:?} is drifted: the password Vault holds is not the target's, so it is not pushed to new dependents; take a way out first (read static-roles/{name})"
                )));
            }
            let (account, current) = pushed(role);
            let current = current.ok_or_else(|| {
                Error::bad_request(format!(
                    "role {name:?} has no password yet to propagate; rotate it first"
                ))
            })?;
            Start {
                trigger,
                phase: Phase::TargetApplied,
                password: Some(current),
                given: false,
                account,
            }
        }
        (Target::External, None) => {
            return Err(Error::bad_request(format!(
                "role {name:?} has an external target: give the new password with rotate-role/{name} password=..."
            )));
        }
        (_, None) => Start {
            trigger: match trigger {
                _ if drifted => Trigger::Repair,
                Trigger::Schedule if import_owed(role) => Trigger::Create,
                _ => trigger,
            },
            phase: Phase::Prepared,
            password: None,
            given: false,
            account: None,
        },
    };
    Ok(Begin::Start(start))
}

/// What a propagate pushes, with the account it belongs to: a single
/// role's password; on a dual role the active account's, unless only
/// copies pinned to the inactive account are behind and Vault knows its
/// password: then that one, so a new copy takes its own account's
/// password.
fn pushed(role: &Role) -> (Option<String>, Option<String>) {
    let state = &role.state;
    if !role.is_dual() {
        return (None, state.password.clone());
    }
    let active = role.active_username();
    if inactive_copies_behind(role) && !copies_behind(role, active) {
        let inactive = role.inactive_username().map(str::to_owned);
        (inactive, state.last_password.clone())
    } else {
        (active.map(str::to_owned), state.password.clone())
    }
}

/// Dual roles: a copy pinned to the inactive account does not hold its
/// password, which Vault knows: a propagate of that account is due.
pub fn inactive_copies_behind(role: &Role) -> bool {
    role.is_dual()
        && role.state.last_password.is_some()
        && copies_behind(role, role.inactive_username())
}

fn copies_behind(role: &Role, account: Option<&str>) -> bool {
    role.dependents_of(account)
        .iter()
        .any(|d| !role.copy_in_sync(d))
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
    // A dual role changes its inactive account (whose password is
    // `last_password`); a push (propagate) keeps the password of the
    // account it names, by default the active one.
    let (account, old_password) = match (start.account, role.inactive_username()) {
        (Some(account), _) => (Some(account), Some(password.clone())),
        (None, Some(inactive)) if start.phase == Phase::Prepared => {
            (Some(inactive.to_owned()), role.state.last_password.clone())
        }
        (None, _) => (
            role.is_dual()
                .then(|| role.active_username().map(str::to_owned))
                .flatten(),
            role.state.password.clone(),
        ),
    };
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
        account,
        // A repair never offers the old password: the target holds another.
        dcs_reset_only: start.trigger == Trigger::Repair,
        attempts: 0,
        request_ids: Vec::new(),
        // Pushing an unchanged password to new copies sets no generation.
        marker_written: start.phase == Phase::TargetApplied && !adopts,
        events: Vec::new(),
    });
    if start.phase == Phase::TargetApplied {
        role.mark_dependents_pending();
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
