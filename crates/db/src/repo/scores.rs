//! Scores: recording a submission with everything it changes (in one transaction), the
//! leaderboard reads, and replay views.
//!
//! `scores.status` says what a row is: [`FAILED`] (failed or quit: counted in play count
//! and total score, never listed), [`PASSED`] (a pass that is not the player's best) or
//! [`BEST`] (the player's best on that map, mode and board — the rows a leaderboard lists
//! and a player's pp adds up from). Exactly one row per (user, map, mode, board) is
//! [`BEST`]; the transaction that stores a better score demotes the old one. Staff's
//! [`HIDDEN`] and [`FLAGGED`] (above the pp cap, waiting for review) rows are neither
//! listed nor counted (`score_moderation.rs`).

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use crate::models::{BeatmapRow, NewScore, ScoreRow, Stats};
use crate::pool::run;
use crate::schema::{beatmaps, scores, stats, users};
use crate::{Database, DbError};

/// A failed or quit play.
pub const FAILED: i16 = 0;
/// A pass that is not the player's best.
pub const PASSED: i16 = 1;
/// The player's best on its map, mode and board.
pub const BEST: i16 = 2;
/// A pass staff hid (or a flagged one they rejected): never listed, never counted.
pub const HIDDEN: i16 = 3;
/// A pass above its mode's pp cap, waiting for staff: never listed or counted until
/// approved.
pub const FLAGGED: i16 = 4;

/// How many best scores a player's pp and accuracy add up from (osu!'s own cap).
pub const PP_SCORES_COUNTED: i64 = 1000;
/// The most rows one leaderboard read returns.
pub const MAX_BOARD_ROWS: i64 = 500;

/// osu!api v1 statuses (`beatmaps.status`) whose maps award pp.
pub(crate) const PP_STATUSES: [i16; 2] = [1, 2];
/// … whose maps show a board (ranked, approved, qualified, loved): a pass on one of them
/// can be a player's best.
pub(crate) const LISTED_STATUSES: [i16; 4] = [1, 2, 3, 4];
/// … and whose best scores add to ranked score (ranked, approved, loved).
pub(crate) const RANKED_SCORE_STATUSES: [i16; 3] = [1, 2, 4];

/// What a board is ordered by: score on the vanilla boards, pp on relax and autopilot
/// (whose score is meaningless).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoardOrder {
    Score,
    Pp,
}

/// A play to record.
#[derive(Debug, Clone)]
pub struct Submission {
    /// The row to insert; its `status` and `reply` are decided here.
    pub score: NewScore,
    pub passed: bool,
    /// The map has a leaderboard (ranked, approved, qualified or loved).
    pub listed: bool,
    pub order: BoardOrder,
    /// The `stats.mode` the play counts in: mode + 4 · board.
    pub stats_mode: i16,
    /// Notes hit, for `stats.total_hits`.
    pub hits: i32,
    /// A pass above the mode's pp cap: stored as [`FLAGGED`] for staff to review, never
    /// listed or counted until approved.
    pub held_for_review: bool,
}

/// Everything a submission changed, for the chart the client shows after a play.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub score_id: i32,
    pub status: i16,
    /// The stored play.
    pub score: ScoreRow,
    /// The player's best on this board before this play.
    pub previous_best: Option<ScoreRow>,
    /// Rank of the previous best, and of the best after this play (None: not listed).
    pub map_rank_before: Option<i64>,
    pub map_rank_after: Option<i64>,
    pub stats_before: Stats,
    pub stats_after: Stats,
    pub global_rank_before: i32,
    pub global_rank_after: i32,
    /// The map, with this play counted.
    pub beatmap: BeatmapRow,
}

/// The outcome of [`Database::record_score`].
#[derive(Debug, Clone)]
pub enum Recording {
    /// Stored now; `reply` is what to answer (and what a resend gets).
    Stored {
        recorded: Box<Recorded>,
        reply: String,
    },
    /// The same play (same online checksum) was stored before; answer as then.
    Duplicate { score_id: i32, reply: String },
}

/// How a player's pp and accuracy add up from their best scores: given `(pp, accuracy
/// in percent)` ordered by pp, best first, the totals.
pub type TotalsRule = fn(&[(f64, f64)]) -> (f64, f64);

