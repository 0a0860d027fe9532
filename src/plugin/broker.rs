//! go-plugin's `GRPCBroker`: the host announces, on one long-lived stream,
//! where it listens for each mount's Storage/SystemView connection. The
//! announcement and the `Setup` naming it arrive in either order, so they
//! are kept by id until asked for.

use std::collections::HashMap;
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::watch;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use super::proto::go_plugin::ConnInfo;
use super::proto::go_plugin::grpc_broker_server::GrpcBroker;

/// How long `Setup` waits for its announcement, as go-plugin does.
pub const DIAL_WAIT: Duration = Duration::from_secs(5);

pub struct Broker {
    announced: watch::Sender<HashMap<u32, ConnInfo>>,
}

impl Default for Broker {
    fn default() -> Self {
        Self {
            announced: watch::channel(HashMap::new()).0,
        }
    }
}

impl Broker {
    /// Where the host listens for broker id `id`.
    pub async fn address(&self, id: u32) -> Result<ConnInfo, String> {
        let mut announced = self.announced.subscribe();
        let found = tokio::time::timeout(DIAL_WAIT, announced.wait_for(|m| m.contains_key(&id)))
            .await
            .map_err(|_| format!("the host did not announce broker id {id} within {DIAL_WAIT:?}"))?
            .map_err(|_| "the broker closed".to_owned())?;
        let info = found.get(&id).cloned().expect("waited for it");
        match info.network.as_str() {
            "unix" => Ok(info),
            other => Err(format!(
                "the host offered a {other:?} broker connection; only unix sockets are supported"
            )),
        }
    }

    fn announce(&self, info: ConnInfo) {
        self.announced.send_modify(|known| {
            known.insert(info.service_id, info);
        });
    }
}

type ConnInfoStream = Pin<Box<dyn Stream<Item = Result<ConnInfo, Status>> + Send>>;

#[tonic::async_trait]
impl GrpcBroker for std::sync::Arc<Broker> {
    type StartStreamStream = ConnInfoStream;

    async fn start_stream(
        &self,
        request: Request<Streaming<ConnInfo>>,
    ) -> Result<Response<Self::StartStreamStream>, Status> {
        let mut from_host = request.into_inner();
        let broker = self.clone();
        tokio::spawn(async move {
            while let Some(Ok(info)) = from_host.next().await {
                // Knocks belong to broker multiplexing, which we do not offer.
                if info.knock.is_none() {
                    broker.announce(info);
                }
            }
        });
        // The plugin never announces anything, but the stream must stay
        // open for the connection's lifetime.
        Ok(Response::new(Box::pin(tokio_stream::pending())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: u32, network: &str) -> ConnInfo {
        ConnInfo {
            service_id: id,
            network: network.into(),
            address: format!("/tmp/plugin-host-{id}"),
            knock: None,
        }
    }

    #[tokio::test]
    async fn announcements_are_found_whichever_comes_first() {
        let broker = std::sync::Arc::new(Broker::default());
        broker.announce(info(1, "unix"));
        assert_eq!(
            broker.address(1).await.unwrap().address,
            "/tmp/plugin-host-1"
        );
        let later = broker.clone();
        let waiting = tokio::spawn(async move { later.address(2).await });
        tokio::task::yield_now().await;
        broker.announce(info(2, "unix"));
        assert_eq!(
            waiting.await.unwrap().unwrap().address,
            "/tmp/plugin-host-2"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_missing_announcement_times_out_and_tcp_is_refused() {
        let broker = Broker::default();
        let err = broker.address(7).await.unwrap_err();
        assert!(err.contains("broker id 7"), "{err}");
        broker.announce(info(3, "tcp"));
        assert!(broker.address(3).await.unwrap_err().contains("unix"));
    }
}
