//! The primitive layouts of the protocol: little-endian integers, the `0x0b`+ULEB128
//! string, the `u16`-counted i32 list and the raw tail. [`Wire`] is implemented for each,
//! and the packet tables in [`crate::client`] and [`crate::server`] are built from it.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::DecodeError;

/// A value with a fixed place in the wire format.
pub trait Wire: Sized {
    /// Appends the encoded value to `out`.
    fn encode(&self, out: &mut Vec<u8>);
    /// Reads one value, advancing the reader. Never panics, whatever the bytes.
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

/// A cursor over a packet payload. All reads are bounds-checked.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Takes exactly `n` bytes or fails without consuming anything.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.buf.len() {
            return Err(DecodeError::UnexpectedEnd {
                needed: n - self.buf.len(),
            });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// Takes everything that is left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let bytes = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// Reads an unsigned LEB128 value of at most 32 bits (five bytes).
    pub fn uleb128(&mut self) -> Result<u32, DecodeError> {
        let mut value: u32 = 0;
        for i in 0..5 {
            let byte = self.array::<1>()?[0];
            let bits = u32::from(byte & 0x7f);
            if i == 4 && bits > 0x0f {
                return Err(DecodeError::BadLength);
            }
            value |= bits << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::BadLength)
    }
}

/// Appends `value` as unsigned LEB128.
pub fn write_uleb128(out: &mut Vec<u8>, mut value: u32) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

macro_rules! wire_le {
    ($($ty:ty),*) => {$(
        impl Wire for $ty {
            fn encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                r.array().map(<$ty>::from_le_bytes)
            }
        }
    )*};
}
wire_le!(u8, i8, u16, i16, u32, i32, u64, i64, f32, f64);

impl Wire for bool {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(u8::decode(r)? != 0)
    }
}

/// Strings: `0x00` for an empty string, otherwise `0x0b`, a ULEB128 byte length and UTF-8.
impl Wire for String {
    fn encode(&self, out: &mut Vec<u8>) {
        encode_present_string(self, out, false);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Option::<String>::decode(r)?.unwrap_or_default())
    }
}

/// A string whose absence (`0x00`) differs from an empty present string (`0x0b 0x00`).
/// The match layout uses this for the password: the client shows a lock for `Some("")`.
impl Wire for Option<String> {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            None => out.push(0x00),
            Some(s) => encode_present_string(s, out, true),
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match u8::decode(r)? {
            0x00 => Ok(None),
            0x0b => {
                let len = r.uleb128()? as usize;
                // `take` checks the length against the bytes actually present before
                // anything is allocated, so a huge announced length costs nothing.
                let bytes = r.take(len)?;
                let s = std::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8)?;
                Ok(Some(s.to_owned()))
            }
            other => Err(DecodeError::InvalidStringMarker(other)),
        }
    }
}

fn encode_present_string(s: &str, out: &mut Vec<u8>, keep_empty: bool) {
    if s.is_empty() && !keep_empty {
        out.push(0x00);
        return;
    }
    out.push(0x0b);
    // Strings built by the server are bounded far below 4 GiB; saturating keeps the
    // encoder total even so.
    write_uleb128(out, u32::try_from(s.len()).unwrap_or(u32::MAX));
    out.extend_from_slice(s.as_bytes());
}

/// i32 lists are a `u16` count followed by the items.
impl Wire for Vec<i32> {
    fn encode(&self, out: &mut Vec<u8>) {
        let count = u16::try_from(self.len()).unwrap_or(u16::MAX);
        count.encode(out);
        for v in self.iter().take(usize::from(count)) {
            v.encode(out);
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let count = usize::from(u16::decode(r)?);
        // Check before allocating: a count the payload cannot hold is a truncated packet.
        if count * 4 > r.remaining() {
            return Err(DecodeError::UnexpectedEnd {
                needed: count * 4 - r.remaining(),
            });
        }
        (0..count).map(|_| i32::decode(r)).collect()
    }
}

/// Bytes the server relays without looking inside (spectator frames, score frames).
/// Decoding takes the rest of the payload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Raw(pub Bytes);

impl Wire for Raw {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Raw(Bytes::copy_from_slice(r.rest())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn roundtrip<T: Wire + PartialEq + std::fmt::Debug>(v: T) {
        let mut out = Vec::new();
        v.encode(&mut out);
        let mut r = Reader::new(&out);
        assert_eq!(T::decode(&mut r).expect("decodes"), v);
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn strings_have_the_documented_layout() {
        let mut out = Vec::new();
        String::new().encode(&mut out);
        "ab".to_string().encode(&mut out);
        Some(String::new()).encode(&mut out);
        assert_eq!(out, [0x00, 0x0b, 2, b'a', b'b', 0x0b, 0x00]);
    }

    #[test]
    fn long_string_uses_multibyte_uleb() {
        let s = "x".repeat(300);
        let mut out = Vec::new();
        s.encode(&mut out);
        assert_eq!(&out[..3], &[0x0b, 0xac, 0x02]);
        roundtrip(s);
    }

    #[test]
    fn huge_announced_length_is_rejected_without_allocating() {
        let bytes = [0x0b, 0xff, 0xff, 0xff, 0xff, 0x0f, b'a'];
        let err = String::decode(&mut Reader::new(&bytes)).expect_err("truncated");
        assert!(matches!(err, DecodeError::UnexpectedEnd { .. }));
        let overlong = [0x0b, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(
            String::decode(&mut Reader::new(&overlong)),
            Err(DecodeError::BadLength)
        );
    }

    #[test]
    fn bad_marker_and_bad_utf8_are_errors() {
        assert_eq!(
            String::decode(&mut Reader::new(&[0x07])),
            Err(DecodeError::InvalidStringMarker(7))
        );
        assert_eq!(
            String::decode(&mut Reader::new(&[0x0b, 1, 0xff])),
            Err(DecodeError::InvalidUtf8)
        );
    }

    #[test]
    fn list_count_beyond_payload_is_truncation() {
        let bytes = [0xff, 0xff, 1, 0, 0, 0];
        assert!(matches!(
            Vec::<i32>::decode(&mut Reader::new(&bytes)),
            Err(DecodeError::UnexpectedEnd { .. })
        ));
    }

    proptest! {
        #[test]
        fn uleb_roundtrips(v: u32) {
            let mut out = Vec::new();
            write_uleb128(&mut out, v);
            prop_assert_eq!(Reader::new(&out).uleb128().expect("decodes"), v);
        }

        #[test]
        fn strings_roundtrip(s in ".{0,400}") { roundtrip(s) }

        #[test]
        fn lists_roundtrip(v in proptest::collection::vec(any::<i32>(), 0..300)) { roundtrip(v) }

        #[test]
        fn integers_roundtrip(a: i64, b: u32, c: i16, d: u8) {
            roundtrip(a); roundtrip(b); roundtrip(c); roundtrip(d);
        }

        #[test]
        fn string_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = String::decode(&mut Reader::new(&bytes));
            let _ = Vec::<i32>::decode(&mut Reader::new(&bytes));
        }
    }
}
