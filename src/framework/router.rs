//! `Framework` turns a path table plus engine state into a `Backend`:
//! routing, field coercion, create/update existence checks, lease renew and
//! revoke dispatch, help and OpenAPI.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::backend::{Backend, Existence, SpecialPaths};
use super::error::Error;
use super::field::FieldData;
use super::help;
use super::operation::Operation;
use super::path::{Captures, Handler, Path, validate_name};
use super::request::Request;
use super::response::Response;
use super::storage::Storage;
use super::wal;

/// The key under which a lease's `internal_data` names its secret type.
pub const SECRET_TYPE_KEY: &str = "secret_type";

/// Handlers for a kind of leased secret.
pub struct SecretType<S> {
    pub name: &'static str,
    pub renew: Handler<S>,
    pub revoke: Handler<S>,
}

/// Hooks an engine implements for the mount's lifecycle.
#[async_trait]
pub trait Lifecycle: Send + Sync + 'static {
    /// Storage is available: start background work.
    async fn initialize(self: Arc<Self>) -> Result<(), Error>;
    /// The host's rollback tick, about once a minute.
    async fn periodic(self: Arc<Self>) -> Result<(), Error>;
    /// Stop background work; may run more than once.
    async fn cleanup(&self);
    /// A storage key changed under this node.
    async fn invalidate(&self, key: &str);
    /// The mount's storage, where the rollback tick looks for WAL entries.
    fn storage(&self) -> &dyn Storage;
    /// The time WAL entries are aged against. A backend with its own clock
    /// returns it, so tests that move that clock age the entries too.
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
    /// Undoes what a WAL entry of `kind` recorded. It may run again for the
    /// same entry (the delete after it failed, the node stopped), so an
    /// object already gone counts as success. On error the entry is kept
    /// for the next tick; the error's text is logged, so no secrets.
    async fn wal_rollback(self: Arc<Self>, kind: &str, _data: &Value) -> Result<(), Error> {
        Err(wal::unknown_kind(kind))
    }
    /// How old an entry must be before it is rolled back: longer than the
    /// slowest create it guards, which deletes it on success.
    fn wal_rollback_min_age(&self) -> Duration {
        wal::DEFAULT_MIN_AGE
    }
}

/// Static facts about a backend, for help and OpenAPI.
#[derive(Debug, Clone)]
pub struct BackendInfo {
    pub title: &'static str,
    pub help: &'static str,
    pub version: String,
}

pub struct Framework<S> {
    pub state: Arc<S>,
    pub info: BackendInfo,
    pub paths: Vec<Path<S>>,
    pub secrets: Vec<SecretType<S>>,
    pub special_paths: SpecialPaths,
}

impl<S: Lifecycle> Framework<S> {
    fn route(&self, path: &str) -> Result<(&Path<S>, Captures), Error> {
        let (matched, captures) = self
            .paths
            .iter()
            .find_map(|candidate| {
                candidate
                    .matches(path)
                    .map(|captures| (candidate, captures))
            })
            .ok_or(Error::UnsupportedPath)?;
        for (_, value) in &captures {
            validate_name(value).map_err(Error::BadRequest)?;
        }
        Ok((matched, captures))
    }

