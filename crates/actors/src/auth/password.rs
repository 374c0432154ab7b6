//! Passwords are stored as bcrypt(md5(password)): the client only ever sends the md5.
//! bcrypt is slow on purpose, so verification runs on the blocking pool behind a
//! semaphore sized to the cores, and verified (hash, md5) pairs are cached so that a
//! reconnecting client costs a map lookup.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use md5::{Digest, Md5};
use tokio::sync::Semaphore;

/// Cached verified passwords; the cache is cleared when it reaches this size.
const MAX_CACHED_PASSWORDS: usize = 100_000;

/// Lower-case hex md5 of a password, as the client sends it.
pub fn md5_hex(password: &str) -> String {
    hex::encode(Md5::digest(password.as_bytes()))
}

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error(transparent)]
    Bcrypt(#[from] bcrypt::BcryptError),
    #[error("the hashing thread ended: {0}")]
    Thread(#[from] tokio::task::JoinError),
}

/// bcrypt of an md5 hex string, for new accounts and password changes.
pub async fn hash_password(password_md5: String, cost: u32) -> Result<String, HashError> {
    Ok(tokio::task::spawn_blocking(move || bcrypt::hash(password_md5, cost)).await??)
}

/// Checks md5 hashes against stored bcrypt hashes.
#[derive(Debug, Clone)]
pub struct PasswordVerifier {
    /// bcrypt hash → the md5 that matched it.
    verified: Arc<Mutex<HashMap<String, String>>>,
    permits: Arc<Semaphore>,
    /// A hash of no account's password at the configured cost, made on first use:
    /// checked against when a name has no account, so that failing costs the same.
    decoy: Arc<tokio::sync::OnceCell<String>>,
    decoy_cost: u32,
}

impl Default for PasswordVerifier {
    fn default() -> Self {
        Self::new(bcrypt::DEFAULT_COST)
    }
}

impl PasswordVerifier {
    /// A verifier whose decoy check costs what a new account's hash (`bcrypt_cost`) does.
    pub fn new(bcrypt_cost: u32) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            verified: Arc::default(),
            permits: Arc::new(Semaphore::new(cores)),
            decoy: Arc::default(),
            decoy_cost: bcrypt_cost,
        }
    }

    /// Whether `password_md5` matches `bcrypt_hash`. A malformed stored hash (like the
    /// bot's `!`) never matches.
    pub async fn verify(&self, password_md5: &str, bcrypt_hash: &str) -> bool {
        if self
            .cached(bcrypt_hash)
            .is_some_and(|md5| md5 == password_md5)
        {
            return true;
        }
        self.verify_uncached(password_md5, bcrypt_hash).await
    }

    /// Fails after as much work as a real check: for a name with no usable account, so
    /// that the time a failed login takes does not tell which names exist.
    pub async fn verify_absent(&self, password_md5: &str) -> bool {
        let cost = self.decoy_cost;
        let decoy = self
            .decoy
            .get_or_init(|| async move {
                hash_password(md5_hex("no account has this password"), cost)
                    .await
                    .unwrap_or_default()
            })
            .await;
        let _ = self.verify_uncached(password_md5, decoy).await;
        false
    }

    async fn verify_uncached(&self, password_md5: &str, bcrypt_hash: &str) -> bool {
        let Ok(_permit) = self.permits.acquire().await else {
            return false;
        };
        let (md5, hash) = (password_md5.to_owned(), bcrypt_hash.to_owned());
        let ok = tokio::task::spawn_blocking(move || bcrypt::verify(md5, &hash).unwrap_or(false))
            .await
            .unwrap_or(false);
        if ok {
            let mut cache = self.verified.lock().unwrap_or_else(|e| e.into_inner());
            if cache.len() >= MAX_CACHED_PASSWORDS {
                cache.clear();
            }
            cache.insert(bcrypt_hash.to_owned(), password_md5.to_owned());
        }
        ok
    }

    fn cached(&self, bcrypt_hash: &str) -> Option<String> {
        self.verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(bcrypt_hash)
            .cloned()
    }

    /// Forgets a cached password (after a password change).
    pub fn forget(&self, bcrypt_hash: &str) {
        self.verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(bcrypt_hash);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn verifies_and_caches() {
        let md5 = md5_hex("hunter22");
        let hash = hash_password(md5.clone(), 4).await.unwrap();
        let v = PasswordVerifier::default();
        assert!(v.verify(&md5, &hash).await);
        assert!(v.cached(&hash).is_some());
        assert!(v.verify(&md5, &hash).await);
        assert!(!v.verify(&md5_hex("wrong"), &hash).await);
        assert!(!v.verify(&md5, "!").await);
    }
}
