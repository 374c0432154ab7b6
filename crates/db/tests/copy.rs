//! `Database::copy_to` (`peace db copy`): SQLite → PostgreSQL → MySQL → SQLite (the
//! server hops on the backends this run covers), comparing every row after each hop, then checking that the copies keep working: new accounts,
//! mail, games and audit entries get ids after the copied ones.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{fresh, new_user};
use peace_db::testing::{ScratchDatabase, configured_backends};
use peace_db::{
    Backend, CopyError, CopyOptions, Database, MatchScore, NewLogin, NewMatchGame, Privileges,
    Relationship, Screenshot, SessionRecord, Stats,
};

/// More players than one small batch, with every table filled.
const PLAYERS: usize = 23;

async fn populate(db: &Database) {
    let mut ids = Vec::new();
    for i in 0..PLAYERS {
        let name = format!("Player {i}");
        let user = db
            .create_user(&new_user(&name, &format!("p{i}@example.com")))
            .await
            .unwrap();
        ids.push(user.id);
    }
    let (first, second) = (ids[0], ids[1]);
    db.set_privileges(first, Privileges::DEFAULT_NEW.union(Privileges::ADMIN))
        .await
        .unwrap();
    for (n, &id) in ids.iter().enumerate() {
        for mode in 0..4i16 {
            db.save_stats(&Stats {
                user_id: id,
                mode,
                total_score: 10_000_000_000 + n as i64,
                ranked_score: n as i64,
                pp: (n as i32) * 10 + i32::from(mode),
                accuracy: 90.0 + n as f32 / 4.0,
                playcount: 7,
                playtime: 3600,
                max_combo: 1234,
                total_hits: 99_999,
                xh_count: 1,
                x_count: 2,
                sh_count: 3,
                s_count: 4,
                a_count: n as i32,
            })
            .await
            .unwrap();
        }
        let next = ids[(n + 1) % ids.len()];
        db.set_relationship(id, next, Relationship::Friend)
            .await
            .unwrap();
        if n % 3 == 0 {
            db.set_relationship(id, ids[(n + 2) % ids.len()], Relationship::Block)
                .await
                .unwrap();
        }
        db.record_login(&NewLogin {
            user_id: id,
            ip: format!("10.0.0.{n}"),
            client_version: "b20240101".into(),
            client_hashes: "a:b:c:d:e:".into(),
            created_at: 1_700_000_000 + n as i64,
        })
        .await
        .unwrap();
    }
    db.store_mail(first, second, "delivered").await.unwrap();
    assert_eq!(db.take_mail(second).await.unwrap().len(), 1);
    db.store_mail(second, first, "waiting for you 🎵")
        .await
        .unwrap();
    db.store_mail(1, first, "from the bot").await.unwrap();
    // Silenced after their mail arrived (mail to a silenced player is not kept).
    db.set_silence_end(second, 1_900_000_000).await.unwrap();
    for game in 0..3 {
        let scores: Vec<MatchScore> = ids[..4]
            .iter()
            .enumerate()
            .map(|(slot, &user_id)| MatchScore {
                game_id: 0,
                user_id,
                slot: slot as i16,
                team: 0,
                mods: 64,
                score: 500_000 + game,
                max_combo: 300,
                count_300: 200,
                count_100: 10,
                count_50: 1,
                count_geki: 20,
                count_katu: 2,
                count_miss: game,
                passed: slot != 3,
            })
            .collect();
        db.record_match_game(
            &NewMatchGame {
                match_id: 5,
                match_name: "copy test".into(),
                beatmap_id: 75,
                beatmap_md5: "0".repeat(32),
                beatmap_name: "artist - title [diff]".into(),
                mode: 0,
                mods: 64,
                win_condition: 0,
                team_type: 0,
                freemod: game == 1,
                aborted: game == 2,
                started_at: 100 + i64::from(game),
                ended_at: 200 + i64::from(game),
            },
            &scores,
        )
        .await
        .unwrap();
    }
    db.audit(first, Some(second), "silence", "spam")
        .await
        .unwrap();
    db.audit(first, None, "alert", "maintenance").await.unwrap();
    // Statuses staff gave by hand, to a set and to one map (a two-column key).
    for (scope, target_id, status) in [
        (peace_db::OVERRIDE_SET, 77, 4),
        (peace_db::OVERRIDE_MAP, 4242, 1),
    ] {
        db.override_status(&peace_db::StatusOverride {
            scope,
            target_id,
            status,
            set_by: first,
            set_at: 1_700_000_000,
        })
        .await
        .unwrap();
    }
    // What the client keeps besides scores (ratings, favourites, comments, reports).
    for (n, &id) in ids.iter().enumerate() {
        db.rate_beatmap("0123456789abcdef0123456789abcdef", id, (n % 10 + 1) as i16)
            .await
            .unwrap();
        db.add_favourite(id, 100 + n as i32).await.unwrap();
        db.post_comment(&peace_db::NewComment {
            user_id: id,
            target: peace_db::CommentTarget::Map,
            target_id: 5,
            song_time: n as i32 * 100,
            colour: "",
            body: "nice",
        })
        .await
        .unwrap();
    }
    for (n, &id) in ids.iter().enumerate().take(3) {
        db.add_screenshot(&Screenshot {
            id: format!("{n:016x}"),
            user_id: id,
            format: if n % 2 == 0 { "png" } else { "jpg" }.into(),
            size_bytes: 1000 + n as i32,
            created_at: 1_700_000_000 + n as i64,
        })
        .await
        .unwrap();
    }
    db.record_client_report(Some(first), peace_db::ReportKind::Flags, 4, "b1", "")
        .await
        .unwrap();
    db.record_client_report(None, peace_db::ReportKind::Error, 0, "b1", "trace")
        .await
        .unwrap();
    // Session records of most players (more than one small batch), with ids on both
    // sides of i64::MAX, so that the copy keeps every bit.
    for (n, &id) in ids.iter().enumerate().skip(2) {
        db.save_session_record(&SessionRecord {
            user_id: id,
            session_id: (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            utc_offset: n as i16 - 12,
            block_non_friend_dms: n % 2 == 0,
            channels: if n % 4 == 0 {
                Vec::new()
            } else {
                vec!["#osu".into(), format!("#mp_{n}")]
            },
            created_at: 1_700_000_000 + n as i64,
            refreshed_at: 1_700_000_100 + n as i64,
        })
        .await
        .unwrap();
    }
}

/// Every table's rows, sorted (backends may order text keys by different collations).
async fn contents(db: &Database) -> Vec<(&'static str, Vec<String>)> {
    let mut dump = db.dump_rows().await.unwrap();
    for (_, rows) in &mut dump {
        rows.sort_unstable();
    }
    dump
}

async fn assert_same(source: &Database, target: &Database) {
    let (a, b) = (contents(source).await, contents(target).await);
    for ((table, rows_a), (_, rows_b)) in a.iter().zip(&b) {
        assert_eq!(
            rows_a,
            rows_b,
            "table {table} differs between {} and {}",
            source.backend(),
            target.backend()
        );
    }
    assert_eq!(
        source.row_counts().await.unwrap(),
        target.row_counts().await.unwrap()
    );
}

/// The id of the player `populate` registered `n`-th (counting from zero).
async fn player_id(db: &Database, n: usize) -> i32 {
    db.user_by_name(&format!("Player {n}"))
        .await
        .unwrap()
        .unwrap()
        .id
}

/// After a copy the database must go on handing out ids past the copied ones.
async fn assert_usable_after_copy(db: &Database) {
    let backend = db.backend();
    let before = db.user_count().await.unwrap();
    let user = db
        .create_user(&new_user("After Copy", "after@example.com"))
        .await
        .unwrap_or_else(|e| panic!("{backend}: registering after the copy: {e}"));
    assert_eq!(i64::from(user.id), before + 1, "{backend}");
    assert!(db.user_by_name("player 3").await.unwrap().is_some());
    assert_eq!(
        db.relationships(user.id - 1).await.unwrap().friends.len(),
        1,
        "{backend}"
    );
    db.store_mail(user.id, 2, "new mail").await.unwrap();
    let mail = db.take_mail(2).await.unwrap();
    assert_eq!(
        mail.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        ["waiting for you 🎵", "from the bot", "new mail"],
        "{backend}"
    );
    assert!(mail.windows(2).all(|w| w[0].id < w[1].id));
    let game = db
        .record_match_game(
            &NewMatchGame {
                match_id: 6,
                match_name: "after".into(),
                beatmap_id: 1,
                beatmap_md5: "1".repeat(32),
                beatmap_name: "x".into(),
                mode: 0,
                mods: 0,
                win_condition: 0,
                team_type: 0,
                freemod: false,
                aborted: false,
                started_at: 1,
                ended_at: 2,
            },
            &[],
        )
        .await
        .unwrap();
    assert_eq!(game, 4, "{backend}");
    db.audit(user.id, None, "alert", "after").await.unwrap();
    assert_eq!(db.audit_log(1).await.unwrap()[0].id, 3, "{backend}");
    let moved = db
        .session_record(player_id(db, 5).await)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(moved.session_id, 5u64.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    assert_eq!(moved.channels, ["#osu", "#mp_5"], "{backend}");
    assert!(
        db.delete_session_record(moved.user_id, moved.session_id)
            .await
            .unwrap()
    );
    db.save_session_record(&SessionRecord {
        user_id: user.id,
        session_id: u64::MAX,
        utc_offset: 0,
        block_non_friend_dms: false,
        channels: vec!["#osu".into()],
        created_at: 1,
        refreshed_at: 1,
    })
    .await
    .unwrap();
    db.record_login(&NewLogin {
        user_id: user.id,
        ip: "::1".into(),
        client_version: "b1".into(),
        client_hashes: String::new(),
        created_at: 0,
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_to_postgres_to_mysql_to_sqlite_keeps_every_row_and_id() {
    let (source, _source_scratch) = fresh(Backend::Sqlite).await.unwrap();
    populate(&source).await;

    // The hops: into each configured server in turn, copying from the previous copy,
    // and back into SQLite at the end (so that SQLite is a target too).
    let mut hops: Vec<Backend> = configured_backends()
        .into_iter()
        .filter(|b| *b != Backend::Sqlite)
        .collect();
    hops.push(Backend::Sqlite);
    let mut copies: Vec<(Database, ScratchDatabase)> = Vec::new();
    for (hop, backend) in hops.into_iter().enumerate() {
        let scratch = ScratchDatabase::create(backend).await.unwrap();
        // The target is not migrated beforehand: the copy migrates it.
        let target = scratch.connect().await;
        let from = copies.last().map_or(&source, |(db, _)| db);
        // A batch smaller than the tables, so that keyset paging (also over two-column
        // keys) is exercised; the last hop uses the default.
        let options = CopyOptions {
            batch_rows: if hop == 0 {
                7
            } else {
                peace_db::COPY_BATCH_ROWS
            },
            ..CopyOptions::default()
        };
        let report = from.copy_to(&target, &options).await.unwrap();
        let users = report.tables.iter().find(|(t, _)| *t == "users").unwrap().1;
        assert_eq!(users, PLAYERS as u64 + 1, "the players and the bot");
        assert_same(from, &target).await;
        copies.push((target, scratch));
    }
    assert_same(&source, &copies.last().unwrap().0).await;
    for (copy, _) in &copies {
        assert_usable_after_copy(copy).await;
    }
}

on_every_backend!(scratch: a_non_empty_target_is_refused_unless_overwriting);

/// A copy from SQLite into `target` (migrated, on any backend).
async fn a_non_empty_target_is_refused_unless_overwriting(target: ScratchDatabase) {
    let backend = target.backend();
    let target = target.connect().await;
    let (source, _a) = fresh(Backend::Sqlite).await.unwrap();
    populate(&source).await;

    // Seeds only: a freshly migrated target counts as empty.
    assert!(target.data_beyond_seeds().await.unwrap().is_empty());
    target
        .create_user(&new_user("Already Here", "here@example.com"))
        .await
        .unwrap();
    let refused = source.copy_to(&target, &CopyOptions::default()).await;
    assert!(
        matches!(&refused, Err(CopyError::TargetNotEmpty(what)) if what.contains("users: 1")),
        "{backend}: {refused:?}"
    );
    assert!(target.user_by_name("already here").await.unwrap().is_some());

    let overwrite = CopyOptions {
        overwrite: true,
        ..CopyOptions::default()
    };
    source.copy_to(&target, &overwrite).await.unwrap();
    assert!(target.user_by_name("already here").await.unwrap().is_none());
    assert_same(&source, &target).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unmigrated_source_or_the_same_database_is_refused() {
    let unmigrated = ScratchDatabase::create(Backend::Sqlite).await.unwrap();
    let source = unmigrated.connect().await;
    let (target, _t) = fresh(Backend::Sqlite).await.unwrap();
    assert!(matches!(
        source.copy_to(&target, &CopyOptions::default()).await,
        Err(CopyError::SourceNotMigrated(9))
    ));
    assert!(matches!(
        target
            .copy_to(&target.clone(), &CopyOptions::default())
            .await,
        Err(CopyError::SameDatabase)
    ));
}
