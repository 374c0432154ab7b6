//! `mode = "files"`: the operator's own PEM certificate chain and key (from certbot, a
//! company CA, …), read again whenever either file changes, so that a renewal outside
//! the server needs no restart.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::sign::CertifiedKey;

use crate::TlsError;
use crate::certificate::{self, LeafInfo};
use crate::resolver::CertSlot;

/// How often the files are looked at. They are compared by content rather than mtime:
/// a renewal tool that swaps a symlink or copies within the same second still counts.
pub const POLL_INTERVAL: Duration = Duration::from_secs(5);

/// The two files and what was last read from them.
#[derive(Debug)]
pub struct FilesWatch {
    cert: PathBuf,
    key: PathBuf,
    names: Vec<String>,
    /// The bytes of the last read, good or bad: a broken file is reported once, not at
    /// every poll.
    seen: (Vec<u8>, Vec<u8>),
}

/// What a poll found.
#[derive(Debug)]
pub enum Polled {
    Unchanged,
    /// A new, good certificate.
    Reloaded(Arc<CertifiedKey>),
    /// The files changed but cannot be used; the current certificate stays.
    Broken(TlsError),
}

impl FilesWatch {
    /// Reads the files once: a server whose files are wrong at start does not start.
    pub fn open(
        cert: PathBuf,
        key: PathBuf,
        names: Vec<String>,
    ) -> Result<(Self, Arc<CertifiedKey>), TlsError> {
        let seen = (certificate::read(&cert)?, certificate::read(&key)?);
        let mut watch = Self {
            cert,
            key,
            names,
            seen: (Vec::new(), Vec::new()),
        };
        let loaded = watch.load(&seen)?;
        watch.seen = seen;
        Ok((watch, loaded))
    }

    /// Reads the files again and loads them if they changed.
    pub fn poll(&mut self) -> Polled {
        let read =
            certificate::read(&self.cert).and_then(|c| Ok((c, certificate::read(&self.key)?)));
        let now = match read {
            Ok(now) => now,
            // A file in the middle of being replaced: try again at the next poll.
            Err(e) => return Polled::Broken(e),
        };
        if now == self.seen {
            return Polled::Unchanged;
        }
        let loaded = self.load(&now);
        self.seen = now;
        match loaded {
            Ok(key) => Polled::Reloaded(key),
            Err(e) => Polled::Broken(e),
        }
    }

    fn load(&self, (cert, key): &(Vec<u8>, Vec<u8>)) -> Result<Arc<CertifiedKey>, TlsError> {
        let (certified, leaf) = certificate::load_pem_pair((cert, key), (&self.cert, &self.key))?;
        self.warn_about(&leaf);
        Ok(certified)
    }

    /// The operator's certificate is served as it is; what a client would refuse is said.
    fn warn_about(&self, leaf: &LeafInfo) {
        let missing: Vec<String> = certificate::name_set(&self.names)
            .difference(&leaf.names)
            .cloned()
            .collect();
        if !missing.is_empty() {
            tracing::warn!(
                cert = %self.cert.display(),
                "the certificate does not cover {}; clients asking for those names will refuse it",
                missing.join(", ")
            );
        }
        if leaf.not_after <= std::time::SystemTime::now() {
            tracing::warn!(cert = %self.cert.display(), "the certificate has expired");
        }
    }
}

/// Polls every [`POLL_INTERVAL`] and presents a changed certificate once it loads.
pub(crate) async fn watch_forever(mut watch: FilesWatch, slot: Arc<CertSlot>) {
    let mut ticks = tokio::time::interval(POLL_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut broken = false;
    loop {
        ticks.tick().await;
        // Two small local files every few seconds: read in place rather than on a
        // blocking thread.
        match watch.poll() {
            Polled::Unchanged => broken = false,
            Polled::Reloaded(key) => {
                tracing::info!(cert = %watch.cert.display(), "TLS certificate reloaded");
                slot.set(key);
                broken = false;
            }
            Polled::Broken(e) => {
                // A half-copied pair is common for one poll; say it once per problem.
                if !broken {
                    tracing::warn!(
                        "TLS files changed but cannot be used, keeping the current \
                         certificate: {e}"
                    );
                }
                broken = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A self-signed certificate and key for `name`, as PEM.
    fn self_signed(name: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn write(dir: &std::path::Path, (cert, key): &(String, String)) -> (PathBuf, PathBuf) {
        let paths = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&paths.0, cert).unwrap();
        std::fs::write(&paths.1, key).unwrap();
        paths
    }

    #[test]
    fn a_changed_pair_is_reloaded_and_a_broken_one_keeps_the_old() {
        let dir = tempfile::tempdir().unwrap();
        let first = self_signed("c.example.com");
        let (cert, key) = write(dir.path(), &first);
        let names = vec!["c.example.com".to_owned()];
        let (mut watch, loaded) = FilesWatch::open(cert.clone(), key.clone(), names).unwrap();
        let slot = CertSlot::new(Some(loaded.clone()));
        assert!(matches!(watch.poll(), Polled::Unchanged));

        let second = self_signed("c.example.com");
        write(dir.path(), &second);
        let Polled::Reloaded(reloaded) = watch.poll() else {
            panic!("the new pair is loaded");
        };
        assert_ne!(reloaded.cert, loaded.cert);
        slot.set(reloaded.clone());

        // A key that belongs to another certificate, then garbage: both refused, and the
        // slot keeps the last good one.
        let third = self_signed("c.example.com");
        std::fs::write(&key, &third.1).unwrap();
        let Polled::Broken(e) = watch.poll() else {
            panic!("a mismatched key is refused");
        };
        assert!(e.to_string().contains("do not belong together"), "{e}");
        assert!(matches!(watch.poll(), Polled::Unchanged), "reported once");
        std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\ngarbage\n").unwrap();
        let Polled::Broken(e) = watch.poll() else {
            panic!("garbage is refused");
        };
        assert!(e.to_string().contains("cert.pem"), "{e}");
        assert_eq!(slot.current().unwrap().cert, reloaded.cert);

        // The matching certificate arrives: loaded again.
        std::fs::write(&cert, &third.0).unwrap();
        assert!(matches!(watch.poll(), Polled::Reloaded(_)));
    }

    #[test]
    fn bad_files_at_start_are_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = write(dir.path(), &self_signed("c.example.com"));
        let missing = dir.path().join("missing.pem");
        let err = FilesWatch::open(missing, key.clone(), Vec::new()).unwrap_err();
        assert!(err.to_string().contains("missing.pem"), "{err}");
        std::fs::write(&key, "not a key").unwrap();
        let err = FilesWatch::open(cert, key, Vec::new()).unwrap_err();
        assert!(err.to_string().contains("key.pem"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_background_watch_presents_a_new_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = write(dir.path(), &self_signed("c.example.com"));
        let (watch, loaded) = FilesWatch::open(cert, key, Vec::new()).unwrap();
        let slot = Arc::new(CertSlot::new(Some(loaded.clone())));
        let task = tokio::spawn(watch_forever(watch, slot.clone()));
        write(dir.path(), &self_signed("c.example.com"));
        tokio::time::sleep(POLL_INTERVAL * 2).await;
        assert_ne!(slot.current().unwrap().cert, loaded.cert);
        task.abort();
    }
}
