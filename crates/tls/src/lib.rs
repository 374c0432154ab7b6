//! HTTPS for the client-facing listener (`[tls]` in `cluster.toml`).
//!
//! The stable osu! client, started with `-devserver <domain>`, speaks HTTPS to
//! `c.`, `ce.`, `c4.`, `c5.`, `c6.`, `osu.`, `a.` and `b.<domain>` ([`client_names`]).
//! [`start`] gets a certificate for all of them from one of three sources and returns a
//! [`TlsHandle`]: a rustls [`ServerConfig`] whose certificate is swapped live, and the
//! background task that keeps it fresh.
//!
//! * `local_ca`: a CA of the server's own, which players trust once.
//! * `files`: the operator's PEM files, reloaded when they change.
//! * `acme`: certificates from an ACME directory (Let's Encrypt) over HTTP-01; the plain
//!   listener answers the challenges from [`Challenges`].
//!
//! Invariant: this crate depends on no other `peace-*` crate and serves nothing itself:
//! the gateway accepts connections with the configuration it gets from here.

mod acme;
mod certificate;
mod challenges;
mod error;
mod files;
mod local_ca;
mod resolver;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::ServerConfig;
use tokio::task::JoinHandle;

pub use acme::{AcmeSettings, DEFAULT_DIRECTORY};
pub use certificate::RENEW_BEFORE;
pub use challenges::Challenges;
pub use error::TlsError;
pub use local_ca::{CA_CERT_FILE, ca_cert_path};

/// The subdomains of the server's domain that the osu! client reaches over HTTPS: Bancho
/// (`c`, `ce`, `c4`, `c5`, `c6`), the web endpoints (`osu`), avatars (`a`) and beatmap
/// thumbnails and previews (`b`).
pub const CLIENT_SUBDOMAINS: [&str; 8] = ["c", "ce", "c4", "c5", "c6", "osu", "a", "b"];

/// Every name a certificate for `domain` must cover: the domain and its client
/// subdomains.
pub fn client_names(domain: &str) -> Vec<String> {
    std::iter::once(domain.to_owned())
        .chain(
            CLIENT_SUBDOMAINS
                .iter()
                .map(|sub| format!("{sub}.{domain}")),
        )
        .collect()
}

/// Checks that every name can be put in a certificate (a DNS name, no wildcard).
pub fn check_names(names: &[String]) -> Result<(), TlsError> {
    for name in names {
        if name.contains('*') || rustls::pki_types::DnsName::try_from(name.as_str()).is_err() {
            return Err(TlsError::Name(name.clone()));
        }
    }
    Ok(())
}

/// Where the certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A CA of this server's own, kept in the directory ([`TlsSettings::dir`]).
    LocalCa,
    /// The operator's PEM certificate chain and private key.
    Files { cert: PathBuf, key: PathBuf },
    /// An ACME directory.
    Acme(AcmeSettings),
}

/// What [`start`] needs (`[tls]` of `cluster.toml`, without the listener's address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub source: Source,
    /// Where the local CA, ACME's account and the certificates made here are kept.
    pub dir: PathBuf,
}

/// The listener's TLS: its configuration and the task that keeps the certificate fresh
/// (stopped when the handle is dropped).
pub struct TlsHandle {
    config: Arc<ServerConfig>,
    slot: Arc<resolver::CertSlot>,
    challenges: Challenges,
    task: JoinHandle<()>,
}

impl fmt::Debug for TlsHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsHandle")
            .field("slot", &self.slot)
            .finish_non_exhaustive()
    }
}

impl TlsHandle {
    /// What the HTTPS listener accepts with: HTTP/1.1 only, and the current certificate
    /// at every handshake.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.config.clone()
    }

    /// The HTTP-01 answers the plain listener must serve (empty outside of acme mode).
    pub fn challenges(&self) -> Challenges {
        self.challenges.clone()
    }

    /// Waits until there is a certificate to present (at once, except for a first ACME
    /// order).
    pub async fn ready(&self) {
        self.slot.ready().await;
    }
}

