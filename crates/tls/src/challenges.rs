//! The answers to ACME's HTTP-01 challenges: while an order is open, the ACME server
//! fetches `http://<name>/.well-known/acme-challenge/<token>` from the plain listener,
//! which answers from this map.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

/// Token → key authorization, shared between the ACME task and the HTTP edge. Cheap to
/// clone. Empty unless an order is open, so serving it answers nothing otherwise.
///
/// A std lock: it is never held across an `.await`, only to copy a short string.
#[derive(Debug, Clone, Default)]
pub struct Challenges {
    answers: Arc<RwLock<HashMap<String, String>>>,
}

impl Challenges {
    /// The body to answer for `token`, if an order is waiting on it.
    pub fn answer(&self, token: &str) -> Option<String> {
        self.answers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(token)
            .cloned()
    }

    pub(crate) fn insert(&self, token: String, key_authorization: String) {
        self.answers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(token, key_authorization);
    }

    pub(crate) fn remove(&self, token: &str) {
        self.answers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(token);
    }
}
