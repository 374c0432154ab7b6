//! The stable client's cipher for the score submission's `score` and `s` form fields.
//!
//! The client encrypts the colon-separated score text (and its client hash) with Rijndael
//! using a 256-bit *block* — not AES, whose block is always 128 bits — and a 256-bit key,
//! in CBC mode with PKCS#7 padding to 32 bytes. The key is the fixed text
//! `osu!-scoreburgr---------` followed by the client's version date (`osuver`, for example
//! `20231030`); the IV is sent base64-encoded in the `iv` field.
//!
//! Only the single-block primitive comes from `simple-rijndael`: the CBC chaining and the
//! padding check live here, because that crate's own CBC indexes its input without length
//! checks (an empty ciphertext, a short IV or a padding byte larger than the data would
//! panic), and every byte here comes straight from the network.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use simple_rijndael::rijndael::Rijndael;

/// The cipher's block size in bytes (256 bits).
pub const BLOCK_SIZE: usize = 32;

/// The fixed first part of the key; the client's version date makes up the rest.
pub const KEY_PREFIX: &str = "osu!-scoreburgr---------";

/// The largest ciphertext accepted, checked before anything is allocated. A real score text
/// is a few hundred bytes; 64 KiB leaves room for any client without letting a request make
/// the server decrypt megabytes.
pub const MAX_CIPHERTEXT_LEN: usize = 64 * 1024;

/// Why a score field could not be decrypted or encrypted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The key must be exactly 32 bytes: the 24-byte prefix and an 8-character version date.
    #[error("the osu! version {version:?} does not make a 32-byte key (it must be 8 bytes)")]
    BadVersion {
        /// The version string as the client sent it.
        version: String,
    },
    /// The IV must be exactly one block.
    #[error("the IV is {0} bytes, not 32")]
    BadIvLength(usize),
    /// The ciphertext is empty or not a whole number of blocks.
    #[error("the ciphertext is {0} bytes, not a non-zero multiple of 32")]
    BadCiphertextLength(usize),
    /// The ciphertext (or plaintext to encrypt) is larger than [`MAX_CIPHERTEXT_LEN`].
    #[error("the data is {0} bytes, over the limit")]
    TooLong(usize),
    /// The last block does not end in valid PKCS#7 padding: a wrong key or IV, or tampering.
    #[error("the decrypted data has no valid PKCS#7 padding")]
    BadPadding,
    /// A field was not valid base64.
    #[error("a field is not valid base64")]
    Base64,
    /// The decrypted text is not UTF-8.
    #[error("the decrypted text is not UTF-8")]
    NotUtf8,
    /// The block cipher refused its input (cannot happen with the sizes checked above).
    #[error("the block cipher failed")]
    Cipher,
}

/// Builds the 32-byte key from the client's version date.
fn key(osu_version: &str) -> Result<[u8; 32], CryptoError> {
    let mut key = [0u8; 32];
    let version = osu_version.as_bytes();
    // A version of the wrong length would give Rijndael a 28- or 36-byte key: a 28-byte key
    // would even be accepted and silently decrypt garbage, so refuse anything but 8 bytes.
    if version.len() != BLOCK_SIZE - KEY_PREFIX.len() {
        return Err(CryptoError::BadVersion {
            version: osu_version.to_owned(),
        });
    }
    key[..KEY_PREFIX.len()].copy_from_slice(KEY_PREFIX.as_bytes());
    key[KEY_PREFIX.len()..].copy_from_slice(version);
    Ok(key)
}

fn cipher(osu_version: &str) -> Result<Rijndael, CryptoError> {
    Rijndael::new(&key(osu_version)?, BLOCK_SIZE).map_err(|_| CryptoError::Cipher)
}

fn check_iv(iv: &[u8]) -> Result<&[u8; BLOCK_SIZE], CryptoError> {
    iv.try_into()
        .map_err(|_| CryptoError::BadIvLength(iv.len()))
}

