//! Proving who a request comes from: signed session tokens and password verification.

mod password;
mod token;

pub use password::{HashError, PasswordVerifier, hash_password, md5_hex};
pub use token::{SessionToken, TokenSigner};
