//! AutoMTLS: the plugin's own ephemeral certificate, and TLS configurations
//! that accept exactly one peer certificate, the host's, byte for byte.
//!
//! Pinning is what keeps any other local process from calling the plugin.
//! A stock verifier cannot be used: the host certificate is a self-signed
//! CA:TRUE certificate presented as a leaf, which webpki refuses.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SerialNumber,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{ClientConfig, DigitallySignedStruct, ServerConfig, SignatureScheme};

/// The plugin's certificate and key, made at start and never stored.
pub struct Identity {
    pub certificate: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
}

impl Identity {
    /// Self-signed, SAN `localhost`, usable as TLS server (main connection)
    /// and client (the dial-back), like go-plugin's own certificates.
    /// P-256 keeps start-up fast; the host accepts it.
    pub fn generate() -> Result<Self, String> {
        let key =
            KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| e.to_string())?;
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned()]).map_err(|e| e.to_string())?;
        let mut name = DistinguishedName::new();
        name.push(DnType::OrganizationName, "vault-plugin-secrets-cloudrotate");
        name.push(DnType::CommonName, "localhost");
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
            KeyUsagePurpose::KeyAgreement,
            KeyUsagePurpose::KeyCertSign,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::seconds(30);
        params.not_after = now + time::Duration::days(3650);
        params.serial_number = Some(SerialNumber::from_slice(&os_random::<16>()?));
        let certificate = params.self_signed(&key).map_err(|e| e.to_string())?;
        Ok(Self {
            certificate: certificate.der().clone(),
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
        })
    }

    fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key.clone_key())
    }
}

/// `N` bytes from the kernel's CSPRNG (getrandom(2)), for the values made
/// before the handshake line. Not `rand::random`: the thread RNG's first
/// use seeds it and probes the CPU's features to pick a ChaCha
/// implementation, `cpuid` instructions that a hypervisor traps (~8 µs
/// each on the bench VM), for two values the kernel gives in one call.
pub fn os_random<const N: usize>() -> Result<[u8; N], String> {
    use rand::TryRngCore;
    let mut bytes = [0; N];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| format!("the kernel's random generator failed: {e}"))?;
    Ok(bytes)
}

/// Parses the host certificate from `PLUGIN_CLIENT_CERT` (PEM).
pub fn host_certificate(pem: &str) -> Result<CertificateDer<'static>, String> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .map_err(|err| format!("PLUGIN_CLIENT_CERT is not a PEM certificate: {err}"))
}

/// aws-lc-rs, because the host signs with P-521, which ring lacks.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Accepts one certificate, compared byte for byte, and checks that the
/// peer holds its key.
#[derive(Debug)]
struct Pinned {
    certificate: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl Pinned {
    fn new(certificate: CertificateDer<'static>, provider: &CryptoProvider) -> Arc<Self> {
        Arc::new(Self {
            certificate,
            algorithms: provider.signature_verification_algorithms,
        })
    }

    fn check(&self, presented: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        if presented.as_ref() == self.certificate.as_ref() {
            Ok(())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }
}

/// The handshake-signature half of both verifier traits: the provider's
/// own algorithms, over the pinned certificate's key.
macro_rules! verify_signatures_with_provider {
    () => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.algorithms.supported_schemes()
        }
    };
}

impl ClientCertVerifier for Pinned {
    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &[]
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check(end_entity)
            .map(|()| ClientCertVerified::assertion())
    }

    verify_signatures_with_provider!();
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check(end_entity)
            .map(|()| ServerCertVerified::assertion())
    }

    verify_signatures_with_provider!();
}

const ALPN_H2: &[u8] = b"h2";

/// The main connection: we serve, the host must present its certificate.
pub fn server_config(
    identity: &Identity,
    host: CertificateDer<'static>,
) -> Result<ServerConfig, rustls::Error> {
    let provider = provider();
    let mut config = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(Pinned::new(host, &provider))
        .with_single_cert(vec![identity.certificate.clone()], identity.key())?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(config)
}

