//! `history/<role>`: the last 20 rotations of a role, without secrets.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::framework::{Error, Storage, get_json, put_json};

use super::clock::rfc3339;
use super::role::{FailureClass, Trigger};

pub const STORAGE_PREFIX: &str = "history/";
pub const KEEP: usize = 20;

/// How a rotation's run ended, as its history entry says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Succeeded,
    /// Gave up, or the target refused a change it never applied.
    Failed,
    /// The target or a job could not take the change yet; the same
    /// rotation continues later under the same id.
    Deferred,
    /// Dropped: the target holds a password Vault did not set.
    Drifted,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Deferred => "deferred",
            Self::Drifted => "drifted",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub rotation_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    pub trigger: Trigger,
    pub outcome: Outcome,
    #[serde(default)]
    pub error_class: Option<FailureClass>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub request_ids: Vec<String>,
    #[serde(default)]
    pub dependents_updated: Vec<String>,
    pub attempts: u32,
    /// What happened on the way an operator should know about, e.g. a DCS
    /// refusal of the old password.
    #[serde(default)]
    pub events: Vec<String>,
}

impl Entry {
    pub fn describe(&self) -> Value {
        json!({
            "rotation_id": self.rotation_id,
            "started_at": rfc3339(self.started_at),
            "updated_at": rfc3339(self.updated_at),
            "trigger": self.trigger.as_str(),
            "outcome": self.outcome.as_str(),
            "error_class": self.error_class.map(FailureClass::as_str),
            "error": self.error,
            "request_ids": self.request_ids,
            "dependents_updated": self.dependents_updated,
            "attempts": self.attempts,
            "events": self.events,
        })
    }
}

fn key(role: &str) -> String {
    format!("{STORAGE_PREFIX}{role}")
}

pub async fn load(storage: &dyn Storage, role: &str) -> Result<Vec<Entry>, Error> {
    Ok(get_json(storage, &key(role)).await?.unwrap_or_default())
}

/// Adds the entry, or replaces the one with the same rotation id (a
/// rotation that was deferred and then finished is one rotation).
pub async fn record(storage: &dyn Storage, role: &str, entry: Entry) -> Result<(), Error> {
    let mut entries = load(storage, role).await?;
    match entries
        .iter_mut()
        .find(|e| e.rotation_id == entry.rotation_id)
    {
        Some(existing) => *existing = entry,
        None => entries.push(entry),
    }
    let excess = entries.len().saturating_sub(KEEP);
    entries.drain(..excess);
    put_json(storage, &key(role), &entries).await
}

pub async fn delete(storage: &dyn Storage, role: &str) -> Result<(), Error> {
    storage.delete(&key(role)).await?;
    Ok(())
}
