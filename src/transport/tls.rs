//! The TLS client: trust configuration, loaded on first use, and readable handshake errors.

use std::io::BufReader;
use std::net::IpAddr;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{CertificateError, ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio::sync::OnceCell;
use tokio_rustls::client::TlsStream;

use super::{Target, TlsClientSettings, TransportError};

/// Connects TLS clients. The root store is built when the first TLS connection is made: reading
/// the system's certificates takes time that start-up should not pay.
pub(super) struct TlsConnector {
    settings: TlsClientSettings,
    config: OnceCell<Arc<ClientConfig>>,
}

impl TlsConnector {
    pub(super) fn new(settings: TlsClientSettings) -> Self {
        TlsConnector {
            settings,
            config: OnceCell::new(),
        }
    }

    /// Runs the TLS handshake on a connected TCP stream. The certificate must be valid for
    /// `server_name`, or for the peer's IP address when no name is given.
    pub(super) async fn connect(
        &self,
        target: Target,
        server_name: Option<&str>,
        tcp: TcpStream,
    ) -> Result<TlsStream<TcpStream>, TransportError> {
        let config = self
            .config
            .get_or_try_init(|| async {
                let settings = self.settings.clone();
                tokio::task::spawn_blocking(move || client_config(&settings))
                    .await
                    .map_err(|error| TransportError::Io(std::io::Error::other(error)))?
            })
            .await?;
        let name = server_name_for(target, server_name)?;
        let connector = tokio_rustls::TlsConnector::from(Arc::clone(config));
        connector
            .connect(name, tcp)
            .await
            .map_err(|error| handshake_error(target, error))
    }
}

fn server_name_for(
    target: Target,
    server_name: Option<&str>,
) -> Result<ServerName<'static>, TransportError> {
    match server_name {
        Some(name) => {
            let name = name.trim_start_matches('[').trim_end_matches(']');
            if let Ok(ip) = name.parse::<IpAddr>() {
                return Ok(ServerName::IpAddress(ip.into()));
            }
            ServerName::try_from(name.to_owned()).map_err(|_| TransportError::Tls {
                target,
                reason: format!("{name:?} is not a valid server name"),
            })
        }
        None => Ok(ServerName::IpAddress(target.addr.ip().into())),
    }
}

/// Builds the client configuration from the system roots and the extra CA file.
fn client_config(settings: &TlsClientSettings) -> Result<Arc<ClientConfig>, TransportError> {
    let mut roots = RootCertStore::empty();
    if settings.use_system_roots {
        let native = rustls_native_certs::load_native_certs();
        for error in &native.errors {
            tracing::warn!(%error, "could not load some system root certificates");
        }
        let (added, ignored) = roots.add_parsable_certificates(native.certs);
        tracing::debug!(added, ignored, "loaded system root certificates");
    }
    if let Some(path) = &settings.extra_ca_file {
        let ca_error = |reason: String| TransportError::CaFile {
            path: path.clone(),
            reason,
        };
        let file = std::fs::File::open(path).map_err(|error| ca_error(error.to_string()))?;
        let mut added = 0;
        for cert in rustls_pemfile::certs(&mut BufReader::new(file)) {
            let cert = cert.map_err(|error| ca_error(error.to_string()))?;
            roots
                .add(cert)
                .map_err(|error| ca_error(error.to_string()))?;
            added += 1;
        }
        if added == 0 {
            return Err(ca_error("it holds no PEM certificate".to_owned()));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| TransportError::Io(std::io::Error::other(error)))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Turns a failed handshake into an error that says what went wrong in plain words.
fn handshake_error(target: Target, error: std::io::Error) -> TransportError {
    let rustls_error = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match rustls_error {
        Some(rustls::Error::InvalidCertificate(cert_error)) => TransportError::Tls {
            target,
            reason: describe_certificate_error(cert_error),
        },
        Some(other) => TransportError::Tls {
            target,
            reason: other.to_string(),
        },
        None => TransportError::Io(error),
    }
}

/// Words for a certificate error, with the rustls variant in parentheses for searching.
pub(super) fn describe_certificate_error(error: &CertificateError) -> String {
    let debug = format!("{error:?}");
    let variant: String = debug
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    let variant = variant.strip_suffix("Context").unwrap_or(&variant);
    let words = match error {
        CertificateError::UnknownIssuer => "the server's certificate is not trusted",
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "the server's certificate has expired"
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "the server's certificate is not valid yet"
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            "the server's certificate is for another name"
        }
        CertificateError::Revoked => "the server's certificate has been revoked",
        CertificateError::BadSignature => "the server's certificate has a bad signature",
        CertificateError::BadEncoding => "the server's certificate is malformed",
        _ => "the server's certificate was rejected",
    };
    format!("{words} ({variant})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_errors_read_as_plain_words() {
        assert_eq!(
            describe_certificate_error(&CertificateError::UnknownIssuer),
            "the server's certificate is not trusted (UnknownIssuer)"
        );
        assert_eq!(
            describe_certificate_error(&CertificateError::Expired),
            "the server's certificate has expired (Expired)"
        );
    }
}
