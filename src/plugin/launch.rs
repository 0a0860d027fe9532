//! What the host tells a freshly started plugin through its environment,
//! checked before anything else runs, and the handshake line it expects on
//! stdout in return.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;

/// go-plugin's magic cookie for Vault/OpenBao backend (secrets and auth)
/// plugins. Not a secret: it only tells "started by a host" apart from
/// "started by a person".
pub const COOKIE_KEY: &str = "VAULT_BACKEND_PLUGIN";
pub const COOKIE_VALUE: &str = "6669da05-b1c8-4f49-97d9-c8e5bed98e20";
/// The only application protocol this plugin speaks.
pub const PROTOCOL_VERSION: u32 = 5;

/// Why the process refuses to serve; printed on stderr as is.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    NotLaunchedByHost,
    UnsupportedProtocol(String),
    NoHostCertificate,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotLaunchedByHost => write!(
                f,
                "This is a Vault/OpenBao secrets engine plugin and is not meant to be run by hand.\n\
                 Copy it into the server's plugin_directory, then register and mount it:\n\
                 \x20 vault plugin register -sha256=$(sha256sum {bin} | cut -d' ' -f1) secret cloudrotate\n\
                 \x20 vault secrets enable -path=database cloudrotate\n\
                 (with OpenBao, use `bao` in place of `vault`). `{bin} --version` prints its version.",
                bin = env!("CARGO_PKG_NAME")
            ),
            Self::UnsupportedProtocol(offered) => write!(
                f,
                "the host offered plugin protocol versions {offered:?}, but this plugin speaks only \
                 version {PROTOCOL_VERSION} (Vault 1.12+ or OpenBao 2.x with AutoMTLS); upgrade the server"
            ),
            Self::NoHostCertificate => write!(
                f,
                "the host did not pass PLUGIN_CLIENT_CERT; this plugin needs AutoMTLS \
                 (plugin protocol {PROTOCOL_VERSION}); upgrade the server"
            ),
        }
    }
}

/// The launch parameters that matter, read from the environment.
#[derive(Debug)]
pub struct Launch {
    /// PEM of the host's certificate, to pin in both directions.
    pub host_certificate_pem: String,
    /// The host asked for broker multiplexing (Vault's container runtime),
    /// which this plugin does not support; the handshake must say so.
    pub multiplex_grpc_requested: bool,
    /// Where to create the socket, when the host says.
    pub socket_dir: Option<String>,
}

/// Checks the environment the way go-plugin's server does.
pub fn check(env: impl Fn(&str) -> Option<String>) -> Result<Launch, Refusal> {
    if env(COOKIE_KEY).as_deref() != Some(COOKIE_VALUE) {
        return Err(Refusal::NotLaunchedByHost);
    }
    // The order of the list is random; absent means "whatever you speak".
    if let Some(offered) = env("PLUGIN_PROTOCOL_VERSIONS").filter(|v| !v.trim().is_empty()) {
        let speaks = offered
            .split(',')
            .any(|v| v.trim().parse() == Ok(PROTOCOL_VERSION));
        if !speaks {
            return Err(Refusal::UnsupportedProtocol(offered));
        }
    }
    let host_certificate_pem = env("PLUGIN_CLIENT_CERT")
        .filter(|pem| !pem.trim().is_empty())
        .ok_or(Refusal::NoHostCertificate)?;
    Ok(Launch {
        host_certificate_pem,
        multiplex_grpc_requested: env("PLUGIN_MULTIPLEX_GRPC").is_some_and(|v| !v.is_empty()),
        socket_dir: env("PLUGIN_UNIX_SOCKET_DIR").filter(|d| !d.is_empty()),
    })
}

/// `CORE|APP|NETWORK|ADDRESS|PROTOCOL|SERVERCERT[|MUXSUPPORTED]`. The
/// certificate is unpadded standard base64 of the DER; the seventh field is
/// only written when the host asked, because older hosts split into at most
/// six fields.
pub fn handshake_line(socket: &str, certificate_der: &[u8], launch: &Launch) -> String {
    let mut line = format!(
        "1|{PROTOCOL_VERSION}|unix|{socket}|grpc|{}",
        STANDARD_NO_PAD.encode(certificate_der)
    );
    if launch.multiplex_grpc_requested {
        line.push_str("|false");
    }
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |key| map.get(key).cloned()
    }

    const CERT: (&str, &str) = ("PLUGIN_CLIENT_CERT", "-----BEGIN CERTIFICATE-----\n...");
    const COOKIE: (&str, &str) = (COOKIE_KEY, COOKIE_VALUE);

    #[test]
    fn refuses_without_the_cookie_and_explains_how_to_register() {
        let refusal = check(env(&[CERT])).unwrap_err();
        assert_eq!(refusal, Refusal::NotLaunchedByHost);
        let text = refusal.to_string();
        assert!(
            text.contains("plugin register") && text.contains("secrets enable"),
            "{text}"
        );
        // The database-plugin cookie is not ours either.
        let database = env(&[
            (
                "VAULT_DATABASE_PLUGIN",
                "926a0820-aea2-be28-51d6-83cdf00e8edb",
            ),
            CERT,
        ]);
        assert_eq!(check(database).unwrap_err(), Refusal::NotLaunchedByHost);
    }

    #[test]
    fn serves_only_protocol_five_in_any_order() {
        for offered in ["5", "4,5", " 5 , 3", ""] {
            let launch = check(env(&[COOKIE, CERT, ("PLUGIN_PROTOCOL_VERSIONS", offered)]));
            assert!(launch.is_ok(), "{offered:?}");
        }
        for offered in ["3,4", "4,3", "6"] {
            let refusal = check(env(&[COOKIE, CERT, ("PLUGIN_PROTOCOL_VERSIONS", offered)]));
            assert_eq!(
                refusal.unwrap_err(),
                Refusal::UnsupportedProtocol(offered.into())
            );
        }
        assert_eq!(
            check(env(&[COOKIE])).unwrap_err(),
            Refusal::NoHostCertificate
        );
    }

    #[test]
    fn handshake_line_is_exact() {
        let launch = check(env(&[COOKIE, CERT])).unwrap();
        // 4 bytes of DER encode to 6 characters, which padded base64 would end with "==".
        let line = handshake_line("/tmp/plugin42", &[0x30, 0x82, 0x01, 0x0a], &launch);
        assert_eq!(line, "1|5|unix|/tmp/plugin42|grpc|MIIBCg\n");
        let asked = check(env(&[COOKIE, CERT, ("PLUGIN_MULTIPLEX_GRPC", "true")])).unwrap();
        let line = handshake_line("/tmp/p", &[0x30], &asked);
        assert_eq!(line, "1|5|unix|/tmp/p|grpc|MA|false\n");
    }
}
