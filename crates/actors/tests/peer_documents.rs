//! The documents nodes send each other, as bytes: the seeds of the `peer_documents`
//! fuzz target (`fuzz/seeds/peer_documents/`, one kind byte then the document) are
//! written by this code, and checked against it on every run.
//!
//! That makes the committed seeds a record of wire format 1: if a change to an
//! envelope, a payload or a snapshot alters the bytes, this test fails, and the change
//! needs `WIRE_VERSION` (or the snapshot format) raised — a mixed-version cluster
//! would misread it otherwise. Regenerate the seeds after raising it:
//! `PEACE_WRITE_FUZZ_SEEDS=1 cargo test -p peace-actors --test peer_documents`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use bytes::Bytes;
use peace_actors::EntityKey;
use peace_actors::channel::{ChannelCall, ChannelCast};
use peace_actors::cluster::envelope::{
    self, Answer, Body, Envelope, Refusal, Request, RequestBody, WireError,
};
use peace_actors::user::{UserCall, UserCast};
use peace_db::Privileges;
use serde::Serialize;

/// The first byte of a seed: which document follows (as in the fuzz target).
const ENVELOPE: u8 = 0;
const REQUEST: u8 = 1;
const ANSWER: u8 = 2;
const SNAPSHOT: u8 = 3;
const USER_CAST: u8 = 4;
const USER_CALL: u8 = 5;
const CHANNEL_CAST: u8 = 6;
const CHANNEL_CALL: u8 = 7;

fn seeds_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/peer_documents")
}

fn seed(kind: u8, document: Vec<u8>) -> Vec<u8> {
    let mut bytes = vec![kind];
    bytes.extend(document);
    bytes
}

fn document<T: Serialize>(value: &T) -> Vec<u8> {
    envelope::encode(value).unwrap()
}

fn payload<T: Serialize>(value: &T) -> Vec<u8> {
    envelope::encode_payload(value).unwrap()
}

fn envelope_of(body: Body) -> Envelope {
    Envelope {
        from: "peace-1".into(),
        hops: 0,
        body,
    }
}

fn request_of(body: RequestBody) -> Request {
    Request {
        from: "peace-2".into(),
        hops: 1,
        body,
    }
}

