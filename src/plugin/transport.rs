//! TLS over Unix sockets, in both directions, terminated here rather than
//! by tonic so the pinned verifiers of `tls` can be used.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Notify, mpsc};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};

/// A socket file that is removed when the plugin exits.
pub struct SocketFile(PathBuf);

impl SocketFile {
    /// Binds `plugin<random digits>` in `dir` (or the temp dir), as go-plugin names it.
    pub fn bind(dir: Option<&str>) -> io::Result<(Self, UnixListener)> {
        let dir = dir.map_or_else(std::env::temp_dir, PathBuf::from);
        let path = dir.join(format!("plugin{}", rand::random::<u32>()));
        let listener = UnixListener::bind(&path)?;
        Ok((Self(path), listener))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// One authenticated connection from the host.
pub struct HostConnection(tokio_rustls::server::TlsStream<UnixStream>);

impl tonic::transport::server::Connected for HostConnection {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for HostConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for HostConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

/// A TLS handshake that has not finished by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections and completes their handshakes concurrently; only
/// peers that passed the pinned verifier come out. `authenticated` fires
/// on each one.
pub fn incoming(
    listener: UnixListener,
    acceptor: TlsAcceptor,
    authenticated: Arc<Notify>,
) -> ReceiverStream<io::Result<HostConnection>> {
    let (sender, receiver) = mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(err) => {
                    tracing::warn!(error = %err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let (acceptor, sender, authenticated) =
                (acceptor.clone(), sender.clone(), authenticated.clone());
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => {
                        authenticated.notify_one();
                        let _ = sender.send(Ok(HostConnection(tls))).await;
                    }
                    Ok(Err(err)) => {
                        tracing::warn!(error = %err, "refused a connection that failed the TLS pin")
                    }
                    Err(_) => tracing::warn!("dropped a connection that did not finish TLS"),
                }
            });
        }
    });
    ReceiverStream::new(receiver)
}

/// A gRPC channel to a brokered host socket, over the same mTLS pin.
pub async fn dial(address: &str, tls: TlsConnector) -> Result<Channel, tonic::transport::Error> {
    let address = PathBuf::from(address);
    Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_| {
            let (address, tls) = (address.clone(), tls.clone());
            async move {
                let stream = UnixStream::connect(&address).await?;
                let name = ServerName::try_from("localhost").expect("a valid DNS name");
                let tls = tls.connect(name, stream).await?;
                Ok::<_, io::Error>(TokioIo::new(tls))
            }
        }))
        .await
}
