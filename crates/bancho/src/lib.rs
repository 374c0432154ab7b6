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

/// Decodes every client packet of a request body, in order. Decoding stops at the first
/// frame that cannot be split off (the rest of the body is unusable); a frame whose
/// payload is malformed or whose id is unknown yields an error for that frame only.
pub fn decode_client_packets(body: &[u8]) -> Vec<Result<ClientPacket, DecodeError>> {
    Frames::new(body)
        .map(|frame| frame.and_then(|f| ClientPacket::decode(f.id, f.payload)))
        .collect()
}

/// Decodes every server packet of a response body (for test clients and the benchmark).
pub fn decode_server_packets(body: &[u8]) -> Vec<Result<ServerPacket, DecodeError>> {
    Frames::new(body)
        .map(|frame| frame.and_then(|f| ServerPacket::decode(f.id, f.payload)))
        .collect()
}
