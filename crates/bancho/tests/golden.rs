//! Golden vectors from the independent `chio` implementation (see `golden/generate.py`).
//!
//! Server cases: our encoding of the packet must be byte-for-byte what chio writes, and
//! decoding chio's bytes must give the packet back. Client cases: decoding the bytes a
//! client writes must give the expected packet, and encoding it must give the same bytes
//! (except for `lossy` cases, where our struct drops a reserved field the client sends).

use peace_bancho::frame::{Frame, HEADER_LEN};
use peace_bancho::{ClientPacket, ClientPacketId, ServerPacket, ServerPacketId};
use serde::de::DeserializeOwned;
use serde_json::Value;

const VECTORS: &str = include_str!("golden/vectors.json");

/// Packets chio cannot produce for a protocol 19 client (see `NOT_COVERED` in the script).
const SERVER_NOT_COVERED: &[ServerPacketId] = &[
    ServerPacketId::HandleIrcQuit,
    ServerPacketId::ToggleBlockNonFriendDms,
    ServerPacketId::AllPlayersLoaded,
    ServerPacketId::Unauthorized,
];
const CLIENT_NOT_COVERED: &[ClientPacketId] = &[ClientPacketId::IrcOnly];

struct Case {
    name: String,
    direction: String,
    packet: String,
    bytes: Vec<u8>,
    lossy: bool,
    json: Value,
}

fn cases() -> Vec<Case> {
    let all: Vec<Value> = serde_json::from_str(VECTORS).expect("vectors.json is valid JSON");
    all.into_iter()
        .map(|v| {
            let text = |key: &str| {
                v[key]
                    .as_str()
                    .unwrap_or_else(|| panic!("case without {key}: {v}"))
                    .to_owned()
            };
            Case {
                name: text("name"),
                direction: text("direction"),
                packet: text("packet"),
                bytes: hex::decode(text("hex")).expect("hex is valid"),
                lossy: v["lossy"].as_bool().unwrap_or(false),
                json: serde_json::json!({ "packet": v["packet"], "fields": v["fields"] }),
            }
        })
        .collect()
}

fn expected<T: DeserializeOwned>(case: &Case) -> Result<T, String> {
    serde_json::from_value(case.json.clone())
        .map_err(|e| format!("{}: fields do not deserialize: {e}", case.name))
}

/// The single frame in `bytes`: chio writes exactly one packet per case.
fn single_frame<'a>(case: &Case, bytes: &'a [u8]) -> Frame<'a> {
    let (frame, used) = Frame::parse(bytes)
        .unwrap_or_else(|e| panic!("{}: bad frame: {e}", case.name))
        .unwrap_or_else(|| panic!("{}: truncated frame", case.name));
    assert_eq!(
        used,
        bytes.len(),
        "{}: trailing bytes after the frame",
        case.name
    );
    frame
}

/// Strips the payload down to `len` bytes and patches the header's length to match.
fn truncated(bytes: &[u8], len: usize) -> Vec<u8> {
    let mut out = bytes[..HEADER_LEN + len].to_vec();
    out[3..HEADER_LEN].copy_from_slice(&u32::try_from(len).expect("small payload").to_le_bytes());
    out
}

fn compare(case: &Case, what: &str, ours: &[u8], theirs: &[u8]) -> Option<String> {
    (ours != theirs).then(|| {
        format!(
            "{} ({}): {what}\n  ours:  {}\n  chio:  {}",
            case.name,
            case.packet,
            hex::encode(ours),
            hex::encode(theirs)
        )
    })
}

fn check_server(case: &Case) -> Vec<String> {
    let packet: ServerPacket = match expected(case) {
        Ok(packet) => packet,
        Err(failure) => return vec![failure],
    };
    let mut failures = Vec::new();
    failures.extend(compare(
        case,
        "encoding differs",
        &packet.to_bytes(),
        &case.bytes,
    ));
    let frame = single_frame(case, &case.bytes);
    match ServerPacket::decode(frame.id, frame.payload) {
        Ok(decoded) if decoded == packet => {}
        other => failures.push(format!(
            "{}: decoding chio's bytes gave {other:?}, expected {packet:?}",
            case.name
        )),
    }
    failures
}

fn check_client(case: &Case) -> Vec<String> {
    let packet: ClientPacket = match expected(case) {
        Ok(packet) => packet,
        Err(failure) => return vec![failure],
    };
    let mut failures = Vec::new();
    let frame = single_frame(case, &case.bytes);
    match ClientPacket::decode(frame.id, frame.payload) {
        Ok(decoded) if decoded == packet => {}
        other => failures.push(format!(
            "{}: decoding {} gave {other:?}, expected {packet:?}",
            case.name,
            hex::encode(&case.bytes)
        )),
    }
    let ours = packet.to_bytes();
    if case.lossy {
        // Our encoding must be the client's with the dropped tail cut off.
        let kept = ours.len() - HEADER_LEN;
        assert!(kept < frame.payload.len(), "{}: not lossy", case.name);
        failures.extend(compare(
            case,
            "encoding differs from the client's (tail dropped)",
            &ours,
            &truncated(&case.bytes, kept),
        ));
    } else {
        failures.extend(compare(case, "encoding differs", &ours, &case.bytes));
    }
    failures
}

#[test]
fn packets_match_chio() {
    let cases = cases();
    assert!(cases.len() >= 150, "only {} golden cases", cases.len());

    let mut failures = Vec::new();
    for case in &cases {
        match case.direction.as_str() {
            "server" => failures.extend(check_server(case)),
            "client" => failures.extend(check_client(case)),
            other => panic!("{}: unknown direction {other}", case.name),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} golden cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn every_packet_has_a_case() {
    let cases = cases();
    let covered = |direction: &str, name: &str| {
        cases
            .iter()
            .any(|c| c.direction == direction && c.packet == name)
    };
    for id in ServerPacketId::ALL {
        assert_eq!(
            covered("server", id.name()),
            !SERVER_NOT_COVERED.contains(id),
            "server packet {}",
            id.name()
        );
    }
    for id in ClientPacketId::ALL {
        assert_eq!(
            covered("client", id.name()),
            !CLIENT_NOT_COVERED.contains(id),
            "client packet {}",
            id.name()
        );
    }
}
