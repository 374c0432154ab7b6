//! Limits, rate limits and privilege rules, through the real HTTP path.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use crate::common;
use crate::common::{PASSWORD, TestServer, login_body};
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
    // A sleep, as nothing can be waited on: the server counts a connection when its
    // accept loop takes it, which a client cannot see (the kernel completed the
    // handshake already), and the held connections must send nothing to stay held.
    // A moment lets it take them before the one beyond the cap.
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
    // The server frees the slots as it notices the closed connections: ask until it
    // answers (the deadline only bounds a hang).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let health = server
            .http
            .get(format!("{}/api/v1/health", server.base))
            .send()
            .await;
        match health {
            Ok(health) => {
                assert_eq!(health.status(), 200);
                break;
            }
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("the server never served again after the flood: {e}"),
        }
    }
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

    // Nobody saw them come online, so nobody hears them leave: once their session is
    // gone (their token gets RESTART), another player's logout reaches Normal without
    // a USER_LOGOUT for Shady before it.
    let mut witness = server.player("Witness").await;
    server.world().kick(shady.user_id, "bye");
    shady
        .wait_for("RESTART", |p| p.id() == ServerPacketId::Restart)
        .await;
    server.world().kick(witness.user_id, "bye");
    witness.poll().await;
    let witness_id = witness.user_id;
    normal
        .wait_for(
            "the witness's logout",
            |p| matches!(p, ServerPacket::UserLogout(l) if l.user_id == witness_id),
        )
        .await;
    assert!(
        normal
            .take_seen(|p| matches!(p, ServerPacket::UserLogout(l) if l.user_id == shady_id))
            .is_none()
    );
}

fn is_restart(packets: &[ServerPacket]) -> bool {
    packets.iter().any(|p| p.id() == ServerPacketId::Restart)
}

