//! TLS over Unix sockets, in both directions, terminated here rather than
//! by tonic so the pinned verifiers of `tls` can be used.

use std::ffi::CString;
use std::future::Future;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::UnixListener;
use tokio::sync::{Notify, mpsc};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::transport::{Channel, Endpoint};

/// A byte stream between us and the host: a Unix socket connection, or a
/// stream of the multiplexed connection (`mux`).
pub trait AsyncIo: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> AsyncIo for T {}
pub type Io = Box<dyn AsyncIo>;

/// A socket file that is removed when the plugin exits.
pub struct SocketFile(PathBuf);

impl SocketFile {
    /// Binds `plugin<random digits>` in `dir` (or the temp dir), as go-plugin
    /// names it. With a `group` (the host's `PLUGIN_UNIX_SOCKET_GROUP`, when
    /// it runs in another container or as another user), the socket is
    /// owned by that group and writable by it, mode 0660, as go-plugin does.
    ///
    /// A std listener, made before the handshake line and before the async
    /// runtime exists: it is listening from here on, so the host's connect
    /// waits in its backlog until `into_tokio` hands it to the runtime.
    pub fn bind(
        dir: Option<&str>,
        group: Option<&str>,
    ) -> io::Result<(Self, std::os::unix::net::UnixListener)> {
        let dir = dir.map_or_else(std::env::temp_dir, PathBuf::from);
        let suffix = u32::from_ne_bytes(super::tls::os_random().map_err(io::Error::other)?);
        let path = dir.join(format!("plugin{suffix}"));
        let listener = std::os::unix::net::UnixListener::bind(&path)?;
        let socket = Self(path);
        if let Some(group) = group {
            std::os::unix::fs::chown(&socket.0, None, Some(group_id(group)?))?;
            std::fs::set_permissions(&socket.0, std::fs::Permissions::from_mode(0o660))?;
        }
        Ok((socket, listener))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

/// The listener of `SocketFile::bind` on the current tokio runtime.
pub fn into_tokio(listener: std::os::unix::net::UnixListener) -> io::Result<UnixListener> {
    listener.set_nonblocking(true)?;
    UnixListener::from_std(listener)
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A group id, or the id of a group name (go-plugin accepts both; Vault
/// passes its own numeric gid).
fn group_id(group: &str) -> io::Result<u32> {
    if let Ok(gid) = group.parse() {
        return Ok(gid);
    }
    let unknown = || {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("PLUGIN_UNIX_SOCKET_GROUP: no group {group:?}"),
        )
    };
    let name = CString::new(group).map_err(|_| unknown())?;
    let mut buffer: Vec<libc::c_char> = vec![0; 1024];
    loop {
        // SAFETY: every pointer is valid for the call and `buffer.len()` is
        // its true size; the entry's strings point into `buffer`, which we
        // do not read.
        let (code, found, gid) = unsafe {
            let mut entry: libc::group = std::mem::zeroed();
            let mut found: *mut libc::group = std::ptr::null_mut();
            let code = libc::getgrnam_r(
                name.as_ptr(),
                &mut entry,
                buffer.as_mut_ptr(),
                buffer.len(),
                &mut found,
            );
            (code, !found.is_null(), entry.gr_gid)
        };
        match code {
            0 if found => return Ok(gid),
            0 => return Err(unknown()),
            libc::ERANGE if buffer.len() < 1 << 20 => buffer.resize(buffer.len() * 2, 0),
            code => return Err(io::Error::from_raw_os_error(code)),
        }
    }
}

/// One authenticated connection from the host.
pub struct HostConnection(tokio_rustls::server::TlsStream<Io>);

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

/// Completes the TLS handshakes of `accepted` connections concurrently;
/// only peers that passed the pinned verifier come out. `authenticated`
/// fires on each one.
pub fn incoming(
    mut accepted: impl Stream<Item = io::Result<Io>> + Send + Unpin + 'static,
    acceptor: TlsAcceptor,
    authenticated: Arc<Notify>,
) -> ReceiverStream<io::Result<HostConnection>> {
    let (sender, receiver) = mpsc::channel(16);
    tokio::spawn(async move {
        while let Some(next) = accepted.next().await {
            let stream = match next {
                Ok(stream) => stream,
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

/// The host's Unix connections, as `Io`.
pub fn unix_connections(
    listener: UnixListener,
) -> impl Stream<Item = io::Result<Io>> + Send + Unpin + 'static {
    tokio_stream::wrappers::UnixListenerStream::new(listener)
        .map(|accepted| accepted.map(|stream| Box::new(stream) as Io))
}

/// A gRPC channel to one of the host's brokered servers, over the same
/// mTLS pin; `open` makes the byte stream, again on every reconnect.
pub async fn dial<Open, Opening>(
    open: Open,
    tls: TlsConnector,
) -> Result<Channel, tonic::transport::Error>
where
    Open: Fn() -> Opening + Clone + Send + 'static,
    Opening: Future<Output = io::Result<Io>> + Send,
{
    Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_| {
            let (open, tls) = (open.clone(), tls.clone());
            async move {
                let stream = open().await?;
                let name = ServerName::try_from("localhost").expect("a valid DNS name");
                let tls = tls.connect(name, stream).await?;
                Ok::<_, io::Error>(TokioIo::new(tls))
            }
        }))
        .await
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    #[tokio::test]
    async fn a_socket_group_owns_the_socket_with_mode_0660() {
        let dir = std::env::temp_dir().join(format!("socket-group-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let own_gid = std::fs::metadata(&dir).unwrap().gid();
        let (socket, _listener) =
            SocketFile::bind(dir.to_str(), Some(&own_gid.to_string())).unwrap();
        let metadata = std::fs::metadata(socket.path()).unwrap();
        assert_eq!(metadata.gid(), own_gid);
        assert_eq!(metadata.mode() & 0o777, 0o660);
        let path = socket.path().to_owned();
        drop(socket);
        assert!(!path.exists(), "the socket file is removed");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn groups_are_ids_or_names() {
        assert_eq!(group_id("4242").unwrap(), 4242);
        assert_eq!(group_id("root").unwrap(), 0);
        let unknown = group_id("no-such-group-cloudrotate").unwrap_err();
        assert!(
            unknown.to_string().contains("no-such-group-cloudrotate"),
            "{unknown}"
        );
    }
}
