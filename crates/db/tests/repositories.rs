//! The repositories against real databases: SQLite always, PostgreSQL and MySQL when
//! their test servers are configured (`peace_db::testing`). Every test runs once per
//! backend on a fresh, migrated database of its own.

#![allow(clippy::unwrap_used)]

mod common;

use common::new_user;
use peace_db::{
    Database, DbError, MAX_SESSION_CHANNELS_LEN, MAX_WAITING_MAIL_PER_SENDER, MailOutcome,
    Privileges, Relationship, SessionRecord, Stats,
};

on_every_backend!(
    migrations_seed_the_bot_and_default_channels,
    names_and_emails_are_unique_regardless_of_case,
    relationships_mail_stats_and_logins,
    match_games_are_recorded_with_their_scores,
    moderation_actions_are_audited,
    racing_registrations_of_one_name_make_one_account,
    session_records_belong_to_one_session_at_a_time,
    privileges_change_only_from_the_value_that_was_read,
    offline_mail_follows_silences_blocks_and_a_cap,
);

async fn migrations_seed_the_bot_and_default_channels(db: Database) {
    let bot = db.user_by_id(1).await.unwrap().unwrap();
    assert!(bot.privileges().contains(Privileges::BOT));
    let names: Vec<_> = db
        .channels()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["#announce", "#help", "#lobby", "#osu"]);
    // Migrating again is a no-op.
    assert_eq!(db.migrate().await.unwrap(), 0);
}

async fn names_and_emails_are_unique_regardless_of_case(db: Database) {
    let user = db
        .create_user(&new_user("Some Player", "A@Example.com"))
        .await
        .unwrap();
    assert_eq!(user.safe_name, "some_player");
    assert_eq!(user.email, "a@example.com");
    // The bot has id 1: every backend's id counter starts after it (PostgreSQL's
    // sequence only because the migration moves it).
    assert_eq!(user.id, 2, "{}", db.backend());
    assert!(matches!(
        db.create_user(&new_user("some_PLAYER", "b@example.com"))
            .await,
        Err(DbError::Conflict)
    ));
    assert!(matches!(
        db.create_user(&new_user("Other", "a@EXAMPLE.com")).await,
        Err(DbError::Conflict)
    ));
    assert!(db.email_taken("A@EXAMPLE.COM").await.unwrap());
    assert_eq!(
        db.user_by_name("SOME player").await.unwrap().unwrap().id,
        user.id
    );
    // Comparisons are exact beyond case: MySQL's default collation would make these
    // two names (and these emails) collide; the schema's binary collation does not.
    let accented = db
        .create_user(&new_user("José", "josé@example.com"))
        .await
        .unwrap();
    let plain = db
        .create_user(&new_user("Jose", "jose@example.com"))
        .await
        .unwrap();
    assert_ne!(accented.id, plain.id);
    assert_eq!(db.user_by_name("JOSÉ").await.unwrap().unwrap().name, "José");
    // Injection strings are plain data.
    let evil = db
        .create_user(&new_user("x'; DROP TABLE users;--", "e@e.e"))
        .await
        .unwrap();
    assert_eq!(
        db.user_by_id(evil.id).await.unwrap().unwrap().name,
        "x'; DROP TABLE users;--"
    );
}

