//! `mode = "local-ca"`: a certificate authority of this server's own, for players who
//! point their client at it with `-devserver` and trust the CA once.
//!
//! On the first start the CA is made and kept in `{dir}` ([`CA_CERT_FILE`] and
//! [`CA_KEY_FILE`]); later starts reuse it, so a client trusts it once. The certificate
//! the listener presents (the *leaf*, [`LEAF_CERT_FILE`]) is signed by it for every
//! configured name and made again when it nears its end, when the names change, or
//! when it was not signed by the CA in `{dir}`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::CertificateDer;
use rustls::sign::CertifiedKey;

use crate::TlsError;
use crate::certificate::{self, LeafInfo, RENEW_BEFORE, Renewal};
use crate::resolver::CertSlot;

/// The CA's certificate: what clients are told to trust.
pub const CA_CERT_FILE: &str = "local-ca.crt";
pub const CA_KEY_FILE: &str = "local-ca.key";
/// The certificate the listener presents, and its key.
pub const LEAF_CERT_FILE: &str = "local-ca-leaf.crt";
pub const LEAF_KEY_FILE: &str = "local-ca-leaf.key";

/// How long the CA lasts: trusting it is a manual step on every client, so rarely.
pub const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// How long a leaf lasts (within the 398 days that browsers and Apple's systems accept).
pub const LEAF_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// Certificates start this long before they are made, for clients whose clock is behind.
const BACKDATE: Duration = Duration::from_secs(3600);
/// How often the running server checks whether its leaf is due.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(12 * 3600);
/// The CA's common name, which is what a client's certificate store lists.
const CA_COMMON_NAME: &str = "Peace local CA";

/// The leaf now in force.
#[derive(Debug)]
pub struct Issued {
    pub key: Arc<CertifiedKey>,
    pub leaf: LeafInfo,
    /// Why it was made by this call (`None`: the stored one was reused).
    pub renewed: Option<Renewal>,
    /// Whether this call made a new CA (clients must trust it anew).
    pub ca_created: bool,
}

/// Where the CA's certificate is kept under `dir`.
pub fn ca_cert_path(dir: &Path) -> PathBuf {
    dir.join(CA_CERT_FILE)
}

/// Makes sure `dir` holds a CA and a leaf for `names` that is good at `now`, making
/// whatever is missing or due. Blocking: file I/O and key generation.
pub fn ensure(dir: &Path, names: &[String], now: SystemTime) -> Result<Issued, TlsError> {
    std::fs::create_dir_all(dir).map_err(TlsError::io(dir))?;
    let ca = load_or_create_ca(dir, now)?;
    let (cert_path, key_path) = (dir.join(LEAF_CERT_FILE), dir.join(LEAF_KEY_FILE));
    let due = match stored_leaf(&cert_path, &key_path, &ca) {
        Ok((key, leaf)) => match certificate::renewal_due(&leaf, names, now) {
            None => {
                return Ok(Issued {
                    key,
                    leaf,
                    renewed: None,
                    ca_created: ca.created,
                });
            }
            Some(due) => due,
        },
        Err(due) => due,
    };
    let (key, leaf) = issue_leaf(&ca, names, now, (&cert_path, &key_path))?;
    Ok(Issued {
        key,
        leaf,
        renewed: Some(due),
        ca_created: ca.created,
    })
}

/// Checks every [`CHECK_INTERVAL`] whether the leaf is due, and presents the new one.
pub(crate) async fn renew_forever(dir: PathBuf, names: Vec<String>, slot: Arc<CertSlot>) {
    let mut ticks = tokio::time::interval(CHECK_INTERVAL);
    // The first tick is immediate, and `start` has just checked.
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let (dir, names) = (dir.clone(), names.clone());
        let checked =
            tokio::task::spawn_blocking(move || ensure(&dir, &names, SystemTime::now())).await;
        match checked {
            Ok(Ok(issued)) => {
                if let Some(why) = issued.renewed {
                    tracing::info!(%why, "local CA: new certificate");
                    slot.set(issued.key);
                }
                if issued.ca_created {
                    tracing::warn!(
                        "local CA: a new CA was made; clients must trust it again ({})",
                        CA_CERT_FILE
                    );
                }
            }
            Ok(Err(e)) => tracing::warn!("local CA: renewal failed, keeping the certificate: {e}"),
            Err(e) => tracing::warn!("local CA: renewal task failed: {e}"),
        }
    }
}

/// The CA: its issuer (key and name), its certificate and when it ends.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    der: CertificateDer<'static>,
    not_after: SystemTime,
    created: bool,
}

