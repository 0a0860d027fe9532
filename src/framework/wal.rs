//! The write-ahead log, in Vault's convention: before a handler creates a
//! cloud object it writes an entry under `wal/`, and deletes it once the
//! object is accounted for (by a lease). An entry left behind (the handler
//! failed half-way, the node died) outlives the backend's minimum age, and
//! the host's rollback tick hands it to `Lifecycle::wal_rollback` to undo.
//! Entries keep the SDK's JSON shape, so either side's tools read them.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use super::error::Error;
use super::router::Lifecycle;
use super::storage::{Storage, put_json};

pub const PREFIX: &str = "wal/";

/// The SDK's default `WALRollbackMinAge`. It must be longer than the
/// slowest successful create, or a rollback undoes an object still being
/// set up.
pub const DEFAULT_MIN_AGE: Duration = Duration::from_secs(10 * 60);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WalEntry {
    #[serde(rename = "type")]
    pub kind: String,
    /// The SDK writes `null` for no data; accept a missing field the same.
    #[serde(default)]
    pub data: Value,
    /// Unix seconds, UTC.
    pub created_at: i64,
}

/// Writes an entry created at `now` and returns its id.
pub async fn put(
    storage: &dyn Storage,
    kind: &str,
    data: Value,
    now: OffsetDateTime,
) -> Result<String, Error> {
    let id = new_id();
    let entry = WalEntry {
        kind: kind.to_owned(),
        data,
        created_at: now.unix_timestamp(),
    };
    put_json(storage, &key(&id), &entry).await?;
    Ok(id)
}

/// `None` when the entry is gone (rolled back, or committed by `delete`).
pub async fn get(storage: &dyn Storage, id: &str) -> Result<Option<WalEntry>, Error> {
    let key = key(id);
    let Some(bytes) = storage.get(&key).await? else {
        return Ok(None);
    };
    // serde's message can quote the value, which may hold a secret: say
    // only where it failed.
    serde_json::from_slice(&bytes).map(Some).map_err(|err| {
        Error::internal(format!(
            "stored entry {key:?} is not a WAL entry ({:?} error at line {} column {})",
            err.classify(),
            err.line(),
            err.column()
        ))
    })
}

/// The ids of every entry, as `get` and `delete` take them.
pub async fn list(storage: &dyn Storage) -> Result<Vec<String>, Error> {
    // The storage view already answers with names relative to the prefix.
    Ok(storage.list(PREFIX).await?)
}

/// Commits what the entry guarded: nothing is left to roll back.
pub async fn delete(storage: &dyn Storage, id: &str) -> Result<(), Error> {
    Ok(storage.delete(&key(id)).await?)
}

/// What a rollback hook answers for a kind it does not know: the entry is
/// kept, so a later version that knows the kind can still undo it.
pub fn unknown_kind(kind: &str) -> Error {
    Error::internal(format!(
        "this backend cannot roll back WAL entries of kind {kind:?}"
    ))
}

fn key(id: &str) -> String {
    format!("{PREFIX}{id}")
}

