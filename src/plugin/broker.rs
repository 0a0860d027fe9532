//! go-plugin's `GRPCBroker`: how we reach the server the host runs for
//! each mount's Storage/SystemView, named by a broker id in `Setup`.
//!
//! Usually the host announces, on one long-lived stream, the socket it
//! listens on for each id; the announcement and the `Setup` naming it
//! arrive in either order, so they are kept by id until asked for. With
//! broker multiplexing (`mux`) nothing is announced: we knock for the id on
//! the same stream, the host acknowledges, and the next stream we open on
//! the multiplexed connection is handed to that id's server.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::time::Duration;

use tokio::net::UnixStream;
use tokio::sync::{Mutex, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use super::mux::Session;
use super::proto::go_plugin::ConnInfo;
use super::proto::go_plugin::conn_info::Knock;
use super::proto::go_plugin::grpc_broker_server::GrpcBroker;
use super::transport::Io;

/// How long `Setup` waits for its announcement or knock answer, as
/// go-plugin does.
pub const DIAL_WAIT: Duration = Duration::from_secs(5);

pub struct Broker {
    announced: watch::Sender<HashMap<u32, ConnInfo>>,
    /// The host's answers to our knocks, by id.
    answers: watch::Sender<HashMap<u32, Knock>>,
    /// Our half of the current broker stream, once the host opened it.
    to_host: watch::Sender<Option<mpsc::Sender<ConnInfo>>>,
    /// Set when the host asked for broker multiplexing.
    session: Option<Session>,
    /// One knock and its stream at a time: the host gives the next stream
    /// to whichever id it last acknowledged.
    knocking: Mutex<()>,
}

impl Broker {
    pub fn new(session: Option<Session>) -> Self {
        Self {
            announced: watch::channel(HashMap::new()).0,
            answers: watch::channel(HashMap::new()).0,
            to_host: watch::channel(None).0,
            session,
            knocking: Mutex::new(()),
        }
    }

    /// A byte stream to the host's server for broker id `id`.
    pub async fn connect(&self, id: u32) -> io::Result<Io> {
        match &self.session {
            None => {
                let info = self.address(id).await.map_err(io::Error::other)?;
                Ok(Box::new(UnixStream::connect(&info.address).await?))
            }
            Some(session) => {
                let _turn = self.knocking.lock().await;
                self.knock(id).await.map_err(io::Error::other)?;
                session.open().await
            }
        }
    }

    /// Where the host listens for broker id `id`.
    async fn address(&self, id: u32) -> Result<ConnInfo, String> {
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

    /// Asks the host to give our next stream to broker id `id`. The host
    /// can answer before that id's listener exists (it starts it and sends
    /// `Setup` concurrently): then it says so and we knock again.
    async fn knock(&self, id: u32) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + DIAL_WAIT;
        loop {
            let answer = tokio::time::timeout_at(deadline, self.knock_once(id))
                .await
                .map_err(|_| {
                    format!(
                        "the host did not answer our knock for broker id {id} within {DIAL_WAIT:?}"
                    )
                })??;
            if answer.error.is_empty() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "the host refused our knock for broker id {id}: {}",
                    answer.error
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn knock_once(&self, id: u32) -> Result<Knock, String> {
        let mut answers = self.answers.subscribe();
        self.answers.send_modify(|known| {
            known.remove(&id);
        });
        let to_host = self
            .to_host
            .subscribe()
            .wait_for(Option::is_some)
            .await
            .map_err(|_| "the broker closed".to_owned())?
            .clone()
            .expect("waited for it");
        let knock = ConnInfo {
            service_id: id,
            knock: Some(Knock {
                knock: true,
                ack: false,
                error: String::new(),
            }),
            ..ConnInfo::default()
        };
        to_host
            .send(knock)
            .await
            .map_err(|_| "the host closed the broker stream".to_owned())?;
        answers
            .wait_for(|known| known.contains_key(&id))
            .await
            .map_err(|_| "the broker closed".to_owned())?;
        let mut answer = None;
        self.answers.send_modify(|known| answer = known.remove(&id));
        answer.ok_or_else(|| format!("the answer for broker id {id} went missing"))
    }

    /// One message from the host on the broker stream.
    fn receive(&self, info: ConnInfo) {
        match info.knock {
            None => self.announced.send_modify(|known| {
                known.insert(info.service_id, info);
            }),
            Some(knock) if knock.ack => self.answers.send_modify(|known| {
                known.insert(info.service_id, knock);
            }),
            // The host knocking for a server of ours: we run none.
            Some(_) => tracing::warn!(
                broker_id = info.service_id,
                "the host knocked for a brokered server this plugin does not run"
            ),
        }
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
                broker.receive(info);
            }
        });
        // Open for the connection's lifetime; it carries our knocks.
        let (to_host, outgoing) = mpsc::channel(16);
        self.to_host.send_replace(Some(to_host));
        Ok(Response::new(Box::pin(
            ReceiverStream::new(outgoing).map(Ok),
        )))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn info(id: u32, network: &str) -> ConnInfo {
        ConnInfo {
            service_id: id,
            network: network.into(),
            address: format!("/tmp/plugin-host-{id}"),
            knock: None,
        }
    }

    fn answer(id: u32, error: &str) -> ConnInfo {
        ConnInfo {
            service_id: id,
            knock: Some(Knock {
                knock: true,
                ack: true,
                error: error.into(),
            }),
            ..ConnInfo::default()
        }
    }

    #[tokio::test]
    async fn announcements_are_found_whichever_comes_first() {
        let broker = Arc::new(Broker::new(None));
        broker.receive(info(1, "unix"));
        assert_eq!(
            broker.address(1).await.unwrap().address,
            "/tmp/plugin-host-1"
        );
        let later = broker.clone();
        let waiting = tokio::spawn(async move { later.address(2).await });
        tokio::task::yield_now().await;
        broker.receive(info(2, "unix"));
        assert_eq!(
            waiting.await.unwrap().unwrap().address,
            "/tmp/plugin-host-2"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_missing_announcement_times_out_and_tcp_is_refused() {
        let broker = Broker::new(None);
        let err = broker.address(7).await.unwrap_err();
        assert!(err.contains("broker id 7"), "{err}");
        broker.receive(info(3, "tcp"));
        assert!(broker.address(3).await.unwrap_err().contains("unix"));
    }

    /// Plays the host's side of the broker stream: answers each knock
    /// with the next of `errors`.
    fn host_answering(broker: &Arc<Broker>, errors: Vec<&'static str>) -> mpsc::Receiver<ConnInfo> {
        let (to_host, mut outgoing) = mpsc::channel(16);
        broker.to_host.send_replace(Some(to_host));
        let (seen, knocks) = mpsc::channel(16);
        let broker = broker.clone();
        tokio::spawn(async move {
            for error in errors {
                let Some(knock) = outgoing.recv().await else {
                    return;
                };
                broker.receive(answer(knock.service_id, error));
                let _ = seen.send(knock).await;
            }
        });
        knocks
    }

    #[tokio::test]
    async fn a_knock_is_sent_for_the_id_and_waits_for_the_hosts_answer() {
        let broker = Arc::new(Broker::new(None));
        let mut knocks = host_answering(&broker, vec![""]);
        broker.knock(9).await.unwrap();
        let sent = knocks.recv().await.unwrap();
        assert_eq!(sent.service_id, 9);
        let knock = sent.knock.unwrap();
        assert!(knock.knock && !knock.ack);
    }

    #[tokio::test(start_paused = true)]
    async fn a_knock_the_host_was_not_ready_for_is_repeated_until_it_is() {
        let broker = Arc::new(Broker::new(None));
        let mut knocks = host_answering(&broker, vec!["no listener for id 4", ""]);
        broker.knock(4).await.unwrap();
        assert_eq!(knocks.recv().await.unwrap().service_id, 4);
        assert_eq!(knocks.recv().await.unwrap().service_id, 4);
    }

    #[tokio::test(start_paused = true)]
    async fn an_unanswered_knock_gives_up_after_the_dial_wait() {
        let broker = Arc::new(Broker::new(None));
        let (to_host, _outgoing) = mpsc::channel(16);
        broker.to_host.send_replace(Some(to_host));
        let err = broker.knock(5).await.unwrap_err();
        assert!(
            err.contains("did not answer our knock for broker id 5"),
            "{err}"
        );
    }
}