fn load_or_create_ca(dir: &Path, now: SystemTime) -> Result<Ca, TlsError> {
    let (cert_path, key_path) = (dir.join(CA_CERT_FILE), dir.join(CA_KEY_FILE));
    match (cert_path.exists(), key_path.exists()) {
        (false, false) => create_ca(&cert_path, &key_path, now),
        (true, true) => {
            let ca = load_ca(&cert_path, &key_path)?;
            if ca.not_after <= now + RENEW_BEFORE {
                tracing::warn!(
                    "local CA: {} expires within 30 days; making a new CA",
                    cert_path.display()
                );
                return create_ca(&cert_path, &key_path, now);
            }
            Ok(ca)
        }
        // Never overwrite half a CA: clients may trust the half that is left.
        _ => Err(TlsError::LocalCa {
            ca: cert_path,
            why: format!("one of it and {} is missing", key_path.display()),
        }),
    }
}

fn load_ca(cert_path: &Path, key_path: &Path) -> Result<Ca, TlsError> {
    let unreadable = |why: String| TlsError::LocalCa {
        ca: cert_path.to_owned(),
        why,
    };
    let cert_pem = certificate::read(cert_path)?;
    let key_pem = certificate::read(key_path)?;
    let der = certificate::parse_chain(&cert_pem, cert_path)?.remove(0);
    let not_after = certificate::leaf_info(&der, cert_path)?.not_after;
    let key_text = String::from_utf8(key_pem).map_err(|e| unreadable(e.to_string()))?;
    let key = KeyPair::from_pem(&key_text).map_err(|e| unreadable(e.to_string()))?;
    let issuer = Issuer::from_ca_cert_der(&der, key).map_err(|e| unreadable(e.to_string()))?;
    Ok(Ca {
        issuer,
        der,
        not_after,
        created: false,
    })
}

fn create_ca(cert_path: &Path, key_path: &Path, now: SystemTime) -> Result<Ca, TlsError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, CA_COMMON_NAME);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Peace");
    // It signs leaves only, never other CAs.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = (now - BACKDATE).into();
    params.not_after = (now + CA_VALIDITY).into();
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    // The key first: a certificate without its key would stop the next start.
    certificate::write_secret(key_path, key.serialize_pem().as_bytes())?;
    certificate::write_public(cert_path, cert.pem().as_bytes())?;
    tracing::info!(ca = %cert_path.display(), "local CA: made a new certificate authority");
    Ok(Ca {
        der: cert.der().clone(),
        issuer: Issuer::new(params, key),
        not_after: now + CA_VALIDITY,
        created: true,
    })
}

/// The stored leaf, if it is readable and signed by `ca`; otherwise why it must be made.
fn stored_leaf(
    cert_path: &Path,
    key_path: &Path,
    ca: &Ca,
) -> Result<(Arc<CertifiedKey>, LeafInfo), Renewal> {
    if !cert_path.exists() || !key_path.exists() {
        return Err(Renewal::Missing);
    }
    let loaded = certificate::read(cert_path)
        .and_then(|cert| Ok((cert, certificate::read(key_path)?)))
        .and_then(|(cert, key)| certificate::load_pem_pair((&cert, &key), (cert_path, key_path)));
    let (key, leaf) = loaded.map_err(|e| {
        tracing::warn!("local CA: the stored certificate is unusable, making a new one: {e}");
        Renewal::Missing
    })?;
    if !signed_by(&key.cert[0], &ca.der) {
        return Err(Renewal::OtherIssuer);
    }
    Ok((key, leaf))
}

/// Whether `leaf`'s signature was made with `ca`'s key.
fn signed_by(leaf: &CertificateDer<'_>, ca: &CertificateDer<'_>) -> bool {
    let (Ok((_, leaf)), Ok((_, ca))) = (
        x509_parser::parse_x509_certificate(leaf),
        x509_parser::parse_x509_certificate(ca),
    ) else {
        return false;
    };
    leaf.verify_signature(Some(ca.public_key())).is_ok()
}

fn issue_leaf(
    ca: &Ca,
    names: &[String],
    now: SystemTime,
    (cert_path, key_path): (&Path, &Path),
) -> Result<(Arc<CertifiedKey>, LeafInfo), TlsError> {
    let mut params = CertificateParams::new(names.to_vec())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    if let Some(first) = names.first() {
        params
            .distinguished_name
            .push(DnType::CommonName, first.as_str());
    }
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.not_before = (now - BACKDATE).into();
    // Never past the CA's own end.
    params.not_after = (now + LEAF_VALIDITY).min(ca.not_after).into();
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &ca.issuer)?;
    certificate::write_secret(key_path, key.serialize_pem().as_bytes())?;
    certificate::write_public(cert_path, cert.pem().as_bytes())?;
    let cert_pem = cert.pem();
    let key_pem = key.serialize_pem();
    certificate::load_pem_pair(
        (cert_pem.as_bytes(), key_pem.as_bytes()),
        (cert_path, key_path),
    )
}

