//! The osu! stable client's real-time protocol ("Bancho"), protocol version 19.
//!
//! Pure: no I/O, no async runtime, no global state. Decoding works on byte slices and
//! returns [`DecodeError`] for any input it cannot accept; nothing here panics on bytes
//! from the network, which the property tests in each module and `tests/` check.
//!
//! * [`frame`]: splitting a body into `(id, payload)` frames, with a size limit.
//! * [`wire`]: the primitive layouts (integers, ULEB128 strings, i32 lists).
//! * [`model`]: the composite layouts (message, presence, match).
//! * [`client`] / [`server`]: one table per direction, one row per packet.
//! * [`login`]: the login request body.

mod constants;
mod country;
mod error;
mod macros;

pub mod client;
pub mod frame;
pub mod login;
pub mod model;
pub mod server;
pub mod wire;

pub use client::{ClientPacket, ClientPacketId};
pub use constants::*;
pub use country::{COUNTRY_CODES, country_index};
pub use error::{DecodeError, LoginParseError};
pub use frame::{Frame, Frames, MAX_PAYLOAD_LEN};
pub use login::LoginRequest;
pub use model::{MatchData, MatchSlot, Message, Presence};
pub use server::{ServerPacket, ServerPacketId};

/// The client packets of a request body, in order, decoded one at a time as the
/// iterator is advanced (so a caller that keeps only the first N pays for N). Decoding
/// stops at the first frame that cannot be split off (the rest of the body is unusable);
/// a frame whose payload is malformed or whose id is unknown yields an error for that
/// frame only.
pub fn client_packets(body: &[u8]) -> impl Iterator<Item = Result<ClientPacket, DecodeError>> + '_ {
    Frames::new(body).map(|frame| frame.and_then(|f| ClientPacket::decode(f.id, f.payload)))
}

/// Every client packet of a request body ([`client_packets`], collected).
pub fn decode_client_packets(body: &[u8]) -> Vec<Result<ClientPacket, DecodeError>> {
    client_packets(body).collect()
}

/// Decodes every server packet of a response body (for test clients and the benchmark).
pub fn decode_server_packets(body: &[u8]) -> Vec<Result<ServerPacket, DecodeError>> {
    Frames::new(body)
        .map(|frame| frame.and_then(|f| ServerPacket::decode(f.id, f.payload)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A frame with a real client packet id and an arbitrary payload: random bytes alone
    /// almost never get past the header, this reaches every packet's decoder.
    fn client_frame() -> impl Strategy<Value = Vec<u8>> {
        let id = proptest::sample::select(ClientPacketId::ALL);
        let payload = proptest::collection::vec(any::<u8>(), 0..96);
        (id, payload).prop_map(|(id, payload)| {
            let mut out = (id as u16).to_le_bytes().to_vec();
            out.push(0);
            out.extend_from_slice(&u32::try_from(payload.len()).unwrap_or(0).to_le_bytes());
            out.extend_from_slice(&payload);
            out
        })
    }

    proptest! {
        // The same property as `fuzz/fuzz_targets/client_packets.rs`, under plain
        // `cargo test`: what decodes re-encodes to bytes that decode to the same packet.
        #[test]
        fn client_packets_reencode_to_themselves(
            frames in proptest::collection::vec(client_frame(), 1..6),
            tail in proptest::collection::vec(any::<u8>(), 0..8),
        ) {
            let mut body = frames.concat();
            body.extend_from_slice(&tail);
            let decoded = decode_client_packets(&body);
            prop_assert!(decoded.len() <= frames.len() + 1);
            for packet in decoded.into_iter().flatten() {
                let mut encoded = Vec::new();
                packet.encode(&mut encoded);
                let again = decode_client_packets(&encoded);
                prop_assert_eq!(again.len(), 1);
                prop_assert_eq!(again[0].as_ref(), Ok(&packet));
            }
        }
    }
}
