//! The plugin runtime: the only code that knows gRPC, TLS and go-plugin.
//! It checks how it was launched, serves the plugin protocol (v5) on a
//! Unix socket behind pinned mutual TLS, prints the handshake line, dials
//! back to the host for each mount's storage, and hands every request to a
//! transport-free `framework::Backend`.

mod backend;
mod broker;
pub mod convert;
mod host;
mod launch;
mod log;
mod mlock;
mod mux;
pub mod proto;
mod services;
mod tls;
mod transport;

use std::io::Write;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Notify, oneshot};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tokio_stream::Stream;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::transport::Server;

use crate::framework::Factory;
use backend::Mounts;
use broker::Broker;
use host::MAX_MESSAGE;
use proto::go_plugin::grpc_broker_server::GrpcBrokerServer;
use proto::go_plugin::grpc_controller_server::GrpcControllerServer;
use proto::go_plugin::grpc_stdio_server::GrpcStdioServer;
use proto::logical::plugin_version_server::PluginVersionServer;
use proto::multiplexing::plugin_multiplexing_server::PluginMultiplexingServer;
use proto::pb::backend_server::BackendServer;
use transport::{Io, SocketFile};

pub use launch::{COOKIE_KEY, COOKIE_VALUE};

/// A host that printed our handshake but never completed TLS (wrong
/// certificate, broken setup) would otherwise leave this process behind.
const FIRST_CONNECTION_DEADLINE: Duration = Duration::from_secs(120);
/// How long in-flight calls get to finish once we decided to exit.
const DRAIN: Duration = Duration::from_millis(500);

/// Runs the plugin process; `factory` builds the engine of each mount.
pub fn run(factory: Factory) -> ExitCode {
    // Read before anything else: a host that dies while we start must not
    // leave us waiting for a parent we never knew.
    // SAFETY: getppid has no preconditions.
    let parent = unsafe { libc::getppid() };
    if std::env::args()
        .skip(1)
        .any(|a| a == "--version" || a == "-version")
    {
        println!("{} {}", env!("CARGO_PKG_NAME"), services::version());
        return ExitCode::SUCCESS;
    }
    let program = program_name();
    let launch = match launch::check(|key| std::env::var(key).ok(), &program) {
        Ok(launch) => launch,
        Err(refusal) => {
            eprintln!("{refusal}");
            return ExitCode::FAILURE;
        }
    };
    // A Ctrl-C in the server's terminal reaches the whole process group;
    // the host stops its plugins itself.
    // SAFETY: plain libc call, before any other thread exists.
    unsafe { libc::signal(libc::SIGINT, libc::SIG_IGN) };
    // The host may stop us as soon as it has read the handshake line,
    // before the runtime has a SIGTERM handler: held pending until then.
    hold_sigterm(true);
    if launch.lock_memory {
        // Before any key exists; MCL_FUTURE covers what comes later.
        if let Err(err) = mlock::lock_all() {
            log::init();
            tracing::error!("{}", mlock::refusal(&err, &program));
            return ExitCode::FAILURE;
        }
    }
    // The host waits for the handshake line, and connects only once it
    // has read it. So only what the line needs is made before it: our
    // certificate and key, the check of the host's, and the socket,
    // bound and listening (a connect then waits in its backlog). Logging,
    // the async runtime, the TLS configurations and the gRPC server come
    // after, while the host reads the line. With the kernel random bytes
    // of `tls::os_random`, our code from `main` to the line went from
    // ~480 to ~220 µs (syscall trace, dist build, on the bench VM).
    let started = handshake(&launch);
    log::init();
    let started = match started {
        Ok(started) => started,
        Err(err) => {
            tracing::error!(error = %err, "the plugin cannot serve");
            return ExitCode::FAILURE;
        }
    };
    if launch.lock_memory {
        tracing::debug!("memory locked (mlockall)");
    }
    tracing::debug!(
        network = "unix",
        address = %started.socket.path().display(),
        multiplexed = launch.multiplex,
        "plugin address"
    );
    // One thread: the work is I/O-bound (RPCs, provider calls), and every
    // wake-up then stays on the same core; measured ~12% faster per read
    // than the multi-thread runtime, with fewer threads to start.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            tracing::error!(error = %err, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(factory, launch, parent, started)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "the plugin cannot serve");
            ExitCode::FAILURE
        }
    }
}

/// What exists once the handshake line is written.
struct Started {
    identity: tls::Identity,
    host: CertificateDer<'static>,
    socket: SocketFile,
    listener: std::os::unix::net::UnixListener,
}

/// Makes what the handshake line carries, and writes the line.
fn handshake(launch: &launch::Launch) -> Result<Started, String> {
    let identity =
        tls::Identity::generate().map_err(|e| format!("cannot make a certificate: {e}"))?;
    let host = tls::host_certificate(&launch.host_certificate_pem)?;
    let (socket, listener) =
        SocketFile::bind(launch.socket_dir.as_deref(), launch.socket_group.as_deref())
            .map_err(|e| format!("cannot create the plugin socket: {e}"))?;
    let socket_path = socket
        .path()
        .to_str()
        .ok_or("the socket path is not UTF-8")?;
    let line = launch::handshake_line(socket_path, identity.certificate.as_ref(), launch);
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(line.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("cannot write the handshake: {e}"))?;
    Ok(Started {
        identity,
        host,
        socket,
        listener,
    })
}

