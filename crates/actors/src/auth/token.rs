//! Session tokens: `USER_ID.SESSION_ID.SIGNATURE`, signed with HMAC-SHA256 and the
//! cluster secret. Any node can check a token and route the poll by its user id without
//! a shared session table; the session id tells a current session from a replaced one.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Longest token accepted; real ones are about 60 bytes.
const MAX_TOKEN_LEN: usize = 128;
/// Hex characters of the signature kept in the token (128 bits).
const SIGNATURE_HEX_LEN: usize = 32;

/// What a valid token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionToken {
    pub user_id: i32,
    pub session_id: u64,
}

/// Signs and verifies tokens with one secret.
#[derive(Clone)]
pub struct TokenSigner {
    /// The MAC with the key already absorbed: cloning it skips hashing the key pads
    /// again on every poll.
    keyed: HmacSha256,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSigner { .. }")
    }
}

impl TokenSigner {
    pub fn new(secret: &[u8]) -> Self {
        Self {
            keyed: HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length"),
        }
    }

    fn mac(&self, body: &str) -> HmacSha256 {
        let mut mac = self.keyed.clone();
        mac.update(body.as_bytes());
        mac
    }

    pub fn sign(&self, token: SessionToken) -> String {
        let body = format!("{}.{}", token.user_id, token.session_id);
        let signature = hex::encode(self.mac(&body).finalize().into_bytes());
        format!("{body}.{}", &signature[..SIGNATURE_HEX_LEN])
    }

    /// Returns the token's claims if it is well-formed and signed with our secret.
    pub fn verify(&self, token: &str) -> Option<SessionToken> {
        if token.len() > MAX_TOKEN_LEN {
            return None;
        }
        let (body, signature) = token.rsplit_once('.')?;
        let (user_id, session_id) = body.split_once('.')?;
        let claims = SessionToken {
            user_id: user_id.parse().ok()?,
            session_id: session_id.parse().ok()?,
        };
        // Only the form `sign` writes: a token has one spelling, so no second string
        // (an upper-case signature) stands for the same session.
        if signature.len() != SIGNATURE_HEX_LEN
            || !signature
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return None;
        }
        // Decoded on the stack: this runs on every poll.
        let mut decoded = [0u8; SIGNATURE_HEX_LEN / 2];
        hex::decode_to_slice(signature, &mut decoded).ok()?;
        // verify_truncated_left compares in constant time.
        self.mac(body).verify_truncated_left(&decoded).ok()?;
        Some(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_tokens_verify_and_tampered_ones_do_not() {
        let signer = TokenSigner::new(b"secret");
        let claims = SessionToken {
            user_id: 42,
            session_id: 7,
        };
        let token = signer.sign(claims);
        assert_eq!(signer.verify(&token), Some(claims));
        assert_eq!(TokenSigner::new(b"other").verify(&token), None);
        let forged = token.replacen("42.", "43.", 1);
        assert_eq!(signer.verify(&forged), None);
        let (body, signature) = token.rsplit_once('.').expect("three parts");
        let shouted = format!("{body}.{}", signature.to_ascii_uppercase());
        if shouted != token {
            assert_eq!(signer.verify(&shouted), None, "one spelling per token");
        }
        assert_eq!(signer.verify(&format!("+{token}")), None);
        for garbage in ["", "no", "1.2", "1.2.zz", "a.b.c", &"9".repeat(500)] {
            assert_eq!(signer.verify(garbage), None, "{garbage}");
        }
    }
}
