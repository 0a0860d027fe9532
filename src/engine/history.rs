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
    /// Dual-account roles: the account the rotation changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Dual-account roles: the account `static-creds` served when the run
    /// started and when it ended (they differ once the target confirmed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_after: Option<String>,
}

impl Entry {
    pub fn describe(&self) -> Value {
        let mut out = json!({
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
        });
        let map = out.as_object_mut().expect("an object");
        for (key, value) in [
            ("account", &self.account),
            ("active_before", &self.active_before),
            ("active_after", &self.active_after),
        ] {
            if let Some(value) = value {
                map.insert(key.into(), json!(value));
            }
        }
        out
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

#[cfg(test)]
mod tests {
    use super::*;

    /// An entry as the release before dual-account roles stored it.
    fn stored_entry() -> Value {
        json!({
            "rotation_id": "0011223344556677",
            "started_at": "2026-12-02T03:00:00Z",
            "updated_at": "2026-12-02T03:00:05Z",
            "trigger": "schedule",
            "outcome": "succeeded",
            "error_class": null,
            "error": null,
            "request_ids": ["req-1"],
            "dependents_updated": [],
            "attempts": 1,
            "events": []
        })
    }

    #[test]
    fn single_role_entries_load_store_and_read_unchanged() {
        let entry: Entry = serde_json::from_value(stored_entry()).unwrap();
        assert_eq!(entry.account, None);
        assert_eq!(serde_json::to_value(&entry).unwrap(), stored_entry());
        let shown = entry.describe();
        assert!(shown.get("account").is_none() && shown.get("active_after").is_none());
    }

    #[test]
    fn dual_role_entries_show_the_account_and_the_flip() {
        let mut entry: Entry = serde_json::from_value(stored_entry()).unwrap();
        entry.account = Some("app_green".into());
        entry.active_before = Some("app_blue".into());
        entry.active_after = Some("app_green".into());
        let shown = entry.describe();
        assert_eq!(shown["account"], json!("app_green"));
        assert_eq!(shown["active_before"], json!("app_blue"));
        assert_eq!(shown["active_after"], json!("app_green"));
        let stored = serde_json::to_value(&entry).unwrap();
        let loaded: Entry = serde_json::from_value(stored).unwrap();
        assert_eq!(loaded.active_after.as_deref(), Some("app_green"));
    }
}