/// Decrypts a score field: Rijndael-256 CBC, then strips and checks the PKCS#7 padding.
pub fn decrypt(osu_version: &str, iv: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if ciphertext.len() > MAX_CIPHERTEXT_LEN {
        return Err(CryptoError::TooLong(ciphertext.len()));
    }
    if ciphertext.is_empty() || !ciphertext.len().is_multiple_of(BLOCK_SIZE) {
        return Err(CryptoError::BadCiphertextLength(ciphertext.len()));
    }
    let iv = check_iv(iv)?;
    let cipher = cipher(osu_version)?;

    let mut plain = Vec::with_capacity(ciphertext.len());
    let mut previous: &[u8] = iv;
    for block in ciphertext.chunks_exact(BLOCK_SIZE) {
        let decrypted = cipher.decrypt(block).map_err(|_| CryptoError::Cipher)?;
        plain.extend(decrypted.iter().zip(previous).map(|(d, p)| d ^ p));
        previous = block;
    }

    // PKCS#7: the last byte n (1..=32) says how many bytes, all equal to n, were added.
    let pad = usize::from(*plain.last().ok_or(CryptoError::BadPadding)?);
    if pad == 0
        || pad > BLOCK_SIZE
        || plain[plain.len() - pad..]
            .iter()
            .any(|&b| usize::from(b) != pad)
    {
        return Err(CryptoError::BadPadding);
    }
    plain.truncate(plain.len() - pad);
    Ok(plain)
}

/// Encrypts as the client does: PKCS#7 padding to 32 bytes, then Rijndael-256 CBC.
///
/// The server never needs this to answer a client; tests, benchmarks and load generators
/// use it to build submissions.
pub fn encrypt(osu_version: &str, iv: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if plaintext.len() >= MAX_CIPHERTEXT_LEN {
        return Err(CryptoError::TooLong(plaintext.len()));
    }
    let iv = check_iv(iv)?;
    let cipher = cipher(osu_version)?;

    let pad = BLOCK_SIZE - plaintext.len() % BLOCK_SIZE;
    let mut padded = Vec::with_capacity(plaintext.len() + pad);
    padded.extend_from_slice(plaintext);
    // `pad` is 1..=32, so it always fits in a byte.
    padded.resize(plaintext.len() + pad, pad as u8);

    let mut out = Vec::with_capacity(padded.len());
    let mut previous = *iv;
    for block in padded.chunks_exact(BLOCK_SIZE) {
        let mut mixed = [0u8; BLOCK_SIZE];
        for (m, (b, p)) in mixed.iter_mut().zip(block.iter().zip(&previous)) {
            *m = b ^ p;
        }
        let encrypted = cipher.encrypt(&mixed).map_err(|_| CryptoError::Cipher)?;
        previous.copy_from_slice(&encrypted);
        out.extend_from_slice(&encrypted);
    }
    Ok(out)
}

/// Decodes one base64 form field (standard alphabet, with padding, as the client sends).
pub fn decode_base64(field: &str) -> Result<Vec<u8>, CryptoError> {
    // Base64 grows data by 4/3, so a longer field cannot decode under the limit.
    if field.len() > MAX_CIPHERTEXT_LEN / 3 * 4 + 4 {
        return Err(CryptoError::TooLong(field.len()));
    }
    STANDARD
        .decode(field.trim())
        .map_err(|_| CryptoError::Base64)
}

/// Encodes bytes as a base64 form field, the inverse of [`decode_base64`].
pub fn encode_base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decrypts a field as it arrives in the form: base64 IV and base64 ciphertext, giving text.
///
/// Used for both the `score` field (the score text) and the `s` field (the client hash).
pub fn decrypt_field(
    osu_version: &str,
    iv_b64: &str,
    field_b64: &str,
) -> Result<String, CryptoError> {
    let iv = decode_base64(iv_b64)?;
    let ciphertext = decode_base64(field_b64)?;
    let plain = decrypt(osu_version, &iv, &ciphertext)?;
    String::from_utf8(plain).map_err(|_| CryptoError::NotUtf8)
}