/// Random, in the 8-4-4-4-12 shape of the SDK's ids, so entries look alike
/// whichever side wrote them.
fn new_id() -> String {
    let hex = hex::encode(rand::random::<[u8; 16]>());
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// The WAL half of the rollback operation. Every entry at least the
/// backend's minimum age old (all of them when `immediate`) goes to its
/// hook, and is deleted once the hook succeeds; a failed one stays for the
/// next tick. Returns one message per entry that failed, naming its id and
/// kind but never its data, so one bad entry never stops the others.
pub(super) async fn roll_back<S: Lifecycle>(state: &Arc<S>, immediate: bool) -> Vec<String> {
    let storage = state.storage();
    let ids = match list(storage).await {
        Ok(ids) => ids,
        Err(err) => return vec![format!("cannot list the WAL: {err}")],
    };
    let now = state.now().unix_timestamp();
    let min_age = i64::try_from(state.wal_rollback_min_age().as_secs()).unwrap_or(i64::MAX);
    let mut failures = Vec::new();
    for id in ids {
        let entry = match get(storage, &id).await {
            Ok(Some(entry)) => entry,
            // Committed by its handler since the list: nothing to undo.
            Ok(None) => continue,
            // Not deleted: it may be the only record of a cloud object (or
            // one a newer version wrote), so it stays, and says so every
            // tick, until someone looks at it.
            Err(err) => {
                failures.push(format!("WAL entry {id} kept: {err}"));
                continue;
            }
        };
        if !immediate && now.saturating_sub(entry.created_at) < min_age {
            continue;
        }
        let kind = &entry.kind;
        if let Err(err) = S::wal_rollback(state.clone(), kind, &entry.data).await {
            failures.push(format!(
                "WAL entry {id} of kind {kind:?} kept, its rollback failed: {err}"
            ));
            continue;
        }
        if let Err(err) = delete(storage, &id).await {
            failures.push(format!(
                "WAL entry {id} of kind {kind:?} rolled back but not deleted (it runs again): {err}"
            ));
        }
    }
    failures
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use serde_json::json;
    use time::macros::datetime;

    use super::*;
    use crate::framework::{
        Backend, BackendInfo, Framework, MemoryStorage, Operation, Request, SpecialPaths,
    };

    const NOW: OffsetDateTime = datetime!(2030-01-01 12:00 UTC);
    const SECRET: &str = "s3cr3t-in-data";
    /// Old enough for any minimum age the tests set.
    const HOUR: Duration = Duration::from_secs(3600);

    /// Rolls back kind "user" (records it), fails kind "stuck", knows no
    /// other kind; its periodic fails when told to.
    struct Cloud {
        storage: MemoryStorage,
        now: Mutex<OffsetDateTime>,
        min_age: Duration,
        periodic_runs: AtomicUsize,
        periodic_fails: bool,
        rolled_back: Mutex<Vec<Value>>,
    }

    impl Cloud {
        fn new() -> Self {
            Self {
                storage: MemoryStorage::new(),
                now: Mutex::new(NOW),
                min_age: DEFAULT_MIN_AGE,
                periodic_runs: AtomicUsize::new(0),
                periodic_fails: false,
                rolled_back: Mutex::new(Vec::new()),
            }
        }

        async fn put_aged(&self, kind: &str, data: Value, age: Duration) -> String {
            put(&self.storage, kind, data, NOW - age).await.unwrap()
        }

        fn rolled_back(&self) -> Vec<Value> {
            self.rolled_back.lock().unwrap().clone()
        }

        async fn ids(&self) -> Vec<String> {
            list(&self.storage).await.unwrap()
        }
    }

    #[async_trait]
    impl Lifecycle for Cloud {
        async fn initialize(self: Arc<Self>) -> Result<(), Error> {
            Ok(())
        }
        async fn periodic(self: Arc<Self>) -> Result<(), Error> {
            self.periodic_runs.fetch_add(1, Ordering::SeqCst);
            if self.periodic_fails {
                return Err(Error::unavailable("the timetable is down"));
            }
            Ok(())
        }
        async fn cleanup(&self) {}
        async fn invalidate(&self, _key: &str) {}
        fn storage(&self) -> &dyn Storage {
            &self.storage
        }
        fn now(&self) -> OffsetDateTime {
            *self.now.lock().unwrap()
        }
        async fn wal_rollback(self: Arc<Self>, kind: &str, data: &Value) -> Result<(), Error> {
            match kind {
                "user" => {
                    self.rolled_back.lock().unwrap().push(data.clone());
                    Ok(())
                }
                "stuck" => Err(Error::internal("the cloud said no")),
                other => Err(unknown_kind(other)),
            }
        }
        fn wal_rollback_min_age(&self) -> Duration {
            self.min_age
        }
    }

    fn framework<S: Lifecycle>(state: S) -> Framework<S> {
        Framework {
            state: Arc::new(state),
            info: BackendInfo {
                title: "wal",
                help: "Tests the WAL.",
                version: "v0.0.1".into(),
            },
            paths: Vec::new(),
            secrets: Vec::new(),
            special_paths: SpecialPaths::default(),
        }
    }

    /// As the host sends it: no path, no data.
    async fn rollback<S: Lifecycle>(backend: &Framework<S>) -> Result<(), Error> {
        let answer = backend
            .handle_request(Request::new(Operation::Rollback, ""))
            .await?;
        assert_eq!(answer, None);
        Ok(())
    }

    fn message(result: Result<(), Error>) -> String {
        match result.unwrap_err() {
            Error::Internal(message) => message,
            other => panic!("not an internal error: {other:?}"),
        }
    }

    #[tokio::test]
    async fn list_strips_the_prefix_and_entries_round_trip() {
        let storage = MemoryStorage::new();
        let data = json!({ "account": "u-1", "instance": "pc-1" });
        let id = put(&storage, "account", data.clone(), NOW).await.unwrap();
        let other = put(&storage, "account", Value::Null, NOW).await.unwrap();
        assert_ne!(id, other);
        assert_eq!(id.len(), 36, "{id}");

        let mut ids = list(&storage).await.unwrap();
        ids.sort();
        let mut expected = vec![id.clone(), other.clone()];
        expected.sort();
        assert_eq!(ids, expected);
        assert_eq!(storage.keys().len(), 2);
        assert!(storage.keys().contains(&format!("wal/{id}")));

        let raw: Value =
            serde_json::from_slice(&storage.get(&format!("wal/{id}")).await.unwrap().unwrap())
                .unwrap();
        assert_eq!(
            raw,
            json!({ "type": "account", "data": data, "created_at": NOW.unix_timestamp() })
        );
        assert_eq!(
            get(&storage, &id).await.unwrap(),
            Some(WalEntry {
                kind: "account".into(),
                data,
                created_at: NOW.unix_timestamp(),
            })
        );

        delete(&storage, &id).await.unwrap();
        assert_eq!(get(&storage, &id).await.unwrap(), None);
        assert_eq!(list(&storage).await.unwrap(), vec![other]);
    }

    #[tokio::test]
    async fn reads_entries_the_sdk_wrote() {
        let storage = MemoryStorage::new();
        // Go's json.Marshal of framework.WALEntry: ID is `json:"-"`.
        let go = br#"{"type":"user","data":{"UserName":"vault-u-1"},"created_at":1700000000}"#;
        storage
            .put("wal/0b5e6c2a-1f3d-4e8b-9a7c-2d4e6f8a0b1c", go.to_vec())
            .await
            .unwrap();
        storage
            .put(
                "wal/nil-data",
                br#"{"type":"role","data":null,"created_at":1}"#.to_vec(),
            )
            .await
            .unwrap();
        assert_eq!(
            get(&storage, "0b5e6c2a-1f3d-4e8b-9a7c-2d4e6f8a0b1c")
                .await
                .unwrap(),
            Some(WalEntry {
                kind: "user".into(),
                data: json!({ "UserName": "vault-u-1" }),
                created_at: 1_700_000_000,
            })
        );
        assert_eq!(
            get(&storage, "nil-data").await.unwrap().unwrap().data,
            Value::Null
        );
    }

    #[tokio::test]
    async fn keeps_young_entries_and_rolls_back_and_deletes_old_ones() {
        let backend = framework(Cloud::new());
        let cloud = &backend.state;
        let minute = Duration::from_secs(60);
        let young = cloud.put_aged("user", json!("young"), 9 * minute).await;
        cloud.put_aged("user", json!("old"), 11 * minute).await;
        cloud.put_aged("user", json!("just old"), 10 * minute).await;

        rollback(&backend).await.unwrap();
        let mut done = cloud.rolled_back();
        done.sort_by_key(Value::to_string);
        assert_eq!(done, vec![json!("just old"), json!("old")]);
        assert_eq!(cloud.ids().await, vec![young.clone()]);

        // A minute later the young one is old enough.
        *cloud.now.lock().unwrap() += minute;
        rollback(&backend).await.unwrap();
        assert_eq!(cloud.rolled_back().len(), 3);
        assert!(cloud.ids().await.is_empty());
        assert_eq!(cloud.periodic_runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn the_backend_sets_the_minimum_age() {
        let backend = framework(Cloud {
            min_age: Duration::from_secs(5 * 60),
            ..Cloud::new()
        });
        let cloud = &backend.state;
        let young = cloud
            .put_aged("user", json!("4m"), Duration::from_secs(4 * 60))
            .await;
        cloud
            .put_aged("user", json!("6m"), Duration::from_secs(6 * 60))
            .await;
        rollback(&backend).await.unwrap();
        assert_eq!(cloud.rolled_back(), vec![json!("6m")]);
        assert_eq!(cloud.ids().await, vec![young]);
    }

    #[tokio::test]
    async fn immediate_rolls_back_young_entries_too() {
        let backend = framework(Cloud::new());
        let cloud = &backend.state;
        cloud.put_aged("user", json!("new"), Duration::ZERO).await;
        // A clock that was ahead when the entry was written.
        let ahead = NOW + Duration::from_secs(60);
        put(&cloud.storage, "user", json!("ahead"), ahead)
            .await
            .unwrap();

        let request =
            Request::new(Operation::Rollback, "").with_data(json!({ "immediate": false }));
        assert_eq!(backend.handle_request(request).await.unwrap(), None);
        assert_eq!(cloud.rolled_back().len(), 2);
        assert!(cloud.ids().await.is_empty());
    }

    #[tokio::test]
    async fn a_failing_rollback_keeps_its_entry_and_the_others_still_run() {
        let backend = framework(Cloud::new());
        let cloud = &backend.state;
        cloud.put_aged("user", json!("a"), HOUR).await;
        let stuck = cloud
            .put_aged("stuck", json!({ "password": SECRET }), HOUR)
            .await;
        let unknown = cloud
            .put_aged("bucket", json!({ "password": SECRET }), HOUR)
            .await;
        cloud.put_aged("user", json!("b"), HOUR).await;

        let text = message(rollback(&backend).await);
        assert!(
            text.contains(&format!(
                "WAL entry {stuck} of kind \"stuck\" kept, its rollback failed: the cloud said no"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!("WAL entry {unknown} of kind \"bucket\" kept"))
                && text.contains("cannot roll back WAL entries of kind \"bucket\""),
            "{text}"
        );
        assert!(!text.contains(SECRET), "{text}");
        assert_eq!(cloud.rolled_back().len(), 2);
        let mut kept = vec![stuck, unknown];
        kept.sort();
        assert_eq!(cloud.ids().await, kept);

        // Kept entries come back on the next tick.
        let again = message(rollback(&backend).await);
        assert!(
            again.contains(&kept[0]) && again.contains(&kept[1]),
            "{again}"
        );
    }

    #[tokio::test]
    async fn periodic_and_the_wal_pass_each_run_when_the_other_fails() {
        let backend = framework(Cloud {
            periodic_fails: true,
            ..Cloud::new()
        });
        let cloud = &backend.state;
        cloud.put_aged("user", json!("done"), HOUR).await;
        let stuck = cloud.put_aged("stuck", json!("kept"), HOUR).await;

        let text = message(rollback(&backend).await);
        assert_eq!(cloud.periodic_runs.load(Ordering::SeqCst), 1);
        assert_eq!(cloud.rolled_back(), vec![json!("done")]);
        assert!(text.contains("periodic: the timetable is down"), "{text}");
        assert!(text.contains(&format!("WAL entry {stuck}")), "{text}");

        // With the WAL clean, periodic's error comes back as it was.
        delete(&cloud.storage, &stuck).await.unwrap();
        assert_eq!(
            rollback(&backend).await.unwrap_err(),
            Error::unavailable("the timetable is down")
        );
    }

    #[tokio::test]
    async fn a_corrupt_entry_is_reported_and_kept_and_the_pass_goes_on() {
        let backend = framework(Cloud::new());
        let cloud = &backend.state;
        cloud.put_aged("user", json!("first"), HOUR).await;
        cloud.put_aged("user", json!("last"), HOUR).await;
        let raw: [(&str, &[u8]); 4] = [
            ("wal/0-corrupt", b"not json"),
            ("wal/1-no-time", br#"{"type":"user","data":1}"#),
            ("wal/2-string", br#""s3cr3t-in-data""#),
            // Listed, but `get` finds nothing there: skipped without a
            // word, as when its handler commits between the list and the get.
            ("wal/3-folder/x", b"{}"),
        ];
        for (key, value) in raw {
            cloud.storage.put(key, value.to_vec()).await.unwrap();
        }

        let text = message(rollback(&backend).await);
        assert!(!text.contains("3-folder"), "{text}");
        assert!(
            text.contains(
                "WAL entry 0-corrupt kept: stored entry \"wal/0-corrupt\" is not a WAL entry (Syntax error at line 1 column 2)"
            ),
            "{text}"
        );
        assert!(text.contains("WAL entry 1-no-time kept"), "{text}");
        assert!(text.contains("WAL entry 2-string kept"), "{text}");
        assert!(!text.contains(SECRET), "{text}");
        assert_eq!(cloud.rolled_back().len(), 2);
        assert_eq!(
            cloud.ids().await,
            vec!["0-corrupt", "1-no-time", "2-string", "3-folder/"]
        );
    }
}
