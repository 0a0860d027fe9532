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
    /// Started by a person; names the binary file so the printed commands
    /// work as written from the plugin directory.
    NotLaunchedByHost {
        program: String,
    },
    UnsupportedProtocol(String),
    NoHostCertificate,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotLaunchedByHost { program } => write!(
                f,
                "This is a Vault/OpenBao secrets engine plugin and is not meant to be run by hand.\n\
                 Copy it into the server's plugin_directory, then, from that directory, register and mount it:\n\
                 \x20 vault plugin register -sha256=$(sha256sum {program} | cut -d' ' -f1) -command={program} secret cloudrotate\n\
                 \x20 vault secrets enable -path=database cloudrotate\n\
                 (with OpenBao, use `bao` in place of `vault`). `./{program} --version` prints its version."
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
    /// `PLUGIN_MULTIPLEX_GRPC` was set at all: the host reads a seventh
    /// handshake field.
    pub multiplex_field: bool,
    /// ... and it was true: gRPC broker multiplexing over one connection
    /// (Vault's containerised plugins).
    pub multiplex: bool,
    /// Where to create the socket, when the host says.
    pub socket_dir: Option<String>,
    /// The group (name or id) that must be able to use the socket.
    pub socket_group: Option<String>,
    /// `VAULT_PLUGIN_MLOCK_ENABLED=true`: keep our memory out of swap.
    pub lock_memory: bool,
}

/// Checks the environment the way go-plugin's server does; `program` is
/// the file name this process was started from.
pub fn check(env: impl Fn(&str) -> Option<String>, program: &str) -> Result<Launch, Refusal> {
    if env(COOKIE_KEY).as_deref() != Some(COOKIE_VALUE) {
        return Err(Refusal::NotLaunchedByHost {
            program: program.to_owned(),
        });
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
    let multiplex = env("PLUGIN_MULTIPLEX_GRPC").filter(|v| !v.is_empty());
    Ok(Launch {
        host_certificate_pem,
        multiplex_field: multiplex.is_some(),
        multiplex: multiplex.as_deref().is_some_and(go_true),
        socket_dir: env("PLUGIN_UNIX_SOCKET_DIR").filter(|d| !d.is_empty()),
        socket_group: env("PLUGIN_UNIX_SOCKET_GROUP").filter(|g| !g.is_empty()),
        // The SDK compares with "true" exactly.
        lock_memory: env("VAULT_PLUGIN_MLOCK_ENABLED").as_deref() == Some("true"),
    })
}

/// Go's `strconv.ParseBool` true values, which go-plugin uses.
fn go_true(value: &str) -> bool {
    matches!(value, "1" | "t" | "T" | "true" | "TRUE" | "True")
}

/// `CORE|APP|NETWORK|ADDRESS|PROTOCOL|SERVERCERT[|MUXSUPPORTED]`. The
/// certificate is unpadded standard base64 of the DER; the seventh field
/// (we support multiplexing) is only written when the host set
/// `PLUGIN_MULTIPLEX_GRPC`, because older hosts split into at most six
/// fields.
pub fn handshake_line(socket: &str, certificate_der: &[u8], launch: &Launch) -> String {
    let mut line = format!(
        "1|{PROTOCOL_VERSION}|unix|{socket}|grpc|{}",
        STANDARD_NO_PAD.encode(certificate_der)
    );
    if launch.multiplex_field {
        line.push_str("|true");
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
        let refusal = check(env(&[CERT]), "renamed-plugin").unwrap_err();
        let text = refusal.to_string();
        assert!(
            text.contains("sha256sum renamed-plugin")
                && text.contains("-command=renamed-plugin secret cloudrotate")
                && text.contains("secrets enable"),
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
        assert!(matches!(
            check(database, "p").unwrap_err(),
            Refusal::NotLaunchedByHost { .. }
        ));
    }

    #[test]
    fn serves_only_protocol_five_in_any_order() {
        for offered in ["5", "4,5", " 5 , 3", ""] {
            let launch = check(
                env(&[COOKIE, CERT, ("PLUGIN_PROTOCOL_VERSIONS", offered)]),
                "p",
            );
            assert!(launch.is_ok(), "{offered:?}");
        }
        for offered in ["3,4", "4,3", "6"] {
            let refusal = check(
                env(&[COOKIE, CERT, ("PLUGIN_PROTOCOL_VERSIONS", offered)]),
                "p",
            );
            assert_eq!(
                refusal.unwrap_err(),
                Refusal::UnsupportedProtocol(offered.into())
            );
        }
        assert_eq!(
            check(env(&[COOKIE]), "p").unwrap_err(),
            Refusal::NoHostCertificate
        );
    }

    #[test]
    fn handshake_line_is_exact() {
        let launch = check(env(&[COOKIE, CERT]), "p").unwrap();
        assert!(!launch.multiplex && !launch.lock_memory);
        // 4 bytes of DER encode to 6 characters, which padded base64 would end with "==".
        let line = handshake_line("/tmp/plugin42", &[0x30, 0x82, 0x01, 0x0a], &launch);
        assert_eq!(line, "1|5|unix|/tmp/plugin42|grpc|MIIBCg\n");
        let asked = check(env(&[COOKIE, CERT, ("PLUGIN_MULTIPLEX_GRPC", "true")]), "p").unwrap();
        assert!(asked.multiplex);
        let line = handshake_line("/tmp/p", &[0x30], &asked);
        assert_eq!(line, "1|5|unix|/tmp/p|grpc|MA|true\n");
    }

    #[test]
    fn multiplexing_socket_group_and_mlock_are_read_as_go_plugin_and_the_sdk_do() {
        // Set but false: the seventh field is written, nothing is multiplexed.
        let off = check(
            env(&[COOKIE, CERT, ("PLUGIN_MULTIPLEX_GRPC", "false")]),
            "p",
        )
        .unwrap();
        assert!(off.multiplex_field && !off.multiplex);
        let on = check(env(&[COOKIE, CERT, ("PLUGIN_MULTIPLEX_GRPC", "1")]), "p").unwrap();
        assert!(on.multiplex);
        let launch = check(
            env(&[
                COOKIE,
                CERT,
                ("PLUGIN_UNIX_SOCKET_DIR", "/run/vault/plugins"),
                ("PLUGIN_UNIX_SOCKET_GROUP", "1000"),
                ("VAULT_PLUGIN_MLOCK_ENABLED", "true"),
            ]),
            "p",
        )
        .unwrap();
        assert_eq!(launch.socket_dir.as_deref(), Some("/run/vault/plugins"));
        assert_eq!(launch.socket_group.as_deref(), Some("1000"));
        assert!(launch.lock_memory);
        let not_exactly_true = check(
            env(&[COOKIE, CERT, ("VAULT_PLUGIN_MLOCK_ENABLED", "TRUE")]),
            "p",
        )
        .unwrap();
        assert!(!not_exactly_true.lock_memory);
    }
}
