//! Moderation through the bot, end to end: staff send commands by private message or in
//! a channel, and the effect shows on the target's client at once, in the database, and
//! in the audit log.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::{BOT_NAME, PASSWORD, TestClient, TestServer, login_body};
use peace_bancho::client as c;
use peace_bancho::{ServerPacket, ServerPacketId};
use peace_db::{AuditEntry, Privileges};

const ADMIN: Privileges = Privileges::DEFAULT_NEW.union(Privileges::ADMIN);
const MODERATOR: Privileges = Privileges::DEFAULT_NEW.union(Privileges::MODERATOR);

fn is_notification(p: &ServerPacket, needle: &str) -> bool {
    matches!(p, ServerPacket::Notification(n) if n.text.contains(needle))
}

fn user_id(packets: &[ServerPacket]) -> Option<i32> {
    packets.iter().find_map(|p| match p {
        ServerPacket::UserId(u) => Some(u.user_id),
        _ => None,
    })
}

/// The audit log, oldest first.
async fn audit_log(server: &TestServer) -> Vec<AuditEntry> {
    let mut log = server.world().db().audit_log(100).await.unwrap();
    log.reverse();
    log
}

fn assert_audited(
    entry: &AuditEntry,
    actor: &TestClient,
    target: Option<&TestClient>,
    action: &str,
    reason: &str,
) {
    assert_eq!(
        (
            entry.actor_id,
            entry.target_id,
            entry.action.as_str(),
            entry.reason.as_str()
        ),
        (actor.user_id, target.map(|t| t.user_id), action, reason),
        "{entry:?}"
    );
    let age = peace_db::unix_now() - entry.created_at;
    assert!((0..60).contains(&age), "written just now: {entry:?}");
}

/// Makes sure everything `from` sent before has been relayed to `to`: `from` says a
/// marker in `channel` and `to` waits for it. Messages are relayed in order, so whatever
/// `to` has not seen by then was not relayed.
async fn barrier(from: &mut TestClient, to: &mut TestClient, channel: &str, marker: &str) {
    from.say(channel, marker).await;
    to.wait_message(marker).await;
}

fn saw_message(client: &mut TestClient, text: &str) -> bool {
    client
        .take_seen(|p| matches!(p, ServerPacket::SendMessage(m) if m.message.text == text))
        .is_some()
}

/// Polls until the session has been ended by the server; returns the last reply before
/// the token stopped working (the farewell).
async fn farewell(client: &mut TestClient) -> Vec<ServerPacket> {
    let end = client
        .wait_for("the farewell", |p| {
            matches!(p, ServerPacket::UserId(_) | ServerPacket::Restart(_))
        })
        .await;
    let mut last = std::mem::take(&mut client.seen);
    last.push(end);
    last
}

#[tokio::test(flavor = "multi_thread")]
async fn silence_and_unsilence_take_effect_at_once_and_are_audited() {
    let server = TestServer::start().await;
    let mut admin = server.player_with("Boss", ADMIN).await;
    let mut target = server.player("Target").await;
    let mut watcher = server.player("Watcher").await;
    for client in [&mut admin, &mut target, &mut watcher] {
        client.joined("#osu").await;
    }

    let answer = admin.ask_bot("!silence Target 10m being rude").await;
    assert_eq!(answer, "Silenced Target for 600s.");
    target
        .wait_for(
            "SILENCE_END",
            |p| matches!(p, ServerPacket::SilenceEnd(s) if (590..=600).contains(&s.seconds)),
        )
        .await;
    target
        .wait_for("the silence notice", |p| {
            is_notification(p, "silenced for 10 minute(s) for being rude")
        })
        .await;
    let target_id = target.user_id;
    watcher
        .wait_for(
            "USER_SILENCED",
            |p| matches!(p, ServerPacket::UserSilenced(u) if u.user_id == target_id),
        )
        .await;
    let stored = server.world().db().user_by_id(target_id).await.unwrap();
    assert!(stored.unwrap().silence_end > peace_db::unix_now() + 590);

    // Their public and private chat is refused, and they are told.
    target.say("#osu", "can anyone hear me").await;
    target.tell("Watcher", "psst").await;
    target
        .wait_for("the refusal", |p| is_notification(p, "You are silenced"))
        .await;
    barrier(&mut admin, &mut watcher, "#osu", "barrier 1").await;
    assert!(!saw_message(&mut watcher, "can anyone hear me"));
    assert!(!saw_message(&mut watcher, "psst"));

    let answer = admin.ask_bot("!unsilence Target").await;
    assert_eq!(answer, "Target may talk again.");
    target
        .wait_for(
            "SILENCE_END 0",
            |p| matches!(p, ServerPacket::SilenceEnd(s) if s.seconds == 0),
        )
        .await;
    target
        .wait_for("the notice", |p| is_notification(p, "no longer silenced"))
        .await;
    target.say("#osu", "back again").await;
    watcher.wait_message("back again").await;
    let stored = server.world().db().user_by_id(target_id).await.unwrap();
    assert_eq!(stored.unwrap().silence_end, 0);
    // Unsilencing someone who is not silenced changes nothing and is not logged.
    assert_eq!(
        admin.ask_bot("!unsilence Target").await,
        "Target is not silenced."
    );

    let log = audit_log(&server).await;
    assert_eq!(log.len(), 2, "{log:?}");
    assert_audited(&log[0], &admin, Some(&target), "silence", "being rude");
    assert_audited(&log[1], &admin, Some(&target), "unsilence", "");
}