async fn relationships_mail_stats_and_logins(db: Database) {
    let a = db.create_user(&new_user("alice", "a@x.y")).await.unwrap();
    let b = db.create_user(&new_user("bob", "b@x.y")).await.unwrap();

    db.set_relationship(a.id, b.id, Relationship::Friend)
        .await
        .unwrap();
    assert_eq!(db.relationships(a.id).await.unwrap().friends, [b.id]);
    db.set_relationship(a.id, b.id, Relationship::Block)
        .await
        .unwrap();
    let rel = db.relationships(a.id).await.unwrap();
    assert!(rel.friends.is_empty());
    assert_eq!(rel.blocked, [b.id]);
    db.remove_relationship(a.id, b.id, Relationship::Block)
        .await
        .unwrap();
    assert_eq!(db.relationships(a.id).await.unwrap(), Default::default());

    db.store_mail(a.id, b.id, "first").await.unwrap();
    // Four-byte UTF-8 survives (MySQL's three-byte "utf8" would refuse it).
    db.store_mail(a.id, b.id, "second 🎵").await.unwrap();
    let mail = db.take_mail(b.id).await.unwrap();
    assert_eq!(
        mail.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        ["first", "second 🎵"]
    );
    assert_eq!(mail[0].from_name, "alice");
    assert!(
        db.take_mail(b.id).await.unwrap().is_empty(),
        "mail is delivered once"
    );

    assert_eq!(db.stats(a.id, 0).await.unwrap().pp, 0);
    let saved = Stats {
        user_id: a.id,
        mode: 0,
        pp: 500,
        accuracy: 98.25,
        total_score: 5_000_000_000,
        ..Default::default()
    };
    db.save_stats(&saved).await.unwrap();
    // Floats and BIGINTs come back as they went in on every backend.
    assert_eq!(db.stats(a.id, 0).await.unwrap(), saved);
    db.save_stats(&Stats {
        user_id: b.id,
        mode: 0,
        pp: 900,
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(db.global_rank(0, 500).await.unwrap(), 2);
    assert_eq!(db.global_rank(0, 0).await.unwrap(), 0);

    db.record_login(&peace_db::NewLogin {
        user_id: a.id,
        ip: "127.0.0.1".into(),
        client_version: "b20240101".into(),
        client_hashes: "a:b:c:d:e:".into(),
        created_at: peace_db::unix_now(),
    })
    .await
    .unwrap();
    // Client-chosen text longer than its column is cut, not refused, on every backend.
    db.record_login(&peace_db::NewLogin {
        user_id: a.id,
        ip: "127.0.0.1".into(),
        client_version: "b".repeat(100),
        client_hashes: "é".repeat(2000),
        created_at: peace_db::unix_now(),
    })
    .await
    .unwrap();
}

async fn match_games_are_recorded_with_their_scores(db: Database) {
    let a = db.create_user(&new_user("alice", "a@x.y")).await.unwrap();
    let game = peace_db::NewMatchGame {
        match_id: 7,
        match_name: "test".into(),
        beatmap_id: 75,
        beatmap_md5: "0".repeat(32),
        beatmap_name: "artist - title [diff]".into(),
        mode: 0,
        mods: 64,
        win_condition: 0,
        team_type: 0,
        freemod: false,
        aborted: false,
        started_at: 100,
        ended_at: 200,
    };
    let score = peace_db::MatchScore {
        game_id: 0,
        user_id: a.id,
        slot: 0,
        team: 0,
        mods: 64,
        score: 1_000_000,
        max_combo: 500,
        count_300: 400,
        count_100: 10,
        count_50: 1,
        count_geki: 50,
        count_katu: 5,
        count_miss: 0,
        passed: true,
    };
    let id = db
        .record_match_game(&game, std::slice::from_ref(&score))
        .await
        .unwrap();
    let stored = db.match_scores(id).await.unwrap();
    assert_eq!(
        stored,
        [peace_db::MatchScore {
            game_id: id,
            ..score
        }]
    );
    assert_eq!(db.match_game_count(7).await.unwrap(), 1);
    // Names the host's client chose, longer than their columns: cut, not refused.
    let long = peace_db::NewMatchGame {
        match_name: "m".repeat(100),
        beatmap_name: "🎵".repeat(300),
        started_at: 300,
        ..game
    };
    db.record_match_game(&long, &[]).await.unwrap();
    assert_eq!(db.match_game_count(7).await.unwrap(), 2);
}

async fn moderation_actions_are_audited(db: Database) {
    let a = db.create_user(&new_user("mod", "m@x.y")).await.unwrap();
    let b = db.create_user(&new_user("target", "t@x.y")).await.unwrap();
    db.audit(a.id, Some(b.id), "silence", "spam").await.unwrap();
    db.audit(a.id, None, "alert", &"x".repeat(5000))
        .await
        .unwrap();
    let log = db.audit_log(10).await.unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(
        (
            log[0].action.as_str(),
            log[0].target_id,
            log[0].reason.len()
        ),
        ("alert", None, 512)
    );
    assert_eq!(
        (
            log[1].action.as_str(),
            log[1].target_id,
            log[1].reason.as_str()
        ),
        ("silence", Some(b.id), "spam")
    );
}

async fn racing_registrations_of_one_name_make_one_account(db: Database) {
    // Spellings of one name, registered at the same moment: the unique `safe_name`
    // decides, and every loser sees `Conflict` (not a generic query error) on every
    // backend.
    let names = ["Racer", "racer", "RACER", "Racer ", "rAcEr", "racer"];
    let emails: Vec<String> = (0..names.len()).map(|i| format!("r{i}@x.y")).collect();
    let attempts = names
        .iter()
        .zip(&emails)
        .map(|(name, email)| {
            let db = db.clone();
            let (name, email) = (name.to_string(), email.clone());
            tokio::spawn(async move { db.create_user(&new_user(&name, &email)).await })
        })
        .collect::<Vec<_>>();
    let mut created = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(user) => {
                created += 1;
                assert_eq!(user.safe_name, "racer");
            }
            Err(DbError::Conflict) => {}
            Err(e) => panic!("{}: {e}", db.backend()),
        }
    }
    assert_eq!(created, 1, "{}", db.backend());
    assert_eq!(db.user_count().await.unwrap(), 2);
}

