//! The socket side: one loopback port, HTTP/1.1 with keep-alive, optional
//! TLS. Each request is read whole, handed to [`Emulator::handle`], then
//! answered after the decided delay, or the connection is reset or dropped.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::clock::Clock;
use super::config::{Config, TlsFiles};
use super::http::{Action, Request};
use super::{Emulator, Startup};

/// Returned by the service to make hyper close the connection unanswered.
#[derive(Debug)]
struct Abort;

impl std::fmt::Display for Abort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection aborted by a fault")
    }
}

impl std::error::Error for Abort {}

/// Makes the next close send a TCP RST instead of a FIN.
fn set_linger_zero(fd: RawFd) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `fd` is the live socket of the connection whose request is
    // being served (the connection task owns it until this returns), and
    // the option value is a properly sized `linger`.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

async fn respond(
    emulator: Arc<Emulator>,
    fd: RawFd,
    request: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Abort> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await.map_err(|_| Abort)?.to_bytes();
    let request = Request {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
    };
    let handled = emulator.handle_with_backing(&request).await;
    if !handled.delay.is_zero() {
        tokio::time::sleep(handled.delay).await;
    }
    match handled.action {
        Action::Reply(reply) => {
            let mut response = hyper::Response::builder().status(reply.status);
            for (name, value) in &reply.headers {
                response = response.header(name, value);
            }
            Ok(response
                .body(Full::new(Bytes::from(reply.body)))
                .expect("status and headers are valid"))
        }
        Action::Reset => {
            set_linger_zero(fd);
            Err(Abort)
        }
        Action::Drop { hold } => {
            tokio::time::sleep(hold).await;
            Err(Abort)
        }
    }
}

pub fn tls_acceptor(files: &TlsFiles) -> Result<TlsAcceptor, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read certificate {}: {e}", files.cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| format!("cannot read key {}: {e}", files.key.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("invalid certificate or key: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves connections from `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, tls: Option<TlsAcceptor>, emulator: Arc<Emulator>) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                eprintln!("accept failed: {error}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let fd = stream.as_raw_fd();
        let emulator = emulator.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| respond(emulator.clone(), fd, request));
            let builder = http1::Builder::new();
            let _ = match tls {
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(stream) => {
                        builder
                            .serve_connection(TokioIo::new(stream), service)
                            .await
                    }
                    Err(_) => return,
                },
                None => {
                    builder
                        .serve_connection(TokioIo::new(stream), service)
                        .await
                }
            };
        });
    }
}

/// A server bound and ready: its address and the emulator behind it.
pub struct Bound {
    pub listener: TcpListener,
    pub addr: SocketAddr,
    pub tls: Option<TlsAcceptor>,
    pub emulator: Arc<Emulator>,
}

impl Bound {
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }
}

pub async fn bind(
    listen: SocketAddr,
    tls: Option<&TlsFiles>,
    startup: Startup,
) -> Result<Bound, String> {
    let tls = tls.map(tls_acceptor).transpose()?;
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    Ok(Bound {
        listener,
        addr,
        tls,
        emulator: Arc::new(Emulator::new(startup, Arc::new(Clock::system()))),
    })
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match term.as_mut() {
                Some(term) => { term.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}

/// Runs the emulator until SIGINT or SIGTERM: the binary's whole life.
pub fn run(config: Config) -> Result<(), String> {
    let runtime = if config.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.threads)
            .enable_all()
            .build()
    }
    .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async {
        let bound = bind(config.listen, config.tls.as_ref(), config.startup).await?;
        bound
            .emulator
            .apply_pending_backing()
            .await
            .map_err(|_| "a backing server refused the seed (see above)".to_owned())?;
        tokio::spawn(super::backing::logins::watch(
            bound.emulator.clone(),
            config.job_login_interval,
        ));
        {
            use std::io::Write as _;
            let mut stdout = io::stdout().lock();
            let _ = writeln!(stdout, "listening on {}", bound.url());
            let _ = stdout.flush();
        }
        tokio::select! {
            _ = serve(bound.listener, bound.tls, bound.emulator) => {}
            _ = shutdown_signal() => {}
        }
        Ok(())
    })
}
