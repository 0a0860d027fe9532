//! The plugin binary's process contract, with this test playing the host:
//! how it refuses to run by hand, the handshake line, AutoMTLS with a
//! P-521 host certificate pinned in both directions, and every way the
//! process ends.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use cloudrotate::plugin::proto::go_plugin::grpc_controller_client::GrpcControllerClient;
use cloudrotate::plugin::proto::logical::plugin_version_client::PluginVersionClient;
use cloudrotate::plugin::proto::multiplexing::plugin_multiplexing_client::PluginMultiplexingClient;
use cloudrotate::plugin::proto::pb::backend_client::BackendClient;
use cloudrotate::plugin::{COOKIE_KEY, COOKIE_VALUE};
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

const PLUGIN: &str = env!("CARGO_BIN_EXE_vault-plugin-secrets-cloudrotate");

/// A certificate like go-plugin's host certificate: P-521, CA:TRUE.
struct Identity {
    der: CertificateDer<'static>,
    pem: String,
    key: Vec<u8>,
}

fn identity() -> Identity {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512).unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    Identity {
        der: cert.der().clone(),
        pem: cert.pem(),
        key: key.serialize_der(),
    }
}

fn run_plain(envs: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
    let output = Command::new(PLUGIN)
        .args(args)
        .env_clear()
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn refuses_to_serve_when_run_by_hand_and_says_how_to_register() {
    let (code, stdout, stderr) = run_plain(&[], &[]);
    assert_ne!(code, 0);
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("Vault/OpenBao"), "{stderr}");
    // The catalog name differs from the file name: without -command the
    // host would look for a file named "cloudrotate".
    assert!(
        stderr.contains("-command=vault-plugin-secrets-cloudrotate secret cloudrotate")
            && stderr.contains("secrets enable"),
        "{stderr}"
    );
    // The host probes unknown plugins as database plugins first.
    let database = [(
        "VAULT_DATABASE_PLUGIN",
        "926a0820-aea2-be28-51d6-83cdf00e8edb",
    )];
    let (code, stdout, _) = run_plain(&database, &[]);
    assert_ne!(code, 0);
    assert!(stdout.is_empty());
}

#[test]
fn prints_its_version() {
    let (code, stdout, _) = run_plain(&[], &["--version"]);
    assert_eq!(code, 0);
    assert_eq!(
        stdout.trim(),
        format!(
            "vault-plugin-secrets-cloudrotate v{}",
            env!("CARGO_PKG_VERSION")
        )
    );
}

#[test]
fn serves_only_protocol_five() {
    let host = identity();
    for offered in ["3,4", "4,3"] {
        let envs = [
            (COOKIE_KEY, COOKIE_VALUE),
            ("PLUGIN_PROTOCOL_VERSIONS", offered),
            ("PLUGIN_CLIENT_CERT", host.pem.as_str()),
        ];
        let (code, stdout, stderr) = run_plain(&envs, &[]);
        assert_eq!(code, 1, "{stderr}");
        assert!(stdout.is_empty(), "no handshake: {stdout}");
        assert!(stderr.contains("only version 5"), "{stderr}");
    }
}

/// A plugin process launched the way the host launches it.
struct Launched {
    child: Child,
    socket: PathBuf,
    certificate: CertificateDer<'static>,
    handshake: String,
    stdout: BufReader<std::process::ChildStdout>,
}

fn launch(host: &Identity) -> Launched {
    launch_with(host, &[])
}

/// Launched with extra environment variables.
fn launch_with(host: &Identity, envs: &[(&str, &str)]) -> Launched {
    let tmp = std::env::temp_dir();
    let mut child = Command::new(PLUGIN)
        .env_clear()
        .env(COOKIE_KEY, COOKIE_VALUE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "5")
        .env("PLUGIN_CLIENT_CERT", &host.pem)
        .env("TMPDIR", &tmp)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut handshake = String::new();
    stdout.read_line(&mut handshake).unwrap();
    let fields: Vec<&str> = handshake.trim_end_matches('\n').split('|').collect();
    assert_eq!(
        fields.len(),
        6,
        "six fields, no multiplexing field: {handshake:?}"
    );
    assert_eq!(&fields[..3], ["1", "5", "unix"]);
    assert_eq!(fields[4], "grpc");
    assert!(!fields[5].contains('='), "unpadded base64");
    let der = STANDARD_NO_PAD.decode(fields[5]).expect("standard base64");
    let socket = PathBuf::from(fields[3]);
    assert!(socket.starts_with(&tmp) && socket.exists(), "{socket:?}");
    Launched {
        child,
        socket,
        certificate: CertificateDer::from(der),
        handshake,
        stdout,
    }
}

