//! What the stable client keeps on the server besides scores: map ratings
//! (`osu-rate.php`), favourite sets (`osu-getfavourites.php`, `osu-addfavourite.php`),
//! in-song comments (`osu-comment.php`) and its own reports (`lastfm.php` anti-cheat
//! flags, `osu-error.php` error reports).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};

use crate::pool::run;
use crate::repo::fit;
use crate::schema::{beatmap_ratings, client_reports, comments, favourites, mail, users};
use crate::{Database, DbError, unix_now};

/// The most favourite sets one player keeps; the client shows them all in one list.
pub const MAX_FAVOURITES: i64 = 500;

/// The longest comment kept, in characters (the client allows 80).
pub const MAX_COMMENT_LEN: usize = 128;

/// The most comments handed out for one request (a set, a map and a replay together).
pub const MAX_COMMENTS_PER_REQUEST: i64 = 1000;

/// The longest report text kept (an error report's stack trace and the like).
pub const MAX_REPORT_DETAIL_LEN: usize = 4096;

/// The longest client version kept with a report.
pub const MAX_REPORT_VERSION_LEN: usize = 64;

/// A rating, stored or refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RatingOutcome {
    Stored,
    /// The player rated this map before; the first rating stays.
    AlreadyRated,
}

/// A favourite, added or refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FavouriteOutcome {
    Added,
    AlreadyFavourite,
    /// The player has [`MAX_FAVOURITES`] already.
    TooMany,
}

/// What a comment is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommentTarget {
    /// The beatmap set (the client's "song").
    Set,
    /// One difficulty.
    Map,
    /// One replay (by score id).
    Replay,
}

impl CommentTarget {
    pub fn code(self) -> i16 {
        match self {
            CommentTarget::Set => 0,
            CommentTarget::Map => 1,
            CommentTarget::Replay => 2,
        }
    }

    pub fn from_code(code: i16) -> Option<Self> {
        match code {
            0 => Some(CommentTarget::Set),
            1 => Some(CommentTarget::Map),
            2 => Some(CommentTarget::Replay),
            _ => None,
        }
    }

    /// The client's word for it.
    pub fn word(self) -> &'static str {
        match self {
            CommentTarget::Set => "song",
            CommentTarget::Map => "map",
            CommentTarget::Replay => "replay",
        }
    }

    pub fn from_word(word: &str) -> Option<Self> {
        match word {
            "song" => Some(CommentTarget::Set),
            "map" => Some(CommentTarget::Map),
            "replay" => Some(CommentTarget::Replay),
            _ => None,
        }
    }
}

/// A comment to store.
#[derive(Debug, Clone)]
pub struct NewComment<'a> {
    pub user_id: i32,
    pub target: CommentTarget,
    pub target_id: i32,
    /// Milliseconds into the song.
    pub song_time: i32,
    /// `rrggbb` or empty.
    pub colour: &'a str,
    pub body: &'a str,
}

/// A stored comment with its author's privileges (for the client's formatting).
#[derive(Debug, Clone, PartialEq)]
pub struct Comment {
    pub user_id: i32,
    pub target: CommentTarget,
    pub target_id: i32,
    pub song_time: i32,
    pub colour: String,
    pub body: String,
    pub privileges: crate::Privileges,
}

/// The kinds of [`ClientReport`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    /// The anti-cheat flags of `lastfm.php?b=a<flags>`.
    Flags,
    /// An `osu-error.php` report.
    Error,
}

impl ReportKind {
    pub fn code(self) -> i16 {
        match self {
            ReportKind::Flags => 0,
            ReportKind::Error => 1,
        }
    }
}

/// A report as stored.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = client_reports)]
#[diesel(treat_none_as_default_value = false)]
pub struct ClientReport {
    pub id: i32,
    pub user_id: Option<i32>,
    pub kind: i16,
    pub flags: i32,
    pub client_version: String,
    pub detail: String,
    pub reported_at: i64,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = client_reports)]
#[diesel(treat_none_as_default_value = false)]
struct ReportInsert<'a> {
    user_id: Option<i32>,
    kind: i16,
    flags: i32,
    client_version: &'a str,
    detail: &'a str,
    reported_at: i64,
}

/// `beatmap_ratings` as stored (for the copy).
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = beatmap_ratings)]
pub struct RatingRow {
    pub user_id: i32,
    pub beatmap_md5: String,
    pub rating: i16,
    pub rated_at: i64,
}