/// Polls with `token` (a raw poll, so that any token can be tried).
async fn poll_with(server: &TestServer, token: &str) -> Vec<ServerPacket> {
    let response = server
        .http
        .post(&server.base)
        .header("osu-token", token)
        .body(common::encode(&[c::Ping {}.into()]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    common::decode(&response.bytes().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_cannot_be_forged_tampered_with_or_replayed_after_logout() {
    use peace_actors::auth::{SessionToken, TokenSigner};
    let server = TestServer::start().await;
    let mut alice = server.player("Alice").await;
    let mut bob = server.player("Bob").await;
    let (claims, signature) = alice.token.rsplit_once('.').unwrap();
    let (_, session) = claims.split_once('.').unwrap();
    let session_id: u64 = session.parse().unwrap();

    let flipped = {
        let mut s = signature.as_bytes().to_vec();
        s[0] = if s[0] == b'0' { b'1' } else { b'0' };
        format!("{claims}.{}", String::from_utf8(s).unwrap())
    };
    let hostile = [
        // Someone else's id with Alice's signature.
        alice.token.replacen(
            &format!("{}.", alice.user_id),
            &format!("{}.", bob.user_id),
            1,
        ),
        // Another session of Alice with her signature.
        format!(
            "{}.{}.{signature}",
            alice.user_id,
            session_id.wrapping_add(1)
        ),
        flipped,
        format!("{claims}.{}", &signature[..signature.len() - 2]),
        format!("{claims}.{signature}00"),
        format!("{claims}."),
        claims.to_owned(),
        // Signed properly, but with another secret.
        TokenSigner::new(b"not the server's secret").sign(SessionToken {
            user_id: alice.user_id,
            session_id,
        }),
        // Signed with the server's secret, for a session that never existed.
        server.world().tokens().sign(SessionToken {
            user_id: alice.user_id,
            session_id: session_id.wrapping_add(7),
        }),
        format!("{}", alice.user_id),
        "../../etc/passwd".to_owned(),
        format!("{}.{}.{}", i32::MAX, u64::MAX, "f".repeat(32)),
    ];
    for token in &hostile {
        assert!(is_restart(&poll_with(&server, token).await), "{token:?}");
    }
    // None of that disturbed the real sessions.
    alice.say("#osu", "still me").await;
    bob.wait_message("still me").await;

    // After LOGOUT the token is dead (the client's LOGOUT within its first second is a
    // startup quirk and ignored, so wait that out first).
    alice.past_first_second().await;
    let token = alice.token.clone();
    alice.send([c::Logout {}.into()]).await;
    assert!(is_restart(&poll_with(&server, &token).await));
    assert!(
        is_restart(&poll_with(&server, &token).await),
        "replayed again"
    );
    let alice_id = alice.user_id;
    bob.wait_for(
        "Alice's logout",
        |p| matches!(p, ServerPacket::UserLogout(l) if l.user_id == alice_id),
    )
    .await;
    // A new login gets a new token; the old one stays dead.
    let again = server.login("Alice", PASSWORD).await;
    assert_ne!(again.token, token);
    assert!(is_restart(&poll_with(&server, &token).await));
    assert!(!is_restart(&poll_with(&server, &again.token).await));
}

#[tokio::test(flavor = "multi_thread")]
async fn packets_beyond_the_per_poll_cap_are_dropped() {
    let server = TestServer::start().await;
    let mut alice = server.player("Alice").await;
    let mut bob = server.player("Bob").await;
    for client in [&mut alice, &mut bob] {
        client
            .wait_for(
                "#osu",
                |p| matches!(p, ServerPacket::ChannelJoinSuccess(j) if j.name == "#osu"),
            )
            .await;
    }
    let max = peace_actors::MAX_PACKETS_PER_POLL;
    let body = |pings: usize, text: &str| {
        let mut packets: Vec<peace_bancho::ClientPacket> =
            (0..pings).map(|_| c::Ping {}.into()).collect();
        packets.push(
            c::SendPublicMessage {
                message: peace_bancho::Message {
                    text: text.into(),
                    recipient: "#osu".into(),
                    ..Default::default()
                },
            }
            .into(),
        );
        common::encode(&packets)
    };
    // The last packet that fits is handled; one more and it is dropped.
    alice
        .send_raw(body(max - 1, "the last one that fits"))
        .await;
    bob.wait_message("the last one that fits").await;
    alice.send_raw(body(max, "one too many")).await;
    alice.say("#osu", "after the cap").await;
    bob.wait_message("after the cap").await;
    assert!(
        bob.take_seen(
            |p| matches!(p, ServerPacket::SendMessage(m) if m.message.text == "one too many")
        )
        .is_none()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn status_and_away_texts_are_cut_to_their_limits() {
    let server = TestServer::start().await;
    let mut alice = server.player("Alice").await;
    let mut bob = server.player("Bob").await;
    // Status text: 256 bytes (cut on a character boundary).
    let action = c::ChangeAction {
        action: 2,
        info_text: "é".repeat(1000),
        beatmap_md5: "f".repeat(500),
        mods: 0,
        mode: 0,
        beatmap_id: 1,
    };
    alice.send([action.into()]).await;
    let alice_id = alice.user_id;
    match bob
        .wait_for(
            "alice's stats",
            |p| matches!(p, ServerPacket::UserStats(s) if s.user_id == alice_id && s.action == 2),
        )
        .await
    {
        ServerPacket::UserStats(s) => {
            assert_eq!(s.info_text, "é".repeat(128));
            assert_eq!(s.beatmap_md5.len(), 32);
        }
        _ => unreachable!(),
    }
    // Away message: 200 bytes.
    let away = c::SetAwayMessage {
        message: peace_bancho::Message {
            text: "z".repeat(5000),
            ..Default::default()
        },
    };
    alice.send([away.into()]).await;
    bob.tell("Alice", "are you there").await;
    bob.wait_for("the away message", |p| {
        matches!(p, ServerPacket::SendMessage(m)
            if m.message.sender == "Alice" && m.message.text.contains(&"z".repeat(200))
                && !m.message.text.contains(&"z".repeat(201)))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn staff_channels_refuse_normal_players() {
    use peace_db::Privileges;
    let staff = Privileges::MODERATOR
        .union(Privileges::ADMIN)
        .union(Privileges::DEVELOPER);
    let server = TestServer::start_prepared(
        |_| {},
        |db| async move {
            let channel = peace_db::Channel {
                name: "#staff".into(),
                topic: "Staff only.".into(),
                read_privileges: staff.0,
                write_privileges: staff.0,
                auto_join: false,
            };
            db.create_channel(&channel).await.unwrap();
        },
    )
    .await;
    let admin_privileges = Privileges::DEFAULT_NEW.union(Privileges::ADMIN);
    let moderator_privileges = Privileges::DEFAULT_NEW.union(Privileges::MODERATOR);
    let mut admin = server.player_with("Boss", admin_privileges).await;
    let mut moderator = server.player_with("Moddy", moderator_privileges).await;
    let mut player = server.player("Player").await;
    let lists_staff = |packets: &[ServerPacket]| {
        packets
            .iter()
            .any(|p| matches!(p, ServerPacket::ChannelInfo(i) if i.name == "#staff"))
    };
    // Staff of either kind see the channel; a player is not even told it exists.
    assert!(lists_staff(&admin.login_packets) && lists_staff(&moderator.login_packets));
    assert!(!lists_staff(&player.login_packets));
    let join = || c::ChannelJoin {
        name: "#staff".into(),
    };
    for staff in [&mut admin, &mut moderator] {
        staff.send([join().into()]).await;
        staff
            .wait_for(
                "#staff",
                |p| matches!(p, ServerPacket::ChannelJoinSuccess(j) if j.name == "#staff"),
            )
            .await;
    }
    // A player who asks anyway is refused and hears nothing said there.
    player.send([join().into()]).await;
    player
        .wait_for(
            "the refusal",
            |p| matches!(p, ServerPacket::ChannelKick(k) if k.name == "#staff"),
        )
        .await;
    player.say("#staff", "let me in").await;
    admin.say("#staff", "staff meeting at noon").await;
    moderator.wait_message("staff meeting at noon").await;
    player.say("#osu", "barrier").await;
    admin.wait_message("barrier").await;
    player.poll().await;
    assert!(
        player
            .take_seen(
                |p| matches!(p, ServerPacket::SendMessage(m) if m.message.recipient == "#staff")
            )
            .is_none()
    );
    moderator.poll().await;
    assert!(
        moderator
            .take_seen(
                |p| matches!(p, ServerPacket::SendMessage(m) if m.message.text == "let me in")
            )
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stats_and_presence_requests_answer_at_most_the_cap() {
    let server = TestServer::start().await;
    let mut alice = server.player("Alice").await;
    let bob = server.player("Bob").await;
    let cap = 512; // user/packets.rs: MAX_REQUESTED_USERS
    let asking = |padding: usize| {
        let mut user_ids = vec![i32::MAX; padding];
        user_ids.push(bob.user_id);
        user_ids
    };
    let answered = |packets: &[ServerPacket]| {
        packets.iter().any(|p| match p {
            ServerPacket::UserStats(s) => s.user_id == bob.user_id,
            ServerPacket::UserPresence(u) => u.presence.user_id == bob.user_id,
            _ => false,
        })
    };
    for presence in [false, true] {
        let request = |user_ids: Vec<i32>| -> peace_bancho::ClientPacket {
            if presence {
                c::UserPresenceRequest { user_ids }.into()
            } else {
                c::UserStatsRequest { user_ids }.into()
            }
        };
        let reply = alice.send([request(asking(cap - 1))]).await;
        assert!(answered(&reply), "the last id within the cap is answered");
        let reply = alice.send([request(asking(cap))]).await;
        assert!(!answered(&reply), "ids beyond the cap are ignored");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_stops_polling_holds_at_most_the_queue_cap() {
    // Chat is what piles up for a client that stops polling (presence is coalesced: a
    // client gets each player's latest state once); lift the spam limit to pile it fast.
    let server = TestServer::start_with(|c| c.limits.messages_per_window = 1_000_000).await;
    let mut alice = server.player("Alice").await;
    let mut bob = server.player("Bob").await;
    let cap = peace_actors::user::MAX_QUEUE_BYTES;
    // Every private message of Alice queues a packet of about 280 bytes for Bob, who does
    // not poll: enough polls to queue well over the cap.
    let message = peace_bancho::Message {
        text: "i".repeat(256),
        recipient: "Bob".into(),
        ..Default::default()
    };
    let per_poll = peace_actors::MAX_PACKETS_PER_POLL;
    let polls = 2 * cap / (per_poll * 270) + 1;
    for _ in 0..polls {
        let packets: Vec<peace_bancho::ClientPacket> = (0..per_poll)
            .map(|_| {
                c::SendPrivateMessage {
                    message: message.clone(),
                }
                .into()
            })
            .collect();
        alice.send_raw(common::encode(&packets)).await;
    }
    // What Bob gets is within the cap, and whole packets only (the client would stop
    // reading at a cut one).
    let response = server
        .http
        .post(&server.base)
        .header("osu-token", &bob.token)
        .body(common::encode(&[c::Ping {}.into()]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = response.bytes().await.unwrap();
    assert!(body.len() <= cap, "{} bytes", body.len());
    assert!(
        body.len() > cap - 4096,
        "the queue was filled: {} bytes",
        body.len()
    );
    assert!(
        peace_bancho::decode_server_packets(&body)
            .iter()
            .all(Result::is_ok)
    );
    // Bob's session carries on as normal.
    alice.say("#osu", "after the flood").await;
    bob.wait_message("after the flood").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tournament_account_holds_at_most_the_session_cap() {
    use peace_actors::sessions::MAX_TOURNAMENT_SESSIONS;
    let tournament = peace_db::Privileges::DEFAULT_NEW.union(peace_db::Privileges::TOURNAMENT);
    let server = TestServer::start().await;
    let _main = server.player_with("Caster", tournament).await;
    let mut sessions = Vec::new();
    for _ in 0..MAX_TOURNAMENT_SESSIONS {
        sessions.push(
            server
                .login_version("Caster", PASSWORD, "b20240101tourney")
                .await,
        );
    }
    let (token, packets) = server
        .login_raw(login_body("Caster", PASSWORD, "b20240101tourney"))
        .await;
    assert_eq!(token, "no");
    assert!(packets.iter().any(
        |p| matches!(p, ServerPacket::Notification(n) if n.text.contains("Too many tournament clients"))
    ));
    // The sessions it has keep working.
    for session in &mut sessions {
        assert!(!is_restart(&session.poll().await));
    }
}
