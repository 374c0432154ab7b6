//! Documents between nodes: versioned bincode, read with size limits.
//!
//! bincode is not self-describing: a document starts with [`WIRE_VERSION`], which is
//! read on its own first, so that a node can refuse a newer peer's format with a clear
//! error instead of misreading it. Entity payloads are encoded apart ([`encode_payload`],
//! no version of their own: the document that carries them has one), so that a node can
//! forward a payload without understanding it, and a payload it cannot read is told apart
//! from a document it cannot read.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The format of every document below. Raise it on any incompatible change.
pub const WIRE_VERSION: u16 = 1;

/// The largest document accepted from a peer. A full spectator frame bundle or a
/// directory snapshot of 100,000 players fits; anything larger is a bug or an attack.
pub const MAX_DOCUMENT_BYTES: usize = 32 << 20;

/// How many times a message may be forwarded (its key moved while it travelled) before
/// it is dropped as lost in a placement loop.
pub const MAX_HOPS: u8 = 8;

/// Why bytes from a peer could not be read.
#[derive(Debug, Error, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireError {
    #[error("wire format {0} is not supported (this node speaks {WIRE_VERSION})")]
    Version(u16),
    #[error("undecodable document: {0}")]
    Decode(String),
    #[error("could not encode: {0}")]
    Encode(String),
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_DOCUMENT_BYTES>()
}

/// Encodes a versioned document.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, WireError> {
    let mut out = bincode::serde::encode_to_vec(WIRE_VERSION, config())
        .map_err(|e| WireError::Encode(e.to_string()))?;
    bincode::serde::encode_into_std_write(value, &mut out, config())
        .map_err(|e| WireError::Encode(e.to_string()))?;
    Ok(out)
}

/// Decodes a versioned document; trailing bytes are an error.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, WireError> {
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(WireError::Decode(format!(
            "{} bytes is too large",
            bytes.len()
        )));
    }
    let (version, used): (u16, usize) = bincode::serde::decode_from_slice(bytes, config())
        .map_err(|e| WireError::Decode(e.to_string()))?;
    if version != WIRE_VERSION {
        return Err(WireError::Version(version));
    }
    let rest = &bytes[used..];
    let (value, used): (T, usize) = bincode::serde::decode_from_slice(rest, config())
        .map_err(|e| WireError::Decode(e.to_string()))?;
    if used != rest.len() {
        return Err(WireError::Decode(format!(
            "{} trailing bytes",
            rest.len() - used
        )));
    }
    Ok(value)
}

/// Encodes an entity payload (no version of its own: the envelope carries it).
pub fn encode_payload<T: Serialize>(value: &T) -> Result<Vec<u8>, WireError> {
    bincode::serde::encode_to_vec(value, config()).map_err(|e| WireError::Encode(e.to_string()))
}

/// Decodes an entity payload.
pub fn decode_payload<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, WireError> {
    let (value, used): (T, usize) = bincode::serde::decode_from_slice(bytes, config())
        .map_err(|e| WireError::Decode(e.to_string()))?;
    if used != bytes.len() {
        return Err(WireError::Decode(format!(
            "{} trailing bytes",
            bytes.len() - used
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_round_trip_and_carry_their_version() {
        let bytes = encode(&(7u64, "seven".to_owned())).unwrap();
        let back: (u64, String) = decode(&bytes).unwrap();
        assert_eq!(back, (7, "seven".to_owned()));

        let mut newer = bytes.clone();
        newer[0] = 2;
        assert_eq!(
            decode::<(u64, String)>(&newer).unwrap_err(),
            WireError::Version(2)
        );
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(
            decode::<(u64, String)>(&trailing),
            Err(WireError::Decode(_))
        ));
        assert!(decode::<(u64, String)>(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode::<(u64, String)>(&[]).is_err());
    }

    #[test]
    fn a_huge_length_prefix_is_refused_without_allocating() {
        // Version 1, then a Vec length claiming 2^60 bytes.
        let mut bytes = encode_payload(&WIRE_VERSION).unwrap();
        bytes.extend_from_slice(&[0xff, 0, 0, 0, 0, 0, 0, 0, 0x10]);
        assert!(decode::<Vec<u8>>(&bytes).is_err());
    }
}
