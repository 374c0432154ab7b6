//! What can go wrong while getting or loading a certificate. Every variant that concerns a
//! file names it, so that an operator knows which one to fix.

use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum TlsError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not PEM this server can read: {source}")]
    Pem {
        path: PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("{0}: no certificate in the file")]
    NoCertificate(PathBuf),
    #[error("{path}: the certificate cannot be read: {why}")]
    Certificate { path: PathBuf, why: String },
    #[error("{path}: the key cannot be used: {source}")]
    Key {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("{cert} and {key} do not belong together: {source}")]
    KeyMismatch {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error(
        "{ca}: the local CA is incomplete or unreadable ({why}); remove {ca} and its key to \
         make a new one (clients will have to trust the new one)"
    )]
    LocalCa { ca: PathBuf, why: String },
    #[error("{0:?} is not a DNS name a certificate can carry")]
    Name(String),
    #[error("making a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("ACME: {0}")]
    Acme(#[from] instant_acme::Error),
    #[error("ACME: the order for {names} ended {status}")]
    AcmeOrder { names: String, status: String },
    #[error("ACME: the authorization of {name} is {status}")]
    AcmeAuthorization { name: String, status: String },
    #[error("ACME: the directory offers no http-01 challenge for {0}")]
    AcmeNoHttpChallenge(String),
    #[error("{path}: {source}")]
    AccountFile {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

impl TlsError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}
