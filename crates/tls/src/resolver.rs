//! The certificate the HTTPS listener presents, swappable while it serves: a renewal or a
//! reload replaces it for the next handshake, and connections already open keep theirs.

use std::fmt;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::sync::watch;

/// The only protocol offered: the gateway speaks HTTP/1.1.
const ALPN_HTTP_1_1: &[u8] = b"http/1.1";

/// The crypto provider of every TLS configuration here: aws-lc-rs, as between nodes
/// (`peace_sharding::tls`), chosen per configuration so nothing process-wide decides it.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The current certificate, or none yet (an ACME server before its first order): until
/// there is one, handshakes fail and the plain listener keeps working.
///
/// A `watch` channel rather than a lock: reading it is what every handshake does, and
/// waiting for the first certificate comes with it.
pub struct CertSlot {
    current: watch::Sender<Option<Arc<CertifiedKey>>>,
}

impl CertSlot {
    pub fn new(initial: Option<Arc<CertifiedKey>>) -> Self {
        Self {
            current: watch::Sender::new(initial),
        }
    }

    /// Presents `key` from the next handshake on.
    pub fn set(&self, key: Arc<CertifiedKey>) {
        self.current.send_replace(Some(key));
    }

    pub fn current(&self) -> Option<Arc<CertifiedKey>> {
        self.current.borrow().clone()
    }

    /// Waits until there is a certificate.
    pub async fn ready(&self) {
        let mut receiver = self.current.subscribe();
        // The sender lives as long as `self`, so this cannot fail.
        let _ = receiver.wait_for(Option::is_some).await;
    }
}

impl fmt::Debug for CertSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertSlot")
            .field("has_certificate", &self.current.borrow().is_some())
            .finish()
    }
}

impl ResolvesServerCert for CertSlot {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // One certificate covers every name the client may ask for, so SNI does not
        // choose; a client that sends none (an address) gets the same one.
        self.current()
    }
}

/// The listener's TLS configuration, presenting whatever `slot` holds.
pub fn server_config(slot: Arc<CertSlot>) -> Result<Arc<ServerConfig>, rustls::Error> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(slot);
    config.alpn_protocols = vec![ALPN_HTTP_1_1.to_vec()];
    Ok(Arc::new(config))
}
