//! End-to-end: real server, real SQLite file, clients over HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use crate::common::{PASSWORD, TestServer, login_body};
use peace_bancho::client as c;
use peace_bancho::{ServerPacket, ServerPacketId};

fn ids(packets: &[ServerPacket]) -> Vec<ServerPacketId> {
    packets.iter().map(ServerPacket::id).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn login_reply_has_the_order_clients_expect() {
    let server = TestServer::start().await;
    let alice = server.player("Alice").await;
    let got = ids(&alice.login_packets);
    use ServerPacketId as I;
    assert_eq!(
        &got[..4],
        [
            I::ProtocolVersion,
            I::UserId,
            I::Privileges,
            I::Notification
        ]
    );
    let info_end = got.iter().position(|i| *i == I::ChannelInfoEnd).unwrap();
    assert!(got[4..info_end].iter().all(|i| *i == I::ChannelInfo));
    assert_eq!(info_end - 4, 4, "the four seeded channels are listed");
    assert_eq!(
        &got[info_end + 1..info_end + 5],
        [I::FriendsList, I::SilenceEnd, I::UserPresence, I::UserStats]
    );
    // Then the others: the bot is always online.
    let bot = alice
        .login_packets
        .iter()
        .any(|p| matches!(p, ServerPacket::UserPresence(u) if u.presence.user_id == 1));
    assert!(bot, "the bot's presence is in the login reply");
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_logins_carry_a_failure_code_and_a_token_header() {
    let server = TestServer::start_with(|c| c.login.min_client_date = 20230101).await;
    server.player("Bob").await;
    let code = |packets: &[ServerPacket]| {
        packets.iter().find_map(|p| match p {
            ServerPacket::UserId(u) => Some(u.user_id),
            _ => None,
        })
    };
    let (token, p) = server
        .login_raw(login_body("Bob", "wrong password", "b20240101"))
        .await;
    assert_eq!((token.as_str(), code(&p)), ("no", Some(-1)));
    let (token, p) = server
        .login_raw(login_body("Nobody", PASSWORD, "b20240101"))
        .await;
    assert_eq!((token.as_str(), code(&p)), ("no", Some(-1)));
    let (token, p) = server
        .login_raw(login_body("Bob", PASSWORD, "b20200101"))
        .await;
    assert_eq!((token.as_str(), code(&p)), ("no", Some(-2)));
    let (token, p) = server.login_raw(b"garbage\x00\xff".to_vec()).await;
    assert_eq!((token.as_str(), code(&p)), ("no", Some(-1)));
    // The bot's account cannot be logged into.
    let (_, p) = server
        .login_raw(login_body("Peace", "!", "b20240101"))
        .await;
    assert_eq!(code(&p), Some(-1));
    // A banned account.
    let bob = server
        .world()
        .db()
        .user_by_name("bob")
        .await
        .unwrap()
        .unwrap();
    server
        .world()
        .db()
        .set_privileges(bob.id, peace_db::Privileges(0))
        .await
        .unwrap();
    let (token, p) = server
        .login_raw(login_body("Bob", PASSWORD, "b20240101"))
        .await;
    assert_eq!((token.as_str(), code(&p)), ("no", Some(-3)));
}

#[tokio::test(flavor = "multi_thread")]
async fn presence_and_status_are_broadcast() {
    let server = TestServer::start().await;
    let mut alice = server.player("Alice").await;
    let mut bob = server.player("Bob").await;
    let (a, b) = (alice.user_id, bob.user_id);
    assert!(
        bob.login_packets
            .iter()
            .any(|p| matches!(p, ServerPacket::UserPresence(u) if u.presence.user_id == a))
    );
    alice
        .wait_for(
            "bob's presence",
            |p| matches!(p, ServerPacket::UserPresence(u) if u.presence.user_id == b),
        )
        .await;

    let action = c::ChangeAction {
        action: 2,
        info_text: "Playing a map".into(),
        beatmap_md5: "0".repeat(32),
        mods: 64,
        mode: 0,
        beatmap_id: 75,
    };
    alice.send([action.into()]).await;
    bob.wait_for("alice's new status", |p| matches!(p, ServerPacket::UserStats(s) if s.user_id == a && s.action == 2 && s.beatmap_id == 75)).await;

    // Explicit requests.
    let reply = bob
        .send([c::UserStatsRequest {
            user_ids: vec![a, 999_999],
        }
        .into()])
        .await;
    assert!(reply.iter().any(|p| matches!(p, ServerPacket::UserStats(s) if s.user_id == a && s.info_text == "Playing a map")));
    let reply = bob
        .send([c::UserPresenceRequest { user_ids: vec![a] }.into()])
        .await;
    assert!(
        reply
            .iter()
            .any(|p| matches!(p, ServerPacket::UserPresence(u) if u.presence.username == "Alice"))
    );
    let reply = bob
        .send([c::UserPresenceRequestAll { ingame_time: 0 }.into()])
        .await;
    let everyone: Vec<i32> = reply
        .iter()
        .filter_map(|p| match p {
            ServerPacket::UserPresence(u) => Some(u.presence.user_id),
            _ => None,
        })
        .collect();
    assert!(everyone.contains(&a) && everyone.contains(&1) && !everyone.contains(&b));
    let reply = alice.send([c::RequestStatusUpdate {}.into()]).await;
    assert!(
        reply
            .iter()
            .any(|p| matches!(p, ServerPacket::UserStats(s) if s.user_id == a))
    );

    // RECEIVE_UPDATES = friends: bob gets the status changes of his friends only.
    let mut carol = server.player("Carol").await;
    let cid = carol.user_id;
    bob.send([
        c::FriendAdd { user_id: a }.into(),
        c::ReceiveUpdates { filter: 2 }.into(),
    ])
    .await;
    let status = |action: u8| c::ChangeAction {
        action,
        info_text: String::new(),
        beatmap_md5: String::new(),
        mods: 0,
        mode: 0,
        beatmap_id: 0,
    };
    carol.send([status(3).into()]).await;
    alice.send([status(4).into()]).await;
    bob.wait_for(
        "his friend alice's status",
        |p| matches!(p, ServerPacket::UserStats(s) if s.user_id == a && s.action == 4),
    )
    .await;
    carol.tell("Bob", "carol's marker").await;
    bob.wait_message("carol's marker").await;
    assert!(
        bob.take_seen(|p| matches!(p, ServerPacket::UserStats(s) if s.user_id == cid))
            .is_none(),
        "bob, who wants his friends' updates only, got carol's"
    );

    // RECEIVE_UPDATES = none: bob stops getting alice's status changes.
    bob.send([c::ReceiveUpdates { filter: 0 }.into()]).await;
    let action = c::ChangeAction {
        action: 1,
        info_text: String::new(),
        beatmap_md5: String::new(),
        mods: 0,
        mode: 0,
        beatmap_id: 0,
    };
    alice.send([action.into()]).await;
    alice.tell("Bob", "marker").await;
    bob.wait_message("marker").await;
    assert!(
        bob.take_seen(
            |p| matches!(p, ServerPacket::UserStats(s) if s.user_id == a && s.action == 1)
        )
        .is_none()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn channels_join_part_and_relay_messages() {
    let server = TestServer::start().await;
    let mut alice = server.player("Alice").await;
    let mut bob = server.player("Bob").await;
    // #osu and #announce are joined at login.
    for client in [&mut alice, &mut bob] {
        client
            .wait_for(
                "#osu join",
                |p| matches!(p, ServerPacket::ChannelJoinSuccess(j) if j.name == "#osu"),
            )
            .await;
        client
            .wait_for(
                "#announce join",
                |p| matches!(p, ServerPacket::ChannelJoinSuccess(j) if j.name == "#announce"),
            )
            .await;
    }
    alice.say("#osu", "hello everyone").await;
    let m = bob.wait_message("hello everyone").await;
    assert_eq!(
        (m.sender.as_str(), m.recipient.as_str(), m.sender_id),
        ("Alice", "#osu", alice.user_id)
    );
    alice.poll().await;
    assert!(
        alice
            .take_seen(
                |p| matches!(p, ServerPacket::SendMessage(m) if m.message.text == "hello everyone")
            )
            .is_none(),
        "no echo to the sender"
    );

    // Join and leave #lobby; member counts are announced.
    let reply = alice
        .send([c::ChannelJoin {
            name: "#lobby".into(),
        }
        .into()])
        .await;
    assert!(
        reply
            .iter()
            .any(|p| matches!(p, ServerPacket::ChannelJoinSuccess(j) if j.name == "#lobby"))
    );
    bob.wait_for(
        "#lobby count 1",
        |p| matches!(p, ServerPacket::ChannelInfo(i) if i.name == "#lobby" && i.user_count == 1),
    )
    .await;
    let reply = alice
        .send([c::ChannelPart {
            name: "#lobby".into(),
        }
        .into()])
        .await;
    assert!(
        reply
            .iter()
            .any(|p| matches!(p, ServerPacket::ChannelKick(k) if k.name == "#lobby"))
    );
    bob.wait_for(
        "#lobby count 0",
        |p| matches!(p, ServerPacket::ChannelInfo(i) if i.name == "#lobby" && i.user_count == 0),
    )
    .await;

    // Not a member: the message goes nowhere. Unknown channel: refused.
    alice.say("#lobby", "nobody hears this").await;
    let reply = alice
        .send([c::ChannelJoin {
            name: "#nope".into(),
        }
        .into()])
        .await;
    assert!(
        reply
            .iter()
            .any(|p| matches!(p, ServerPacket::ChannelKick(k) if k.name == "#nope"))
    );
    // #announce is written by administrators only.
    alice.say("#announce", "not an admin").await;
    alice
        .wait_for(
            "write refusal",
            |p| matches!(p, ServerPacket::Notification(n) if n.text.contains("#announce")),
        )
        .await;
    // Long messages are cut to the limit.
    let long = "x".repeat(5000);
    alice.say("#osu", &long).await;
    bob.wait_for(
        "cut message",
        |p| matches!(p, ServerPacket::SendMessage(m) if m.message.text.len() == 2000),
    )
    .await;
    bob.poll().await;
    assert!(
        bob.take_seen(
            |p| matches!(p, ServerPacket::SendMessage(m) if m.message.text == "nobody hears this")
        )
        .is_none()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn private_messages_online_offline_blocked_away_and_silenced() {
    let server = TestServer::start().await;
    let mut alice = server.player("Alice").await;
    let mut bob = server.player("Bob").await;
    alice.tell("bob", "hi bob").await;
    let m = bob.wait_message("hi bob").await;
    assert_eq!((m.sender.as_str(), m.recipient.as_str()), ("Alice", "Bob"));

    // Offline: stored, delivered once at the next login.
    let response = server
        .register("Carol", "carol@example.com", PASSWORD, false)
        .await;
    assert_eq!(response.status(), 200);
    alice.tell("Carol", "while you were away").await;
    let carol = server.login("Carol", PASSWORD).await;
    assert!(carol.login_packets.iter().any(|p| matches!(p, ServerPacket::SendMessage(m) if m.message.text == "while you were away" && m.message.sender == "Alice")));

    // Bob blocks DMs from non-friends.
    bob.send([c::ToggleBlockNonFriendDms { value: 1 }.into()])
        .await;
    alice.tell("Bob", "blocked?").await;
    alice
        .wait_for(
            "USER_DM_BLOCKED",
            |p| matches!(p, ServerPacket::UserDmBlocked(b) if b.message.sender == "Bob"),
        )
        .await;
    // Friends get through, and the friendship is stored.
    bob.send([c::FriendAdd {
        user_id: alice.user_id,
    }
    .into()])
        .await;
    alice.tell("Bob", "as a friend").await;
    bob.wait_message("as a friend").await;
    let bob_again = server.login("Bob", PASSWORD).await;
    assert!(
        bob_again
            .login_packets
            .iter()
            .any(|p| matches!(p, ServerPacket::FriendsList(f) if f.user_ids == [alice.user_id]))
    );
    let mut bob = bob_again;

    // Away message: answered once per sender.
    let away = peace_bancho::Message {
        text: "at dinner".into(),
        ..Default::default()
    };
    bob.send([c::SetAwayMessage { message: away }.into()]).await;
    alice.tell("Bob", "you there?").await;
    alice.wait_for("away reply", |p| matches!(p, ServerPacket::SendMessage(m) if m.message.sender == "Bob" && m.message.text.contains("at dinner"))).await;

    // Friend removal is stored too.
    bob.send([c::FriendRemove {
        user_id: alice.user_id,
    }
    .into()])
        .await;
    assert!(
        server
            .world()
            .db()
            .relationships(bob.user_id)
            .await
            .unwrap()
            .friends
            .is_empty()
    );

    // A silenced player cannot talk, and others are told they cannot be written to.
    let dave = server.player("Dave").await;
    server
        .world()
        .db()
        .set_silence_end(dave.user_id, peace_db::unix_now() + 3600)
        .await
        .unwrap();
    let mut dave = server.login("Dave", PASSWORD).await;
    assert!(
        dave.login_packets
            .iter()
            .any(|p| matches!(p, ServerPacket::SilenceEnd(s) if s.seconds > 3000))
    );
    dave.tell("Alice", "can I talk?").await;
    dave.wait_for(
        "silence notice",
        |p| matches!(p, ServerPacket::Notification(n) if n.text.contains("silenced")),
    )
    .await;
    alice.tell("Dave", "hello silenced").await;
    alice
        .wait_for("TARGET_IS_SILENCED", |p| {
            matches!(p, ServerPacket::TargetIsSilenced(_))
        })
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn logout_and_idle_timeout_are_broadcast() {
    let server = TestServer::start_with(|c| c.sessions.idle_timeout_secs = 2).await;
    let mut alice = server.player("Alice").await;
    let mut bob = server.player("Bob").await;
    let mut carol = server.player("Carol").await;
    // The client's LOGOUT in its first second is a startup quirk and ignored.
    bob.past_first_second().await;
    bob.send([c::Logout {}.into()]).await;
    alice
        .wait_for(
            "bob's logout",
            |p| matches!(p, ServerPacket::UserLogout(l) if l.user_id == bob.user_id),
        )
        .await;
    // Carol never polls again: timed out after the idle time-out.
    alice
        .wait_for(
            "carol's time-out",
            |p| matches!(p, ServerPacket::UserLogout(l) if l.user_id == carol.user_id),
        )
        .await;
    let online = server.get_json("/api/v1/users/online").await;
    assert_eq!(online["count"], 1);
    assert_eq!(online["users"][0]["name"], "Alice");
    // The timed-out session is over for good: its token gets a restart, not a session.
    let reply = carol.poll().await;
    assert!(
        reply.iter().any(|p| p.id() == ServerPacketId::Restart),
        "{reply:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_and_replaced_tokens_restart_the_client() {
    let server = TestServer::start().await;
    let mut first = server.player("Alice").await;
    let restart = |p: &Vec<ServerPacket>| {
        p.iter().any(|p| matches!(p, ServerPacket::Restart(_)))
            && p.iter().any(|p| matches!(p, ServerPacket::Notification(_)))
    };
    let forged = first
        .token
        .replacen(&format!("{}.", first.user_id), "999.", 1);
    for token in ["", "garbage", "1.2.3", &forged, &"9".repeat(4000)] {
        let response = server
            .http
            .post(&server.base)
            .header("osu-token", token)
            .body(vec![4, 0, 0, 0, 0, 0, 0])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert!(
            restart(&common::decode(&response.bytes().await.unwrap())),
            "token {token:?}"
        );
    }
    // A second login replaces the first; the first is told why, then asked to restart.
    let _second = server.login("Alice", PASSWORD).await;
    let reply = first.poll().await;
    assert!(
        reply.iter().any(
            |p| matches!(p, ServerPacket::Notification(n) if n.text.contains("another location"))
        ),
        "{reply:?}"
    );
    assert!(restart(&first.poll().await));
    assert_eq!(server.world().online_users().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_bot_answers_commands() {
    let server = TestServer::start().await;
    let mut alice = server.player("Alice").await;
    let mut bob = server.player("Bob").await;
    alice
        .wait_for(
            "#osu join",
            |p| matches!(p, ServerPacket::ChannelJoinSuccess(j) if j.name == "#osu"),
        )
        .await;
    bob.wait_for(
        "#osu join",
        |p| matches!(p, ServerPacket::ChannelJoinSuccess(j) if j.name == "#osu"),
    )
    .await;
    alice.say("#osu", "!roll 10").await;
    let is_roll = |p: &ServerPacket| matches!(p, ServerPacket::SendMessage(m) if m.message.sender_id == 1 && m.message.text.starts_with("Alice rolls") && m.message.recipient == "#osu");
    alice.wait_for("roll result (sender)", is_roll).await;
    bob.wait_for("roll result (others)", is_roll).await;
    alice.tell("Peace", "!help").await;
    alice.wait_for("help", |p| matches!(p, ServerPacket::SendMessage(m) if m.message.sender_id == 1 && m.message.text.contains("!roll"))).await;
    alice.tell("Peace", "!nonsense").await;
    alice.wait_for("unknown command", |p| matches!(p, ServerPacket::SendMessage(m) if m.message.text.contains("Unknown command"))).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_packets_do_not_disturb_anyone() {
    let server = TestServer::start().await;
    let mut alice = server.player("Alice").await;
    let mut bob = server.player("Bob").await;
    let bodies: Vec<Vec<u8>> = vec![
        vec![1, 0, 0, 0xff, 0xff, 0xff, 0x7f], // length far beyond the body
        vec![1, 0, 0, 3, 0, 0, 0, 0x0b],       // truncated string
        vec![0xe7, 0x03, 0, 0, 0, 0, 0],       // unknown packet id 999
        vec![63, 0, 0, 3, 0, 0, 0, 0x0b, 1, 0xff], // CHANNEL_JOIN with invalid UTF-8
        vec![63, 0, 0, 6, 0, 0, 0, 0x0b, 0xff, 0xff, 0xff, 0xff, 0x0f], // giant string length
        vec![85, 0, 0, 2, 0, 0, 0, 0xff, 0xff], // stats request for 65535 ids
        vec![4, 0],                            // a partial header
    ];
    for body in bodies {
        alice.send_raw(body).await;
    }
    alice.tell("Bob", "still here").await;
    bob.wait_message("still here").await;
    let health: serde_json::Value = server
        .http
        .get(format!("{}/api/v1/health", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
}
