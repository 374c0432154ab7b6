//! Optional TLS between nodes (`[cluster] tls_cert`, `tls_key`, `tls_ca`).
//!
//! Mutual TLS: every node presents a certificate signed by the cluster's CA and accepts
//! only peers that do the same, so a machine without such a certificate cannot even
//! reach the cookie check. Every node's certificate carries one cluster-wide name
//! ([`TlsFiles::server_name`], by default [`DEFAULT_SERVER_NAME`]), which is what a
//! connecting node verifies: nodes are dialled by address, and addresses change more
//! often than a cluster's CA. docs/cluster.md shows how to make the files with openssl.
//!
//! With TLS, ractor_cluster's transitive connections (which dial without TLS) are off;
//! nodes find each other through their peers instead (`RequestBody::Peers`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use thiserror::Error;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// The name in every node's certificate unless the configuration says otherwise.
pub const DEFAULT_SERVER_NAME: &str = "peace-cluster";

/// Where a node's TLS material is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// This node's certificate chain (PEM), signed by the cluster's CA.
    pub cert: PathBuf,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// The cluster's CA certificate(s) (PEM): peers must be signed by one of them.
    pub ca: PathBuf,
    /// The DNS name every node's certificate carries.
    pub server_name: String,
}

#[derive(Debug, Error)]
pub enum TlsError {
    #[error("{path}: {why}")]
    File { path: PathBuf, why: String },
    #[error("{0}: no certificate in the file")]
    NoCertificate(PathBuf),
    #[error("tls_server_name {0:?} is not a valid DNS name")]
    ServerName(String),
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// A node's TLS set-up: what accepts peers and what dials them.
#[derive(Clone)]
pub struct NodeTls {
    pub acceptor: TlsAcceptor,
    pub connector: TlsConnector,
    pub server_name: ServerName<'static>,
}

impl std::fmt::Debug for NodeTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeTls")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl NodeTls {
    /// Reads the files and builds both sides; any problem is an error that names the
    /// file, so that a node with broken TLS refuses to start instead of running open.
    pub fn load(files: &TlsFiles) -> Result<Self, TlsError> {
        let chain = certificates(&files.cert)?;
        let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| TlsError::File {
            path: files.key.clone(),
            why: e.to_string(),
        })?;
        let mut roots = RootCertStore::empty();
        for ca in certificates(&files.ca)? {
            roots.add(ca).map_err(|e| TlsError::File {
                path: files.ca.clone(),
                why: e.to_string(),
            })?;
        }
        let roots = Arc::new(roots);
        let server_name = ServerName::try_from(files.server_name.clone())
            .map_err(|_| TlsError::ServerName(files.server_name.clone()))?;

        // The provider is chosen here rather than process-wide, so that nothing else in
        // the process can change which one the cluster uses.
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config_error = |e: rustls::Error| TlsError::Config(e.to_string());
        let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(config_error)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(config_error)?;
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(config_error)?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(config_error)?;
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(Arc::new(client)),
            server_name,
        })
    }
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let file_error = |e: rustls::pki_types::pem::Error| TlsError::File {
        path: path.to_owned(),
        why: e.to_string(),
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(file_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(file_error)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(path.to_owned()));
    }
    Ok(certs)
}