/// Accepts only the plugin certificate from the handshake.
#[derive(Debug)]
struct PinPlugin(CertificateDer<'static>);

impl ServerCertVerifier for PinPlugin {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.0.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("not the plugin".into()))
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms =
            rustls::crypto::aws_lc_rs::default_provider().signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, &algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms =
            rustls::crypto::aws_lc_rs::default_provider().signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, &algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::aws_lc_rs::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A gRPC channel to the plugin, presenting `client` (or no certificate).
async fn connect(plugin: &Launched, client: Option<&Identity>) -> Result<Channel, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinPlugin(plugin.certificate.clone())));
    let mut config = match client {
        Some(identity) => builder
            .with_client_auth_cert(
                vec![identity.der.clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(identity.key.clone())),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let socket = plugin.socket.clone();
    Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_| {
            let (socket, connector) = (socket.clone(), connector.clone());
            async move {
                let stream = UnixStream::connect(socket).await?;
                let tls = connector
                    .connect(ServerName::try_from("localhost").unwrap(), stream)
                    .await?;
                Ok::<_, std::io::Error>(TokioIo::new(tls))
            }
        }))
        .await
        .map_err(|e| format!("{e:?}"))
}

async fn health(channel: Channel) -> Result<i32, String> {
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: "plugin".into(),
        })
        .await
        .map(|r| r.into_inner().status)
        .map_err(|e| e.to_string())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Waits (bounded) for the process to exit; returns its exit code.
fn wait_exit(child: &mut Child) -> Option<i32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        assert!(Instant::now() < deadline, "the plugin did not exit");
        std::thread::sleep(Duration::from_millis(10));
    }
}

const SERVING: i32 = 1;

#[test]
fn only_the_pinned_host_certificate_can_call_any_service() {
    let host = identity();
    let stranger = identity();
    let mut plugin = launch(&host);
    let rt = runtime();
    rt.block_on(async {
        let channel = connect(&plugin, Some(&host))
            .await
            .expect("the host connects");
        assert_eq!(health(channel.clone()).await, Ok(SERVING));
        let version = PluginVersionClient::new(channel.clone())
            .version(cloudrotate::plugin::proto::logical::Empty {})
            .await
            .unwrap();
        assert_eq!(
            version.into_inner().plugin_version,
            concat!("v", env!("CARGO_PKG_VERSION"))
        );
        let multiplexing = PluginMultiplexingClient::new(channel.clone())
            .multiplexing_support(
                cloudrotate::plugin::proto::multiplexing::MultiplexingSupportRequest {},
            )
            .await
            .unwrap();
        assert!(multiplexing.into_inner().supported);
        let kind = BackendClient::new(channel)
            .r#type(cloudrotate::plugin::proto::pb::Empty {})
            .await
            .unwrap();
        assert_eq!(kind.into_inner().r#type, 1, "a secrets engine");

        for (who, identity) in [("a stranger", Some(&stranger)), ("no certificate", None)] {
            let refused = match connect(&plugin, identity).await {
                Err(err) => err,
                Ok(channel) => health(channel).await.expect_err(who),
            };
            assert!(!refused.is_empty(), "{who}");
        }
    });
    // SIGINT is ignored: the host stops its plugins itself.
    unsafe { libc::kill(plugin.child.id() as i32, libc::SIGINT) };
    rt.block_on(async {
        let channel = connect(&plugin, Some(&host)).await.unwrap();
        assert_eq!(
            health(channel).await,
            Ok(SERVING),
            "still serving after SIGINT"
        );
    });
    // SIGTERM stops it and removes the socket; stdout carried only the handshake.
    unsafe { libc::kill(plugin.child.id() as i32, libc::SIGTERM) };
    assert_eq!(wait_exit(&mut plugin.child), Some(0));
    assert!(!plugin.socket.exists(), "socket removed on exit");
    let mut rest = String::new();
    plugin.stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "", "nothing on stdout after {:?}", plugin.handshake);
}

