//! Multiplayer steps shared by the single-node and the cluster scenarios.

use bytes::Bytes;
use peace_bancho::client as c;
use peace_bancho::{MatchData, ServerPacket};

use super::TestClient;

pub fn requested_match(name: &str, password: Option<&str>) -> MatchData {
    MatchData {
        name: name.into(),
        password: password.map(str::to_owned),
        beatmap_name: "Artist - Title [Insane]".into(),
        beatmap_id: 75,
        beatmap_md5: "a".repeat(32),
        ..MatchData::default()
    }
}

/// A 29-byte score frame with `score` and slot byte `slot_hint` (the server rewrites it).
pub fn score_frame(score: i32, slot_hint: u8) -> Bytes {
    let mut f = vec![0u8; 29];
    f[4] = slot_hint;
    f[5..7].copy_from_slice(&300u16.to_le_bytes());
    f[17..21].copy_from_slice(&score.to_le_bytes());
    f[21..23].copy_from_slice(&123u16.to_le_bytes());
    Bytes::from(f)
}

pub async fn wait_update(
    client: &mut TestClient,
    what: &str,
    pred: impl Fn(&MatchData) -> bool,
) -> MatchData {
    match client
        .wait_for(
            what,
            |p| matches!(p, ServerPacket::UpdateMatch(u) if pred(&u.data)),
        )
        .await
    {
        ServerPacket::UpdateMatch(u) => u.data,
        _ => unreachable!(),
    }
}

pub async fn create(host: &mut TestClient, name: &str, password: Option<&str>) -> MatchData {
    host.send([c::CreateMatch {
        data: requested_match(name, password),
    }
    .into()])
        .await;
    let data = match host
        .wait_for("MATCH_JOIN_SUCCESS", |p| {
            matches!(p, ServerPacket::MatchJoinSuccess(_))
        })
        .await
    {
        ServerPacket::MatchJoinSuccess(j) => j.data,
        _ => unreachable!(),
    };
    host.wait_for(
        "#multiplayer join",
        |p| matches!(p, ServerPacket::ChannelJoinSuccess(j) if j.name == "#multiplayer"),
    )
    .await;
    data
}

pub async fn join(player: &mut TestClient, match_id: u16, password: &str) -> MatchData {
    player
        .send([c::JoinMatch {
            match_id: i32::from(match_id),
            password: password.into(),
        }
        .into()])
        .await;
    match player
        .wait_for("MATCH_JOIN_SUCCESS", |p| {
            matches!(p, ServerPacket::MatchJoinSuccess(_))
        })
        .await
    {
        ServerPacket::MatchJoinSuccess(j) => j.data,
        _ => unreachable!(),
    }
}
