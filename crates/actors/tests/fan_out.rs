//! Fan-out across nodes costs one envelope per node, however many of the receivers live
//! there: to users' own sessions (a channel, a lobby, a match's players) and to
//! particular sessions (a spectator room, a match's tournament watchers).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use peace_actors::user::{UserCall, UserCast, UserReply};
use peace_bancho::ServerPacket;
use peace_bancho::server::Notification;

/// Receivers on the far node.
const RECEIVERS: u64 = 12;
/// Fan-outs of each kind sent.
const ROUNDS: u64 = 50;

fn notification(text: &str) -> bytes::Bytes {
    ServerPacket::from(Notification { text: text.into() }).to_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fan_out_costs_one_envelope_per_node() {
    let dir = tempfile::tempdir().unwrap();
    let (_one_pair, a, b) = common::two_nodes(&dir).await;
    let mut receivers = Vec::new();
    for i in 0..RECEIVERS {
        let session_id = 1000 + i;
        let user = common::session_on(&b, &b, session_id).await;
        receivers.push((user.id, session_id));
    }

    let before = a.router().net().traffic().envelopes_sent;
    for round in 0..ROUNDS {
        let users = receivers.iter().map(|&(id, _)| id);
        let to_users = UserCast::Enqueue(notification(&format!("users {round}")));
        a.router().cast_users(users, to_users);
        let to_sessions = UserCast::Enqueue(notification(&format!("sessions {round}")));
        a.router()
            .cast_sessions(receivers.iter().copied(), to_sessions);
    }
    let sent = a.router().net().traffic().envelopes_sent - before;
    // Two fan-outs a round, one envelope each; the nodes' own chatter (heartbeats are
    // requests, not envelopes) may add a few. One envelope per receiver would be 1,200.
    assert!(
        (2 * ROUNDS..2 * ROUNDS + 10).contains(&sent),
        "{sent} envelopes for {} fan-outs to {RECEIVERS} receivers on one node",
        2 * ROUNDS
    );

    // And every receiver got every message, in order.
    for &(user_id, session_id) in &receivers {
        let mut texts = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while texts.len() < 2 * ROUNDS as usize {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{user_id}: {texts:?}"
            );
            let poll = UserCall::Poll { packets: vec![] };
            let reply = a
                .router()
                .call_session(user_id, session_id, poll, Duration::from_secs(5))
                .await
                .unwrap();
            let UserReply::Packets(bytes) = reply;
            texts.extend(
                peace_bancho::decode_server_packets(&bytes)
                    .into_iter()
                    .filter_map(|p| match p {
                        Ok(ServerPacket::Notification(n))
                            if n.text.starts_with("users ") || n.text.starts_with("sessions ") =>
                        {
                            Some(n.text)
                        }
                        _ => None,
                    }),
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let expected: Vec<String> = (0..ROUNDS)
            .flat_map(|r| [format!("users {r}"), format!("sessions {r}")])
            .collect();
        assert_eq!(texts, expected, "{user_id}");
    }
    a.shutdown().await;
    b.shutdown().await;
}