/// `favourites` as stored (for the copy).
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = favourites)]
pub struct FavouriteRow {
    pub user_id: i32,
    pub set_id: i32,
    pub added_at: i64,
}

/// `comments` as stored (for the copy).
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = comments)]
pub struct CommentRow {
    pub id: i32,
    pub user_id: i32,
    pub target_kind: i16,
    pub target_id: i32,
    pub song_time: i32,
    pub colour: String,
    pub body: String,
    pub posted_at: i64,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = comments)]
struct CommentInsert<'a> {
    user_id: i32,
    target_kind: i16,
    target_id: i32,
    song_time: i32,
    colour: &'a str,
    body: &'a str,
    posted_at: i64,
}

impl Database {
    /// Stores a player's rating of a map (1 to 10, clamped). One per player and map:
    /// the primary key refuses a second, also when two arrive at once.
    pub async fn rate_beatmap(
        &self,
        md5: &str,
        user_id: i32,
        rating: i16,
    ) -> Result<RatingOutcome, DbError> {
        let row = RatingRow {
            beatmap_md5: fit(md5, 32),
            user_id,
            rating: rating.clamp(1, 10),
            rated_at: unix_now(),
        };
        let inserted = run!(self, |conn| async {
            diesel::insert_into(beatmap_ratings::table)
                .values(&row)
                .execute(conn)
                .await
        });
        match inserted {
            Ok(_) => Ok(RatingOutcome::Stored),
            Err(DbError::Conflict) => Ok(RatingOutcome::AlreadyRated),
            Err(e) => Err(e),
        }
    }

    /// Whether the player rated this map.
    pub async fn has_rated(&self, md5: &str, user_id: i32) -> Result<bool, DbError> {
        let md5 = md5.to_owned();
        run!(self, |conn| async {
            diesel::select(diesel::dsl::exists(
                beatmap_ratings::table.find((user_id, &md5)),
            ))
            .get_result(conn)
            .await
        })
    }

    /// The mean rating of a map (None: nobody rated it).
    pub async fn beatmap_rating(&self, md5: &str) -> Result<Option<f64>, DbError> {
        let md5 = md5.to_owned();
        // Counted per value (ten rows at most) rather than averaged in SQL: AVG's and
        // SUM's result types differ between the backends.
        let counts: Vec<(i16, i64)> = run!(self, |conn| async {
            beatmap_ratings::table
                .filter(beatmap_ratings::beatmap_md5.eq(&md5))
                .group_by(beatmap_ratings::rating)
                .select((beatmap_ratings::rating, diesel::dsl::count_star()))
                .load(conn)
                .await
        })?;
        let votes: i64 = counts.iter().map(|(_, n)| n).sum();
        let total: i64 = counts.iter().map(|(r, n)| i64::from(*r) * n).sum();
        Ok((votes > 0).then(|| total as f64 / votes as f64))
    }

    /// The player's favourite sets, oldest first.
    pub async fn favourites(&self, user_id: i32) -> Result<Vec<i32>, DbError> {
        run!(self, |conn| async {
            favourites::table
                .filter(favourites::user_id.eq(user_id))
                .order((favourites::added_at, favourites::set_id))
                .limit(MAX_FAVOURITES)
                .select(favourites::set_id)
                .load(conn)
                .await
        })
    }

    /// Adds a set to the player's favourites, up to [`MAX_FAVOURITES`]. The limit is
    /// read before the insert: two additions at the same instant may both pass it, so a
    /// player may end one or two over, never more than their client could send at once.
    pub async fn add_favourite(
        &self,
        user_id: i32,
        set_id: i32,
    ) -> Result<FavouriteOutcome, DbError> {
        let count: i64 = run!(self, |conn| async {
            favourites::table
                .filter(favourites::user_id.eq(user_id))
                .count()
                .get_result(conn)
                .await
        })?;
        if count >= MAX_FAVOURITES {
            return Ok(FavouriteOutcome::TooMany);
        }
        let row = FavouriteRow {
            user_id,
            set_id,
            added_at: unix_now(),
        };
        let inserted = run!(self, |conn| async {
            diesel::insert_into(favourites::table)
                .values(&row)
                .execute(conn)
                .await
        });
        match inserted {
            Ok(_) => Ok(FavouriteOutcome::Added),
            Err(DbError::Conflict) => Ok(FavouriteOutcome::AlreadyFavourite),
            Err(e) => Err(e),
        }
    }

