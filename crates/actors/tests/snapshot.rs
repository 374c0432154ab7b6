//! Snapshots written by an older build are read by this one: a session snapshot in
//! format 1, as a node of that format wrote it (the bytes are committed in
//! `fixtures/`), still starts a session here.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use peace_actors::directory::OnlineUser;
use peace_actors::snapshot::{self, SNAPSHOT_VERSION, Snapshot, v1};
use peace_actors::user::Status;

const FIXTURE: &str = include_str!("fixtures/snapshot_v1_session.hex");

/// The session the fixture holds, built with format 1's types.
fn v1_session() -> v1::Snapshot {
    let state = v1::UserState {
        id: 42,
        name: "Old Timer".into(),
        session_id: 0xfeed,
        privileges: peace_db::Privileges::DEFAULT_NEW,
        country_code: 38,
        utc_offset: 2,
        login_time: 1_700_000_000,
        last_poll_ms: 1_700_000_000_123,
        status: Status {
            action: 2,
            info_text: "Playing a map".into(),
            beatmap_md5: "a".repeat(32),
            mods: 64,
            mode: 0,
            beatmap_id: 75,
        },
        stats: peace_db::Stats::default(),
        rank: 7,
        friends: BTreeSet::from([3, 5]),
        blocked: BTreeSet::from([9]),
        channels: BTreeSet::from(["#osu".to_owned(), "#lobby".to_owned()]),
        silence_end: 0,
        block_non_friend_dms: true,
        away_message: Some("brb".into()),
        away_notified: BTreeSet::new(),
        presence_filter: 1,
        spectating: None,
        match_id: Some(3),
        watching_match: None,
        in_lobby: false,
        channel_aliases: BTreeMap::from([("#multiplayer".to_owned(), "#mp_3".to_owned())]),
        extra_session: false,
        recent_messages: VecDeque::from([1, 2]),
        queue: vec![1, 2, 3],
    };
    let entry = OnlineUser {
        id: 42,
        name: "Old Timer".into(),
        session_id: 0xfeed,
        privileges: peace_db::Privileges::DEFAULT_NEW,
        presence: bytes::Bytes::from_static(b"presence"),
        stats: bytes::Bytes::from_static(b"stats"),
        login_time: 1_700_000_000,
        hidden: false,
        node: "node-old".into(),
    };
    v1::Snapshot::Session {
        state: Box::new(state),
        entry: Box::new(entry),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    let text: String = text.split_whitespace().collect();
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn format_1_is_still_written_as_it_was() {
    // If this fails, format 1's frozen types changed: they must not. Add a format.
    assert_eq!(hex(&v1::encode(&v1_session()).unwrap()), FIXTURE.trim());
}

#[test]
fn a_format_1_session_snapshot_is_read_and_upgraded() {
    let bytes = unhex(FIXTURE);
    assert_eq!(u16::from(bytes[0]), 1, "the fixture is format 1");
    let Snapshot::Session { state, entry } = snapshot::decode(&bytes).unwrap() else {
        panic!("a session snapshot");
    };
    assert_eq!((state.id, state.name.as_str()), (42, "Old Timer"));
    assert_eq!(state.session_id, 0xfeed);
    assert_eq!(state.status.info_text, "Playing a map");
    assert_eq!(state.friends, BTreeSet::from([3, 5]));
    assert_eq!(state.match_id, Some(3));
    assert_eq!(state.queue, [1, 2, 3]);
    assert_eq!(state.moves, 0, "format 1 did not count moves");
    assert_eq!(&*entry.node, "node-old");

    // Written again, it is the current format, and reads back the same.
    let current = snapshot::encode(&Snapshot::Session {
        state: state.clone(),
        entry,
    })
    .unwrap();
    assert_eq!(u16::from(current[0]), SNAPSHOT_VERSION);
    let Snapshot::Session { state: again, .. } = snapshot::decode(&current).unwrap() else {
        panic!("a session snapshot");
    };
    assert_eq!(again.channel_aliases, state.channel_aliases);
}

#[test]
fn a_snapshot_from_a_newer_build_is_refused_clearly() {
    let mut bytes = unhex(FIXTURE);
    bytes[0] = 9;
    let err = snapshot::decode(&bytes).unwrap_err().to_string();
    assert!(err.contains("newer"), "{err}");
    assert!(snapshot::decode(&bytes[..10]).is_err());
}

#[test]
fn a_board_travels_as_its_key_and_format_2_still_reads() {
    let key = peace_actors::BoardKey {
        md5: "a".repeat(32),
        mode: 3,
        board: 0,
    };
    let bytes = snapshot::encode(&Snapshot::Board(key.clone())).unwrap();
    assert_eq!(u16::from(bytes[0]), SNAPSHOT_VERSION);
    let Snapshot::Board(again) = snapshot::decode(&bytes).unwrap() else {
        panic!("a board snapshot");
    };
    assert_eq!(again, key);

    // Format 3 only added boards at the end of the enum: a format-2 document (any
    // other kind) reads as it was.
    let lobby = snapshot::encode(&Snapshot::Lobby(Box::default())).unwrap();
    let mut format_2 = lobby.clone();
    format_2[0] = 2;
    assert!(matches!(
        snapshot::decode(&format_2).unwrap(),
        Snapshot::Lobby(_)
    ));
}
