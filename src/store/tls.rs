//! TLS to the SQL servers: the `sslmode` and `sslrootcert` URL parameters, spelled as
//! PostgreSQL's libpq spells them, and the rustls client configuration they give (the one TLS
//! stack of the library: rustls with the ring provider, never OpenSSL).
//!
//! | `sslmode` | TLS | the server's certificate |
//! |---|---|---|
//! | `disable` | never | - |
//! | `prefer` | when the server offers it (PostgreSQL only) | not checked, unless `sslrootcert` is given: then as `verify-ca` |
//! | `require` | always | as `prefer` |
//! | `verify-ca` | always | signed by a CA of `sslrootcert` (else the system's), any host name |
//! | `verify-full` | always | as `verify-ca`, and issued for the host connected to |

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
#[cfg(feature = "postgres")]
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
    client::WebPkiServerVerifier,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::{verify_tls12_signature, verify_tls13_signature},
    pki_types::pem::PemObject,
    pki_types::{CertificateDer, ServerName, UnixTime},
};

use crate::error::{Error, Result};

/// How a connection uses TLS (the `sslmode` parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    /// Plain connections only.
    Disable,
    /// TLS when the server offers it, else plain; the certificate is not checked.
    #[default]
    Prefer,
    /// TLS or no connection; the certificate is not checked (unless `sslrootcert` is set).
    Require,
    /// TLS with a certificate signed by a trusted CA, whatever its host name.
    VerifyCa,
    /// TLS with a certificate signed by a trusted CA and issued for the host name.
    VerifyFull,
}

impl SslMode {
    /// Parses `disable`, `prefer`, `require`, `verify-ca` or `verify-full`.
    pub(crate) fn parse(text: &str) -> Result<SslMode> {
        match text {
            "disable" => Ok(SslMode::Disable),
            "prefer" => Ok(SslMode::Prefer),
            "require" => Ok(SslMode::Require),
            "verify-ca" => Ok(SslMode::VerifyCa),
            "verify-full" => Ok(SslMode::VerifyFull),
            other => Err(Error::config(
                "sslmode",
                format!("{other:?}: use disable, prefer, require, verify-ca or verify-full"),
            )),
        }
    }

    /// How the URL spells it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// Which certificate check this mode makes with the root certificate file `root_cert`.
    pub(crate) fn check(self, root_cert: Option<&Path>) -> CertificateCheck {
        match (self, root_cert) {
            (SslMode::VerifyFull, _) => CertificateCheck::Full,
            (SslMode::VerifyCa, _) | (SslMode::Prefer | SslMode::Require, Some(_)) => {
                CertificateCheck::Ca
            }
            _ => CertificateCheck::None,
        }
    }
}

/// What is checked of the server's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CertificateCheck {
    /// Nothing (the connection is encrypted, not authenticated).
    None,
    /// Its chain up to a trusted CA.
    Ca,
    /// Its chain and its host name.
    Full,
}

/// The crypto provider of every TLS connection of the library (ring), installed as the
/// process default too when none is, for the drivers that take the default.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let _ = CryptoProvider::install_default(provider.as_ref().clone());
    provider
}

#[cfg(feature = "postgres")]
/// The rustls client configuration for `check`, trusting the CA certificates in the PEM file
/// `root_cert`, or else the system's.
pub(crate) fn client_config(
    check: CertificateCheck,
    root_cert: Option<&Path>,
) -> Result<ClientConfig> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::config("sslmode", format!("TLS setup: {e}")))?;
    let verifier: Arc<dyn ServerCertVerifier> = match check {
        CertificateCheck::None => Arc::new(Unchecked(provider)),
        CertificateCheck::Ca | CertificateCheck::Full => {
            let roots = Arc::new(root_store(root_cert)?);
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| Error::config("sslrootcert", format!("no usable CA: {e}")))?;
            if check == CertificateCheck::Full {
                webpki
            } else {
                Arc::new(AnyHostName(webpki))
            }
        }
    };
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

#[cfg(feature = "postgres")]
/// The CA certificates of the PEM file `path`, or the system's.
fn root_store(path: Option<&Path>) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    match path {
        Some(path) => {
            let shown = path.display();
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| Error::config("sslrootcert", format!("{shown}: {e}")))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(Error::config(
                    "sslrootcert",
                    format!("{shown} holds no CA certificate"),
                ));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
        }
    }
    Ok(roots)
}

/// The `sslrootcert` parameter: a PEM file of CA certificates.
pub(crate) fn root_cert_path(value: Option<String>) -> Option<PathBuf> {
    value.filter(|path| !path.is_empty()).map(PathBuf::from)
}

#[cfg(feature = "postgres")]
/// Accepts any certificate (`require` without `sslrootcert`), checking only that the server
/// holds its key.
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

#[cfg(feature = "postgres")]
impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(feature = "postgres")]
/// The full check but for the host name (`verify-ca`).
#[derive(Debug)]
struct AnyHostName(Arc<WebPkiServerVerifier>);

#[cfg(feature = "postgres")]
impl ServerCertVerifier for AnyHostName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_name_the_setting() {
        for name in ["disable", "prefer", "require", "verify-ca", "verify-full"] {
            assert_eq!(SslMode::parse(name).unwrap().name(), name);
        }
        match SslMode::parse("allow") {
            Err(Error::Config { key, .. }) => assert_eq!(key, "sslmode"),
            other => panic!("accepted: {other:?}"),
        }
    }

    #[test]
    fn a_root_certificate_makes_require_check_the_ca() {
        let root = Path::new("/ca.pem");
        assert_eq!(SslMode::Require.check(None), CertificateCheck::None);
        assert_eq!(SslMode::Require.check(Some(root)), CertificateCheck::Ca);
        assert_eq!(SslMode::VerifyCa.check(None), CertificateCheck::Ca);
        assert_eq!(
            SslMode::VerifyFull.check(Some(root)),
            CertificateCheck::Full
        );
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn a_missing_root_certificate_names_the_setting() {
        match client_config(
            CertificateCheck::Full,
            Some(Path::new("/nonexistent/ca.pem")),
        ) {
            Err(Error::Config { key, .. }) => assert_eq!(key, "sslrootcert"),
            other => panic!("accepted: {:?}", other.map(|_| ())),
        }
    }
}
