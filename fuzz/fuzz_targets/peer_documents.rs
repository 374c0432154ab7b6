//! Everything a peer node can send: the first byte picks which document the rest is read
//! as — an envelope, a request, an answer, an actor snapshot, or one of the entity
//! payloads they carry.
//!
//! Besides "never panics, never allocates without bound" (the bincode limit): whatever
//! decodes survives a round trip, so the two ends of a link agree on every document.

#![no_main]

use libfuzzer_sys::fuzz_target;
use peace_actors::channel::{ChannelCall, ChannelCast};
use peace_actors::cluster::envelope::{self, Answer, Envelope, Request};
use peace_actors::lobby::LobbyCast;
use peace_actors::match_room::{MatchCall, MatchCast};
use peace_actors::snapshot;
use peace_actors::spectate::{SpectateCall, SpectateCast};
use peace_actors::user::{UserCall, UserCast};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Decodes a versioned document; if it is accepted, encoding it and reading it back
/// must give the same bytes again.
fn document<T: Serialize + DeserializeOwned>(bytes: &[u8]) {
    if let Ok(value) = envelope::decode::<T>(bytes) {
        let again = envelope::encode(&value).expect("a decoded document encodes");
        let value: T = envelope::decode(&again).expect("an encoded document decodes");
        assert_eq!(
            envelope::encode(&value).unwrap(),
            again,
            "round trip is stable"
        );
    }
}

/// The same for an entity payload (unversioned: the envelope carries the version).
fn payload<T: Serialize + DeserializeOwned>(bytes: &[u8]) {
    if let Ok(value) = envelope::decode_payload::<T>(bytes) {
        let again = envelope::encode_payload(&value).expect("a decoded payload encodes");
        let value: T = envelope::decode_payload(&again).expect("an encoded payload decodes");
        assert_eq!(envelope::encode_payload(&value).unwrap(), again);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, bytes)) = data.split_first() else {
        return;
    };
    match kind % 13 {
        0 => document::<Envelope>(bytes),
        1 => document::<Request>(bytes),
        2 => document::<Answer>(bytes),
        3 => {
            if let Ok(snap) = snapshot::decode(bytes) {
                let again = snapshot::encode(&snap).expect("a decoded snapshot encodes");
                snapshot::decode(&again).expect("an encoded snapshot decodes");
            }
        }
        4 => payload::<UserCast>(bytes),
        5 => payload::<UserCall>(bytes),
        6 => payload::<ChannelCast>(bytes),
        7 => payload::<ChannelCall>(bytes),
        8 => payload::<SpectateCast>(bytes),
        9 => payload::<SpectateCall>(bytes),
        10 => payload::<MatchCast>(bytes),
        11 => payload::<MatchCall>(bytes),
        _ => payload::<LobbyCast>(bytes),
    }
});