impl Drop for TlsHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Gets the certificate for `names` (see [`client_names`]) from `settings`' source and
/// starts keeping it fresh. A problem a restart would not fix (unreadable files, a
/// broken CA, an invalid name) is an error here; an ACME order is made in the
/// background, so that the plain listener can answer its challenges. Must be called on
/// a tokio runtime.
pub fn start(settings: &TlsSettings, names: Vec<String>) -> Result<TlsHandle, TlsError> {
    check_names(&names)?;
    let challenges = Challenges::default();
    let (slot, task) = match &settings.source {
        Source::LocalCa => {
            let issued = local_ca::ensure(&settings.dir, &names, std::time::SystemTime::now())?;
            let days_left = issued
                .leaf
                .not_after
                .duration_since(std::time::SystemTime::now())
                .unwrap_or_default()
                .as_secs()
                / (24 * 3600);
            match issued.renewed {
                Some(why) => tracing::info!(%why, days_left, "local CA: new certificate"),
                None => tracing::info!(days_left, "local CA: reusing the certificate"),
            }
            tracing::info!("{}", local_ca::trust_instructions(&settings.dir));
            let slot = Arc::new(resolver::CertSlot::new(Some(issued.key)));
            let task = tokio::spawn(local_ca::renew_forever(
                settings.dir.clone(),
                names,
                slot.clone(),
            ));
            (slot, task)
        }
        Source::Files { cert, key } => {
            let (watch, key) = files::FilesWatch::open(cert.clone(), key.clone(), names)?;
            let slot = Arc::new(resolver::CertSlot::new(Some(key)));
            let task = tokio::spawn(files::watch_forever(watch, slot.clone()));
            (slot, task)
        }
        Source::Acme(acme) => {
            std::fs::create_dir_all(&settings.dir).map_err(error::TlsError::io(&settings.dir))?;
            if let Some(ca) = &acme.directory_ca {
                // Read now, so that a wrong path stops the start and names the file.
                certificate::parse_chain(&certificate::read(ca)?, ca)?;
            }
            let stored = acme::stored(&settings.dir);
            let (key, leaf) = stored.map_or((None, None), |(key, leaf)| (Some(key), Some(leaf)));
            let slot = Arc::new(resolver::CertSlot::new(key));
            let task = tokio::spawn(acme::renew_forever(
                acme.clone(),
                settings.dir.clone(),
                names,
                slot.clone(),
                challenges.clone(),
                leaf,
            ));
            (slot, task)
        }
    };
    let config = resolver::server_config(slot.clone())?;
    Ok(TlsHandle {
        config,
        slot,
        challenges,
        task,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A TLS handshake with the handle's configuration, from a client that trusts only
    /// `ca` and asks for `name`; the server's certificate as the client saw it.
    async fn handshake(handle: &TlsHandle, ca: &std::path::Path, name: &str) -> Vec<u8> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(ca).unwrap())
            .unwrap();
        let mut client = rustls::ClientConfig::builder_with_provider(resolver::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        client.alpn_protocols = vec![b"http/1.1".to_vec()];
        let (client_io, server_io) = tokio::io::duplex(1 << 16);
        let acceptor = tokio_rustls::TlsAcceptor::from(handle.server_config());
        let server = tokio::spawn(async move {
            let mut stream = acceptor.accept(server_io).await.unwrap();
            stream.write_all(b"hi").await.unwrap();
            stream.shutdown().await.unwrap();
        });
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        let mut stream = connector
            .connect(ServerName::try_from(name.to_owned()).unwrap(), client_io)
            .await
            .unwrap();
        assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
        let mut greeting = String::new();
        stream.read_to_string(&mut greeting).await.unwrap();
        assert_eq!(greeting, "hi");
        server.await.unwrap();
        stream.get_ref().1.peer_certificates().unwrap()[0].to_vec()
    }

    #[tokio::test]
    async fn a_local_ca_server_is_trusted_through_its_ca_for_every_name() {
        let dir = tempfile::tempdir().unwrap();
        let settings = TlsSettings {
            source: Source::LocalCa,
            dir: dir.path().to_owned(),
        };
        let handle = start(&settings, client_names("example.com")).unwrap();
        handle.ready().await;
        let ca = ca_cert_path(dir.path());
        let first = handshake(&handle, &ca, "c.example.com").await;
        for name in client_names("example.com") {
            handshake(&handle, &ca, &name).await;
        }
        drop(handle);
        // A restart presents the same certificate.
        let again = start(&settings, client_names("example.com")).unwrap();
        assert_eq!(handshake(&again, &ca, "osu.example.com").await, first);
    }

    #[tokio::test]
    async fn an_invalid_name_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let settings = TlsSettings {
            source: Source::LocalCa,
            dir: dir.path().to_owned(),
        };
        let err = start(&settings, client_names("not a domain!")).unwrap_err();
        assert!(err.to_string().contains("not a domain!"), "{err}");
    }
}