/// Renders the reply of a stored play from what it changed (inside the transaction, so
/// that the reply is stored with the play).
pub type ReplyRule<'a> = &'a (dyn Fn(&Recorded) -> String + Sync);

/// How many best scores are ahead of `score` on its board (a tie goes to the older
/// score), counted on `conn`: one query for the rank in a submission's chart and for a
/// player's rank on a board.
macro_rules! count_ahead {
    ($conn:expr, $order:expr, $score:expr) => {{
        let s: &ScoreRow = $score;
        let board = scores::table
            .filter(scores::beatmap_md5.eq(s.beatmap_md5.clone()))
            .filter(scores::mode.eq(s.mode))
            .filter(scores::board.eq(s.board))
            .filter(scores::status.eq(BEST));
        match $order {
            BoardOrder::Score => {
                board
                    .filter(
                        scores::score
                            .gt(s.score)
                            .or(scores::score.eq(s.score).and(scores::id.lt(s.id))),
                    )
                    .count()
                    .get_result::<i64>($conn)
                    .await
            }
            BoardOrder::Pp => {
                board
                    .filter(
                        scores::pp
                            .gt(s.pp)
                            .or(scores::pp.eq(s.pp).and(scores::id.lt(s.id))),
                    )
                    .count()
                    .get_result::<i64>($conn)
                    .await
            }
        }
    }};
}

/// Recomputes what a player's statistics derive from their best scores on one mode and
/// board (pp and accuracy by `totals`, ranked score, grade counts) into `stats`, reading
/// on `conn`: after a submission, after staff hid, deleted or approved a score, and in
/// a recalculation (`repo::recalc`). The one place these are computed, so they cannot
/// disagree.
macro_rules! derive_totals {
    ($conn:expr, $user_id:expr, $mode:expr, $board:expr, $totals:expr, $stats:expr) => {{
        let conn = &mut *$conn;
        let (user_id, mode, board): (i32, i16, i16) = ($user_id, $mode, $board);
        let totals: TotalsRule = $totals;
        let stats_after: &mut Stats = $stats;
        let bests = scores::table
            .inner_join(beatmaps::table.on(beatmaps::md5.eq(scores::beatmap_md5)))
            .filter(scores::user_id.eq(user_id))
            .filter(scores::mode.eq(mode))
            .filter(scores::board.eq(board))
            .filter(scores::status.eq(BEST));
        let counted: Vec<(f32, f32)> = bests
            .filter(beatmaps::status.eq_any($crate::repo::scores::PP_STATUSES))
            .order(scores::pp.desc())
            .limit($crate::repo::scores::PP_SCORES_COUNTED)
            .select((scores::pp, scores::accuracy))
            .load(conn)
            .await?;
        let weighted: Vec<(f64, f64)> = counted
            .iter()
            .map(|&(pp, acc)| (f64::from(pp), f64::from(acc)))
            .collect();
        let (pp, accuracy) = totals(&weighted);
        stats_after.pp = pp.round().clamp(0.0, f64::from(i32::MAX)) as i32;
        stats_after.accuracy = accuracy as f32;
        let ranked: Vec<i64> = bests
            .filter(beatmaps::status.eq_any($crate::repo::scores::RANKED_SCORE_STATUSES))
            .select(scores::score)
            .load(conn)
            .await?;
        stats_after.ranked_score = ranked.iter().fold(0i64, |a, s| a.saturating_add(*s));
        let grades: Vec<String> = bests.select(scores::grade).load(conn).await?;
        let count = |letters: &[&str]| {
            grades
                .iter()
                .filter(|g| letters.contains(&g.as_str()))
                .count() as i32
        };
        stats_after.xh_count = count(&["XH"]);
        stats_after.x_count = count(&["X"]);
        stats_after.sh_count = count(&["SH"]);
        stats_after.s_count = count(&["S"]);
        stats_after.a_count = count(&["A"]);
    }};
}

pub(crate) use derive_totals;

