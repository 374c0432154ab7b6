//! End-to-end: spectating, the lobby, matches and referee commands, over HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use crate::common::TestServer;
use crate::common::play::{create, join, score_frame, wait_update};
use bytes::Bytes;
use peace_bancho::client as c;
use peace_bancho::wire::Raw;
use peace_bancho::{MatchData, ServerPacket, mods, slot_status, team, team_type};

fn is(p: &ServerPacket, id: peace_bancho::ServerPacketId) -> bool {
    p.id() == id
}

#[tokio::test(flavor = "multi_thread")]
async fn spectators_see_the_hosts_frames_and_each_other() {
    let server = TestServer::start().await;
    let mut host = server.player("Host").await;
    let mut bob = server.player("Bob").await;
    let mut carol = server.player("Carol").await;
    let (h, b, cid) = (host.user_id, bob.user_id, carol.user_id);

    bob.send([c::StartSpectating { target_id: h }.into()]).await;
    host.wait_for(
        "SPECTATOR_JOINED bob",
        |p| matches!(p, ServerPacket::SpectatorJoined(s) if s.user_id == b),
    )
    .await;
    host.wait_for(
        "host in #spectator",
        |p| matches!(p, ServerPacket::ChannelJoinSuccess(j) if j.name == "#spectator"),
    )
    .await;
    bob.wait_for(
        "bob in #spectator",
        |p| matches!(p, ServerPacket::ChannelJoinSuccess(j) if j.name == "#spectator"),
    )
    .await;

    carol
        .send([c::StartSpectating { target_id: h }.into()])
        .await;
    host.wait_for(
        "SPECTATOR_JOINED carol",
        |p| matches!(p, ServerPacket::SpectatorJoined(s) if s.user_id == cid),
    )
    .await;
    bob.wait_for(
        "FELLOW carol",
        |p| matches!(p, ServerPacket::FellowSpectatorJoined(s) if s.user_id == cid),
    )
    .await;
    carol
        .wait_for(
            "FELLOW bob",
            |p| matches!(p, ServerPacket::FellowSpectatorJoined(s) if s.user_id == b),
        )
        .await;

    // Frames are relayed byte for byte.
    let frames: Vec<u8> = (0..=200).collect();
    host.send([c::SpectateFrames {
        frames: Raw(frames.clone().into()),
    }
    .into()])
        .await;
    for watcher in [&mut bob, &mut carol] {
        watcher
            .wait_for(
                "the host's frames",
                |p| matches!(p, ServerPacket::SpectateFrames(f) if f.frames.0[..] == frames[..]),
            )
            .await;
    }

    // #spectator chat reaches the room, under its display name.
    bob.say("#spectator", "nice play").await;
    for other in [&mut host, &mut carol] {
        let m = other.wait_message("nice play").await;
        assert_eq!(m.recipient, "#spectator");
    }

    carol.send([c::CantSpectate {}.into()]).await;
    host.wait_for(
        "CANT_SPECTATE to host",
        |p| matches!(p, ServerPacket::SpectatorCantSpectate(s) if s.user_id == cid),
    )
    .await;
    bob.wait_for(
        "CANT_SPECTATE to fellows",
        |p| matches!(p, ServerPacket::SpectatorCantSpectate(s) if s.user_id == cid),
    )
    .await;

    carol.send([c::StopSpectating {}.into()]).await;
    host.wait_for(
        "SPECTATOR_LEFT carol",
        |p| matches!(p, ServerPacket::SpectatorLeft(s) if s.user_id == cid),
    )
    .await;
    bob.wait_for(
        "FELLOW_LEFT carol",
        |p| matches!(p, ServerPacket::FellowSpectatorLeft(s) if s.user_id == cid),
    )
    .await;
    carol
        .wait_for(
            "carol leaves #spectator",
            |p| matches!(p, ServerPacket::ChannelKick(k) if k.name == "#spectator"),
        )
        .await;

    // Spectating someone else leaves the first room.
    bob.send([c::StartSpectating { target_id: cid }.into()])
        .await;
    host.wait_for(
        "SPECTATOR_LEFT bob",
        |p| matches!(p, ServerPacket::SpectatorLeft(s) if s.user_id == b),
    )
    .await;
    host.wait_for(
        "host's room closed",
        |p| matches!(p, ServerPacket::ChannelKick(k) if k.name == "#spectator"),
    )
    .await;
    carol
        .wait_for(
            "SPECTATOR_JOINED bob",
            |p| matches!(p, ServerPacket::SpectatorJoined(s) if s.user_id == b),
        )
        .await;
    assert!(
        !server.world().router().spectate().contains(&h),
        "an empty room closes"
    );

    // The host of a room goes offline: the room closes and its spectators leave it.
    bob.wait_for(
        "left the old #spectator",
        |p| matches!(p, ServerPacket::ChannelKick(k) if k.name == "#spectator"),
    )
    .await;
    bob.wait_for(
        "joined the new #spectator",
        |p| matches!(p, ServerPacket::ChannelJoinSuccess(j) if j.name == "#spectator"),
    )
    .await;
    bob.seen.clear();
    server.world().kick(cid, "test");
    bob.wait_for(
        "room of a logged-out host closes",
        |p| matches!(p, ServerPacket::ChannelKick(k) if k.name == "#spectator"),
    )
    .await;
    assert!(server.world().router().spectate().is_empty());
    // Self-spectating and spectating nobody are ignored.
    bob.send([
        c::StartSpectating { target_id: b }.into(),
        c::StartSpectating { target_id: 987_654 }.into(),
    ])
    .await;
    assert!(server.world().router().spectate().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_match_is_created_joined_played_recorded_and_disposed() {
    let server = TestServer::start().await;
    let mut watcher = server.player("Watcher").await;
    let mut host = server.player("Host").await;
    let mut guest = server.player("Guest").await;
    let (h, g) = (host.user_id, guest.user_id);

    watcher.send([c::JoinLobby {}.into()]).await;
    watcher
        .wait_for(
            "#lobby",
            |p| matches!(p, ServerPacket::ChannelJoinSuccess(j) if j.name == "#lobby"),
        )
        .await;

    let created = create(&mut host, "Peace test", Some("secret")).await;
    assert_eq!(created.password.as_deref(), Some("secret"));
    assert_eq!((created.host_id, created.slots[0].user_id), (h, h));
    let id = created.match_id;
    let seen = match watcher
        .wait_for(
            "NEW_MATCH",
            |p| matches!(p, ServerPacket::NewMatch(m) if m.data.match_id == id),
        )
        .await
    {
        ServerPacket::NewMatch(m) => m.data,
        _ => unreachable!(),
    };
    assert_eq!(
        seen.password.as_deref(),
        Some(""),
        "the lobby sees that there is a password, not what it is"
    );

    guest
        .send([c::JoinMatch {
            match_id: i32::from(id),
            password: "wrong".into(),
        }
        .into()])
        .await;
    guest
        .wait_for("MATCH_JOIN_FAIL", |p| {
            is(p, peace_bancho::ServerPacketId::MatchJoinFail)
        })
        .await;
    let joined = join(&mut guest, id, "secret").await;
    assert_eq!(joined.slots[1].user_id, g);
    wait_update(&mut host, "guest in slot 1", |d| d.slots[1].user_id == g).await;
    wait_update(&mut watcher, "lobby update", |d| d.slots[1].user_id == g).await;

    // Only the host changes settings or starts: the guest's change (sent first) and
    // start are refused, the host's change lands.
    let mut by_guest = created.clone();
    by_guest.beatmap_id = 555;
    by_guest.name = "taken over".into();
    let mut changed = created.clone();
    changed.beatmap_id = 129891;
    changed.beatmap_md5 = "b".repeat(32);
    guest
        .send([
            c::MatchChangeSettings { data: by_guest }.into(),
            c::MatchStart {}.into(),
        ])
        .await;
    host.send([c::MatchChangeSettings { data: changed }.into()])
        .await;
    let d = wait_update(&mut guest, "new beatmap", |d| d.beatmap_id == 129891).await;
    assert!(!d.in_progress);
    assert_eq!(&*d.name, "Peace test");
    let guests_change_seen = |p: &ServerPacket| {
        matches!(p, ServerPacket::UpdateMatch(u) if u.data.beatmap_id == 555)
            || matches!(p, ServerPacket::MatchStart(_))
    };
    assert!(!guest.seen.iter().any(guests_change_seen));
    assert!(!host.seen.iter().any(guests_change_seen));

    guest.send([c::MatchReady {}.into()]).await;
    wait_update(&mut host, "guest ready", |d| {
        d.slots[1].status == slot_status::READY
    })
    .await;
    host.send([c::MatchStart {}.into()]).await;
    for p in [&mut host, &mut guest] {
        p.wait_for(
            "MATCH_START",
            |p| matches!(p, ServerPacket::MatchStart(m) if m.data.in_progress),
        )
        .await;
    }
    host.send([c::MatchLoadComplete {}.into()]).await;
    guest.send([c::MatchLoadComplete {}.into()]).await;
    for p in [&mut host, &mut guest] {
        p.wait_for("ALL_PLAYERS_LOADED", |p| {
            is(p, peace_bancho::ServerPacketId::MatchAllPlayersLoaded)
        })
        .await;
    }
    guest
        .send([c::MatchScoreUpdate {
            frame: Raw(score_frame(777_777, 9)),
        }
        .into()])
        .await;
    host.wait_for("guest's score with slot 1", |p| matches!(p, ServerPacket::MatchScoreUpdate(s) if s.frame.0[4] == 1 && s.frame.0[17..21] == 777_777i32.to_le_bytes())).await;
    host.send([c::MatchSkipRequest {}.into()]).await;
    guest
        .wait_for(
            "host skipped",
            |p| matches!(p, ServerPacket::MatchPlayerSkipped(s) if s.slot_id == 0),
        )
        .await;
    guest.send([c::MatchSkipRequest {}.into()]).await;
    host.wait_for("MATCH_SKIP", |p| {
        is(p, peace_bancho::ServerPacketId::MatchSkip)
    })
    .await;
    guest.send([c::MatchFailed {}.into()]).await;
    host.wait_for(
        "guest failed",
        |p| matches!(p, ServerPacket::MatchPlayerFailed(f) if f.slot_id == 1),
    )
    .await;
    host.send([
        c::MatchScoreUpdate {
            frame: Raw(score_frame(1_000_000, 0)),
        }
        .into(),
        c::MatchComplete {}.into(),
    ])
    .await;
    guest.send([c::MatchComplete {}.into()]).await;
    for p in [&mut host, &mut guest] {
        p.wait_for("MATCH_COMPLETE", |p| {
            is(p, peace_bancho::ServerPacketId::MatchComplete)
        })
        .await;
    }
    let d = wait_update(&mut host, "back to not ready", |d| {
        !d.in_progress && d.slots[1].status == slot_status::NOT_READY
    })
    .await;
    assert_eq!(d.slots[0].status, slot_status::NOT_READY);

    // The game is in the database with both final scores.
    let db = server.world().db().clone();
    let mut recorded = 0;
    for _ in 0..100 {
        recorded = db.match_game_count(i32::from(id)).await.unwrap();
        if recorded == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(recorded, 1);

    // The host leaves: the guest inherits the match; then the last player leaves.
    host.send([c::PartMatch {}.into()]).await;
    host.wait_for(
        "host leaves #multiplayer",
        |p| matches!(p, ServerPacket::ChannelKick(k) if k.name == "#multiplayer"),
    )
    .await;
    guest
        .wait_for("MATCH_TRANSFER_HOST", |p| {
            is(p, peace_bancho::ServerPacketId::MatchTransferHost)
        })
        .await;
    wait_update(&mut guest, "guest hosts", |d| {
        d.host_id == g && d.slots[0].status == slot_status::OPEN
    })
    .await;
    guest.send([c::PartMatch {}.into()]).await;
    watcher
        .wait_for(
            "DISPOSE_MATCH",
            |p| matches!(p, ServerPacket::DisposeMatch(d) if d.match_id == i32::from(id)),
        )
        .await;
    assert!(server.world().router().matches().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn slots_locks_freemod_teams_password_and_invites() {
    let server = TestServer::start().await;
    let mut host = server.player("Host").await;
    let mut guest = server.player("Guest").await;
    let mut third = server.player("Third").await;
    let (g, t) = (guest.user_id, third.user_id);
    let id = create(&mut host, "rules", None).await.match_id;
    join(&mut guest, id, "").await;
    join(&mut third, id, "").await;

    // Locking an occupied slot kicks its player back to the lobby.
    host.send([c::MatchLock { slot_id: 2 }.into()]).await;
    third
        .wait_for(
            "kicked",
            |p| matches!(p, ServerPacket::DisposeMatch(d) if d.match_id == i32::from(id)),
        )
        .await;
    third
        .wait_for(
            "out of #multiplayer",
            |p| matches!(p, ServerPacket::ChannelKick(k) if k.name == "#multiplayer"),
        )
        .await;
    wait_update(&mut host, "slot 2 locked", |d| {
        d.slots[2].status == slot_status::LOCKED
    })
    .await;
    // Players move only to open slots; out-of-range slots are ignored.
    guest
        .send([
            c::MatchChangeSlot { slot_id: 2 }.into(),
            c::MatchChangeSlot { slot_id: 999 }.into(),
            c::MatchChangeSlot { slot_id: -1 }.into(),
        ])
        .await;
    guest.send([c::MatchChangeSlot { slot_id: 5 }.into()]).await;
    wait_update(&mut host, "guest in slot 5", |d| {
        d.slots[5].user_id == g && d.slots[1].status == slot_status::OPEN
    })
    .await;
    // A full match refuses joins: lock every open slot, then third tries.
    for slot in [1, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15] {
        host.send([c::MatchLock { slot_id: slot }.into()]).await;
    }
    wait_update(&mut host, "all locked", |d| {
        d.slots.iter().all(|s| s.status != slot_status::OPEN)
    })
    .await;
    third
        .send([c::JoinMatch {
            match_id: i32::from(id),
            password: String::new(),
        }
        .into()])
        .await;
    third
        .wait_for("full match", |p| {
            is(p, peace_bancho::ServerPacketId::MatchJoinFail)
        })
        .await;
    host.send([c::MatchLock { slot_id: 1 }.into()]).await;

    // Freemod: speed mods stay on the match, the rest per slot.
    host.send([c::MatchChangeMods {
        mods: mods::HIDDEN | mods::DOUBLE_TIME,
    }
    .into()])
        .await;
    wait_update(&mut guest, "match mods", |d| {
        d.mods == mods::HIDDEN | mods::DOUBLE_TIME
    })
    .await;
    let mut settings = wait_update(&mut host, "current", |_| true).await;
    settings.freemod = true;
    host.send([c::MatchChangeSettings {
        data: settings.clone(),
    }
    .into()])
        .await;
    wait_update(&mut guest, "freemod on", |d| {
        d.freemod && d.mods == mods::DOUBLE_TIME && d.slots[0].mods == mods::HIDDEN
    })
    .await;
    guest
        .send([c::MatchChangeMods {
            mods: mods::HARD_ROCK | mods::HALF_TIME,
        }
        .into()])
        .await;
    wait_update(&mut host, "guest's own mods", |d| {
        d.slots[5].mods == mods::HARD_ROCK && d.mods == mods::DOUBLE_TIME
    })
    .await;

    // Teams.
    settings.team_type = team_type::TEAM_VS;
    host.send([c::MatchChangeSettings { data: settings }.into()])
        .await;
    let d = wait_update(&mut guest, "teams", |d| d.team_type == team_type::TEAM_VS).await;
    let before = d.slots[5].team;
    assert_ne!(before, team::NEUTRAL);
    guest.send([c::MatchChangeTeam {}.into()]).await;
    wait_update(&mut host, "guest switched team", |d| {
        d.slots[5].team != before && d.slots[5].team != team::NEUTRAL
    })
    .await;

    // Password change and invitations.
    let with_password = MatchData {
        password: Some("hunter2".into()),
        ..MatchData::default()
    };
    host.send([c::MatchChangePassword {
        data: with_password,
    }
    .into()])
        .await;
    guest
        .wait_for(
            "new password",
            |p| matches!(p, ServerPacket::MatchChangePassword(c) if c.password == "hunter2"),
        )
        .await;
    host.send([c::MatchInvite { user_id: t }.into()]).await;
    third.wait_for("invitation", |p| matches!(p, ServerPacket::MatchInvite(i) if i.message.text.contains(&format!("osump://{id}/hunter2")))).await;

    // Host transfer by slot.
    host.send([c::MatchTransferHost { slot_id: 5 }.into()])
        .await;
    guest
        .wait_for("became host", |p| {
            is(p, peace_bancho::ServerPacketId::MatchTransferHost)
        })
        .await;
    wait_update(&mut host, "guest hosts", |d| d.host_id == g).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn referee_commands_and_a_disconnect_mid_match() {
    let server = TestServer::start().await;
    let mut host = server.player("Host").await;
    let mut guest = server.player("Guest").await;
    let mut other = server.player("Other").await;
    let id = create(&mut host, "reffed", None).await.match_id;
    join(&mut guest, id, "").await;
    guest
        .wait_for(
            "#multiplayer",
            |p| matches!(p, ServerPacket::ChannelJoinSuccess(j) if j.name == "#multiplayer"),
        )
        .await;

    let bot_said = |text: &'static str| move |p: &ServerPacket| matches!(p, ServerPacket::SendMessage(m) if m.message.sender_id == 1 && m.message.recipient == "#multiplayer" && m.message.text.contains(text));
    guest.say("#multiplayer", "!mp start").await;
    guest
        .wait_for("refusal", bot_said("only the host or a referee"))
        .await;
    guest.say("#multiplayer", "!mp help").await;
    guest.wait_for("help", bot_said("!mp start")).await;

    host.say("#multiplayer", "!mp mods HD DT").await;
    wait_update(&mut guest, "mods by referee", |d| {
        d.mods == mods::HIDDEN | mods::DOUBLE_TIME
    })
    .await;
    host.say("#multiplayer", "!mp size 4").await;
    wait_update(&mut guest, "size 4", |d| {
        d.slots[4..].iter().all(|s| s.status == slot_status::LOCKED)
    })
    .await;
    host.say("#multiplayer", "!mp settings").await;
    guest.wait_for("settings", bot_said("reffed")).await;
    host.say("#multiplayer", "!mp invite Other").await;
    other
        .wait_for("invite by referee", |p| {
            matches!(p, ServerPacket::MatchInvite(_))
        })
        .await;

    host.say("#multiplayer", "!mp start").await;
    guest
        .wait_for("MATCH_START", |p| matches!(p, ServerPacket::MatchStart(_)))
        .await;
    host.say("#multiplayer", "!mp abort").await;
    guest
        .wait_for("MATCH_ABORT", |p| {
            is(p, peace_bancho::ServerPacketId::MatchAbort)
        })
        .await;
    wait_update(&mut guest, "not in progress", |d| !d.in_progress).await;

    host.say("#multiplayer", "!mp start 1").await;
    guest
        .wait_for("countdown start", |p| {
            matches!(p, ServerPacket::MatchStart(_))
        })
        .await;
    host.wait_for("countdown start", |p| {
        matches!(p, ServerPacket::MatchStart(_))
    })
    .await;
    host.seen.clear();

    // The guest disconnects mid-game: the host alone completes it; no ghost slot stays.
    server.world().kick(guest.user_id, "test");
    let d = wait_update(&mut host, "guest gone", |d| {
        d.slots.iter().all(|s| {
            s.user_id != guest.user_id || s.status & peace_bancho::model::SLOT_HAS_PLAYER == 0
        })
    })
    .await;
    assert!(d.in_progress);
    host.send([c::MatchComplete {}.into()]).await;
    host.wait_for("MATCH_COMPLETE", |p| {
        is(p, peace_bancho::ServerPacketId::MatchComplete)
    })
    .await;

    host.say("#multiplayer", "!mp close").await;
    host.wait_for("closed", |p| matches!(p, ServerPacket::DisposeMatch(_)))
        .await;
    for _ in 0..100 {
        if server.world().router().matches().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(server.world().router().matches().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn tournament_clients_watch_matches_and_bad_match_input_is_harmless() {
    let server = TestServer::start().await;
    let mut host = server.player("Host").await;
    let tourney = server.player("Tourney").await;
    server
        .world()
        .db()
        .set_privileges(
            tourney.user_id,
            peace_db::Privileges::DEFAULT_NEW.union(peace_db::Privileges::TOURNAMENT),
        )
        .await
        .unwrap();
    let mut tourney = server.login("Tourney", common::PASSWORD).await;
    let id = create(&mut host, "final", None).await.match_id;
    let reply = tourney
        .send([c::TournamentMatchInfoRequest {
            match_id: i32::from(id),
        }
        .into()])
        .await;
    assert!(
        reply
            .iter()
            .any(|p| matches!(p, ServerPacket::UpdateMatch(u) if u.data.name == "final"))
    );
    tourney
        .send([c::TournamentJoinMatchChannel {
            match_id: i32::from(id),
        }
        .into()])
        .await;
    tourney
        .wait_for(
            "#multiplayer",
            |p| matches!(p, ServerPacket::ChannelJoinSuccess(j) if j.name == "#multiplayer"),
        )
        .await;
    host.say("#multiplayer", "gl hf").await;
    tourney.wait_message("gl hf").await;
    tourney
        .send([c::TournamentLeaveMatchChannel {
            match_id: i32::from(id),
        }
        .into()])
        .await;
    tourney
        .wait_for(
            "left",
            |p| matches!(p, ServerPacket::ChannelKick(k) if k.name == "#multiplayer"),
        )
        .await;

    // Garbage: unknown matches, packets outside a match, malformed match payloads.
    let mut out = Vec::new();
    for p in [
        c::JoinMatch {
            match_id: 99_999,
            password: String::new(),
        }
        .into(),
        c::MatchStart {}.into(),
        c::MatchLock { slot_id: i32::MAX }.into(),
        c::TournamentJoinMatchChannel { match_id: -5 }.into(),
    ] {
        let p: peace_bancho::ClientPacket = p;
        p.encode(&mut out);
    }
    out.extend_from_slice(&[31, 0, 0, 4, 0, 0, 0, 1, 2, 3, 4]); // truncated CREATE_MATCH
    tourney.send_raw(out).await;
    tourney
        .wait_for("join fail", |p| {
            is(p, peace_bancho::ServerPacketId::MatchJoinFail)
        })
        .await;
    let hostile = MatchData {
        name: "x".repeat(10_000),
        beatmap_md5: "zz".into(),
        mode: 200,
        team_type: 99,
        ..MatchData::default()
    };
    let mut third = server.player("Third").await;
    third.send([c::CreateMatch { data: hostile }.into()]).await;
    let data = match third
        .wait_for("created", |p| {
            matches!(p, ServerPacket::MatchJoinSuccess(_))
        })
        .await
    {
        ServerPacket::MatchJoinSuccess(j) => j.data,
        _ => unreachable!(),
    };
    assert!(
        data.name.len() <= 50
            && data.mode == 0
            && data.team_type == 0
            && data.beatmap_md5.is_empty()
    );
    assert_eq!(server.world().router().matches().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tournament_account_watches_with_several_sessions() {
    let server = TestServer::start().await;
    let mut red = server.player("Red").await;
    let mut blue = server.player("Blue").await;
    let staff = server.player("Staff").await;
    let tournament = peace_db::Privileges::DEFAULT_NEW.union(peace_db::Privileges::TOURNAMENT);
    server
        .world()
        .db()
        .set_privileges(staff.user_id, tournament)
        .await
        .unwrap();
    let mut main = server.login("Staff", common::PASSWORD).await;
    let mut watch_red = server
        .login_version("Staff", common::PASSWORD, "b20240101tourney")
        .await;
    let mut watch_blue = server
        .login_version("Staff", common::PASSWORD, "b20240101tourney")
        .await;
    // No session replaced another.
    for session in [&mut main, &mut watch_red, &mut watch_blue] {
        let reply = session.poll().await;
        assert!(
            !reply.iter().any(|p| matches!(p, ServerPacket::Restart(_))),
            "{reply:?}"
        );
    }
    assert_eq!(
        server.world().online_users().len(),
        3,
        "extra sessions are not extra players"
    );

    watch_red
        .send([c::StartSpectating {
            target_id: red.user_id,
        }
        .into()])
        .await;
    watch_blue
        .send([c::StartSpectating {
            target_id: blue.user_id,
        }
        .into()])
        .await;
    red.wait_for("watched", |p| matches!(p, ServerPacket::SpectatorJoined(_)))
        .await;
    blue.wait_for("watched", |p| matches!(p, ServerPacket::SpectatorJoined(_)))
        .await;
    red.send([c::SpectateFrames {
        frames: Raw(Bytes::from_static(b"red frames")),
    }
    .into()])
        .await;
    blue.send([c::SpectateFrames {
        frames: Raw(Bytes::from_static(b"blue frames")),
    }
    .into()])
        .await;
    watch_red
        .wait_for(
            "red's frames",
            |p| matches!(p, ServerPacket::SpectateFrames(f) if &f.frames.0[..] == b"red frames"),
        )
        .await;
    watch_blue
        .wait_for(
            "blue's frames",
            |p| matches!(p, ServerPacket::SpectateFrames(f) if &f.frames.0[..] == b"blue frames"),
        )
        .await;
    assert!(watch_red.take_seen(|p| matches!(p, ServerPacket::SpectateFrames(f) if &f.frames.0[..] == b"blue frames")).is_none());
    main.poll().await;
    assert!(
        main.take_seen(|p| matches!(p, ServerPacket::SpectateFrames(_)))
            .is_none(),
        "frames go to the watching session only"
    );

    // An ordinary account's second login still replaces the first.
    let mut first = server.login("Red", common::PASSWORD).await;
    server.login("Red", common::PASSWORD).await;
    let reply = first.poll().await;
    assert!(reply.iter().any(
        |p| matches!(p, ServerPacket::Notification(n) if n.text.contains("another location"))
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_room_channel_cannot_be_joined_by_its_key() {
    let server = TestServer::start().await;
    let mut host = server.player("Host").await;
    let mut watched = server.player("Watched").await;
    let mut spectator = server.player("Spectator").await;
    let mut intruder = server.player("Intruder").await;
    let data = create(&mut host, "private room", Some("secret")).await;

    spectator
        .send([c::StartSpectating {
            target_id: watched.user_id,
        }
        .into()])
        .await;
    spectator.joined("#spectator").await;
    watched.joined("#spectator").await;

    // The match id is public (the lobby lists it), and so is who is being watched; the
    // channels' keys follow from them. Naming a key gets a CHANNEL_KICK, no membership.
    let keys = [
        format!("#mp_{}", data.match_id),
        format!("#spec_{}", watched.user_id),
    ];
    for key in &keys {
        intruder
            .send([c::ChannelJoin { name: key.clone() }.into()])
            .await;
        intruder
            .wait_for(
                &format!("CHANNEL_KICK {key}"),
                |p| matches!(p, ServerPacket::ChannelKick(k) if &k.name == key),
            )
            .await;
        // Posting by the key goes nowhere either.
        intruder.say(key, &format!("intruding in {key}")).await;
    }
    host.say("#multiplayer", "the match talks").await;
    watched.say("#spectator", "the room talks").await;
    // The members hear their own rooms, and nothing from the intruder; the intruder
    // hears neither room.
    spectator.wait_message("the room talks").await;
    host.poll().await;
    for client in [&mut host, &mut spectator, &mut watched] {
        client.poll().await;
        assert!(
            !client.seen.iter().any(|p| matches!(p,
                ServerPacket::SendMessage(m) if m.message.text.starts_with("intruding"))),
            "{} heard the intruder",
            client.name
        );
    }
    intruder.poll().await;
    let rooms = ["#multiplayer", "#spectator", &keys[0], &keys[1]];
    assert!(
        !intruder.seen.iter().any(|p| match p {
            ServerPacket::ChannelJoinSuccess(j) => rooms.contains(&j.name.as_str()),
            ServerPacket::SendMessage(m) => m.message.text.ends_with("talks"),
            _ => false,
        }),
        "{:?}",
        intruder.seen
    );
    // The password still admits whoever knows it.
    let mut guest = server.player("Guest").await;
    join(&mut guest, data.match_id, "secret").await;
    guest.joined("#multiplayer").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rest_of_the_referee_commands_readiness_and_the_lobby() {
    let server = TestServer::start().await;
    let mut host = server.player("Host").await;
    let mut guest = server.player("Guest").await;
    let mut outsider = server.player("Outsider").await;
    let g = guest.user_id;
    let id = create(&mut host, "reffed again", None).await.match_id;

    // JOIN_LOBBY lists the matches that already exist.
    let mut browser = server.player("Browser").await;
    let mut leaver = server.player("Leaver").await;
    for client in [&mut browser, &mut leaver] {
        client.send([c::JoinLobby {}.into()]).await;
        client
            .wait_for(
                "the existing match",
                |p| matches!(p, ServerPacket::NewMatch(m) if m.data.match_id == id),
            )
            .await;
    }
    leaver.send([c::PartLobby {}.into()]).await;
    leaver.poll().await;
    leaver.seen.clear();

    join(&mut guest, id, "").await;
    guest.joined("#multiplayer").await;
    let bot_said = |text: String| {
        move |p: &ServerPacket| {
            matches!(p, ServerPacket::SendMessage(m)
                if m.message.sender_id == 1 && m.message.text.contains(&text))
        }
    };

    // Readiness and the beatmap flags of the guest's own slot.
    let steps: [(peace_bancho::ClientPacket, u8); 4] = [
        (c::MatchReady {}.into(), slot_status::READY),
        (c::MatchNotReady {}.into(), slot_status::NOT_READY),
        (c::MatchNoBeatmap {}.into(), slot_status::NO_MAP),
        (c::MatchHasBeatmap {}.into(), slot_status::NOT_READY),
    ];
    for (packet, status) in steps {
        guest.send([packet]).await;
        wait_update(&mut host, &format!("guest's slot status {status}"), |d| {
            d.slots[1].user_id == g && d.slots[1].status == status
        })
        .await;
    }

    // `!mp map` takes a map the server knows, with the checksum the client finds it by.
    host.say("#multiplayer", "!mp map 4242").await;
    host.wait_for(
        "an unknown map refused",
        bot_said("No beatmap #4242".into()),
    )
    .await;
    let osu =
        String::from_utf8_lossy(crate::scores::STD_MAP).replace("BeatmapID:0", "BeatmapID:4242");
    let map = server
        .world()
        .scores()
        .beatmaps()
        .import_osu(Bytes::from(osu), peace_scores::status::RankedStatus::Ranked)
        .await
        .unwrap();
    host.say("#multiplayer", "!mp map 4242").await;
    let d = wait_update(&mut guest, "map 4242", |d| d.beatmap_id == 4242).await;
    assert_eq!(d.beatmap_md5, map.md5);
    assert_eq!(
        d.beatmap_name,
        format!("{} - {} [{}]", map.artist, map.title, map.version)
    );
    host.say("#multiplayer", "!mp freemod").await;
    wait_update(&mut guest, "freemod on", |d| d.freemod).await;
    host.say("#multiplayer", "!mp freemod").await;
    wait_update(&mut guest, "freemod off", |d| !d.freemod).await;

    // Locked slots: the guest cannot move until they are unlocked again.
    host.say("#multiplayer", "!mp lock").await;
    host.wait_for("locked", bot_said("are locked".into())).await;
    guest.send([c::MatchChangeSlot { slot_id: 5 }.into()]).await;
    host.say("#multiplayer", "!mp unlock").await;
    host.wait_for("unlocked", bot_said("are unlocked".into()))
        .await;
    assert!(
        !host.seen.iter().any(|p| matches!(p,
            ServerPacket::UpdateMatch(u) if u.data.slots[5].user_id == g)),
        "the guest moved while slots were locked"
    );
    guest.send([c::MatchChangeSlot { slot_id: 5 }.into()]).await;
    wait_update(&mut host, "guest in slot 5", |d| d.slots[5].user_id == g).await;

    // A password from the referee: the outsider needs it.
    host.say("#multiplayer", "!mp password letmein").await;
    host.wait_for("password set", bot_said("Changed the password".into()))
        .await;
    outsider
        .send([c::JoinMatch {
            match_id: i32::from(id),
            password: String::new(),
        }
        .into()])
        .await;
    outsider
        .wait_for("MATCH_JOIN_FAIL", |p| {
            is(p, peace_bancho::ServerPacketId::MatchJoinFail)
        })
        .await;
    join(&mut outsider, id, "letmein").await;
    host.say("#multiplayer", "!mp password").await;
    host.wait_for("password removed", bot_said("Removed the password".into()))
        .await;

    // A timer counts down without starting the match.
    host.say("#multiplayer", "!mp timer 1").await;
    host.wait_for("timer", bot_said("Countdown ends in 1 second".into()))
        .await;

    // Host by name: the guest becomes host; asking again says so instead of claiming it.
    host.say("#multiplayer", "!mp host Guest").await;
    wait_update(&mut host, "guest hosts", |d| d.host_id == g).await;
    guest
        .wait_for("MATCH_TRANSFER_HOST", |p| {
            is(p, peace_bancho::ServerPacketId::MatchTransferHost)
        })
        .await;
    guest.say("#multiplayer", "!mp host Guest").await;
    guest
        .wait_for("already host", bot_said("Guest is already the host".into()))
        .await;

    // A player is in one match at a time: creating another leaves this one.
    let second = create(&mut outsider, "a second match", None).await.match_id;
    wait_update(&mut guest, "the outsider left", |d| {
        d.slots.iter().all(|s| s.user_id != outsider.user_id)
    })
    .await;
    browser
        .wait_for(
            "the second match in the lobby",
            |p| matches!(p, ServerPacket::NewMatch(m) if m.data.match_id == second),
        )
        .await;
    // The player who parted the lobby heard none of it.
    leaver.poll().await;
    assert!(
        !leaver.seen.iter().any(|p| matches!(
            p,
            ServerPacket::NewMatch(_)
                | ServerPacket::UpdateMatch(_)
                | ServerPacket::DisposeMatch(_)
        )),
        "{:?}",
        leaver.seen
    );
}
