//! The small go-plugin and SDK services around the backend: controller,
//! stdio, plugin version and multiplexing support.

use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::Notify;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::proto::go_plugin::{self, StdioData};
use super::proto::logical;
use super::proto::multiplexing;

/// `GRPCController.Shutdown`: the host's graceful stop.
pub struct Controller(pub Arc<Notify>);

#[tonic::async_trait]
impl go_plugin::grpc_controller_server::GrpcController for Controller {
    async fn shutdown(
        &self,
        _: Request<go_plugin::Empty>,
    ) -> Result<Response<go_plugin::Empty>, Status> {
        self.0.notify_one();
        Ok(Response::new(go_plugin::Empty {}))
    }
}

/// `GRPCStdio`: hosts discard what it carries, and everything we have to
/// say goes to stderr as log lines, so the stream stays open and silent.
pub struct Stdio;

#[tonic::async_trait]
impl go_plugin::grpc_stdio_server::GrpcStdio for Stdio {
    type StreamStdioStream = Pin<Box<dyn Stream<Item = Result<StdioData, Status>> + Send>>;

    async fn stream_stdio(
        &self,
        _: Request<()>,
    ) -> Result<Response<Self::StreamStdioStream>, Status> {
        Ok(Response::new(Box::pin(tokio_stream::pending())))
    }
}

/// The version the host files the plugin under at registration.
pub fn version() -> String {
    format!("v{}", env!("CARGO_PKG_VERSION"))
}

pub struct Version;

#[tonic::async_trait]
impl logical::plugin_version_server::PluginVersion for Version {
    async fn version(
        &self,
        _: Request<logical::Empty>,
    ) -> Result<Response<logical::VersionReply>, Status> {
        Ok(Response::new(logical::VersionReply {
            plugin_version: version(),
        }))
    }
}

/// Mounts with the same catalog entry may share this process.
pub struct Multiplexing;

#[tonic::async_trait]
impl multiplexing::plugin_multiplexing_server::PluginMultiplexing for Multiplexing {
    async fn multiplexing_support(
        &self,
        _: Request<multiplexing::MultiplexingSupportRequest>,
    ) -> Result<Response<multiplexing::MultiplexingSupportResponse>, Status> {
        Ok(Response::new(multiplexing::MultiplexingSupportResponse {
            supported: true,
        }))
    }
}
