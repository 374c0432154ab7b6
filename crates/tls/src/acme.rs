//! `mode = "acme"`: certificates from an ACME directory (Let's Encrypt by default) for
//! every configured name, proven with HTTP-01 challenges that the plain HTTP listener
//! answers (so it must be reachable on port 80 of every name), renewed in the
//! background. The account, the certificate and its key are kept in `{dir}`; a restart
//! serves the stored certificate at once and orders only when one is due.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use instant_acme::{
    Account, AccountBuilder, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier,
    NewAccount, NewOrder, OrderStatus, RetryPolicy,
};
use rustls::sign::CertifiedKey;
use serde::{Deserialize, Serialize};

use crate::TlsError;
use crate::certificate::{self, LeafInfo, Renewal};
use crate::challenges::Challenges;
use crate::resolver::CertSlot;

/// Let's Encrypt's production directory.
pub const DEFAULT_DIRECTORY: &str = "https://acme-v02.api.letsencrypt.org/directory";
pub const ACCOUNT_FILE: &str = "acme-account.json";
pub const CERT_FILE: &str = "acme.crt";
pub const KEY_FILE: &str = "acme.key";
/// How often the running server checks whether its certificate is due.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(12 * 3600);
/// The wait after a failed order, doubled after each further failure up to
/// [`RETRY_MAX`]: Let's Encrypt limits failed validations per hour.
pub const RETRY_FIRST: Duration = Duration::from_secs(60);
pub const RETRY_MAX: Duration = Duration::from_secs(6 * 3600);
/// How long an order may take to be validated, and then to be issued.
const ORDER_TIMEOUT: Duration = Duration::from_secs(120);

/// `[tls]` keys of the acme mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeSettings {
    /// The account's contact (`mailto:` is added).
    pub email: String,
    /// The ACME directory URL.
    pub directory: String,
    /// A PEM CA certificate to trust for the directory's own HTTPS instead of the
    /// system's roots: for a private or test ACME server (pebble).
    pub directory_ca: Option<PathBuf>,
}

/// The account as kept in [`ACCOUNT_FILE`]: bound to the directory it was made on.
#[derive(Serialize, Deserialize)]
struct StoredAccount {
    directory: String,
    credentials: AccountCredentials,
}

/// The certificate kept from an earlier start, if there is a readable one.
pub(crate) fn stored(dir: &Path) -> Option<(Arc<CertifiedKey>, LeafInfo)> {
    let (cert_path, key_path) = (dir.join(CERT_FILE), dir.join(KEY_FILE));
    if !cert_path.exists() {
        return None;
    }
    let loaded = certificate::read(&cert_path)
        .and_then(|cert| Ok((cert, certificate::read(&key_path)?)))
        .and_then(|(cert, key)| certificate::load_pem_pair((&cert, &key), (&cert_path, &key_path)));
    match loaded {
        Ok(loaded) => Some(loaded),
        Err(e) => {
            tracing::warn!("ACME: the stored certificate is unusable, ordering a new one: {e}");
            None
        }
    }
}

/// Orders whenever the certificate is missing or due, then checks again every
/// [`CHECK_INTERVAL`]; after a failure, retries with a growing wait.
pub(crate) async fn renew_forever(
    settings: AcmeSettings,
    dir: PathBuf,
    names: Vec<String>,
    slot: Arc<CertSlot>,
    challenges: Challenges,
    mut current: Option<LeafInfo>,
) {
    let mut retry = RETRY_FIRST;
    loop {
        let due = match &current {
            None => Some(Renewal::Missing),
            Some(leaf) => certificate::renewal_due(leaf, &names, SystemTime::now()),
        };
        if let Some(why) = due {
            tracing::info!(%why, directory = %settings.directory, "ACME: ordering a certificate");
            match issue(&settings, &dir, &names, &challenges).await {
                Ok((key, leaf)) => {
                    tracing::info!(names = %names.join(", "), "ACME: new certificate");
                    slot.set(key);
                    current = Some(leaf);
                    retry = RETRY_FIRST;
                }
                Err(e) => {
                    tracing::warn!("ACME: the order failed, trying again in {retry:?}: {e}");
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(RETRY_MAX);
                    continue;
                }
            }
        }
        tokio::time::sleep(CHECK_INTERVAL).await;
    }
}