    fn field_data(
        &self,
        path: &Path<S>,
        request: &Request,
        captures: &[(&'static str, String)],
    ) -> Result<FieldData, Error> {
        let is_write = matches!(request.operation, Operation::Create | Operation::Update);
        let data = FieldData::parse(&path.fields, &request.data, captures, is_write)?;
        let missing = (request.operation == Operation::Create)
            .then(|| {
                path.fields
                    .iter()
                    .find(|field| field.required && !data.provided(field.name))
            })
            .flatten();
        if let Some(missing) = missing {
            return Err(Error::bad_request(format!(
                "missing required field {:?}: {}",
                missing.name, missing.description
            )));
        }
        Ok(data)
    }

    async fn lease_operation(&self, request: &Request) -> Result<Option<Response>, Error> {
        let secret_type = request
            .secret
            .as_ref()
            .and_then(|lease| lease.internal_data.get(SECRET_TYPE_KEY))
            .and_then(Value::as_str)
            .ok_or(Error::UnsupportedOperation)?;
        let kind = self
            .secrets
            .iter()
            .find(|kind| kind.name == secret_type)
            .ok_or_else(|| {
                Error::internal(format!("lease has unknown secret type {secret_type:?}"))
            })?;
        let handler = if request.operation == Operation::Renew {
            kind.renew
        } else {
            kind.revoke
        };
        handler(&self.state, request, &FieldData::default()).await
    }

    /// The host's tick: `periodic`, then the WAL pass, as the SDK orders
    /// them; neither's failure skips the other, and the answer carries both.
    async fn rollback(&self, request: &Request) -> Result<Option<Response>, Error> {
        let periodic = S::periodic(self.state.clone()).await;
        // Only test harnesses send it; any value counts, as in the SDK.
        let immediate = request.data.contains_key("immediate");
        let wal = wal::roll_back(&self.state, immediate).await;
        if wal.is_empty() {
            // Alone, periodic's error keeps its kind (the host matches the
            // read-only storage text, and a status says more than a list).
            return periodic.map(|()| None);
        }
        let failures: Vec<String> = periodic
            .err()
            .map(|err| format!("periodic: {err}"))
            .into_iter()
            .chain(wal)
            .collect();
        Err(Error::internal(format!(
            "rollback: {}",
            failures.join("; ")
        )))
    }

    fn help(&self, request: &Request) -> Result<Option<Response>, Error> {
        let prefix = request
            .data
            .get("requestResponsePrefix")
            .and_then(Value::as_str)
            .unwrap_or(self.info.title);
        let (text, paths): (String, Vec<&Path<S>>) = if request.path.is_empty() {
            (
                help::backend_help(&self.info, &self.paths),
                self.paths.iter().collect(),
            )
        } else {
            let (path, _) = self.route(&request.path)?;
            (help::path_help(path), vec![path])
        };
        let openapi = super::openapi::document(&self.info, &paths, prefix);
        Ok(Some(Response::with_data(
            json!({ "help": text, "see_also": Value::Null, "openapi": openapi }),
        )))
    }
}

#[async_trait]
impl<S: Lifecycle> Backend for Framework<S> {
    async fn handle_request(&self, request: Request) -> Result<Option<Response>, Error> {
        match request.operation {
            Operation::Help => self.help(&request),
            Operation::Rollback => self.rollback(&request).await,
            Operation::Renew | Operation::Revoke => self.lease_operation(&request).await,
            operation => {
                let (path, captures) = self.route(&request.path)?;
                let spec = path
                    .operation(operation)
                    .ok_or(Error::UnsupportedOperation)?;
                let data = self.field_data(path, &request, &captures)?;
                (spec.handler)(&self.state, &request, &data).await
            }
        }
    }

    async fn existence_check(&self, request: &Request) -> Result<Existence, Error> {
        let (path, captures) = self.route(&request.path)?;
        let Some(check) = path.existence_check else {
            return Ok(Existence::NoCheck);
        };
        let data = FieldData::parse(&path.fields, &request.data, &captures, false)?;
        Ok(Existence::Exists(check(&self.state, request, &data).await?))
    }

    fn special_paths(&self) -> SpecialPaths {
        self.special_paths.clone()
    }

    async fn initialize(&self) -> Result<(), Error> {
        S::initialize(self.state.clone()).await
    }

    async fn cleanup(&self) {
        self.state.cleanup().await;
    }

    async fn invalidate(&self, key: &str) {
        self.state.invalidate(key).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::framework::{Field, HandlerResult, LeaseGrant, LeaseInfo, MemoryStorage};
    use crate::handler;

    #[derive(Default)]
    struct Notes {
        saved: Mutex<Vec<(String, String)>>,
        revoked: Mutex<Vec<String>>,
        storage: MemoryStorage,
        ticks: AtomicUsize,
    }

    #[async_trait]
    impl Lifecycle for Notes {
        async fn initialize(self: Arc<Self>) -> Result<(), Error> {
            Ok(())
        }
        async fn periodic(self: Arc<Self>) -> Result<(), Error> {
            self.ticks.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
        async fn cleanup(&self) {}
        async fn invalidate(&self, _key: &str) {}
        fn storage(&self) -> &dyn Storage {
            &self.storage
        }
    }

    async fn write(state: &Arc<Notes>, _: &Request, data: &FieldData) -> HandlerResult {
        let name = data.str("name").unwrap_or_default().to_owned();
        let text = data.str("text").unwrap_or_default().to_owned();
        state.saved.lock().unwrap().push((name, text));
        Ok(None)
    }

    async fn read(state: &Arc<Notes>, _: &Request, data: &FieldData) -> HandlerResult {
        let saved = state.saved.lock().unwrap();
        let name = data.str("name").unwrap_or_default();
        Ok(saved.iter().find(|(n, _)| n == name).map(|(_, text)| {
            Response::with_data(json!({ "text": text })).with_lease(LeaseGrant {
                secret_type: "note".into(),
                internal_data: Default::default(),
                ttl: Duration::from_secs(60),
                max_ttl: Duration::from_secs(120),
                renewable: true,
            })
        }))
    }

    async fn exists(state: &Arc<Notes>, _: &Request, data: &FieldData) -> Result<bool, Error> {
        let name = data.str("name").unwrap_or_default();
        Ok(state.saved.lock().unwrap().iter().any(|(n, _)| n == name))
    }

    async fn revoke(state: &Arc<Notes>, request: &Request, _: &FieldData) -> HandlerResult {
        state
            .revoked
            .lock()
            .unwrap()
            .push(request.secret.as_ref().unwrap().lease_id.clone());
        Ok(None)
    }

    fn backend() -> Framework<Notes> {
        Framework {
            state: Arc::new(Notes::default()),
            info: BackendInfo {
                title: "notes",
                help: "Keeps notes.",
                version: "v0.0.1".into(),
            },
            paths: vec![
                Path::new("notes/{name}")
                    .fields([
                        Field::string("name", "Note name."),
                        Field::string("text", "The note.").required(),
                    ])
                    .on(Operation::Create, "Write a note.", handler!(write))
                    .on(Operation::Update, "Write a note.", handler!(write))
                    .on(Operation::Read, "Read a note.", handler!(read))
                    .existence(|state, request, data| Box::pin(exists(state, request, data)))
                    .help("A note.", "Notes are kept in memory."),
            ],
            secrets: vec![SecretType {
                name: "note",
                renew: handler!(revoke),
                revoke: handler!(revoke),
            }],
            special_paths: SpecialPaths::default(),
        }
    }

    fn request(operation: Operation, path: &str, data: Value) -> Request {
        Request::new(operation, path).with_data(data)
    }

    #[tokio::test]
    async fn routes_writes_reads_and_existence() {
        let backend = backend();
        let create = request(Operation::Create, "notes/a", json!({ "text": "hello" }));
        assert_eq!(
            backend.existence_check(&create).await.unwrap(),
            Existence::Exists(false)
        );
        backend.handle_request(create).await.unwrap();
        let update = request(Operation::Update, "notes/a", json!({ "text": "again" }));
        assert_eq!(
            backend.existence_check(&update).await.unwrap(),
            Existence::Exists(true)
        );
        let read = backend
            .handle_request(request(Operation::Read, "notes/a", json!({})))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(read.data["text"], "hello");
        assert_eq!(read.secret.unwrap().secret_type, "note");
    }

    #[tokio::test]
    async fn rejects_what_it_cannot_serve() {
        let backend = backend();
        let err = |op, path: &str, data| {
            let backend = &backend;
            let req = request(op, path, data);
            async move { backend.handle_request(req).await.unwrap_err() }
        };
        assert_eq!(
            err(Operation::Read, "nothing/here", json!({})).await,
            Error::UnsupportedPath
        );
        assert_eq!(
            err(Operation::Delete, "notes/a", json!({})).await,
            Error::UnsupportedOperation
        );
        let missing = err(Operation::Create, "notes/a", json!({}))
            .await
            .to_string();
        assert!(
            missing.contains("missing required field \"text\""),
            "{missing}"
        );
        let typo = err(Operation::Update, "notes/a", json!({ "txt": "x" }))
            .await
            .to_string();
        assert!(typo.contains("\"txt\"") && typo.contains("text"), "{typo}");
        let bad_name = err(Operation::Read, "notes/-x", json!({}))
            .await
            .to_string();
        assert!(bad_name.contains("invalid name"), "{bad_name}");
    }

    #[tokio::test]
    async fn dispatches_lease_operations_by_secret_type() {
        let backend = backend();
        let mut revoke = Request::new(Operation::Revoke, "notes/a");
        let mut internal = serde_json::Map::new();
        internal.insert(SECRET_TYPE_KEY.into(), json!("note"));
        revoke.secret = Some(LeaseInfo {
            lease_id: "notes/a/123".into(),
            internal_data: internal,
            ..Default::default()
        });
        backend.handle_request(revoke.clone()).await.unwrap();
        assert_eq!(
            backend.state.revoked.lock().unwrap().as_slice(),
            ["notes/a/123"]
        );
        revoke.secret.as_mut().unwrap().internal_data.clear();
        assert_eq!(
            backend.handle_request(revoke).await.unwrap_err(),
            Error::UnsupportedOperation
        );
    }

    #[tokio::test]
    async fn help_carries_text_and_openapi() {
        let backend = backend();
        let root = backend
            .handle_request(request(Operation::Help, "", json!({})))
            .await
            .unwrap()
            .unwrap();
        assert!(root.data["help"].as_str().unwrap().contains("notes/{name}"));
        let doc = &root.data["openapi"];
        assert_eq!(doc["openapi"], "3.0.2");
        let item = &doc["paths"]["/notes/{name}"];
        assert_eq!(item["x-vault-createSupported"], true);
        assert_eq!(item["parameters"][0]["name"], "name");
        let schema_ref =
            item["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                .as_str()
                .unwrap();
        let schema_name = schema_ref.rsplit('/').next().unwrap();
        assert_eq!(
            doc["components"]["schemas"][schema_name]["required"],
            json!(["text"])
        );
        let one = backend
            .handle_request(request(Operation::Help, "notes/x", json!({})))
            .await
            .unwrap()
            .unwrap();
        let text = one.data["help"].as_str().unwrap();
        assert!(text.contains("text (string; required on create)"), "{text}");
    }

    #[tokio::test]
    async fn rollback_without_wal_hooks_runs_periodic_and_keeps_stray_entries() {
        let backend = backend();
        let tick = || backend.handle_request(Request::new(Operation::Rollback, ""));
        assert_eq!(tick().await.unwrap(), None);
        assert_eq!(backend.state.ticks.load(Ordering::SeqCst), 1);
        assert_eq!(backend.state.storage.ops().lists, 1);

        // Aged against the wall clock, the default `now`.
        let written = OffsetDateTime::now_utc() - Duration::from_secs(3600);
        let id = wal::put(&backend.state.storage, "user", json!({}), written)
            .await
            .unwrap();
        let text = tick().await.unwrap_err().to_string();
        assert!(
            text.contains(&format!("WAL entry {id} of kind \"user\" kept"))
                && text.contains("cannot roll back WAL entries of kind \"user\""),
            "{text}"
        );
        assert_eq!(wal::list(&backend.state.storage).await.unwrap(), vec![id]);
        assert_eq!(backend.state.ticks.load(Ordering::SeqCst), 2);
    }
}
