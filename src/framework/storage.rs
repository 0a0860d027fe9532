//! The storage view a mount gets from its host, as a transport-free trait,
//! plus JSON helpers and an in-memory implementation for tests and benches.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::Error;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// This node may not write (standby, performance secondary, or during
    /// setup). The text is the host's own: an error that carries it makes
    /// OpenBao forward the request to the active node.
    #[error("cannot write to readonly storage")]
    ReadOnly,
    /// The host has no storage for this backend (registration probe) or the
    /// connection to it failed.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("{0}")]
    Backend(String),
}

/// Keys are relative to the mount. `list` returns the names directly under
/// `prefix`; names of "folders" end in `/`.
#[async_trait]
pub trait Storage: Send + Sync {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError>;
    async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), StorageError>;
    async fn delete(&self, key: &str) -> Result<(), StorageError>;
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError>;
}

pub async fn get_json<T: DeserializeOwned>(
    storage: &dyn Storage,
    key: &str,
) -> Result<Option<T>, Error> {
    match storage.get(key).await? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|err| Error::internal(format!("stored entry {key:?} is not valid: {err}"))),
    }
}

pub async fn put_json<T: Serialize + ?Sized>(
    storage: &dyn Storage,
    key: &str,
    value: &T,
) -> Result<(), Error> {
    let bytes = serde_json::to_vec(value)
        .map_err(|err| Error::internal(format!("cannot encode {key:?}: {err}")))?;
    storage.put(key, bytes).await?;
    Ok(())
}

/// Counts of calls, so benchmarks can show how many storage operations a
/// piece of work costs.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StorageOps {
    pub gets: u64,
    pub puts: u64,
    pub deletes: u64,
    pub lists: u64,
}

impl StorageOps {
    pub fn total(&self) -> u64 {
        self.gets + self.puts + self.deletes + self.lists
    }
}

#[derive(Default)]
pub struct MemoryStorage {
    entries: Mutex<BTreeMap<String, Vec<u8>>>,
    gets: AtomicU64,
    puts: AtomicU64,
    deletes: AtomicU64,
    lists: AtomicU64,
}

impl MemoryStorage {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn ops(&self) -> StorageOps {
        StorageOps {
            gets: self.gets.load(Ordering::Relaxed),
            puts: self.puts.load(Ordering::Relaxed),
            deletes: self.deletes.load(Ordering::Relaxed),
            lists: self.lists.load(Ordering::Relaxed),
        }
    }

    pub fn keys(&self) -> Vec<String> {
        self.entries
            .lock()
            .expect("storage lock")
            .keys()
            .cloned()
            .collect()
    }
}

#[async_trait]
impl Storage for MemoryStorage {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        self.gets.fetch_add(1, Ordering::Relaxed);
        Ok(self.entries.lock().expect("storage lock").get(key).cloned())
    }

    async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), StorageError> {
        self.puts.fetch_add(1, Ordering::Relaxed);
        self.entries
            .lock()
            .expect("storage lock")
            .insert(key.to_owned(), value);
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.deletes.fetch_add(1, Ordering::Relaxed);
        self.entries.lock().expect("storage lock").remove(key);
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        self.lists.fetch_add(1, Ordering::Relaxed);
        let entries = self.entries.lock().expect("storage lock");
        let mut names: Vec<String> = Vec::new();
        for key in entries
            .range(prefix.to_owned()..)
            .map(|(k, _)| k)
            .take_while(|k| k.starts_with(prefix))
        {
            let rest = &key[prefix.len()..];
            let name = match rest.find('/') {
                Some(slash) => &rest[..=slash],
                None => rest,
            };
            if names.last().map(String::as_str) != Some(name) {
                names.push(name.to_owned());
            }
        }
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn list_returns_direct_children_and_folders_once() {
        let storage = MemoryStorage::new();
        for key in [
            "role/a",
            "role/b",
            "role/sub/x",
            "role/sub/y",
            "roles",
            "other/z",
        ] {
            storage.put(key, b"1".to_vec()).await.unwrap();
        }
        assert_eq!(storage.list("role/").await.unwrap(), vec!["a", "b", "sub/"]);
        assert_eq!(
            storage.list("").await.unwrap(),
            vec!["other/", "role/", "roles"]
        );
        assert_eq!(storage.ops().lists, 2);
    }
}
