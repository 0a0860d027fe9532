//! How a run ends: finished, deferred, refused, failed (retrying or given
//! up), stopped by a rejected key, or drifted; each a state change plus
//! the history entry to write.

// Provider errors are large (request ids, codes) and rare; see providers.
#![allow(clippy::result_large_err)]

use time::OffsetDateTime;

use crate::providers::{ErrorClass, ErrorKind, ProviderError};

use super::super::super::clock::rfc3339;
use super::super::super::history::{Entry, Outcome as Recorded};
use super::super::super::role::{
    CheckState, DependentStatus, Drift, DriftCheck, DriftKind, FailureClass, LastError, Phase,
    Role, RoleKind, Rotation, Status, Trigger,
};
use super::state::{Applied, Context, RunOutcome, flight, import_owed};

fn history(
    role: &Role,
    flight: &Rotation,
    now: OffsetDateTime,
    outcome: Recorded,
    error: Option<(FailureClass, String)>,
    dependents_updated: Vec<String>,
) -> Entry {
    let (error_class, error) = error.unzip();
    let (active_before, active_after) = active_accounts(role, flight).unzip();
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
        account: flight.account.clone(),
        active_before,
        active_after,
    }
}

/// Dual roles: the account `static-creds` served before the rotation
/// (the other one, unless it only pushes a password, which never flips)
/// and now (they differ once the target confirmed).
fn active_accounts(role: &Role, flight: &Rotation) -> Option<(String, String)> {
    let account = flight.account.as_deref()?;
    let before = if flight.trigger == Trigger::Propagate {
        role.active_username()?
    } else {
        role.usernames.iter().find(|name| *name != account)?
    };
    Some((before.to_owned(), role.active_username()?.to_owned()))
}

/// When a role that gave up (or whose target refused the change) tries
/// again: its next regular rotation if that is still ahead, else the next
/// slot of its schedule; a library service account, which has none, after the longest
/// backoff; a manual-only role waits for rotate-role.
fn next_cycle(role: &Role, ctx: &Context) -> Option<OffsetDateTime> {
    match role.kind {
        RoleKind::Static => next_regular_rotation(role, ctx.now)
            .filter(|due| *due > ctx.now)
            .or_else(|| role.schedule.next_cycle_after(ctx.now)),
        RoleKind::Library => Some(ctx.now + ctx.tuning.retry_cap),
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
        // A library service account rotates when it comes back; this is only the safety
        // net for a lease the host lost.
        RoleKind::Library => role.state.checkout.as_ref().map(|c| c.max_expires_at),
    }
}

/// Every dependent now holds this rotation's password, whichever run
/// updated it. History goes first: whoever sees the role `ok` also finds
/// the rotation in its history (a resumed run rewrites the same entry).
pub fn finish(role: &mut Role, ctx: &Context) -> Applied {
    let flight = role
        .state
        .in_flight
        .take()
        .expect("the planner runs only with a rotation in flight");
    // A dual role's first import rotation is followed at once by the
    // second (the runner starts it), so the other account's password is
    // Vault's too without waiting for an operator or the schedule.
    let next = if import_owed(role) {
        Some(ctx.now)
    } else {
        next_regular_rotation(role, ctx.now)
    };
    let state = &mut role.state;
    state.status = Status::Ok;
    state.status_reason = None;
    state.failures = 0;
    state.last_error = None;
    state.next_rotation = next;
    let dependents: Vec<String> = role
        .dependents_of(flight.account.as_deref())
        .iter()
        .map(ToString::to_string)
        .collect();
    let entry = history(
        role,
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
pub fn defer(role: &mut Role, refusals: Vec<(String, String)>, ctx: &Context) -> Applied {
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
        role,
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
pub fn refused(role: &mut Role, error: &ProviderError, ctx: &Context) -> Applied {
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
        role,
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
pub fn failed_attempt(role: &mut Role, error: &ProviderError, ctx: &Context) -> Applied {
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
                "gave up after {} attempts; run {} to try again",
                tuning.max_failures,
                super::super::super::library::rotate_hint(ctx.name)
            ),
        });
        state.next_rotation = next;
        let entry = history(
            role,
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
    let what_to_do = drift.what_to_do(role.kind.path(), ctx.name, role.is_dual());
    let dropped = role.state.in_flight.take();
    let state = &mut role.state;
    state.status = Status::Drifted;
    state.status_reason = Some(format!("{}; {what_to_do}", drift.detail));
    state.failures = 0;
    // A lent service account keeps its lease-end safety net; nothing else is due.
    state.next_rotation = match role.kind {
        RoleKind::Library => state.checkout.as_ref().map(|c| c.max_expires_at),
        RoleKind::Static => None,
    };
    state.drift = Some(drift);
    let message = state.status_reason.clone().unwrap_or_default();
    let entry = dropped.map(|flight| {
        let mut entry = history(role, &flight, ctx.now, Recorded::Drifted, None, Vec::new());
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
