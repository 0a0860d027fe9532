//! The `pb.Backend` service: one engine instance per mount, chosen by the
//! `multiplex_id` the host sends with every call, so many mounts can share
//! this process.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use tokio_rustls::TlsConnector;
use tonic::{Request, Response, Status};

use super::broker::Broker;
use super::convert;
use super::host::{HostStorage, HostSystemView};
use super::proto::pb;
use super::proto::pb::backend_server;
use super::transport;
use crate::framework::{Backend, BackendConfig, Factory};

/// go-plugin's `logical.TypeLogical`: a secrets engine.
const TYPE_SECRETS: u32 = 1;

pub struct Mounts {
    factory: Factory,
    broker: Arc<Broker>,
    tls: TlsConnector,
    by_id: RwLock<HashMap<String, Arc<dyn Backend>>>,
}

impl Mounts {
    pub fn new(factory: Factory, broker: Arc<Broker>, tls: TlsConnector) -> Arc<Self> {
        Arc::new(Self {
            factory,
            broker,
            tls,
            by_id: RwLock::new(HashMap::new()),
        })
    }

    fn get(&self, id: &str) -> Result<Arc<dyn Backend>, Status> {
        self.by_id
            .read()
            .expect("mounts lock")
            .get(id)
            .cloned()
            .ok_or_else(|| Status::failed_precondition("this mount has not been set up"))
    }

    /// Stops every mount's background work (process shutdown).
    pub async fn cleanup_all(&self) {
        let all: Vec<Arc<dyn Backend>> = self
            .by_id
            .write()
            .expect("mounts lock")
            .drain()
            .map(|(_, backend)| backend)
            .collect();
        for backend in all {
            backend.cleanup().await;
        }
    }

    async fn set_up(&self, id: &str, args: pb::SetupArgs) -> Result<(), String> {
        let (broker, broker_id) = (self.broker.clone(), args.broker_id);
        let open = move || {
            let broker = broker.clone();
            async move { broker.connect(broker_id).await }
        };
        let channel = transport::dial(open, self.tls.clone())
            .await
            .map_err(|err| {
                format!(
                    "cannot reach the host's storage (broker id {broker_id}): {}",
                    error_chain(&err)
                )
            })?;
        tracing::debug!(multiplex_id = %id, broker_id, "connected to the host's storage");
        let backend = (self.factory)(BackendConfig {
            config: args.config,
            backend_uuid: args.backend_uuid,
            storage: Arc::new(HostStorage::new(channel.clone())),
            system: Arc::new(HostSystemView::new(channel)),
        })
        .map_err(|err| err.to_string())?;
        let previous = self
            .by_id
            .write()
            .expect("mounts lock")
            .insert(id.to_owned(), backend);
        if let Some(previous) = previous {
            previous.cleanup().await;
        }
        Ok(())
    }
}

/// An error and its causes, which tonic keeps out of its own message.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn multiplex_id<T>(request: &Request<T>) -> String {
    request
        .metadata()
        .get("multiplex_id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Runs engine work in its own task, so a host that gives up on a call
/// (timeout, cancelled client) never cuts a rotation between two steps.
async fn detached<T: Send + 'static>(
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> Result<T, Status> {
    tokio::spawn(work).await.map_err(|err| {
        tracing::error!(error = %err, "a request handler panicked");
        Status::internal("internal error")
    })
}

#[tonic::async_trait]
impl backend_server::Backend for Arc<Mounts> {
    async fn handle_request(
        &self,
        request: Request<pb::HandleRequestArgs>,
    ) -> Result<Response<pb::HandleRequestReply>, Status> {
        let backend = self.get(&multiplex_id(&request))?;
        let wire = request.into_inner().request.unwrap_or_default();
        let result = match convert::request(wire) {
            Ok(request) => detached(async move { backend.handle_request(request).await }).await?,
            Err(err) => Err(err),
        };
        Ok(Response::new(convert::handle_request_reply(
            result,
            SystemTime::now(),
        )))
    }

    async fn special_paths(
        &self,
        request: Request<pb::Empty>,
    ) -> Result<Response<pb::SpecialPathsReply>, Status> {
        let backend = self.get(&multiplex_id(&request))?;
        Ok(Response::new(pb::SpecialPathsReply {
            paths: Some(convert::special_paths(backend.special_paths())),
        }))
    }

    async fn handle_existence_check(
        &self,
        request: Request<pb::HandleExistenceCheckArgs>,
    ) -> Result<Response<pb::HandleExistenceCheckReply>, Status> {
        let backend = self.get(&multiplex_id(&request))?;
        let wire = request.into_inner().request.unwrap_or_default();
        let result = match convert::request(wire) {
            Ok(request) => detached(async move { backend.existence_check(&request).await }).await?,
            Err(err) => Err(err),
        };
        Ok(Response::new(convert::existence_reply(result)))
    }

    async fn cleanup(&self, request: Request<pb::Empty>) -> Result<Response<pb::Empty>, Status> {
        let id = multiplex_id(&request);
        // Called more than once per mount: only the first finds it.
        let backend = self.by_id.write().expect("mounts lock").remove(&id);
        if let Some(backend) = backend {
            backend.cleanup().await;
            tracing::info!(multiplex_id = %id, "mount cleaned up");
        }
        Ok(Response::new(pb::Empty {}))
    }

    async fn invalidate_key(
        &self,
        request: Request<pb::InvalidateKeyArgs>,
    ) -> Result<Response<pb::Empty>, Status> {
        let backend = self.get(&multiplex_id(&request))?;
        backend.invalidate(&request.into_inner().key).await;
        Ok(Response::new(pb::Empty {}))
    }

    async fn setup(
        &self,
        request: Request<pb::SetupArgs>,
    ) -> Result<Response<pb::SetupReply>, Status> {
        let id = multiplex_id(&request);
        let args = request.into_inner();
        let plugin = args.config.get("plugin_name").cloned().unwrap_or_default();
        let err = match self.set_up(&id, args).await {
            Ok(()) => {
                tracing::info!(multiplex_id = %id, plugin_name = %plugin, "mount set up");
                String::new()
            }
            Err(err) => {
                tracing::error!(multiplex_id = %id, error = %err, "mount setup failed");
                err
            }
        };
        Ok(Response::new(pb::SetupReply { err }))
    }

    async fn initialize(
        &self,
        request: Request<pb::InitializeArgs>,
    ) -> Result<Response<pb::InitializeReply>, Status> {
        let backend = self.get(&multiplex_id(&request))?;
        let err = backend.initialize().await.err().map(|e| convert::error(&e));
        Ok(Response::new(pb::InitializeReply { err }))
    }

    async fn r#type(&self, _: Request<pb::Empty>) -> Result<Response<pb::TypeReply>, Status> {
        Ok(Response::new(pb::TypeReply {
            r#type: TYPE_SECRETS,
        }))
    }
}