#[test]
fn exits_on_the_controllers_shutdown() {
    let host = identity();
    let mut plugin = launch(&host);
    runtime().block_on(async {
        let channel = connect(&plugin, Some(&host)).await.unwrap();
        GrpcControllerClient::new(channel)
            .shutdown(cloudrotate::plugin::proto::go_plugin::Empty {})
            .await
            .expect("shutdown is acknowledged");
    });
    assert_eq!(wait_exit(&mut plugin.child), Some(0));
    assert!(!plugin.socket.exists());
}

#[test]
fn exits_when_its_host_dies() {
    let host = identity();
    // The "host" is a shell that starts the plugin and reports its pid.
    let mut shell = Command::new("sh")
        .args(["-c", "\"$0\" & echo \"pid $!\"; wait", PLUGIN])
        .env_clear()
        .env(COOKIE_KEY, COOKIE_VALUE)
        .env("PLUGIN_CLIENT_CERT", &host.pem)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(shell.stdout.take().unwrap()).lines();
    let mut pid = None;
    let mut socket = None;
    for line in lines.by_ref().take(2) {
        let line = line.unwrap();
        match line.strip_prefix("pid ") {
            Some(p) => pid = p.parse::<i32>().ok(),
            None => socket = line.split('|').nth(3).map(PathBuf::from),
        }
    }
    let (pid, socket) = (pid.expect("the plugin pid"), socket.expect("a handshake"));
    assert!(socket.exists());
    shell.kill().unwrap();
    shell.wait().unwrap();
    // Exited means gone, or a zombie its new parent has not reaped yet.
    let running = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit(')')
                .next()
                .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
        })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while running() {
        assert!(
            Instant::now() < deadline,
            "the orphaned plugin kept running"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!socket.exists(), "socket removed on exit");
}

/// A `/proc/<pid>/status` field, in kB.
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

#[test]
fn locks_its_memory_only_when_the_host_asks() {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    assert!(root, "run as root: locking all memory needs CAP_IPC_LOCK");
    let host = identity();
    let mut unlocked = launch(&host);
    assert_eq!(status_kib(unlocked.child.id(), "VmLck"), 0);
    let mut locked = launch_with(&host, &[("VAULT_PLUGIN_MLOCK_ENABLED", "true")]);
    let pid = locked.child.id();
    let (locked_kib, resident_kib) = (status_kib(pid, "VmLck"), status_kib(pid, "VmRSS"));
    // All but the kernel's shared pages (vdso, vvar), which cannot be locked.
    assert!(
        locked_kib * 10 >= resident_kib * 9,
        "the resident pages are locked: VmLck {locked_kib} kB, VmRSS {resident_kib} kB"
    );
    for plugin in [&mut unlocked, &mut locked] {
        unsafe { libc::kill(plugin.child.id() as i32, libc::SIGTERM) };
        assert_eq!(wait_exit(&mut plugin.child), Some(0));
    }
}

#[test]
fn refuses_to_serve_when_its_memory_cannot_be_locked() {
    use std::os::unix::process::CommandExt;
    let host = identity();
    let mut command = Command::new(PLUGIN);
    command
        .env_clear()
        .env(COOKIE_KEY, COOKIE_VALUE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "5")
        .env("PLUGIN_CLIENT_CERT", &host.pem)
        .env("VAULT_PLUGIN_MLOCK_ENABLED", "true");
    // As an unprivileged user with no memlock allowance: what a Vault
    // service without CAP_IPC_LOCK gives its plugins.
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(|| {
            let none = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            if libc::setrlimit(libc::RLIMIT_MEMLOCK, &none) != 0
                || libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(65534) != 0
                || libc::setuid(65534) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    };
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(output.stdout.is_empty(), "no handshake");
    let refusal: serde_json::Value = stderr
        .lines()
        .find_map(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| panic!("no log line: {stderr}"));
    assert_eq!(refusal["@level"], "error", "{refusal}");
    let message = refusal["@message"].as_str().unwrap();
    assert!(
        message.contains("mlockall: Operation not permitted")
            && message.contains("setcap cap_ipc_lock=+ep vault-plugin-secrets-cloudrotate")
            && message.contains("disable_mlock = true"),
        "{message}"
    );
}
