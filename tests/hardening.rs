//! Limits, rate limits and privilege rules, through the real HTTP path.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{PASSWORD, TestServer, login_body};
use peace_bancho::client as c;
use peace_bancho::{ServerPacket, ServerPacketId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the server closes the connection (or `limit` passes); returns what came.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(limit, read).await.ok().map(|()| out)
}

fn user_id(packets: &[ServerPacket]) -> Option<i32> {
    packets.iter().find_map(|p| match p {
        ServerPacket::UserId(u) => Some(u.user_id),
        _ => None,
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_clients_and_connection_floods_are_cut_off() {
    let server = TestServer::start_with(|c| {
        c.http.header_read_timeout_secs = 1;
        c.http.request_timeout_secs = 1;
        c.http.max_connections = 3;
    })
    .await;
    let addr = server.server.as_ref().unwrap().addr.unwrap();

    // Headers trickled slower than the header time-out: the connection is closed.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"POST / HTTP/1.1\r\nHost: c.peace.local\r\n")
        .await
        .unwrap();
    assert!(
        read_until_closed(&mut slow, Duration::from_secs(5))
            .await
            .is_some(),
        "slow headers closed"
    );

    // A body that never completes: the request times out with 408.
    let mut stalled = TcpStream::connect(addr).await.unwrap();
    stalled
        .write_all(b"POST / HTTP/1.1\r\nHost: c.peace.local\r\nContent-Length: 100\r\n\r\nabc")
        .await
        .unwrap();
    let reply = read_until_closed(&mut stalled, Duration::from_secs(5))
        .await
        .expect("stalled body answered");
    assert!(
        String::from_utf8_lossy(&reply).starts_with("HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&reply)
    );

    // Connections beyond the cap are closed at once; the server keeps serving.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut extra = TcpStream::connect(addr).await.unwrap();
    let _ = extra
        .write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let reply = read_until_closed(&mut extra, Duration::from_secs(3))
        .await
        .expect("closed at once");
    assert!(reply.is_empty(), "no answer beyond the cap");
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let health = server
        .http
        .get(format!("{}/api/v1/health", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_logins_are_rate_limited_per_account_and_address() {
    let server = TestServer::start_with(|c| {
        c.limits.failed_logins_per_account = 3;
        c.limits.failed_logins_per_ip = 5;
    })
    .await;
    server.player("Victim").await;
    for _ in 0..3 {
        let (_, p) = server
            .login_raw(login_body("Victim", "guess", "b20240101"))
            .await;
        assert_eq!(user_id(&p), Some(-1));
    }
    // The account now waits, even with the right password, and is told why.
    let (token, p) = server
        .login_raw(login_body("Victim", PASSWORD, "b20240101"))
        .await;
    assert_eq!((token.as_str(), user_id(&p)), ("no", Some(-1)));
    assert!(p.iter().any(
        |p| matches!(p, ServerPacket::Notification(n) if n.text.contains("Too many failed logins"))
    ));
    // Other accounts from the same address still work until the address's limit.
    server.player("Other").await;
    for name in ["a1", "a2"] {
        server.login_raw(login_body(name, "x", "b20240101")).await;
    }
    let (_, p) = server
        .login_raw(login_body("Other", PASSWORD, "b20240101"))
        .await;
    assert!(p.iter().any(|p| matches!(p, ServerPacket::Notification(n) if n.text.contains("Too many failed logins"))), "address limit");
}

#[tokio::test(flavor = "multi_thread")]
async fn registrations_are_rate_limited_per_address() {
    let server = TestServer::start_with(|c| c.limits.registrations_per_ip = 2).await;
    for name in ["first", "second"] {
        let r = server
            .register(name, &format!("{name}@example.com"), PASSWORD, false)
            .await;
        assert_eq!(r.status(), 200);
    }
    // Validation-only checks are not counted and still answer.
    assert_eq!(
        server
            .register("third", "third@example.com", PASSWORD, true)
            .await
            .status(),
        200
    );
    let r = server
        .register("third", "third@example.com", PASSWORD, false)
        .await;
    assert_eq!(r.status(), 429);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["form_error"]["user"]["username"][0]
            .as_str()
            .unwrap()
            .contains("Too many accounts")
    );
    assert!(
        server
            .world()
            .db()
            .user_by_name("third")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn spam_silences_the_sender_and_everyone_is_told() {
    let server = TestServer::start_with(|c| {
        c.limits.messages_per_window = 3;
        c.limits.chat_window_secs = 60;
        c.limits.spam_silence_secs = 120;
    })
    .await;
    let mut spammer = server.player("Spammer").await;
    let mut reader = server.player("Reader").await;
    for client in [&mut spammer, &mut reader] {
        client
            .wait_for(
                "#osu",
                |p| matches!(p, ServerPacket::ChannelJoinSuccess(j) if j.name == "#osu"),
            )
            .await;
    }
    for i in 0..4 {
        spammer.say("#osu", &format!("spam {i}")).await;
    }
    spammer.wait_for("silence notice", |p| matches!(p, ServerPacket::Notification(n) if n.text.contains("silenced for 2 minute(s) for spamming"))).await;
    spammer
        .wait_for(
            "SILENCE_END",
            |p| matches!(p, ServerPacket::SilenceEnd(s) if s.seconds > 100),
        )
        .await;
    reader
        .wait_for(
            "USER_SILENCED",
            |p| matches!(p, ServerPacket::UserSilenced(u) if u.user_id == spammer.user_id),
        )
        .await;
    reader.wait_message("spam 2").await;
    spammer.say("#osu", "still here?").await;
    reader.poll().await;
    assert!(reader.take_seen(|p| matches!(p, ServerPacket::SendMessage(m) if m.message.text == "spam 3" || m.message.text == "still here?")).is_none());
    // The silence is stored: it survives a new login.
    let again = server.login("Spammer", PASSWORD).await;
    assert!(
        again
            .login_packets
            .iter()
            .any(|p| matches!(p, ServerPacket::SilenceEnd(s) if s.seconds > 100))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn restricted_players_are_invisible_and_cannot_chat_or_play() {
    let server = TestServer::start().await;
    let mut normal = server.player("Normal").await;
    assert_eq!(
        server
            .register("Shady", "shady@example.com", PASSWORD, false)
            .await
            .status(),
        200
    );
    let shady_id = server
        .world()
        .db()
        .user_by_name("Shady")
        .await
        .unwrap()
        .unwrap()
        .id;
    let restricted = peace_db::Privileges::DEFAULT_NEW.union(peace_db::Privileges::RESTRICTED);
    server
        .world()
        .db()
        .set_privileges(shady_id, restricted)
        .await
        .unwrap();
    let mut shady = server.login("Shady", PASSWORD).await;
    assert!(
        shady
            .login_packets
            .iter()
            .any(|p| p.id() == ServerPacketId::AccountRestricted)
    );
    // Nobody sees the restricted player come online or in any listing.
    normal.poll().await;
    let all = normal
        .send([
            c::UserPresenceRequestAll { ingame_time: 0 }.into(),
            c::UserPresenceRequest {
                user_ids: vec![shady.user_id],
            }
            .into(),
        ])
        .await;
    assert!(!all.iter().any(
        |p| matches!(p, ServerPacket::UserPresence(u) if u.presence.user_id == shady.user_id)
    ));
    assert!(normal.take_seen(|p| matches!(p, ServerPacket::UserPresence(u) if u.presence.user_id == shady.user_id)).is_none());
    // No public chat, no private chat to players, no multiplayer.
    shady
        .wait_for(
            "#osu",
            |p| matches!(p, ServerPacket::ChannelJoinSuccess(j) if j.name == "#osu"),
        )
        .await;
    shady.say("#osu", "hello?").await;
    shady.wait_for("refusal", |p| matches!(p, ServerPacket::Notification(n) if n.text.contains("cannot chat publicly"))).await;
    shady.tell("Normal", "psst").await;
    shady.wait_for("refusal", |p| matches!(p, ServerPacket::Notification(n) if n.text.contains("only write to the staff"))).await;
    let data = peace_bancho::MatchData {
        name: "x".into(),
        ..Default::default()
    };
    shady.send([c::CreateMatch { data }.into()]).await;
    shady
        .wait_for("MATCH_JOIN_FAIL", |p| {
            p.id() == ServerPacketId::MatchJoinFail
        })
        .await;
    normal.poll().await;
    assert!(
        normal
            .take_seen(|p| matches!(p, ServerPacket::SendMessage(m) if m.message.sender == "Shady"))
            .is_none()
    );
    // A message to a restricted player is kept as if they were offline.
    normal.tell("Shady", "are you there").await;
    assert!(server.world().router().matches().is_empty());
}