/// Locks a player's statistics row of one `stats.mode` (a write that changes nothing)
/// for the rest of the transaction. A submission and a recalculation both take it before
/// their first read of the player's scores, so whichever comes second reads what the
/// first committed and cannot write totals from older pp over newer ones (PostgreSQL
/// reads each statement's committed data, but MySQL's repeatable read would keep the
/// snapshot of a read made before the lock). Taken after the map's row by a submission,
/// before any score row by both: one order, so no deadlock.
macro_rules! lock_stats {
    ($conn:expr, $user_id:expr, $stats_mode:expr) => {{
        let (user_id, stats_mode): (i32, i16) = ($user_id, $stats_mode);
        diesel::update(stats::table.find((user_id, stats_mode)))
            .set(stats::pp.eq(stats::pp))
            .execute($conn)
            .await?;
    }};
}
pub(crate) use lock_stats;

/// One line of a leaderboard: a best score and who set it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BoardEntry {
    pub score: ScoreRow,
    pub user_name: String,
    pub country: String,
    pub privileges: i32,
}

/// Which scores a leaderboard read returns.
#[derive(Debug, Clone)]
pub struct BoardQuery {
    pub beatmap_md5: String,
    pub mode: i16,
    pub board: i16,
    pub order: BoardOrder,
    /// Only scores with exactly these mods.
    pub mods: Option<i32>,
    /// Only these players.
    pub users: Option<Vec<i32>>,
    /// Only players of this country.
    pub country: Option<String>,
    pub limit: i64,
}

