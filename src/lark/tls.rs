//! One TLS configuration for every HTTP client of the process: rustls with ring, and the
//! platform's certificate verifier (the system's root store, as reqwest would use) loaded
//! on the first TLS handshake instead of when a client is built.
//!
//! Why: building a reqwest client loads and parses the whole system store (on Linux every
//! file in /etc/ssl/certs), and `serve` builds two clients before it answers anything.
//! That was most of the time from spawn to `tools/list`, and paid again per client.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| {
            let p = Arc::new(rustls::crypto::ring::default_provider());
            // For any TLS client built without this configuration.
            let _ = CryptoProvider::install_default(p.as_ref().clone());
            p
        })
        .clone()
}

/// The configuration every `reqwest::ClientBuilder` gets (`tls_backend_preconfigured`).
pub fn client_config() -> rustls::ClientConfig {
    static CONFIG: OnceLock<rustls::ClientConfig> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = provider();
            let verifier = Arc::new(LazyVerifier {
                provider: provider.clone(),
                inner: OnceLock::new(),
            });
            let mut config = match rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
            {
                Ok(b) => b
                    .dangerous()
                    .with_custom_certificate_verifier(verifier)
                    .with_no_client_auth(),
                // ring supports the default versions; unreachable, but not worth a panic.
                Err(_) => rustls::ClientConfig::builder()
                    .dangerous()
                    .with_custom_certificate_verifier(verifier)
                    .with_no_client_auth(),
            };
            // reqwest is built without HTTP/2: a server must not pick h2.
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            config
        })
        .clone()
}

/// Installs the process-wide crypto provider (ring) for TLS users that build their own
/// configuration. Called first thing by `main`.
pub fn init() {
    let _ = provider();
}

/// The platform verifier, created when a certificate first needs verifying.
#[derive(Debug)]
struct LazyVerifier {
    provider: Arc<CryptoProvider>,
    inner: OnceLock<Result<Arc<rustls_platform_verifier::Verifier>, rustls::Error>>,
}

impl LazyVerifier {
    fn verifier(&self) -> Result<&rustls_platform_verifier::Verifier, rustls::Error> {
        self.inner
            .get_or_init(|| {
                rustls_platform_verifier::Verifier::new(self.provider.clone()).map(Arc::new)
            })
            .as_ref()
            .map(|v| v.as_ref())
            .map_err(Clone::clone)
    }
}

impl ServerCertVerifier for LazyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.verifier()?.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
    }

    // Signatures need no root store: checked with the provider's algorithms, as the
    // platform verifier does on this platform.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn building_the_config_loads_no_root_store() {
        let config = super::client_config();
        assert_eq!(config.alpn_protocols, [b"http/1.1".to_vec()]);
        let verifier = super::LazyVerifier {
            provider: super::provider(),
            inner: std::sync::OnceLock::new(),
        };
        assert!(
            !rustls::client::danger::ServerCertVerifier::supported_verify_schemes(&verifier)
                .is_empty()
        );
        assert!(verifier.inner.get().is_none(), "nothing loaded yet");
    }
}