/// How to make a client trust the CA, for the log.
pub fn trust_instructions(dir: &Path) -> String {
    let ca = ca_cert_path(dir);
    format!(
        "clients must trust the local CA {ca}: on Windows, copy it to the player's machine and \
         run `certutil -addstore -f Root local-ca.crt` from an administrator's command prompt; \
         on Debian or Ubuntu, `sudo cp local-ca.crt /usr/local/share/ca-certificates/peace-local-ca.crt \
         && sudo update-ca-certificates` (docs/tls.md)",
        ca = ca.display()
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const DAY: Duration = Duration::from_secs(24 * 3600);

    fn names() -> Vec<String> {
        crate::client_names("example.com")
    }

    fn now() -> SystemTime {
        SystemTime::now()
    }

    #[test]
    fn the_first_start_makes_a_ca_and_a_leaf_for_every_name() {
        let dir = tempfile::tempdir().unwrap();
        let issued = ensure(dir.path(), &names(), now()).unwrap();
        assert!(issued.ca_created);
        assert_eq!(issued.renewed, Some(Renewal::Missing));
        for name in names() {
            assert!(issued.leaf.names.contains(&name), "{name} is covered");
        }
        for expected in [
            "c.example.com",
            "ce.example.com",
            "c4.example.com",
            "osu.example.com",
            "a.example.com",
            "b.example.com",
            "example.com",
        ] {
            assert!(issued.leaf.names.contains(expected), "{expected}");
        }
        assert!(signed_by(
            &issued.key.cert[0],
            &certificate::parse_chain(
                &std::fs::read(ca_cert_path(dir.path())).unwrap(),
                dir.path()
            )
            .unwrap()[0]
        ));
    }

    #[cfg(unix)]
    #[test]
    fn keys_are_for_the_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        ensure(dir.path(), &names(), now()).unwrap();
        for key in [CA_KEY_FILE, LEAF_KEY_FILE] {
            let mode = std::fs::metadata(dir.path().join(key))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{key}");
        }
    }

    #[test]
    fn a_later_start_reuses_the_ca_and_the_leaf() {
        let dir = tempfile::tempdir().unwrap();
        let first = ensure(dir.path(), &names(), now()).unwrap();
        let ca = std::fs::read(ca_cert_path(dir.path())).unwrap();
        let again = ensure(dir.path(), &names(), now()).unwrap();
        assert!(!again.ca_created);
        assert_eq!(again.renewed, None);
        assert_eq!(again.key.cert, first.key.cert);
        assert_eq!(std::fs::read(ca_cert_path(dir.path())).unwrap(), ca);
    }

    #[test]
    fn a_leaf_near_its_end_is_renewed_by_the_same_ca() {
        let dir = tempfile::tempdir().unwrap();
        let first = ensure(dir.path(), &names(), now()).unwrap();
        let ca = std::fs::read(ca_cert_path(dir.path())).unwrap();
        let later = now() + LEAF_VALIDITY - 20 * DAY;
        let renewed = ensure(dir.path(), &names(), later).unwrap();
        assert_eq!(renewed.renewed, Some(Renewal::Expiring));
        assert!(!renewed.ca_created);
        assert_ne!(renewed.key.cert, first.key.cert);
        assert!(renewed.leaf.not_after > first.leaf.not_after);
        assert_eq!(
            std::fs::read(ca_cert_path(dir.path())).unwrap(),
            ca,
            "the CA is kept"
        );
        let ca_der = certificate::parse_chain(&ca, dir.path()).unwrap().remove(0);
        assert!(signed_by(&renewed.key.cert[0], &ca_der));
        // And the renewed leaf is what the next start finds.
        let next = ensure(dir.path(), &names(), later).unwrap();
        assert_eq!(next.renewed, None);
        assert_eq!(next.key.cert, renewed.key.cert);
    }

    #[test]
    fn a_new_name_reissues_the_leaf() {
        let dir = tempfile::tempdir().unwrap();
        ensure(dir.path(), &names(), now()).unwrap();
        let other = crate::client_names("other.example");
        let issued = ensure(dir.path(), &other, now()).unwrap();
        assert_eq!(issued.renewed, Some(Renewal::NamesChanged));
        assert!(issued.leaf.names.contains("c.other.example"));
        assert!(!issued.ca_created);
    }

    #[test]
    fn a_leaf_of_another_ca_is_replaced_and_half_a_ca_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        ensure(dir.path(), &names(), now()).unwrap();
        // Another CA's leaf in its place.
        let other = tempfile::tempdir().unwrap();
        ensure(other.path(), &names(), now()).unwrap();
        for file in [LEAF_CERT_FILE, LEAF_KEY_FILE] {
            std::fs::copy(other.path().join(file), dir.path().join(file)).unwrap();
        }
        let issued = ensure(dir.path(), &names(), now()).unwrap();
        assert_eq!(issued.renewed, Some(Renewal::OtherIssuer));

        std::fs::remove_file(dir.path().join(CA_KEY_FILE)).unwrap();
        let err = ensure(dir.path(), &names(), now()).unwrap_err().to_string();
        assert!(err.contains(CA_CERT_FILE), "{err}");
        assert!(
            std::fs::read(ca_cert_path(dir.path())).is_ok(),
            "the CA is not overwritten"
        );
    }
}