impl Database {
    /// Records a play in one transaction: the score row, the map's play and pass counts,
    /// the player's statistics (recomputed from their best scores), and the reply. A
    /// play whose online checksum is already stored changes nothing and gets the reply
    /// it got the first time, so a client's resend is safe.
    pub async fn record_score(
        &self,
        submission: Submission,
        totals: TotalsRule,
        render: ReplyRule<'_>,
    ) -> Result<Recording, DbError> {
        let checksum = submission.score.online_checksum.clone();
        let outcome = run!(self, |conn| conn.transaction(async move |conn| {
            let Submission {
                score: mut row,
                passed,
                listed,
                order,
                stats_mode,
                hits,
                held_for_review,
            } = submission;
            // The map's row first, before anything is read: concurrent plays of one map
            // queue on its lock here, so they cannot deadlock further on, and every read
            // below sees the plays stored before. (Reading first would not do: SQLite
            // cannot turn a read transaction that another writer overtook into a write
            // one, and MySQL's repeatable read keeps the snapshot of the first read.)
            diesel::update(beatmaps::table.find(&row.beatmap_md5))
                .set((
                    beatmaps::plays.eq(beatmaps::plays + 1),
                    beatmaps::passes.eq(beatmaps::passes + i32::from(passed)),
                ))
                .execute(conn)
                .await?;
            lock_stats!(conn, row.user_id, stats_mode);
            let existing: Option<i32> = scores::table
                .filter(scores::online_checksum.eq(&row.online_checksum))
                .select(scores::id)
                .first(conn)
                .await
                .optional()?;
            if existing.is_some() {
                // Stored before: the count above is undone, the first reply is answered.
                return Err(diesel::result::Error::RollbackTransaction);
            }
            let beatmap: BeatmapRow = beatmaps::table
                .find(&row.beatmap_md5)
                .select(BeatmapRow::as_select())
                .first(conn)
                .await?;

            let board = scores::table
                .filter(scores::beatmap_md5.eq(row.beatmap_md5.clone()))
                .filter(scores::mode.eq(row.mode))
                .filter(scores::board.eq(row.board))
                .filter(scores::status.eq(BEST));
            let previous_best: Option<ScoreRow> = board
                .clone()
                .filter(scores::user_id.eq(row.user_id))
                .select(ScoreRow::as_select())
                .first(conn)
                .await
                .optional()?;
            let better = |a: (i64, f32), b: &ScoreRow| match order {
                BoardOrder::Score => a.0 > b.score,
                BoardOrder::Pp => a.1 > b.pp,
            };
            let new_best = passed
                && listed
                && !held_for_review
                && previous_best
                    .as_ref()
                    .is_none_or(|best| better((row.score, row.pp), best));
            row.status = match (passed, new_best) {
                (false, _) => FAILED,
                (true, _) if held_for_review => FLAGGED,
                (true, true) => BEST,
                (true, false) => PASSED,
            };

            // Rank of a best score: 1 + the best scores ahead of it (a tie goes to the
            // older score).
            macro_rules! rank_of {
                ($score:expr) => {
                    count_ahead!(conn, order, $score)? + 1
                };
            }
            let map_rank_before = match &previous_best {
                Some(best) => Some(rank_of!(best)),
                None => None,
            };

            let stats_before: Stats = stats::table
                .find((row.user_id, stats_mode))
                .select(Stats::as_select())
                .first(conn)
                .await
                .optional()?
                .unwrap_or(Stats {
                    user_id: row.user_id,
                    mode: stats_mode,
                    ..Stats::default()
                });
            macro_rules! global_rank {
                ($pp:expr) => {{
                    let pp: i32 = $pp;
                    if pp <= 0 {
                        0
                    } else {
                        let above: i64 = stats::table
                            .filter(stats::mode.eq(stats_mode))
                            .filter(stats::pp.gt(pp))
                            .count()
                            .get_result(conn)
                            .await?;
                        i32::try_from(above + 1).unwrap_or(i32::MAX)
                    }
                }};
            }
            let global_rank_before = global_rank!(stats_before.pp);

            if new_best && let Some(best) = &previous_best {
                diesel::update(scores::table.find(best.id))
                    .set(scores::status.eq(PASSED))
                    .execute(conn)
                    .await?;
            }
            diesel::insert_into(scores::table)
                .values(&row)
                .execute(conn)
                .await?;
            let stored: ScoreRow = scores::table
                .filter(scores::online_checksum.eq(&row.online_checksum))
                .select(ScoreRow::as_select())
                .first(conn)
                .await?;
            let map_rank_after = if new_best {
                Some(rank_of!(&stored))
            } else {
                map_rank_before
            };

            // The player's statistics: counters add up; everything derived from best
            // scores is recomputed from them, so it can never drift.
            let mut stats_after = Stats {
                total_score: stats_before.total_score.saturating_add(row.score),
                playcount: stats_before.playcount.saturating_add(1),
                playtime: stats_before
                    .playtime
                    .saturating_add(row.play_time.max(0) / 1000),
                total_hits: stats_before.total_hits.saturating_add(hits.max(0)),
                max_combo: if passed {
                    stats_before.max_combo.max(row.max_combo)
                } else {
                    stats_before.max_combo
                },
                ..stats_before.clone()
            };
            derive_totals!(
                conn,
                row.user_id,
                row.mode,
                row.board,
                totals,
                &mut stats_after
            );
            diesel::delete(stats::table.find((row.user_id, stats_mode)))
                .execute(conn)
                .await?;
            diesel::insert_into(stats::table)
                .values(&stats_after)
                .execute(conn)
                .await?;
            let global_rank_after = global_rank!(stats_after.pp);

            let recorded = Recorded {
                score_id: stored.id,
                status: stored.status,
                score: stored.clone(),
                previous_best,
                map_rank_before,
                map_rank_after,
                stats_before,
                stats_after,
                global_rank_before,
                global_rank_after,
                beatmap,
            };
            let reply = render(&recorded);
            diesel::update(scores::table.find(stored.id))
                .set(scores::reply.eq(&reply))
                .execute(conn)
                .await?;
            Ok::<_, diesel::result::Error>(Recording::Stored {
                recorded: Box::new(recorded),
                reply,
            })
        }));
        match outcome {
            // Stored before, or two copies of one play raced and the other transaction
            // stored it first.
            Err(DbError::Conflict | DbError::Query(diesel::result::Error::RollbackTransaction)) => {
                let stored = self.score_by_checksum(&checksum).await?;
                stored
                    .map(|s| Recording::Duplicate {
                        score_id: s.id,
                        reply: s.reply,
                    })
                    .ok_or(DbError::Conflict)
            }
            other => other,
        }
    }

