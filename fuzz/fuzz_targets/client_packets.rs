//! A poll body as a client could send it: any bytes at all.
//!
//! Besides "never panics": a frame split off a body is "need more bytes" on every shorter
//! prefix (never "invalid"), and every packet that decodes encodes to bytes that decode to
//! the same packet, so what the server relays is what it understood.

#![no_main]

use libfuzzer_sys::fuzz_target;
use peace_bancho::{ClientPacket, Frame, Frames};

fuzz_target!(|body: &[u8]| {
    let mut rest = body;
    for frame in Frames::new(body) {
        let Ok(frame) = frame else { break };
        let used = peace_bancho::frame::HEADER_LEN + frame.payload.len();
        assert!(
            used <= rest.len(),
            "a frame claims more bytes than the body has"
        );
        assert_eq!(
            Frame::parse(&rest[..used - 1]),
            Ok(None),
            "a cut frame must read as incomplete"
        );
        rest = &rest[used..];
        let Ok(packet) = ClientPacket::decode(frame.id, frame.payload) else {
            continue;
        };
        let mut encoded = Vec::new();
        packet.encode(&mut encoded);
        let again = peace_bancho::decode_client_packets(&encoded);
        assert_eq!(again.len(), 1, "one packet encodes to one frame");
        assert_eq!(again[0].as_ref(), Ok(&packet), "decode(encode(p)) == p");
    }
    // The whole-body decoder the server uses agrees with the frame walk above.
    let decoded = peace_bancho::decode_client_packets(body);
    assert!(decoded.len() <= body.len() / peace_bancho::frame::HEADER_LEN + 1);
});