async fn serve(
    factory: Factory,
    launch: launch::Launch,
    parent: libc::pid_t,
    started: Started,
) -> Result<(), String> {
    let Started {
        identity,
        host,
        socket,
        listener,
    } = started;
    let server_tls = tls::server_config(&identity, host.clone()).map_err(|e| e.to_string())?;
    let client_tls = tls::client_config(&identity, host).map_err(|e| e.to_string())?;
    drop(identity);
    let listener = transport::into_tokio(listener)
        .map_err(|e| format!("cannot listen on the plugin socket: {e}"))?;
    let (session, connections) = host_connections(listener, launch.multiplex);

    let broker = Arc::new(Broker::new(session));
    let mounts = Mounts::new(
        factory,
        broker.clone(),
        TlsConnector::from(Arc::new(client_tls)),
    );
    let shutdown = Arc::new(Notify::new());
    let authenticated = Arc::new(Notify::new());
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_service_status("plugin", tonic_health::ServingStatus::Serving)
        .await;

    let router = Server::builder()
        .add_service(health_service)
        .add_service(GrpcBrokerServer::new(broker))
        .add_service(GrpcControllerServer::new(services::Controller(
            shutdown.clone(),
        )))
        .add_service(GrpcStdioServer::new(services::Stdio))
        .add_service(PluginVersionServer::new(services::Version))
        .add_service(PluginMultiplexingServer::new(services::Multiplexing))
        .add_service(
            BackendServer::new(mounts.clone())
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
        );
    let incoming = transport::incoming(
        connections,
        TlsAcceptor::from(Arc::new(server_tls)),
        authenticated.clone(),
    );
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(router.serve_with_incoming_shutdown(incoming, async {
        let _ = stopped.await;
    }));

    let reason = exit_reason(&shutdown, &authenticated, parent).await;
    tracing::info!(reason, "plugin stopping");
    let _ = stop.send(());
    let _ = tokio::time::timeout(DRAIN, mounts.cleanup_all()).await;
    // Long-lived streams (broker, stdio) never finish by themselves.
    let _ = tokio::time::timeout(DRAIN, server).await;
    drop(socket);
    Ok(())
}

type HostConnections = Pin<Box<dyn Stream<Item = std::io::Result<Io>> + Send>>;

/// The host's connections to our gRPC server: each accepted on the socket,
/// or, with broker multiplexing, each a stream of the one connection, whose
/// session then also carries our connections back to the host.
fn host_connections(
    listener: tokio::net::UnixListener,
    multiplex: bool,
) -> (Option<mux::Session>, HostConnections) {
    if multiplex {
        let (session, streams) = mux::accept(listener);
        (
            Some(session),
            Box::pin(UnboundedReceiverStream::new(streams)),
        )
    } else {
        (None, Box::pin(transport::unix_connections(listener)))
    }
}

/// The file name this process was started from, for messages that tell an
/// operator what to type.
fn program_name() -> String {
    std::env::args_os()
        .next()
        .as_deref()
        .and_then(|arg| std::path::Path::new(arg).file_name())
        .and_then(|name| name.to_str())
        .unwrap_or(env!("CARGO_PKG_NAME"))
        .to_owned()
}

/// Blocks (or unblocks) SIGTERM on this thread; a blocked SIGTERM stays
/// pending and is delivered once unblocked.
fn hold_sigterm(hold: bool) {
    let how = if hold {
        libc::SIG_BLOCK
    } else {
        libc::SIG_UNBLOCK
    };
    // SAFETY: sigset_t is plain data that sigemptyset initialises; the
    // calls only read and change this thread's signal mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(how, &set, std::ptr::null_mut());
    }
}

/// Waits for the first reason to stop.
async fn exit_reason(
    shutdown: &Notify,
    authenticated: &Notify,
    parent: libc::pid_t,
) -> &'static str {
    let mut terminate = signal(SignalKind::terminate()).ok();
    hold_sigterm(false);
    let sigterm = async {
        match terminate.as_mut() {
            Some(terminate) => terminate.recv().await,
            None => std::future::pending().await,
        }
    };
    let never_authenticated = async {
        if tokio::time::timeout(FIRST_CONNECTION_DEADLINE, authenticated.notified())
            .await
            .is_ok()
        {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = shutdown.notified() => "the host asked to shut down",
        _ = sigterm => "SIGTERM",
        () = parent_gone(parent) => "the host process is gone",
        () = never_authenticated => "no authenticated connection from the host",
    }
}

/// Resolves once `parent`, the process that started us, has exited (we
/// were re-parented), so a crashed or killed host never leaves us behind.
async fn parent_gone(parent: libc::pid_t) {
    loop {
        // SAFETY: getppid has no preconditions.
        if unsafe { libc::getppid() } != parent {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