fn unhex(text: &str) -> Vec<u8> {
    let text = text.trim();
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// Every seed, by file name.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let message = ChannelCast::Message {
        from_id: 3,
        from_name: "Peace".into(),
        privileges: Privileges::NORMAL,
        text: "hello, #osu".into(),
    };
    let pm = UserCast::PrivateMessage {
        from_id: 1000,
        from_name: "Alice".into(),
        from_privileges: Privileges::NORMAL,
        text: "hi".into(),
    };
    vec![
        (
            "envelope_channel_message",
            seed(
                ENVELOPE,
                document(&envelope_of(Body::Cast {
                    key: EntityKey::Channel("#osu".into()),
                    session: None,
                    payload: payload(&message),
                })),
            ),
        ),
        (
            "envelope_cast_users",
            seed(
                ENVELOPE,
                document(&envelope_of(Body::CastUsers {
                    user_ids: vec![1000, 1001, 1002],
                    payload: payload(&pm),
                })),
            ),
        ),
        (
            "envelope_cast_sessions",
            seed(
                ENVELOPE,
                document(&envelope_of(Body::CastSessions {
                    sessions: vec![(1000, 7), (1001, 8)],
                    payload: payload(&pm),
                })),
            ),
        ),
        (
            "envelope_flush",
            seed(
                ENVELOPE,
                document(&envelope_of(Body::Flush {
                    shard: 17,
                    origin: "peace-3".into(),
                })),
            ),
        ),
        (
            "envelope_member_count",
            seed(
                ENVELOPE,
                document(&envelope_of(Body::MemberCount {
                    channel: "#osu".into(),
                    required: Privileges::NORMAL,
                    packet: Bytes::from_static(&[65, 0, 0, 9, 0, 0, 0, 11, 4, 35, 111, 115]),
                })),
            ),
        ),
        (
            "envelope_sync_request",
            seed(ENVELOPE, document(&envelope_of(Body::SyncRequest))),
        ),
        (
            "request_poll",
            seed(
                REQUEST,
                document(&request_of(RequestBody::Poll {
                    user_id: 1000,
                    session_id: 42,
                    body: Bytes::from_static(&[4, 0, 0, 0, 0, 0, 0]),
                })),
            ),
        ),
        (
            "request_call_channel_join",
            seed(
                REQUEST,
                document(&request_of(RequestBody::Call {
                    key: EntityKey::Channel("#osu".into()),
                    session: None,
                    payload: payload(&ChannelCall::Join {
                        user_id: 1000,
                        session_id: 42,
                        privileges: Privileges::NORMAL,
                    }),
                })),
            ),
        ),
        (
            "request_release",
            seed(
                REQUEST,
                document(&request_of(RequestBody::Release {
                    shards: vec![1, 2, 3, 250],
                    to: "peace-1".into(),
                    limit: 2,
                })),
            ),
        ),
        (
            "request_drain",
            seed(
                REQUEST,
                document(&request_of(RequestBody::Drain {
                    node: "peace-2".into(),
                })),
            ),
        ),
        (
            "answer_packets",
            seed(
                ANSWER,
                document(&Answer::Packets(Bytes::from_static(&[
                    5, 0, 0, 4, 0, 0, 0, 232, 3, 0, 0,
                ]))),
            ),
        ),
        (
            "answer_refused",
            seed(
                ANSWER,
                document(&Answer::Refused(Refusal::Undecodable("bad".into()))),
            ),
        ),
        // A session as a node of format 1 exported it (the snapshot test's fixture).
        (
            "snapshot_v1_session",
            seed(
                SNAPSHOT,
                unhex(include_str!("fixtures/snapshot_v1_session.hex")),
            ),
        ),
        ("user_cast_pm", seed(USER_CAST, payload(&pm))),
        (
            "user_cast_node_lost",
            seed(
                USER_CAST,
                payload(&UserCast::NodeLost {
                    node: "peace-3".into(),
                }),
            ),
        ),
        (
            "user_call_retire",
            seed(
                USER_CALL,
                payload(&UserCall::Retire {
                    reason: "logged in elsewhere".into(),
                }),
            ),
        ),
        (
            "channel_cast_message",
            seed(CHANNEL_CAST, payload(&message)),
        ),
        (
            "channel_call_part",
            seed(
                CHANNEL_CALL,
                payload(&ChannelCall::Part {
                    user_id: 1000,
                    session_id: 42,
                }),
            ),
        ),
    ]
}

#[test]
fn the_committed_seeds_are_todays_wire_format() {
    let dir = seeds_dir();
    let write = std::env::var_os("PEACE_WRITE_FUZZ_SEEDS").is_some();
    if write {
        std::fs::create_dir_all(&dir).unwrap();
    }
    for (name, bytes) in seeds() {
        let path = dir.join(name);
        if write {
            std::fs::write(&path, &bytes).unwrap();
            continue;
        }
        let committed = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (write the seeds, see the top)", path.display()));
        assert_eq!(
            committed, bytes,
            "{name}: the wire format changed; raise WIRE_VERSION, then write the seeds again"
        );
    }
}

#[test]
fn the_seeds_decode_as_their_kind_and_nothing_else_mistakes_them() {
    for (name, bytes) in seeds() {
        let (kind, doc) = bytes.split_first().unwrap();
        match *kind {
            ENVELOPE => {
                envelope::decode::<Envelope>(doc).unwrap();
            }
            REQUEST => {
                envelope::decode::<Request>(doc).unwrap();
            }
            ANSWER => {
                envelope::decode::<Answer>(doc).unwrap();
            }
            SNAPSHOT => {
                peace_actors::snapshot::decode(doc).unwrap();
            }
            USER_CAST => {
                envelope::decode_payload::<UserCast>(doc).unwrap();
            }
            USER_CALL => {
                envelope::decode_payload::<UserCall>(doc).unwrap();
            }
            CHANNEL_CAST => {
                envelope::decode_payload::<ChannelCast>(doc).unwrap();
            }
            CHANNEL_CALL => {
                envelope::decode_payload::<ChannelCall>(doc).unwrap();
            }
            other => panic!("{name}: unknown kind {other}"),
        }
        // An envelope cut short is an error, never a shorter envelope.
        if *kind == ENVELOPE {
            for cut in 0..doc.len() {
                assert!(
                    matches!(
                        envelope::decode::<Envelope>(&doc[..cut]),
                        Err(WireError::Decode(_))
                    ),
                    "{name} cut at {cut}"
                );
            }
        }
    }
}
