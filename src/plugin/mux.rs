//! gRPC broker multiplexing (go-plugin 1.6+, used by Vault for
//! containerised plugins): the host makes one connection to our socket and
//! runs yamux over it. Every stream the host opens is a connection to our
//! gRPC server; every connection back to the host (a mount's storage) is a
//! stream we open after knocking on the broker (see `broker`).

use std::future::poll_fn;
use std::io;
use std::task::Poll;

use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};
use tokio_util::compat::{Compat, FuturesAsyncReadCompatExt, TokioAsyncReadCompatExt};
use yamux::{Config, Connection, Mode};

use super::transport::Io;

type OpenReply = oneshot::Sender<io::Result<Io>>;

/// Opens streams to the host on the one multiplexed connection.
#[derive(Clone)]
pub struct Session {
    opens: mpsc::Sender<OpenReply>,
}

impl Session {
    /// A new stream; the host hands it to the broker listener that it
    /// unblocked for our last knock.
    pub async fn open(&self) -> io::Result<Io> {
        let (reply, opened) = oneshot::channel();
        self.opens.send(reply).await.map_err(|_| closed())?;
        opened.await.map_err(|_| closed())?
    }
}

fn closed() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the host's multiplexed connection is closed",
    )
}

fn io_error(err: yamux::ConnectionError) -> io::Error {
    io::Error::other(err)
}

/// Takes the host's one connection from `listener` and serves yamux on
/// it; returns the session for outbound streams and the host's inbound
/// streams.
pub fn accept(listener: UnixListener) -> (Session, mpsc::UnboundedReceiver<io::Result<Io>>) {
    let (opens, open_requests) = mpsc::channel(8);
    let (inbound, streams) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let socket = match listener.accept().await {
            Ok((socket, _)) => socket,
            Err(err) => {
                let _ = inbound.send(Err(err));
                return;
            }
        };
        // go-plugin accepts exactly one connection in this mode.
        drop(listener);
        let connection = Connection::new(socket.compat(), Config::default(), Mode::Server);
        match drive(connection, open_requests, &inbound).await {
            Ok(()) => tracing::info!("the host closed the multiplexed connection"),
            Err(err) => tracing::warn!(error = %err, "the multiplexed connection failed"),
        }
    });
    (Session { opens }, streams)
}

/// Runs the connection: answers open requests and passes on inbound
/// streams until the host closes it. Polling `poll_next_inbound` is what
/// moves every byte, so both halves are polled from one task.
async fn drive(
    mut connection: Connection<Compat<UnixStream>>,
    mut open_requests: mpsc::Receiver<OpenReply>,
    inbound: &mpsc::UnboundedSender<io::Result<Io>>,
) -> Result<(), yamux::ConnectionError> {
    let mut waiting: Option<OpenReply> = None;
    poll_fn(|cx| {
        loop {
            if waiting.is_none() {
                match open_requests.poll_recv(cx) {
                    Poll::Ready(Some(reply)) => waiting = Some(reply),
                    Poll::Ready(None) | Poll::Pending => break,
                }
            }
            match connection.poll_new_outbound(cx) {
                Poll::Ready(opened) => {
                    let stream = opened.map(|s| Box::new(s.compat()) as Io);
                    if let Some(reply) = waiting.take() {
                        let _ = reply.send(stream.map_err(io_error));
                    }
                }
                Poll::Pending => break,
            }
        }
        loop {
            match connection.poll_next_inbound(cx) {
                Poll::Ready(Some(Ok(stream))) => {
                    let _ = inbound.send(Ok(Box::new(stream.compat())));
                }
                Poll::Ready(Some(Err(err))) => return Poll::Ready(Err(err)),
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
    })
    .await
}
