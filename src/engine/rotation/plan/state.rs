//! What every step of the planner shares: its inputs besides the role,
//! how a run ends, what applying an answer did, and the record's helpers.

// Provider errors are large (request ids, codes) and rare; see providers.
#![allow(clippy::result_large_err)]

use time::OffsetDateTime;

use super::super::super::history::Entry;
use super::super::super::role::{Role, Rotation, Status};
use super::super::super::tuning::Tuning;

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
    pub fn next(commit: bool) -> Self {
        Self {
            outcome: None,
            commit,
            history: None,
        }
    }

    pub fn stop(outcome: RunOutcome, history: Option<Entry>) -> Self {
        Self {
            outcome: Some(outcome),
            commit: true,
            history,
        }
    }
}

pub fn flight(role: &Role) -> &Rotation {
    role.state
        .in_flight
        .as_ref()
        .expect("the planner runs only with a rotation in flight")
}

pub fn flight_mut(role: &mut Role) -> &mut Rotation {
    role.state
        .in_flight
        .as_mut()
        .expect("the planner runs only with a rotation in flight")
}

/// A dual role one of whose accounts holds a password Vault did not set:
/// creating the role rotates both, and the second import rotation is owed
/// as soon as the first finished (`last_password` is the inactive
/// account's, set by the rotation before the last).
pub fn import_owed(role: &Role) -> bool {
    role.is_dual() && role.state.last_password.is_none()
}

/// Adds an event to the rotation's history entry.
pub fn note(role: &mut Role, event: &str) {
    flight_mut(role).events.push(event.to_owned());
}
