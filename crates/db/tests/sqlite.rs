//! The repositories against a real SQLite file, migrated from `migrations/sqlite`.

#![allow(clippy::unwrap_used)]

use peace_db::{Database, DbConfig, DbError, NewUser, Privileges, Relationship, Stats};

async fn fresh() -> (Database, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/peace.db", dir.path().display());
    let db = Database::connect(&DbConfig::new(url)).await.unwrap();
    assert!(db.migrate().await.unwrap() > 0);
    (db, dir)
}

fn new_user<'a>(name: &'a str, email: &'a str) -> NewUser<'a> {
    NewUser {
        name,
        email,
        password_bcrypt: "$2b$04$invalidinvalidinvalidinvalidinvalidinvalidinvalidinvali",
        privileges: Privileges::DEFAULT_NEW,
        country: "XX",
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn migrations_seed_the_bot_and_default_channels() {
    let (db, _dir) = fresh().await;
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

#[tokio::test(flavor = "multi_thread")]
async fn names_and_emails_are_unique_regardless_of_case() {
    let (db, _dir) = fresh().await;
    let user = db
        .create_user(&new_user("Some Player", "A@Example.com"))
        .await
        .unwrap();
    assert_eq!(user.safe_name, "some_player");
    assert_eq!(user.email, "a@example.com");
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

#[tokio::test(flavor = "multi_thread")]
async fn relationships_mail_stats_and_logins() {
    let (db, _dir) = fresh().await;
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
    db.store_mail(a.id, b.id, "second").await.unwrap();
    let mail = db.take_mail(b.id).await.unwrap();
    assert_eq!(
        mail.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        ["first", "second"]
    );
    assert_eq!(mail[0].from_name, "alice");
    assert!(
        db.take_mail(b.id).await.unwrap().is_empty(),
        "mail is delivered once"
    );

    assert_eq!(db.stats(a.id, 0).await.unwrap().pp, 0);
    db.save_stats(&Stats {
        user_id: a.id,
        mode: 0,
        pp: 500,
        ..Default::default()
    })
    .await
    .unwrap();
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
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unusable_database_is_an_error_not_a_hang() {
    let config = DbConfig {
        url: "sqlite:///proc/peace-cannot-exist/peace.db".into(),
        pool_size: 2,
        query_timeout: std::time::Duration::from_secs(2),
    };
    match Database::connect(&config).await {
        Err(DbError::Unavailable(_)) => {}
        Ok(db) => assert!(db.user_by_id(1).await.is_err()),
        Err(other) => panic!("unexpected error {other}"),
    }
    assert!(matches!(
        Database::connect(&DbConfig::new("mongodb://x")).await,
        Err(DbError::BadUrl(_))
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn match_games_are_recorded_with_their_scores() {
    let (db, _dir) = fresh().await;
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
}

#[tokio::test(flavor = "multi_thread")]
async fn moderation_actions_are_audited() {
    let (db, _dir) = fresh().await;
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
