//! End-to-end: polls of bare PINGs to a session with nothing to send are answered without
//! the session actor (`peace_actors::user::QuietMarks`), and that changes nothing a
//! player can see: whatever is queued still arrives, once and in order; a client that
//! only pings stays online; one that stops polling still times out.
//!
//! It reads a process-wide counter from `/metrics`, so it runs with no other test's server
//! in the process (`common::alone`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use crate::common::{TestServer, alone};
use peace_bancho::ServerPacket;

async fn quiet_polls(server: &TestServer) -> f64 {
    let text = server
        .http
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| {
            l.strip_prefix("peace_quiet_polls_total ")?
                .trim()
                .parse()
                .ok()
        })
        .expect("peace_quiet_polls_total is served")
}

#[tokio::test(flavor = "multi_thread")]
async fn quiet_polls_keep_sessions_alive_and_lose_nothing() {
    let _alone = alone().await;
    let server = TestServer::start_with(|c| {
        // Short, so that outliving it three times over takes seconds; not the shortest
        // (1 s), which a loaded machine's scheduling alone can overrun between two pings.
        c.sessions.idle_timeout_secs = 2;
        // Bob chats faster than the spam limit allows.
        c.limits.messages_per_window = 1_000;
    })
    .await;
    let mut alice = server.player("Alice").await;
    let mut bob = server.player("Bob").await;
    let mut carol = server.player("Carol").await;
    for client in [&mut alice, &mut bob, &mut carol] {
        client.joined("#osu").await;
    }

    // Three times the idle time-out of nothing but PINGs: Alice stays online, and most
    // of those polls were quiet.
    let before = quiet_polls(&server).await;
    for _ in 0..30 {
        // The pace of the pings, not a wait for anything: a tenth of the time-out.
        tokio::time::sleep(Duration::from_millis(200)).await;
        alice.poll().await;
        bob.poll().await;
    }
    let quiet = quiet_polls(&server).await - before;
    assert!(quiet >= 30.0, "only {quiet} of 60 polls were quiet");
    bob.wait_for(
        "carol's time-out",
        |p| matches!(p, ServerPacket::UserLogout(l) if l.user_id == carol.user_id),
    )
    .await;
    let (alice_id, bob_id) = (alice.user_id, bob.user_id);
    for (client, other) in [(&mut alice, bob_id), (&mut bob, alice_id)] {
        assert!(
            client
                .take_seen(|p| matches!(p, ServerPacket::UserLogout(l) if l.user_id == other))
                .is_none(),
            "{}: a player who only pinged was timed out",
            client.name
        );
    }

    // What arrives between quiet polls is delivered by the next poll, once, in order.
    for i in 0..20 {
        bob.tell("Alice", &format!("pm {i}")).await;
        if i % 2 == 0 {
            bob.say("#osu", &format!("chat {i}")).await;
        }
        alice.poll().await;
    }
    alice.wait_message("pm 19").await;
    for _ in 0..5 {
        alice.poll().await;
    }
    let texts: Vec<String> = alice
        .seen
        .iter()
        .filter_map(|p| match p {
            ServerPacket::SendMessage(m) => Some(m.message.text.clone()),
            _ => None,
        })
        .collect();
    let pms: Vec<&String> = texts.iter().filter(|t| t.starts_with("pm ")).collect();
    let expected: Vec<String> = (0..19).map(|i| format!("pm {i}")).collect();
    assert_eq!(pms, expected.iter().collect::<Vec<_>>(), "pm 19 was taken");
    let chat: Vec<&String> = texts.iter().filter(|t| t.starts_with("chat ")).collect();
    let expected: Vec<String> = (0..20).step_by(2).map(|i| format!("chat {i}")).collect();
    assert_eq!(chat, expected.iter().collect::<Vec<_>>());

    // Alice stops polling: quiet polls do not keep her online past the time-out.
    bob.wait_for(
        "alice's time-out",
        |p| matches!(p, ServerPacket::UserLogout(l) if l.user_id == alice.user_id),
    )
    .await;
}
