//! A throwaway certificate authority for TLS tests: a test CA, a server certificate it issued for
//! `127.0.0.1`/`localhost`, and optionally a self-signed server certificate that the test CA did
//! not issue (to prove a client rejects an untrusted server).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair};

/// The names every test server certificate is valid for.
pub const SERVER_NAMES: [&str; 2] = ["127.0.0.1", "localhost"];

/// PEM files of a test PKI, written into one directory.
#[derive(Debug, Clone)]
pub struct TestPki {
    /// The test CA certificate (`ca.pem`): what clients trust.
    pub ca_pem: PathBuf,
    /// The certificate the server presents (`server.pem`).
    pub server_cert_pem: PathBuf,
    /// The server's private key, PKCS#8 (`server-key.pem`).
    pub server_key_pem: PathBuf,
    /// Whether the server certificate is self-signed instead of issued by the test CA.
    pub server_self_signed: bool,
}

impl TestPki {
    /// Generates a CA and a server certificate into `dir`. With `server_self_signed`, the server
    /// certificate is self-signed (the CA is still written, and does not vouch for it).
    pub fn generate(dir: &Path, server_self_signed: bool) -> io::Result<TestPki> {
        let ca_key = KeyPair::generate().map_err(rcgen_error)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(rcgen_error)?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name = named("Callisto Test CA");
        let ca_cert = ca_params.self_signed(&ca_key).map_err(rcgen_error)?;

        let server_key = KeyPair::generate().map_err(rcgen_error)?;
        let server_names: Vec<String> = SERVER_NAMES.iter().map(|name| name.to_string()).collect();
        let mut server_params = CertificateParams::new(server_names).map_err(rcgen_error)?;
        server_params.distinguished_name = named("127.0.0.1");
        let server_cert = if server_self_signed {
            server_params.self_signed(&server_key)
        } else {
            server_params.signed_by(&server_key, &ca_cert, &ca_key)
        }
        .map_err(rcgen_error)?;

        let pki = TestPki {
            ca_pem: dir.join("ca.pem"),
            server_cert_pem: dir.join("server.pem"),
            server_key_pem: dir.join("server-key.pem"),
            server_self_signed,
        };
        fs::write(&pki.ca_pem, ca_cert.pem())?;
        fs::write(&pki.server_cert_pem, server_cert.pem())?;
        fs::write(&pki.server_key_pem, server_key.serialize_pem())?;
        Ok(pki)
    }

    /// A rustls root store that trusts only the test CA.
    pub fn root_store(&self) -> io::Result<rustls::RootCertStore> {
        root_store_from_pem(&self.ca_pem)
    }
}

/// A rustls root store holding every certificate in the PEM file at `path`.
pub fn root_store_from_pem(path: &Path) -> io::Result<rustls::RootCertStore> {
    let pem = fs::read(path)?;
    let mut store = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        store
            .add(cert?)
            .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))?;
    }
    if store.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("no certificate in {}", path.display()),
        ));
    }
    Ok(store)
}

fn named(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name
}

fn rcgen_error(error: rcgen::Error) -> io::Error {
    io::Error::other(format!("certificate generation failed: {error}"))
}
