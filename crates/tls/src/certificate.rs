//! Certificates and keys as files: reading PEM into what rustls serves, reading a
//! certificate's expiry and names, deciding when one is due for renewal, and writing
//! keys so that only their owner can read them.

use std::collections::BTreeSet;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use x509_parser::extensions::GeneralName;

use crate::TlsError;

/// A certificate is renewed when it has less than this left (Let's Encrypt's own advice
/// for its 90-day certificates; the local CA's leaves follow the same rule).
pub const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);

/// File mode of private keys and the ACME account: the owner alone reads them.
#[cfg(unix)]
const SECRET_FILE_MODE: u32 = 0o600;

/// What a renewal decision needs from a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafInfo {
    pub not_after: SystemTime,
    /// Its DNS names, lower-case.
    pub names: BTreeSet<String>,
}

/// Why a certificate is (re)issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    /// There is none yet (or the stored one is unreadable).
    Missing,
    /// It expires within [`RENEW_BEFORE`].
    Expiring,
    /// It does not cover every configured name.
    NamesChanged,
    /// Its issuer is not the CA it should come from.
    OtherIssuer,
}

impl fmt::Display for Renewal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Missing => "there is no certificate yet",
            Self::Expiring => "the certificate expires within 30 days",
            Self::NamesChanged => "the configured names changed",
            Self::OtherIssuer => "the certificate was not signed by the current CA",
        })
    }
}

/// The names, lower-case and without duplicates.
pub fn name_set(names: &[String]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_ascii_lowercase()).collect()
}

/// Whether a certificate described by `info` must be replaced for `names` at `now`.
pub fn renewal_due(info: &LeafInfo, names: &[String], now: SystemTime) -> Option<Renewal> {
    if !name_set(names).is_subset(&info.names) {
        return Some(Renewal::NamesChanged);
    }
    if info.not_after <= now + RENEW_BEFORE {
        return Some(Renewal::Expiring);
    }
    None
}

/// Reads the expiry and the DNS names of a DER certificate (`path` for the error).
pub fn leaf_info(der: &CertificateDer<'_>, path: &Path) -> Result<LeafInfo, TlsError> {
    let bad = |why: String| TlsError::Certificate {
        path: path.to_owned(),
        why,
    };
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| bad(e.to_string()))?;
    let not_after = cert.validity().not_after.timestamp();
    let not_after =
        SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(not_after).unwrap_or(0));
    let mut names = BTreeSet::new();
    if let Some(san) = cert
        .subject_alternative_name()
        .map_err(|e| bad(e.to_string()))?
    {
        for name in &san.value.general_names {
            if let GeneralName::DNSName(dns) = name {
                names.insert(dns.to_ascii_lowercase());
            }
        }
    }
    Ok(LeafInfo { not_after, names })
}

/// The certificates of a PEM chain, leaf first.
pub fn parse_chain(pem: &[u8], path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            path: path.to_owned(),
            source,
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(path.to_owned()));
    }
    Ok(chain)
}

/// A PEM private key (PKCS#8, PKCS#1 or SEC1).
pub fn parse_key(pem: &[u8], path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|source| TlsError::Pem {
        path: path.to_owned(),
        source,
    })
}

/// What rustls serves: the chain and its key, checked to belong together.
pub fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    (cert_path, key_path): (&Path, &Path),
) -> Result<Arc<CertifiedKey>, TlsError> {
    let provider = crate::resolver::provider();
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|source| TlsError::Key {
            path: key_path.to_owned(),
            source,
        })?;
    let certified = CertifiedKey::new(chain, signing_key);
    certified
        .keys_match()
        .map_err(|source| TlsError::KeyMismatch {
            cert: cert_path.to_owned(),
            key: key_path.to_owned(),
            source,
        })?;
    Ok(Arc::new(certified))
}

/// PEM chain and key texts to what rustls serves, with the leaf's description.
pub fn load_pem_pair(
    (chain_pem, key_pem): (&[u8], &[u8]),
    (cert_path, key_path): (&Path, &Path),
) -> Result<(Arc<CertifiedKey>, LeafInfo), TlsError> {
    let chain = parse_chain(chain_pem, cert_path)?;
    let info = leaf_info(&chain[0], cert_path)?;
    let key = parse_key(key_pem, key_path)?;
    Ok((certified_key(chain, key, (cert_path, key_path))?, info))
}

/// Reads a whole file, naming it in the error.
pub fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(TlsError::io(path))
}

/// Writes a certificate (readable by anyone) in one step: a reader never sees half a file.
pub fn write_public(path: &Path, contents: &[u8]) -> Result<(), TlsError> {
    write_atomically(path, contents, false)
}

/// Writes a private key or account: only the owner may read it.
pub fn write_secret(path: &Path, contents: &[u8]) -> Result<(), TlsError> {
    write_atomically(path, contents, true)
}

fn write_atomically(path: &Path, contents: &[u8], secret: bool) -> Result<(), TlsError> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".new");
    let temporary = PathBuf::from(temporary);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(SECRET_FILE_MODE);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options.open(&temporary).map_err(TlsError::io(&temporary))?;
    // `mode` applies only to a file that did not exist; a left-over one is narrowed too.
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(SECRET_FILE_MODE))
            .map_err(TlsError::io(&temporary))?;
    }
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(TlsError::io(&temporary))?;
    std::fs::rename(&temporary, path).map_err(TlsError::io(path))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn info(days_left: u64, names: &[&str]) -> (LeafInfo, SystemTime) {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let info = LeafInfo {
            not_after: now + Duration::from_secs(days_left * 24 * 3600),
            names: names.iter().map(|n| (*n).to_owned()).collect(),
        };
        (info, now)
    }

    #[test]
    fn renewal_is_due_near_expiry_or_when_a_name_is_missing() {
        let names = vec!["c.example.com".to_owned(), "OSU.example.com".to_owned()];
        let (fresh, now) = info(
            60,
            &["c.example.com", "osu.example.com", "extra.example.com"],
        );
        assert_eq!(renewal_due(&fresh, &names, now), None);
        let (old, now) = info(29, &["c.example.com", "osu.example.com"]);
        assert_eq!(renewal_due(&old, &names, now), Some(Renewal::Expiring));
        let (narrow, now) = info(60, &["c.example.com"]);
        assert_eq!(
            renewal_due(&narrow, &names, now),
            Some(Renewal::NamesChanged)
        );
    }

    #[test]
    fn garbage_is_an_error_that_names_the_file() {
        let path = Path::new("cert.pem");
        let err = parse_chain(b"not pem at all", path).unwrap_err();
        assert!(err.to_string().contains("cert.pem"), "{err}");
        let err = parse_key(b"", Path::new("key.pem")).unwrap_err();
        assert!(err.to_string().contains("key.pem"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn secrets_are_written_for_the_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        write_secret(&path, b"secret").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read(&path).unwrap(), b"secret");
    }
}