/// Encrypts text into a form field, the inverse of [`decrypt_field`].
pub fn encrypt_field(osu_version: &str, iv_b64: &str, text: &str) -> Result<String, CryptoError> {
    let iv = decode_base64(iv_b64)?;
    Ok(encode_base64(&encrypt(osu_version, &iv, text.as_bytes())?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const VERSION: &str = "20231030";

    #[test]
    fn round_trips_every_length_around_block_edges() {
        let iv = [7u8; 32];
        for len in 0..=100 {
            let plain: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let ct = encrypt(VERSION, &iv, &plain).unwrap();
            // PKCS#7 always adds at least one byte, so a whole block of plaintext gets a
            // whole block of padding.
            assert_eq!(ct.len(), (len / 32 + 1) * 32);
            assert_eq!(decrypt(VERSION, &iv, &ct).unwrap(), plain);
        }
    }

    #[test]
    fn refuses_a_version_that_is_not_eight_bytes() {
        for bad in ["", "2023103", "202310301", "20231030 ", "b20231030"] {
            assert!(matches!(
                decrypt(bad, &[0; 32], &[0; 32]),
                Err(CryptoError::BadVersion { .. })
            ));
            assert!(matches!(
                encrypt(bad, &[0; 32], b"x"),
                Err(CryptoError::BadVersion { .. })
            ));
        }
    }

    #[test]
    fn refuses_bad_lengths() {
        assert_eq!(
            decrypt(VERSION, &[0; 16], &[0; 32]),
            Err(CryptoError::BadIvLength(16))
        );
        assert_eq!(
            decrypt(VERSION, &[0; 32], &[]),
            Err(CryptoError::BadCiphertextLength(0))
        );
        assert_eq!(
            decrypt(VERSION, &[0; 32], &[0; 33]),
            Err(CryptoError::BadCiphertextLength(33))
        );
        assert_eq!(
            encrypt(VERSION, &[0; 31], b"x"),
            Err(CryptoError::BadIvLength(31))
        );
    }

    #[test]
    fn a_wrong_key_is_caught_by_the_padding_check() {
        let iv = [1u8; 32];
        let ct = encrypt(VERSION, &iv, b"hello").unwrap();
        // A wrong key almost always leaves garbage padding; the odd lucky byte would still
        // decrypt to garbage text, which the score parser refuses.
        assert_eq!(decrypt("20231031", &iv, &ct), Err(CryptoError::BadPadding));
    }

    #[test]
    fn field_helpers_round_trip() {
        let iv = encode_base64(&[9u8; 32]);
        let field = encrypt_field(VERSION, &iv, "a:b:c").unwrap();
        assert_eq!(decrypt_field(VERSION, &iv, &field).unwrap(), "a:b:c");
        assert_eq!(
            decrypt_field(VERSION, "not base64!", &field),
            Err(CryptoError::Base64)
        );
    }

    proptest! {
        #[test]
        fn random_input_never_panics(
            version in ".{0,12}",
            iv in proptest::collection::vec(any::<u8>(), 0..40),
            ct in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let _ = decrypt(&version, &iv, &ct);
            let _ = encrypt(&version, &iv, &ct);
        }

        #[test]
        fn random_fields_never_panic(iv in ".{0,60}", field in ".{0,200}") {
            let _ = decrypt_field(VERSION, &iv, &field);
        }

        #[test]
        fn random_blocks_with_the_right_shape_never_panic(
            iv in proptest::array::uniform32(any::<u8>()),
            blocks in proptest::collection::vec(proptest::array::uniform32(any::<u8>()), 1..4),
        ) {
            let ct: Vec<u8> = blocks.concat();
            let _ = decrypt(VERSION, &iv, &ct);
        }

        #[test]
        fn encrypt_then_decrypt_is_identity(
            iv in proptest::array::uniform32(any::<u8>()),
            plain in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let ct = encrypt(VERSION, &iv, &plain).unwrap();
            prop_assert_eq!(decrypt(VERSION, &iv, &ct).unwrap(), plain);
        }
    }
}