fn keys(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

async fn session_records_belong_to_one_session_at_a_time(db: Database) {
    let backend = db.backend();
    let a = db.create_user(&new_user("alice", "a@x.y")).await.unwrap();
    let b = db.create_user(&new_user("bob", "b@x.y")).await.unwrap();
    assert_eq!(db.session_record(a.id).await.unwrap(), None);

    // An id above i64::MAX is stored as a negative BIGINT and must come back unchanged.
    let first = SessionRecord {
        user_id: a.id,
        session_id: u64::MAX - 41,
        utc_offset: -5,
        block_non_friend_dms: true,
        channels: keys(&["#osu", "#lobby"]),
        created_at: 100,
        refreshed_at: 100,
    };
    db.save_session_record(&first).await.unwrap();
    assert_eq!(
        db.session_record(a.id).await.unwrap().as_ref(),
        Some(&first),
        "{backend}"
    );

    // A new login replaces the record.
    let second = SessionRecord {
        session_id: 7,
        utc_offset: 9,
        block_non_friend_dms: false,
        channels: Vec::new(),
        created_at: 200,
        refreshed_at: 200,
        ..first.clone()
    };
    db.save_session_record(&second).await.unwrap();
    assert_eq!(
        db.session_record(a.id).await.unwrap().as_ref(),
        Some(&second)
    );

    // The replaced session, still shutting down somewhere, changes nothing.
    let before = peace_db::unix_now();
    db.refresh_session_record(a.id, first.session_id)
        .await
        .unwrap();
    db.set_session_channels(a.id, first.session_id, &keys(&["#help"]))
        .await
        .unwrap();
    assert!(
        !db.delete_session_record(a.id, first.session_id)
            .await
            .unwrap()
    );
    assert_eq!(
        db.session_record(a.id).await.unwrap().as_ref(),
        Some(&second),
        "{backend}"
    );

    // The current session refreshes its record and changes its channels.
    db.refresh_session_record(a.id, second.session_id)
        .await
        .unwrap();
    let refreshed = db.session_record(a.id).await.unwrap().unwrap();
    assert!(refreshed.refreshed_at >= before, "{backend}");
    assert_eq!(
        SessionRecord {
            refreshed_at: second.refreshed_at,
            ..refreshed
        },
        second
    );
    db.set_session_channels(a.id, second.session_id, &keys(&["#osu", "#announce"]))
        .await
        .unwrap();
    let moved = db.session_record(a.id).await.unwrap().unwrap();
    assert_eq!(moved.channels, ["#osu", "#announce"]);
    assert!(moved.refreshed_at >= before);
    assert_eq!(moved.created_at, second.created_at);

    // More keys than the column holds: whole keys are dropped from the end, and what is
    // left fits the column on every backend (PostgreSQL and MySQL would refuse more).
    let many: Vec<String> = (0..300).map(|i| format!("#channel_{i:03}")).collect();
    db.set_session_channels(a.id, second.session_id, &many)
        .await
        .unwrap();
    let capped = db.session_record(a.id).await.unwrap().unwrap().channels;
    let kept = capped.len();
    assert!(kept > 0 && kept < many.len(), "{backend}: {kept}");
    assert_eq!(capped[..], many[..kept]);
    let stored_len = capped.iter().map(String::len).sum::<usize>() + kept - 1;
    assert!(stored_len <= MAX_SESSION_CHANNELS_LEN);
    assert!(stored_len + 1 + many[kept].len() > MAX_SESSION_CHANNELS_LEN);
    // The same cut applies to a whole record being saved.
    db.save_session_record(&SessionRecord {
        channels: many.clone(),
        ..second.clone()
    })
    .await
    .unwrap();
    assert_eq!(
        db.session_record(a.id).await.unwrap().unwrap().channels,
        capped
    );

    // Pruning takes records last refreshed before the bound, and only those.
    let stale = SessionRecord {
        user_id: b.id,
        session_id: 1u64 << 63,
        refreshed_at: 150,
        ..first.clone()
    };
    db.save_session_record(&stale).await.unwrap();
    db.refresh_session_record(a.id, second.session_id)
        .await
        .unwrap();
    assert_eq!(db.prune_session_records(150).await.unwrap(), 0, "{backend}");
    assert_eq!(db.prune_session_records(151).await.unwrap(), 1, "{backend}");
    assert_eq!(db.session_record(b.id).await.unwrap(), None);
    assert!(db.session_record(a.id).await.unwrap().is_some());

    // The session that owns the record deletes it, once.
    assert!(
        db.delete_session_record(a.id, second.session_id)
            .await
            .unwrap()
    );
    assert!(
        !db.delete_session_record(a.id, second.session_id)
            .await
            .unwrap()
    );
    assert_eq!(db.session_record(a.id).await.unwrap(), None);
    // Without a record, refreshing or moving channels is a no-op, not an error.
    db.refresh_session_record(a.id, second.session_id)
        .await
        .unwrap();
    db.set_session_channels(a.id, second.session_id, &keys(&["#osu"]))
        .await
        .unwrap();
    assert_eq!(db.session_record(a.id).await.unwrap(), None);
    assert_eq!(db.prune_session_records(i64::MAX).await.unwrap(), 0);
}

async fn privileges_change_only_from_the_value_that_was_read(db: Database) {
    let user = db
        .create_user(&new_user("Target", "target@example.com"))
        .await
        .unwrap();
    let read = user.privileges();
    let restricted = read.union(Privileges::RESTRICTED);
    assert!(
        db.replace_privileges(user.id, read, restricted)
            .await
            .unwrap()
    );
    // A second change computed from the same (now stale) read must not land: it would
    // write back a value without the restriction.
    let banned = read.without(Privileges::NORMAL);
    assert!(!db.replace_privileges(user.id, read, banned).await.unwrap());
    let now = db.user_by_id(user.id).await.unwrap().unwrap().privileges();
    assert_eq!(now, restricted, "{}", db.backend());
    // Computed again from the fresh value, it keeps both.
    let both = now.without(Privileges::NORMAL);
    assert!(db.replace_privileges(user.id, now, both).await.unwrap());
    let now = db.user_by_id(user.id).await.unwrap().unwrap().privileges();
    assert!(now.is_restricted() && !now.contains(Privileges::NORMAL));
    // No such account: nothing changes.
    assert!(!db.replace_privileges(9999, now, read).await.unwrap());
}

async fn offline_mail_follows_silences_blocks_and_a_cap(db: Database) {
    let a = db.create_user(&new_user("alice", "a@x.y")).await.unwrap();
    let b = db.create_user(&new_user("bob", "b@x.y")).await.unwrap();
    let c = db.create_user(&new_user("carol", "c@x.y")).await.unwrap();
    let stored = |outcome: MailOutcome| assert_eq!(outcome, MailOutcome::Stored);

    db.set_silence_end(b.id, peace_db::unix_now() + 600)
        .await
        .unwrap();
    assert_eq!(
        db.store_mail(a.id, b.id, "hush").await.unwrap(),
        MailOutcome::Silenced
    );
    db.set_silence_end(b.id, 0).await.unwrap();

    db.set_relationship(b.id, a.id, Relationship::Block)
        .await
        .unwrap();
    assert_eq!(
        db.store_mail(a.id, b.id, "let me in").await.unwrap(),
        MailOutcome::Blocked
    );
    // Blocking is one-way: b may still write to a.
    stored(db.store_mail(b.id, a.id, "no").await.unwrap());
    db.remove_relationship(b.id, a.id, Relationship::Block)
        .await
        .unwrap();

    for i in 0..MAX_WAITING_MAIL_PER_SENDER {
        stored(db.store_mail(a.id, b.id, &format!("{i}")).await.unwrap());
    }
    assert_eq!(
        db.store_mail(a.id, b.id, "one too many").await.unwrap(),
        MailOutcome::TooMany
    );
    // The cap is per sender, and delivery makes room again.
    stored(db.store_mail(c.id, b.id, "from carol").await.unwrap());
    let mail = db.take_mail(b.id).await.unwrap();
    assert_eq!(mail.len(), 51, "{}", db.backend());
    assert!(
        mail.iter()
            .all(|m| m.body != "hush" && m.body != "let me in")
    );
    stored(db.store_mail(a.id, b.id, "room again").await.unwrap());
}
