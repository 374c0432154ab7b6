//! Ratings, favourites, comments and client reports against real databases (SQLite
//! always, PostgreSQL and MySQL when configured).

#![allow(clippy::unwrap_used)]

mod common;

use common::new_user;
use peace_db::{
    CommentTarget, Database, FavouriteOutcome, MAX_COMMENT_LEN, MAX_FAVOURITES, NewComment,
    Privileges, RatingOutcome, ReportKind,
};

on_every_backend!(
    one_rating_per_player_and_map_even_at_once,
    favourites_are_unique_and_capped,
    comments_are_listed_by_target_without_restricted_authors,
    client_reports_are_kept_cut_to_size,
    reading_a_conversation_marks_its_waiting_mail,
);

const MAP: &str = "0123456789abcdef0123456789abcdef";

async fn one_rating_per_player_and_map_even_at_once(db: Database) {
    let a = db.create_user(&new_user("Rater", "r@e.e")).await.unwrap();
    let b = db.create_user(&new_user("Other", "o@e.e")).await.unwrap();
    assert_eq!(db.beatmap_rating(MAP).await.unwrap(), None);
    assert!(!db.has_rated(MAP, a.id).await.unwrap());
    // Eight votes of one player at once: exactly one is stored.
    let votes = (0..8).map(|i| {
        let db = db.clone();
        async move { db.rate_beatmap(MAP, a.id, 3 + i % 2).await.unwrap() }
    });
    let outcomes = futures_like_join_all(votes).await;
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == RatingOutcome::Stored)
            .count(),
        1,
        "{outcomes:?}"
    );
    assert!(db.has_rated(MAP, a.id).await.unwrap());
    let first = db.beatmap_rating(MAP).await.unwrap().unwrap();
    assert!(first == 3.0 || first == 4.0, "{first}");
    assert_eq!(
        db.rate_beatmap(MAP, b.id, 10).await.unwrap(),
        RatingOutcome::Stored
    );
    let mean = db.beatmap_rating(MAP).await.unwrap().unwrap();
    assert!((mean - (first + 10.0) / 2.0).abs() < 1e-9, "{mean}");
    // Out of range is clamped; another map is another vote.
    db.rate_beatmap("ffffffffffffffffffffffffffffffff", b.id, 99)
        .await
        .unwrap();
    assert_eq!(
        db.beatmap_rating("ffffffffffffffffffffffffffffffff")
            .await
            .unwrap(),
        Some(10.0)
    );
}

async fn favourites_are_unique_and_capped(db: Database) {
    let a = db.create_user(&new_user("Fan", "f@e.e")).await.unwrap();
    assert!(db.favourites(a.id).await.unwrap().is_empty());
    assert_eq!(
        db.add_favourite(a.id, 42).await.unwrap(),
        FavouriteOutcome::Added
    );
    assert_eq!(
        db.add_favourite(a.id, 42).await.unwrap(),
        FavouriteOutcome::AlreadyFavourite
    );
    assert_eq!(
        db.add_favourite(a.id, 7).await.unwrap(),
        FavouriteOutcome::Added
    );
    let mut sets = db.favourites(a.id).await.unwrap();
    sets.sort_unstable();
    assert_eq!(sets, [7, 42]);
    for set in 1000..1000 + (MAX_FAVOURITES as i32 - 2) {
        assert_eq!(
            db.add_favourite(a.id, set).await.unwrap(),
            FavouriteOutcome::Added
        );
    }
    assert_eq!(
        db.add_favourite(a.id, 1).await.unwrap(),
        FavouriteOutcome::TooMany
    );
    assert_eq!(
        db.favourites(a.id).await.unwrap().len() as i64,
        MAX_FAVOURITES
    );
}