    /// Stores a comment, its text cut to [`MAX_COMMENT_LEN`] characters.
    pub async fn post_comment(&self, comment: &NewComment<'_>) -> Result<(), DbError> {
        let body = fit(comment.body, MAX_COMMENT_LEN);
        let colour = fit(comment.colour, 6);
        let row = CommentInsert {
            user_id: comment.user_id,
            target_kind: comment.target.code(),
            target_id: comment.target_id,
            song_time: comment.song_time,
            colour: &colour,
            body: &body,
            posted_at: unix_now(),
        };
        run!(self, |conn| async {
            diesel::insert_into(comments::table)
                .values(&row)
                .execute(conn)
                .await
        })
        .map(drop)
    }

    /// The comments on a set, a map and a replay (any of them `None` to leave it out),
    /// in song order, at most [`MAX_COMMENTS_PER_REQUEST`]; restricted authors' are left
    /// out, except for the asking player's own.
    pub async fn comments(
        &self,
        set_id: Option<i32>,
        map_id: Option<i32>,
        score_id: Option<i32>,
        viewer_id: i32,
    ) -> Result<Vec<Comment>, DbError> {
        let wanted = [
            (CommentTarget::Set, set_id),
            (CommentTarget::Map, map_id),
            (CommentTarget::Replay, score_id),
        ];
        let mut out = Vec::new();
        for (target, id) in wanted {
            let Some(id) = id else { continue };
            let rows: Vec<(CommentRow, i32)> = run!(self, |conn| async {
                comments::table
                    .inner_join(users::table)
                    .filter(comments::target_kind.eq(target.code()))
                    .filter(comments::target_id.eq(id))
                    .order((comments::song_time, comments::id))
                    .limit(MAX_COMMENTS_PER_REQUEST)
                    .select((CommentRow::as_select(), users::privileges))
                    .load(conn)
                    .await
            })?;
            let shown = rows.into_iter().filter(|(row, privileges)| {
                !crate::Privileges(*privileges).contains(crate::Privileges::RESTRICTED)
                    || row.user_id == viewer_id
            });
            out.extend(shown.map(|(row, privileges)| Comment {
                user_id: row.user_id,
                target,
                target_id: row.target_id,
                song_time: row.song_time,
                colour: row.colour,
                body: row.body,
                privileges: crate::Privileges(privileges),
            }));
        }
        out.sort_by_key(|c| c.song_time);
        out.truncate(MAX_COMMENTS_PER_REQUEST as usize);
        Ok(out)
    }

    /// Records what a client reported about itself; texts are cut to their columns.
    pub async fn record_client_report(
        &self,
        user_id: Option<i32>,
        kind: ReportKind,
        flags: i32,
        client_version: &str,
        detail: &str,
    ) -> Result<(), DbError> {
        let version = fit(client_version, MAX_REPORT_VERSION_LEN);
        let detail = fit(detail, MAX_REPORT_DETAIL_LEN);
        let row = ReportInsert {
            user_id,
            kind: kind.code(),
            flags,
            client_version: &version,
            detail: &detail,
            reported_at: unix_now(),
        };
        run!(self, |conn| async {
            diesel::insert_into(client_reports::table)
                .values(&row)
                .execute(conn)
                .await
        })
        .map(drop)
    }

    /// The newest `limit` reports of one kind, newest first.
    pub async fn client_reports(
        &self,
        kind: ReportKind,
        limit: i64,
    ) -> Result<Vec<ClientReport>, DbError> {
        run!(self, |conn| async {
            client_reports::table
                .filter(client_reports::kind.eq(kind.code()))
                .order(client_reports::id.desc())
                .limit(limit)
                .select(ClientReport::as_select())
                .load(conn)
                .await
        })
    }

    /// The player read their conversation with `from_id`: whatever that sender left
    /// waiting for them is marked delivered (it will not come again at the next login).
    pub async fn mark_mail_read(&self, to_id: i32, from_id: i32) -> Result<usize, DbError> {
        run!(self, |conn| async {
            diesel::update(
                mail::table
                    .filter(mail::to_id.eq(to_id))
                    .filter(mail::from_id.eq(from_id))
                    .filter(mail::delivered.eq(false)),
            )
            .set(mail::delivered.eq(true))
            .execute(conn)
            .await
        })
    }
}