#[tokio::test(flavor = "multi_thread")]
async fn silence_of_an_offline_player_applies_at_their_next_login() {
    let server = TestServer::start().await;
    let mut admin = server.player_with("Boss", ADMIN).await;
    assert_eq!(
        server
            .register("Away", "away@example.com", PASSWORD, false)
            .await
            .status(),
        200
    );
    let answer = admin.ask_bot("!silence Away 2h flooding").await;
    assert_eq!(answer, "Silenced Away for 7200s.");
    let away = server.login("Away", PASSWORD).await;
    assert!(
        away.login_packets.iter().any(
            |p| matches!(p, ServerPacket::SilenceEnd(s) if (7100..=7200).contains(&s.seconds))
        )
    );
    let log = audit_log(&server).await;
    assert_audited(&log[0], &admin, Some(&away), "silence", "flooding");
}

#[tokio::test(flavor = "multi_thread")]
async fn restrict_in_a_channel_hides_the_player_and_mutes_them() {
    let server = TestServer::start().await;
    let mut moderator = server.player_with("Moddy", MODERATOR).await;
    let mut target = server.player("Target").await;
    let mut watcher = server.player("Watcher").await;
    for client in [&mut moderator, &mut target, &mut watcher] {
        client.joined("#osu").await;
    }

    // A command in a channel is answered in the channel, for everyone to see.
    moderator
        .say("#osu", "!restrict Target multi-accounting")
        .await;
    let answer = watcher.wait_message("Target is restricted.").await;
    assert_eq!(answer.sender, BOT_NAME);
    assert_eq!(answer.recipient, "#osu");

    // The target's session ends with the reason and a restart, at once...
    let last = farewell(&mut target).await;
    assert!(
        last.iter()
            .any(|p| is_notification(p, "restricted: multi-accounting")),
        "{last:?}"
    );
    assert!(
        last.iter().any(|p| p.id() == ServerPacketId::Restart),
        "{last:?}"
    );
    let target_id = target.user_id;
    watcher
        .wait_for(
            "the target going offline",
            |p| matches!(p, ServerPacket::UserLogout(l) if l.user_id == target_id),
        )
        .await;
    let stored = server.world().db().user_by_id(target_id).await.unwrap();
    assert!(stored.unwrap().privileges().is_restricted());

    // ...and the client's new login is a restricted one: invisible, and mute in public.
    let mut target = server.login("Target", PASSWORD).await;
    assert!(
        target
            .login_packets
            .iter()
            .any(|p| p.id() == ServerPacketId::AccountRestricted)
    );
    let listing = watcher
        .send([c::UserPresenceRequestAll { ingame_time: 0 }.into()])
        .await;
    assert!(
        !listing
            .iter()
            .any(|p| matches!(p, ServerPacket::UserPresence(u) if u.presence.user_id == target_id))
    );
    let online = server.get_json("/api/v1/users/online").await;
    assert!(
        online["users"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["id"] != target_id),
        "the public online list hides restricted players: {online}"
    );
    assert_eq!(online["count"], 2);
    assert_eq!(watcher.ask_bot("!online").await, "2 player(s) online.");
    target.joined("#osu").await;
    target.say("#osu", "it was not me").await;
    target
        .wait_for("the refusal", |p| {
            is_notification(p, "cannot chat publicly")
        })
        .await;
    // Nor privately to players, nor spectate; to the staff they may still write (to
    // appeal).
    target.tell("Watcher", "psst").await;
    target
        .wait_for("the private refusal", |p| {
            is_notification(p, "can only write to the staff")
        })
        .await;
    target
        .send([c::StartSpectating {
            target_id: watcher.user_id,
        }
        .into()])
        .await;
    target
        .wait_for("the spectating refusal", |p| {
            is_notification(p, "cannot spectate")
        })
        .await;
    target.tell("Moddy", "please reconsider").await;
    let appeal = moderator.wait_message("please reconsider").await;
    assert_eq!(appeal.sender, "Target");
    barrier(&mut moderator, &mut watcher, "#osu", "barrier 1").await;
    assert!(!saw_message(&mut watcher, "it was not me"));
    assert!(!saw_message(&mut watcher, "psst"));
    assert!(
        watcher
            .take_seen(|p| matches!(p, ServerPacket::SpectatorJoined(_)))
            .is_none(),
        "a restricted player spectated"
    );
    assert!(
        watcher
            .take_seen(
                |p| matches!(p, ServerPacket::UserPresence(u) if u.presence.user_id == target_id)
            )
            .is_none(),
        "nobody sees the restricted player come back online"
    );

    // Lifted the same way; the next login is a normal one again.
    assert_eq!(
        moderator
            .ask_bot("!unrestrict Target appeal accepted")
            .await,
        "Target is no longer restricted."
    );
    let last = farewell(&mut target).await;
    assert!(last.iter().any(|p| p.id() == ServerPacketId::Restart));
    let target = server.login("Target", PASSWORD).await;
    assert!(
        !target
            .login_packets
            .iter()
            .any(|p| p.id() == ServerPacketId::AccountRestricted)
    );
    watcher
        .wait_for(
            "the target's presence",
            |p| matches!(p, ServerPacket::UserPresence(u) if u.presence.user_id == target_id),
        )
        .await;

    let log = audit_log(&server).await;
    assert_eq!(log.len(), 2, "{log:?}");
    assert_audited(
        &log[0],
        &moderator,
        Some(&target),
        "restrict",
        "multi-accounting",
    );
    assert_audited(
        &log[1],
        &moderator,
        Some(&target),
        "unrestrict",
        "appeal accepted",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ban_ends_the_session_and_the_next_login_gets_the_banned_reply() {
    let server = TestServer::start().await;
    let mut admin = server.player_with("Boss", ADMIN).await;
    let mut target = server.player("Target").await;
    let mut watcher = server.player("Watcher").await;

    assert_eq!(
        admin.ask_bot("!ban Target relax hacks").await,
        "Target is banned."
    );
    let last = farewell(&mut target).await;
    assert!(
        last.iter()
            .any(|p| is_notification(p, "banned: relax hacks")),
        "{last:?}"
    );
    assert_eq!(user_id(&last), Some(-3), "the client's banned reply");
    let target_id = target.user_id;
    watcher
        .wait_for(
            "the target going offline",
            |p| matches!(p, ServerPacket::UserLogout(l) if l.user_id == target_id),
        )
        .await;
    // The old token is dead, and logging in again gets the banned reply.
    let reply = target.poll().await;
    assert!(
        reply.iter().any(|p| p.id() == ServerPacketId::Restart),
        "{reply:?}"
    );
    let (token, packets) = server
        .login_raw(login_body("Target", PASSWORD, "b20240101"))
        .await;
    assert_eq!((token.as_str(), user_id(&packets)), ("no", Some(-3)));
    assert_eq!(
        admin.ask_bot("!ban Target again").await,
        "Target is already banned."
    );

    assert_eq!(
        admin.ask_bot("!unban Target").await,
        "Target is no longer banned."
    );
    let target = server.login("Target", PASSWORD).await;

    let log = audit_log(&server).await;
    assert_eq!(log.len(), 2, "{log:?}");
    assert_audited(&log[0], &admin, Some(&target), "ban", "relax hacks");
    assert_audited(&log[1], &admin, Some(&target), "unban", "");
}

#[tokio::test(flavor = "multi_thread")]
async fn kick_ends_the_session_and_tells_the_client() {
    let server = TestServer::start().await;
    let mut admin = server.player_with("Boss", ADMIN).await;
    let mut target = server.player("Target").await;
    let mut watcher = server.player("Watcher").await;

    assert_eq!(
        admin.ask_bot("!kick Target go to sleep").await,
        "Kicked Target."
    );
    let last = farewell(&mut target).await;
    assert!(
        last.iter()
            .any(|p| is_notification(p, "disconnected by the staff: go to sleep")),
        "{last:?}"
    );
    assert_eq!(
        user_id(&last),
        Some(-1),
        "the client stays offline instead of reconnecting at once"
    );
    let target_id = target.user_id;
    watcher
        .wait_for(
            "the target going offline",
            |p| matches!(p, ServerPacket::UserLogout(l) if l.user_id == target_id),
        )
        .await;
    let reply = target.poll().await;
    assert!(reply.iter().any(|p| p.id() == ServerPacketId::Restart));
    // A kick is not a ban: the player may come back.
    let target = server.login("Target", PASSWORD).await;

    // Nobody to kick: answered, and not logged.
    assert_eq!(
        admin.ask_bot("!kick Nobody").await,
        "There is no player named Nobody."
    );
    assert_eq!(
        server
            .register("Offline", "offline@example.com", PASSWORD, false)
            .await
            .status(),
        200
    );
    assert_eq!(
        admin.ask_bot("!kick Offline").await,
        "Offline is not online."
    );

    let log = audit_log(&server).await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_audited(&log[0], &admin, Some(&target), "kick", "go to sleep");
}

#[tokio::test(flavor = "multi_thread")]
async fn alerts_reach_everyone_or_only_their_target() {
    let server = TestServer::start().await;
    let mut admin = server.player_with("Boss", ADMIN).await;
    let mut target = server.player("Target").await;
    let mut watcher = server.player("Watcher").await;
    for client in [&mut admin, &mut target, &mut watcher] {
        client.joined("#osu").await;
    }

    assert_eq!(
        admin.ask_bot("!alert Restart in 5 minutes").await,
        "Alert sent."
    );
    for client in [&mut admin, &mut target, &mut watcher] {
        client
            .wait_for("the alert", |p| is_notification(p, "Restart in 5 minutes"))
            .await;
    }

    assert_eq!(
        admin
            .ask_bot("!alertuser Target Please read your messages")
            .await,
        "Alerted Target."
    );
    target
        .wait_for("the alert", |p| {
            is_notification(p, "Please read your messages")
        })
        .await;
    // Only the target: the watcher's queue is drained past the alert (a barrier through
    // the same sender) without it.
    barrier(&mut admin, &mut watcher, "#osu", "barrier 1").await;
    watcher.poll().await;
    assert!(
        watcher
            .take_seen(|p| is_notification(p, "Please read your messages"))
            .is_none()
    );

    let log = audit_log(&server).await;
    assert_eq!(log.len(), 2, "{log:?}");
    assert_audited(&log[0], &admin, None, "alert", "Restart in 5 minutes");
    assert_audited(
        &log[1],
        &admin,
        Some(&target),
        "alertuser",
        "Please read your messages",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn only_staff_may_moderate_and_moderators_cannot_touch_admins() {
    let server = TestServer::start().await;
    let mut admin = server.player_with("Boss", ADMIN).await;
    let mut moderator = server.player_with("Moddy", MODERATOR).await;
    let _other_moderator = server.player_with("Moddy2", MODERATOR).await;
    let mut player = server.player("Player").await;
    for client in [&mut admin, &mut moderator, &mut player] {
        client.joined("#osu").await;
    }

    // Players are refused, by private message and in a channel; !help hides staff commands.
    for command in [
        "!ban Boss x",
        "!silence Moddy 10m x",
        "!kick Boss",
        "!alert hi",
        "!restrict Moddy x",
    ] {
        let name = command.split_whitespace().next().unwrap();
        assert_eq!(
            player.ask_bot(command).await,
            format!("{name} is for the staff.")
        );
    }
    player.say("#osu", "!kick Boss").await;
    admin.wait_message("!kick is for the staff.").await;
    let help = player.ask_bot("!help").await;
    assert!(help.contains("!roll") && !help.contains("!ban"), "{help}");
    assert!(admin.ask_bot("!help").await.contains("!ban"));

    // A moderator cannot act on staff, nor on themselves.
    assert_eq!(
        moderator.ask_bot("!ban Boss x").await,
        "Only an administrator can ban staff."
    );
    assert_eq!(
        moderator.ask_bot("!kick Moddy2").await,
        "Only an administrator can kick staff."
    );
    assert_eq!(
        moderator.ask_bot("!silence Moddy 10m x").await,
        "You cannot silence yourself."
    );
    // Malformed commands are answered with their usage.
    assert!(
        moderator
            .ask_bot("!silence Player forever x")
            .await
            .starts_with("Usage: !silence")
    );
    assert!(
        moderator
            .ask_bot("!silence Player 10m")
            .await
            .starts_with("Usage: !silence")
    );
    assert!(
        moderator
            .ask_bot("!ban Player")
            .await
            .starts_with("Usage: !ban")
    );

    // A demotion applies at once, even to a session that started as staff.
    let db = server.world().db();
    db.set_privileges(moderator.user_id, Privileges::DEFAULT_NEW)
        .await
        .unwrap();
    assert_eq!(
        moderator.ask_bot("!kick Player").await,
        "!kick is for the staff."
    );
    // So does a restriction of a staff account: restricted staff are not staff.
    db.set_privileges(
        moderator.user_id,
        Privileges::DEFAULT_NEW
            .union(Privileges::MODERATOR)
            .union(Privileges::RESTRICTED),
    )
    .await
    .unwrap();
    assert_eq!(
        moderator.ask_bot("!kick Player").await,
        "!kick is for the staff."
    );

    // None of it did anything.
    assert!(audit_log(&server).await.is_empty());
    for name in ["Boss", "Moddy", "Player"] {
        let user = db.user_by_name(name).await.unwrap().unwrap();
        assert_eq!(user.silence_end, 0, "{name}");
        assert!(user.privileges().contains(Privileges::NORMAL), "{name}");
    }
    let reply = admin.poll().await;
    assert!(
        !reply.iter().any(|p| p.id() == ServerPacketId::Restart),
        "{reply:?}"
    );
    player.say("#osu", "still here").await;
    admin.wait_message("still here").await;

    // An administrator can act on a moderator.
    assert_eq!(
        admin.ask_bot("!silence Moddy2 30s calm down").await,
        "Silenced Moddy2 for 30s."
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_staff_changing_one_player_at_once_both_take_effect() {
    let server = TestServer::start().await;
    let mut first = server.player_with("Boss", ADMIN).await;
    let mut second = server.player_with("Chief", ADMIN).await;
    let target = server.player("Target").await;
    for round in 0..5 {
        let db = server.world().db();
        db.set_privileges(target.user_id, Privileges::DEFAULT_NEW)
            .await
            .unwrap();
        // Both commands reach the bot before either is answered.
        let restrict = format!("!restrict Target round {round}");
        let ban = format!("!ban Target round {round}");
        first.tell(BOT_NAME, &restrict).await;
        second.tell(BOT_NAME, &ban).await;
        first
            .wait_for("the restriction", |p| {
                matches!(p, ServerPacket::SendMessage(m) if m.message.text == "Target is restricted.")
            })
            .await;
        second
            .wait_for("the ban", |p| {
                matches!(p, ServerPacket::SendMessage(m) if m.message.text == "Target is banned.")
            })
            .await;
        let privileges = db
            .user_by_id(target.user_id)
            .await
            .unwrap()
            .unwrap()
            .privileges();
        assert!(
            privileges.is_restricted() && !privileges.contains(Privileges::NORMAL),
            "round {round}: one change undid the other: {privileges:?}"
        );
    }
}