async fn comments_are_listed_by_target_without_restricted_authors(db: Database) {
    let a = db.create_user(&new_user("Talker", "t@e.e")).await.unwrap();
    let b = db.create_user(&new_user("Hidden", "h@e.e")).await.unwrap();
    db.set_privileges(b.id, Privileges::DEFAULT_NEW.union(Privileges::RESTRICTED))
        .await
        .unwrap();
    let post = |user_id, target, target_id, song_time, body: &'static str| {
        let db = db.clone();
        async move {
            db.post_comment(&NewComment {
                user_id,
                target,
                target_id,
                song_time,
                colour: "",
                body,
            })
            .await
            .unwrap()
        }
    };
    post(a.id, CommentTarget::Map, 10, 5000, "later").await;
    post(a.id, CommentTarget::Set, 1, 1000, "on the set").await;
    post(a.id, CommentTarget::Replay, 99, 2000, "on a replay").await;
    post(a.id, CommentTarget::Map, 11, 1, "another map").await;
    post(b.id, CommentTarget::Map, 10, 3000, "restricted").await;
    let long = "x".repeat(MAX_COMMENT_LEN * 2);
    db.post_comment(&NewComment {
        user_id: a.id,
        target: CommentTarget::Map,
        target_id: 10,
        song_time: 4000,
        colour: "ff0000",
        body: &long,
    })
    .await
    .unwrap();
    let seen = db.comments(Some(1), Some(10), None, a.id).await.unwrap();
    let bodies: Vec<_> = seen.iter().map(|c| c.body.len()).collect();
    assert_eq!(bodies, ["on the set".len(), MAX_COMMENT_LEN, "later".len()]);
    assert_eq!(seen[1].colour, "ff0000");
    assert_eq!(seen[0].target, CommentTarget::Set);
    // The restricted author sees their own.
    let own = db.comments(None, Some(10), Some(99), b.id).await.unwrap();
    assert_eq!(own.len(), 4);
    assert!(own.iter().any(|c| c.body == "restricted"));
    assert!(own.iter().any(|c| c.target == CommentTarget::Replay));
}

async fn client_reports_are_kept_cut_to_size(db: Database) {
    let a = db.create_user(&new_user("Flagged", "x@e.e")).await.unwrap();
    db.record_client_report(Some(a.id), ReportKind::Flags, 1 << 4, "b20250101", "")
        .await
        .unwrap();
    let huge = "é".repeat(peace_db::MAX_REPORT_DETAIL_LEN + 10);
    db.record_client_report(None, ReportKind::Error, 0, &"v".repeat(500), &huge)
        .await
        .unwrap();
    let flags = db.client_reports(ReportKind::Flags, 10).await.unwrap();
    assert_eq!(flags.len(), 1);
    assert_eq!((flags[0].user_id, flags[0].flags), (Some(a.id), 16));
    let errors = db.client_reports(ReportKind::Error, 10).await.unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].user_id, None);
    assert_eq!(
        errors[0].detail.chars().count(),
        peace_db::MAX_REPORT_DETAIL_LEN
    );
    assert_eq!(errors[0].client_version.len(), 64);
}

async fn reading_a_conversation_marks_its_waiting_mail(db: Database) {
    let a = db.create_user(&new_user("Reader", "re@e.e")).await.unwrap();
    let b = db.create_user(&new_user("Writer", "wr@e.e")).await.unwrap();
    let c = db.create_user(&new_user("Third", "th@e.e")).await.unwrap();
    db.store_mail(b.id, a.id, "hi").await.unwrap();
    db.store_mail(b.id, a.id, "again").await.unwrap();
    db.store_mail(c.id, a.id, "other").await.unwrap();
    assert_eq!(db.mark_mail_read(a.id, b.id).await.unwrap(), 2);
    assert_eq!(db.mark_mail_read(a.id, b.id).await.unwrap(), 0);
    let left: Vec<_> = db
        .take_mail(a.id)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(left, ["other"]);
}

/// Runs the futures at once on this runtime and collects their outputs in order.
async fn futures_like_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}