/// One order, from the account to the stored certificate.
async fn issue(
    settings: &AcmeSettings,
    dir: &Path,
    names: &[String],
    challenges: &Challenges,
) -> Result<(Arc<CertifiedKey>, LeafInfo), TlsError> {
    let account = account(settings, dir).await?;
    let identifiers: Vec<Identifier> = names.iter().cloned().map(Identifier::Dns).collect();
    let mut order = account.new_order(&NewOrder::new(&identifiers)).await?;
    let mut tokens = Vec::new();
    // The server validates after `set_ready` returns, at its own pace: the answers stay
    // published until the order is decided.
    let decided = match validate(&mut order, challenges, &mut tokens).await {
        Ok(()) => order
            .poll_ready(&retry_policy())
            .await
            .map_err(TlsError::from),
        Err(e) => Err(e),
    };
    for token in &tokens {
        challenges.remove(token);
    }
    let status = decided?;
    if status != OrderStatus::Ready {
        return Err(TlsError::AcmeOrder {
            names: names.join(", "),
            status: format!("{status:?}"),
        });
    }

    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(names.to_vec())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params.serialize_request(&key)?;
    order.finalize_csr(csr.der()).await?;
    let chain_pem = order.poll_certificate(&retry_policy()).await?;
    let key_pem = key.serialize_pem();

    let (cert_path, key_path) = (dir.join(CERT_FILE), dir.join(KEY_FILE));
    let loaded = certificate::load_pem_pair(
        (chain_pem.as_bytes(), key_pem.as_bytes()),
        (&cert_path, &key_path),
    )?;
    certificate::write_secret(&key_path, key_pem.as_bytes())?;
    certificate::write_public(&cert_path, chain_pem.as_bytes())?;
    Ok(loaded)
}

/// Publishes an HTTP-01 answer for every pending authorization and tells the server it
/// may check; `tokens` collects what was published, to be taken down afterwards.
async fn validate(
    order: &mut instant_acme::Order,
    challenges: &Challenges,
    tokens: &mut Vec<String>,
) -> Result<(), TlsError> {
    let mut authorizations = order.authorizations();
    while let Some(authorization) = authorizations.next().await {
        let mut authorization = authorization?;
        let name = authorization.identifier().to_string();
        match authorization.status {
            AuthorizationStatus::Pending => {}
            // Proven by an earlier order of this account, still fresh.
            AuthorizationStatus::Valid => continue,
            other => {
                return Err(TlsError::AcmeAuthorization {
                    name,
                    status: format!("{other:?}"),
                });
            }
        }
        let mut challenge = authorization
            .challenge(ChallengeType::Http01)
            .ok_or_else(|| TlsError::AcmeNoHttpChallenge(name.clone()))?;
        let token = challenge.token.clone();
        challenges.insert(
            token.clone(),
            challenge.key_authorization().as_str().to_owned(),
        );
        tokens.push(token);
        challenge.set_ready().await?;
    }
    Ok(())
}

fn retry_policy() -> RetryPolicy {
    RetryPolicy::new().timeout(ORDER_TIMEOUT)
}

fn account_builder(settings: &AcmeSettings) -> Result<AccountBuilder, TlsError> {
    Ok(match &settings.directory_ca {
        Some(ca) => Account::builder_with_root(ca)?,
        None => Account::builder()?,
    })
}

/// The stored account for this directory, or a new one (stored for next time).
async fn account(settings: &AcmeSettings, dir: &Path) -> Result<Account, TlsError> {
    let path = dir.join(ACCOUNT_FILE);
    if path.exists() {
        let stored: StoredAccount =
            serde_json::from_slice(&certificate::read(&path)?).map_err(|source| {
                TlsError::AccountFile {
                    path: path.clone(),
                    source,
                }
            })?;
        if stored.directory == settings.directory {
            return Ok(account_builder(settings)?
                .from_credentials(stored.credentials)
                .await?);
        }
        tracing::info!(
            directory = %settings.directory,
            "ACME: the directory changed; registering a new account"
        );
    }
    let contact = format!("mailto:{}", settings.email);
    let (account, credentials) = account_builder(settings)?
        .create(
            &NewAccount {
                contact: &[&contact],
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            settings.directory.clone(),
            None,
        )
        .await?;
    let stored = StoredAccount {
        directory: settings.directory.clone(),
        credentials,
    };
    let json = serde_json::to_vec_pretty(&stored).map_err(|source| TlsError::AccountFile {
        path: path.clone(),
        source,
    })?;
    certificate::write_secret(&path, &json)?;
    tracing::info!(account = %path.display(), "ACME: registered an account");
    Ok(account)
}