/// The dial-back to the host's broker: same certificates, roles reversed.
pub fn client_config(
    identity: &Identity,
    host: CertificateDer<'static>,
) -> Result<ClientConfig, rustls::Error> {
    let provider = provider();
    let mut config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Pinned::new(host, &provider))
        .with_client_auth_cert(vec![identity.certificate.clone()], identity.key())?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::{TlsAcceptor, TlsConnector};

    use super::*;

    /// Runs one handshake over an in-memory pipe; the server echoes a byte.
    async fn handshake(server: ServerConfig, client: ClientConfig) -> Result<(), String> {
        let (near, far) = tokio::io::duplex(64 * 1024);
        let acceptor = TlsAcceptor::from(Arc::new(server));
        let served = tokio::spawn(async move {
            let mut tls = acceptor.accept(far).await.map_err(|e| e.to_string())?;
            assert_eq!(tls.get_ref().1.alpn_protocol(), Some(ALPN_H2));
            let mut byte = [0u8];
            tls.read_exact(&mut byte).await.map_err(|e| e.to_string())?;
            tls.write_all(&byte).await.map_err(|e| e.to_string())?;
            tls.flush().await.map_err(|e| e.to_string())
        });
        let connector = TlsConnector::from(Arc::new(client));
        let name = ServerName::try_from("localhost").unwrap();
        let client_side = async {
            let mut tls = connector
                .connect(name, near)
                .await
                .map_err(|e| e.to_string())?;
            tls.write_all(b"x").await.map_err(|e| e.to_string())?;
            let mut byte = [0u8];
            tls.read_exact(&mut byte).await.map_err(|e| e.to_string())?;
            Ok::<_, String>(())
        };
        let client_result = client_side.await;
        let server_result = served.await.unwrap();
        client_result.and(server_result)
    }

    /// A host-like identity: P-521, as go-plugin makes them.
    fn p521_identity() -> Identity {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512).unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let certificate = params.self_signed(&key).unwrap();
        Identity {
            certificate: certificate.der().clone(),
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
        }
    }

    #[tokio::test]
    async fn pinned_peers_connect_both_ways_with_a_p521_host() {
        let plugin = Identity::generate().unwrap();
        let host = p521_identity();
        // Main connection: the host dials the plugin.
        let server = server_config(&plugin, host.certificate.clone()).unwrap();
        let client = client_config(&host, plugin.certificate.clone()).unwrap();
        handshake(server, client).await.unwrap();
        // Dial-back: the plugin dials the host.
        let server = server_config(&host, plugin.certificate.clone()).unwrap();
        let client = client_config(&plugin, host.certificate.clone()).unwrap();
        handshake(server, client).await.unwrap();
    }

    #[tokio::test]
    async fn a_client_without_the_host_certificate_is_refused() {
        let plugin = Identity::generate().unwrap();
        let host = p521_identity();
        let stranger = p521_identity();
        let server = server_config(&plugin, host.certificate.clone()).unwrap();
        let client = client_config(&stranger, plugin.certificate.clone()).unwrap();
        let refused = handshake(server, client).await.unwrap_err();
        assert!(!refused.is_empty());
        // Nor may a client present no certificate at all.
        let server = server_config(&plugin, host.certificate.clone()).unwrap();
        let provider = provider();
        let mut anonymous = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Pinned::new(plugin.certificate.clone(), &provider))
            .with_no_client_auth();
        anonymous.alpn_protocols = vec![ALPN_H2.to_vec()];
        assert!(handshake(server, anonymous).await.is_err());
    }

    #[test]
    fn our_certificate_names_localhost_for_both_roles() {
        let plugin = Identity::generate().unwrap();
        let der = plugin.certificate.as_ref();
        // DER contains the SAN dNSName and both EKU OIDs (serverAuth, clientAuth).
        let has = |needle: &[u8]| der.windows(needle.len()).any(|w| w == needle);
        assert!(has(b"localhost"));
        assert!(has(&[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01]));
        assert!(has(&[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02]));
    }
}
