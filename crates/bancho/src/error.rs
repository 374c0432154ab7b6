//! Errors of the codec. Every failure on client input ends up as one of these values;
//! nothing in this crate panics on bytes it is given.

use thiserror::Error;

/// Why a packet or one of its fields could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The input ended before the value was complete. For a whole HTTP body this means the
    /// client sent a truncated packet.
    #[error("unexpected end of input: needed {needed} more byte(s)")]
    UnexpectedEnd { needed: usize },
    /// A packet header announced a payload larger than [`crate::MAX_PAYLOAD_LEN`].
    #[error("packet payload of {len} bytes exceeds the limit of {max}")]
    PayloadTooLarge { len: usize, max: usize },
    /// A string started with a byte other than `0x00` (empty) or `0x0b` (present).
    #[error("invalid string marker 0x{0:02x}")]
    InvalidStringMarker(u8),
    /// A ULEB128 length used more than five bytes or overflowed 32 bits.
    #[error("ULEB128 length is malformed")]
    BadLength,
    /// A string's bytes are not UTF-8.
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    /// A list count that is negative or above the list's limit.
    #[error("list count {0} is negative or above the limit")]
    BadCount(i64),
    /// A packet id that protocol 19 does not define for this direction.
    #[error("unknown packet id {0}")]
    UnknownPacket(u16),
}

/// Why a login request body was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LoginParseError {
    #[error("login body is not valid UTF-8")]
    NotUtf8,
    #[error("login body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("login body is missing the {0} line")]
    MissingLine(&'static str),
    #[error("username is empty or longer than {0} characters")]
    BadUsername(usize),
    #[error("password hash is not 32 hexadecimal characters")]
    BadPasswordHash,
    #[error("client info line is missing the {0} field")]
    MissingField(&'static str),
    #[error("client version {0:?} is not of the form bYYYYMMDD[.N][stream]")]
    BadVersion(String),
    #[error("utc offset {0:?} is not an hour offset between -12 and 14")]
    BadUtcOffset(String),
    #[error("client hashes are malformed")]
    BadClientHashes,
}