    /// The score with this online checksum.
    pub async fn score_by_checksum(&self, checksum: &str) -> Result<Option<ScoreRow>, DbError> {
        run!(self, |conn| async {
            scores::table
                .filter(scores::online_checksum.eq(checksum))
                .select(ScoreRow::as_select())
                .first(conn)
                .await
                .optional()
        })
    }

    /// The score with id `id`.
    pub async fn score_by_id(&self, id: i32) -> Result<Option<ScoreRow>, DbError> {
        run!(self, |conn| async {
            scores::table
                .find(id)
                .select(ScoreRow::as_select())
                .first(conn)
                .await
                .optional()
        })
    }

    /// Counts one view of a score's replay.
    pub async fn count_replay_view(&self, id: i32) -> Result<(), DbError> {
        run!(self, |conn| async {
            diesel::update(scores::table.find(id))
                .set(scores::replay_views.eq(scores::replay_views + 1))
                .execute(conn)
                .await
        })
        .map(drop)
    }

    /// The best scores of a leaderboard, best first, with who set them. Restricted
    /// players are left to the caller (their privileges come with each entry).
    pub async fn leaderboard(&self, query: &BoardQuery) -> Result<Vec<BoardEntry>, DbError> {
        let query = query.clone();
        let rows: Vec<(ScoreRow, (String, String, i32))> = run!(self, |conn| async {
            let mut select = scores::table
                .inner_join(users::table)
                .filter(scores::beatmap_md5.eq(&query.beatmap_md5))
                .filter(scores::mode.eq(query.mode))
                .filter(scores::board.eq(query.board))
                .filter(scores::status.eq(BEST))
                .select((
                    ScoreRow::as_select(),
                    (users::name, users::country, users::privileges),
                ))
                .limit(query.limit.clamp(0, MAX_BOARD_ROWS))
                .into_boxed();
            if let Some(mods) = query.mods {
                select = select.filter(scores::mods.eq(mods));
            }
            if let Some(ids) = &query.users {
                select = select.filter(scores::user_id.eq_any(ids.clone()));
            }
            if let Some(country) = &query.country {
                select = select.filter(users::country.eq(country.clone()));
            }
            select = match query.order {
                BoardOrder::Score => select.order((scores::score.desc(), scores::id.asc())),
                BoardOrder::Pp => select.order((scores::pp.desc(), scores::id.asc())),
            };
            select.load(conn).await
        })?;
        Ok(rows
            .into_iter()
            .map(|(score, (user_name, country, privileges))| BoardEntry {
                score,
                user_name,
                country,
                privileges,
            })
            .collect())
    }

    /// A player's best score on a board, if they have one.
    pub async fn best_score(
        &self,
        user_id: i32,
        beatmap_md5: &str,
        mode: i16,
        board: i16,
    ) -> Result<Option<ScoreRow>, DbError> {
        run!(self, |conn| async {
            scores::table
                .filter(scores::user_id.eq(user_id))
                .filter(scores::beatmap_md5.eq(beatmap_md5))
                .filter(scores::mode.eq(mode))
                .filter(scores::board.eq(board))
                .filter(scores::status.eq(BEST))
                .select(ScoreRow::as_select())
                .first(conn)
                .await
                .optional()
        })
    }

    /// The rank of a best score on its board (1 = first).
    pub async fn board_rank(&self, score: &ScoreRow, order: BoardOrder) -> Result<i64, DbError> {
        let s = score.clone();
        let ahead: i64 = run!(self, |conn| async { count_ahead!(conn, order, &s) })?;
        Ok(ahead + 1)
    }

    /// A player's best grade on each of these maps in every mode (vanilla boards), as
    /// `(md5, mode, grade)` triples.
    pub async fn best_grades(
        &self,
        user_id: i32,
        md5s: &[String],
    ) -> Result<Vec<(String, i16, String)>, DbError> {
        let md5s = md5s.to_vec();
        run!(self, |conn| async {
            scores::table
                .filter(scores::user_id.eq(user_id))
                .filter(scores::beatmap_md5.eq_any(md5s))
                .filter(scores::board.eq(0))
                .filter(scores::status.eq(BEST))
                .select((scores::beatmap_md5, scores::mode, scores::grade))
                .load(conn)
                .await
        })
    }
}
