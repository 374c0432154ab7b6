//! pp recalculation jobs: the job, its progress per shard and per node, the scores it
//! walks, and the batch that writes new pp and the players' totals.
//!
//! The work of a job is cut by shard (a player's scores belong to the shard of their
//! `User(id)` key; the caller hashes, this crate only stores the number). Each shard keeps
//! a cursor, the last `(user_id, score id)` done, and every batch moves it in the same
//! transaction that writes the batch's pp and totals: after a crash a shard goes on from
//! its last committed batch, and nothing is done twice or left half-written. A batch
//! whose cursor moved meanwhile (another node took the shard over and went on) changes
//! nothing ([`BatchOutcome::Overtaken`]).

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::scores::{
    BEST, BoardOrder, FAILED, LISTED_STATUSES, PASSED, TotalsRule, derive_totals, lock_stats,
};
use crate::models::{ScoreRow, Stats};
use crate::pool::run;
use crate::schema::{beatmaps, recalc_jobs, recalc_nodes, recalc_shards, scores, stats};
use crate::{Database, DbError};

/// `recalc_jobs.mode` of a job over every mode.
const ANY_MODE: i16 = -1;
/// `recalc_jobs.beatmap_md5` of a job over every map.
const ANY_MAP: &str = "";
/// `recalc_jobs.user_id` of a job over every player.
const ANY_USER: i32 = 0;
/// The longest node name kept (the column's width).
const MAX_NODE_NAME: usize = 64;

/// Which scores a job recalculates; `None` is every one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecalcFilter {
    pub mode: Option<i16>,
    pub beatmap_md5: Option<String>,
    pub user_id: Option<i32>,
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = recalc_jobs)]
pub struct RecalcJobRow {
    pub id: i32,
    pub mode: i16,
    pub beatmap_md5: String,
    pub user_id: i32,
    /// The newest score when the job began; later ones were computed with the current
    /// formula when they were submitted.
    pub max_score_id: i32,
    pub total: i64,
    pub created_at: i64,
    /// 0 while it runs.
    pub finished_at: i64,
}

impl RecalcJobRow {
    pub fn filter(&self) -> RecalcFilter {
        RecalcFilter {
            mode: (self.mode != ANY_MODE).then_some(self.mode),
            beatmap_md5: (self.beatmap_md5 != ANY_MAP).then(|| self.beatmap_md5.clone()),
            user_id: (self.user_id != ANY_USER).then_some(self.user_id),
        }
    }

    pub fn is_finished(&self) -> bool {
        self.finished_at != 0
    }
}

/// How far a job got in one shard.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = recalc_shards)]
pub struct RecalcShardRow {
    pub job_id: i32,
    pub shard: i32,
    pub last_user_id: i32,
    pub last_score_id: i32,
    pub done: i64,
    pub finished: bool,
    pub updated_at: i64,
}

impl RecalcShardRow {
    pub fn cursor(&self) -> (i32, i32) {
        (self.last_user_id, self.last_score_id)
    }
}

/// What one node did for a job.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = recalc_nodes)]
pub struct RecalcNodeRow {
    pub job_id: i32,
    pub node: String,
    pub done: i64,
    /// When the node began (or resumed) its work on the job, and what it did since.
    pub run_started_at: i64,
    pub run_done: i64,
    pub updated_at: i64,
}

/// A new pp for one score, written only if the score still has the pp it was computed
/// from (compare and set), so that a slower worker never overwrites a newer value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PpUpdate {
    pub score_id: i32,
    pub old: f32,
    pub new: f32,
}

/// One batch of a shard: where its cursor was and goes, the new pp, and whose totals to
/// derive again.
#[derive(Debug, Clone)]
pub struct RecalcBatch {
    pub job_id: i32,
    pub shard: i32,
    pub from: (i32, i32),
    pub to: (i32, i32),
    /// The shard has nothing after `to`.
    pub finished: bool,
    /// Scores walked (counted as done, changed or not).
    pub walked: i64,
    pub pp: Vec<PpUpdate>,
    /// `(user_id, mode, board)` of every score walked: their totals are derived again,
    /// and on boards ordered by pp their best score is chosen again.
    pub players: Vec<(i32, i16, i16)>,
    pub node: String,
}

/// What a batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchOutcome {
    /// Written; this many scores got a new pp.
    Applied { changed: usize },
    /// The shard's cursor was not where the batch began (another node went on with it,
    /// or it finished): nothing was written.
    Overtaken,
}

/// The outcome of [`Database::start_recalc`].
#[derive(Debug, Clone, PartialEq)]
pub enum RecalcStart {
    Started(RecalcJobRow),
    /// A job runs already (one at a time): this one.
    Running(RecalcJobRow),
}

/// The scores of a job: passes (failed plays have no pp) up to its newest score.
macro_rules! job_scores {
    ($job:expr) => {{
        let job: &RecalcJobRow = $job;
        let mut query = scores::table
            .filter(scores::id.le(job.max_score_id))
            .filter(scores::status.ne(FAILED))
            .into_boxed();
        if job.mode != ANY_MODE {
            query = query.filter(scores::mode.eq(job.mode));
        }
        if job.beatmap_md5 != ANY_MAP {
            query = query.filter(scores::beatmap_md5.eq(job.beatmap_md5.clone()));
        }
        if job.user_id != ANY_USER {
            query = query.filter(scores::user_id.eq(job.user_id));
        }
        query
    }};
}

impl Database {
    /// Starts a job over the scores `filter` selects, with every shard's cursor at the
    /// beginning, unless one runs already.
    pub async fn start_recalc(
        &self,
        filter: &RecalcFilter,
        shard_count: u16,
    ) -> Result<RecalcStart, DbError> {
        let filter = filter.clone();
        run!(self, |conn| conn.transaction(async move |conn| {
            let running: Option<RecalcJobRow> = recalc_jobs::table
                .filter(recalc_jobs::finished_at.eq(0))
                .order(recalc_jobs::id.asc())
                .select(RecalcJobRow::as_select())
                .first(conn)
                .await
                .optional()?;
            if let Some(job) = running {
                return Ok(RecalcStart::Running(job));
            }
            let max_score_id: Option<i32> = scores::table
                .select(diesel::dsl::max(scores::id))
                .first(conn)
                .await?;
            let now = crate::unix_now();
            let mut job = RecalcJobRow {
                id: 0,
                mode: filter.mode.unwrap_or(ANY_MODE),
                beatmap_md5: filter.beatmap_md5.clone().unwrap_or_default(),
                user_id: filter.user_id.unwrap_or(ANY_USER),
                max_score_id: max_score_id.unwrap_or(0),
                total: 0,
                created_at: now,
                finished_at: 0,
            };
            job.total = job_scores!(&job).count().get_result(conn).await?;
            diesel::insert_into(recalc_jobs::table)
                .values((
                    recalc_jobs::mode.eq(job.mode),
                    recalc_jobs::beatmap_md5.eq(&job.beatmap_md5),
                    recalc_jobs::user_id.eq(job.user_id),
                    recalc_jobs::max_score_id.eq(job.max_score_id),
                    recalc_jobs::total.eq(job.total),
                    recalc_jobs::created_at.eq(job.created_at),
                    recalc_jobs::finished_at.eq(0),
                ))
                .execute(conn)
                .await?;
            // Read back: the only unfinished job, as checked above in this transaction.
            let stored: RecalcJobRow = recalc_jobs::table
                .filter(recalc_jobs::finished_at.eq(0))
                .order(recalc_jobs::id.desc())
                .select(RecalcJobRow::as_select())
                .first(conn)
                .await?;
            // One insert per shard: a multi-row insert of these values is not one every
            // backend's diesel takes, and a few hundred rows once per job cost nothing.
            for shard in 0..i32::from(shard_count) {
                diesel::insert_into(recalc_shards::table)
                    .values((
                        recalc_shards::job_id.eq(stored.id),
                        recalc_shards::shard.eq(shard),
                        recalc_shards::last_user_id.eq(0),
                        recalc_shards::last_score_id.eq(0),
                        recalc_shards::done.eq(0i64),
                        recalc_shards::finished.eq(false),
                        recalc_shards::updated_at.eq(now),
                    ))
                    .execute(conn)
                    .await?;
            }
            Ok::<_, diesel::result::Error>(RecalcStart::Started(stored))
        }))
    }

    /// The oldest unfinished job (the one the nodes work on).
    pub async fn active_recalc(&self) -> Result<Option<RecalcJobRow>, DbError> {
        run!(self, |conn| async {
            recalc_jobs::table
                .filter(recalc_jobs::finished_at.eq(0))
                .order(recalc_jobs::id.asc())
                .select(RecalcJobRow::as_select())
                .first(conn)
                .await
                .optional()
        })
    }

    /// The unfinished job, or else the newest one.
    pub async fn current_recalc(&self) -> Result<Option<RecalcJobRow>, DbError> {
        if let Some(job) = self.active_recalc().await? {
            return Ok(Some(job));
        }
        run!(self, |conn| async {
            recalc_jobs::table
                .order(recalc_jobs::id.desc())
                .select(RecalcJobRow::as_select())
                .first(conn)
                .await
                .optional()
        })
    }

    pub async fn recalc_job(&self, id: i32) -> Result<Option<RecalcJobRow>, DbError> {
        run!(self, |conn| async {
            recalc_jobs::table
                .find(id)
                .select(RecalcJobRow::as_select())
                .first(conn)
                .await
                .optional()
        })
    }

    /// Every shard's progress of a job, by shard.
    pub async fn recalc_shards(&self, job_id: i32) -> Result<Vec<RecalcShardRow>, DbError> {
        run!(self, |conn| async {
            recalc_shards::table
                .filter(recalc_shards::job_id.eq(job_id))
                .order(recalc_shards::shard.asc())
                .select(RecalcShardRow::as_select())
                .load(conn)
                .await
        })
    }

    /// What each node did for a job.
    pub async fn recalc_nodes(&self, job_id: i32) -> Result<Vec<RecalcNodeRow>, DbError> {
        run!(self, |conn| async {
            recalc_nodes::table
                .filter(recalc_nodes::job_id.eq(job_id))
                .order(recalc_nodes::node.asc())
                .select(RecalcNodeRow::as_select())
                .load(conn)
                .await
        })
    }

    /// A node begins (or resumes) its work on a job: its run's figures start at 0, its
    /// total is kept.
    pub async fn begin_recalc_run(&self, job_id: i32, node: &str) -> Result<(), DbError> {
        let node = super::fit(node, MAX_NODE_NAME);
        run!(self, |conn| conn.transaction(async move |conn| {
            let now = crate::unix_now();
            let updated = diesel::update(recalc_nodes::table.find((job_id, &node)))
                .set((
                    recalc_nodes::run_started_at.eq(now),
                    recalc_nodes::run_done.eq(0i64),
                    recalc_nodes::updated_at.eq(now),
                ))
                .execute(conn)
                .await?;
            if updated == 0 {
                diesel::insert_into(recalc_nodes::table)
                    .values((
                        recalc_nodes::job_id.eq(job_id),
                        recalc_nodes::node.eq(&node),
                        recalc_nodes::done.eq(0i64),
                        recalc_nodes::run_started_at.eq(now),
                        recalc_nodes::run_done.eq(0i64),
                        recalc_nodes::updated_at.eq(now),
                    ))
                    .execute(conn)
                    .await?;
            }
            Ok::<_, diesel::result::Error>(())
        }))
    }

    /// The players with scores in a job, ascending, after `after` (at most `limit`).
    pub async fn recalc_players(
        &self,
        job: &RecalcJobRow,
        after: i32,
        limit: i64,
    ) -> Result<Vec<i32>, DbError> {
        run!(self, |conn| async {
            job_scores!(job)
                .filter(scores::user_id.gt(after))
                .select(scores::user_id)
                .distinct()
                .order(scores::user_id.asc())
                .limit(limit)
                .load(conn)
                .await
        })
    }

    /// The next scores of a job among `players`, in `(user_id, id)` order after `after`.
    pub async fn recalc_scores(
        &self,
        job: &RecalcJobRow,
        players: &[i32],
        after: (i32, i32),
        limit: i64,
    ) -> Result<Vec<ScoreRow>, DbError> {
        let players = players.to_vec();
        let (after_user, after_score) = after;
        run!(self, |conn| async {
            job_scores!(job)
                .filter(scores::user_id.eq_any(players))
                .filter(
                    scores::user_id.gt(after_user).or(scores::user_id
                        .eq(after_user)
                        .and(scores::id.gt(after_score))),
                )
                .order((scores::user_id.asc(), scores::id.asc()))
                .limit(limit)
                .select(ScoreRow::as_select())
                .load(conn)
                .await
        })
    }

    /// Writes one batch in one short transaction: moves the shard's cursor (only from
    /// where the batch began), sets the new pp (only over the pp each was computed from),
    /// chooses again the best score on boards that `order_of` says are ordered by pp (and
    /// the first best of a map that got a board since its passes were stored),
    /// derives the players' totals again with `totals`, and counts the node's work.
    pub async fn apply_recalc_batch(
        &self,
        batch: &RecalcBatch,
        order_of: fn(i16) -> BoardOrder,
        totals: TotalsRule,
    ) -> Result<BatchOutcome, DbError> {
        let batch = batch.clone();
        let node = super::fit(&batch.node, MAX_NODE_NAME);
        run!(self, |conn| conn.transaction(async move |conn| {
            let now = crate::unix_now();
            let moved = diesel::update(recalc_shards::table.find((batch.job_id, batch.shard)))
                .filter(recalc_shards::last_user_id.eq(batch.from.0))
                .filter(recalc_shards::last_score_id.eq(batch.from.1))
                .filter(recalc_shards::finished.eq(false))
                .set((
                    recalc_shards::last_user_id.eq(batch.to.0),
                    recalc_shards::last_score_id.eq(batch.to.1),
                    recalc_shards::done.eq(recalc_shards::done + batch.walked),
                    recalc_shards::finished.eq(batch.finished),
                    recalc_shards::updated_at.eq(now),
                ))
                .execute(conn)
                .await?;
            if moved == 0 {
                return Ok(BatchOutcome::Overtaken);
            }
            // The players' statistics rows before any score row, in one order: the lock
            // order a submission keeps too (`lock_stats!`).
            let mut players = batch.players.clone();
            players.sort_unstable();
            players.dedup();
            let mut stats_modes: Vec<(i32, i16, i16)> = players
                .iter()
                .map(|&(user, mode, board)| (user, mode + 4 * board, board))
                .collect();
            stats_modes.sort_unstable();
            stats_modes.dedup();
            for &(user, stats_mode, _) in &stats_modes {
                lock_stats!(conn, user, stats_mode);
            }
            let mut changed = 0;
            for update in &batch.pp {
                changed += diesel::update(scores::table.find(update.score_id))
                    .filter(scores::pp.eq(update.old))
                    .set(scores::pp.eq(update.new))
                    .execute(conn)
                    .await?;
            }
            // A player's best on a map is their pass with the most pp on a board ordered
            // by pp, which new pp can change. And a map that got a board since (staff
            // ranked or loved it) has passes but no best yet: its top pass becomes the
            // best, by the board's order, so that it shows and counts.
            let touched_maps: Vec<(i32, String, i16, i16)> = if batch.pp.is_empty() {
                Vec::new()
            } else {
                let ids: Vec<i32> = batch.pp.iter().map(|u| u.score_id).collect();
                scores::table
                    .filter(scores::id.eq_any(ids))
                    .select((
                        scores::user_id,
                        scores::beatmap_md5,
                        scores::mode,
                        scores::board,
                    ))
                    .distinct()
                    .load(conn)
                    .await?
            };
            for (user, md5, mode, board) in touched_maps {
                let order = order_of(board);
                let passes = scores::table
                    .filter(scores::user_id.eq(user))
                    .filter(scores::beatmap_md5.eq(&md5))
                    .filter(scores::mode.eq(mode))
                    .filter(scores::board.eq(board))
                    .filter(scores::status.eq_any([PASSED, BEST]))
                    .select((scores::id, scores::status));
                let passes: Vec<(i32, i16)> = match order {
                    BoardOrder::Pp => {
                        passes
                            .order((scores::pp.desc(), scores::id.asc()))
                            .load(conn)
                            .await?
                    }
                    BoardOrder::Score => {
                        passes
                            .order((scores::score.desc(), scores::id.asc()))
                            .load(conn)
                            .await?
                    }
                };
                let Some(&(top, top_status)) = passes.as_slice().first() else {
                    continue;
                };
                let has_best = passes.iter().any(|&(_, s)| s == BEST);
                let promote = if has_best {
                    order == BoardOrder::Pp && top_status != BEST
                } else {
                    let status: Option<i16> = beatmaps::table
                        .find(&md5)
                        .select(beatmaps::status)
                        .first(conn)
                        .await
                        .optional()?;
                    status.is_some_and(|s| LISTED_STATUSES.contains(&s))
                };
                if !promote {
                    continue;
                }
                let demoted: Vec<i32> = passes
                    .iter()
                    .filter(|&&(_, s)| s == BEST)
                    .map(|&(id, _)| id)
                    .collect();
                diesel::update(scores::table.filter(scores::id.eq_any(demoted)))
                    .set(scores::status.eq(PASSED))
                    .execute(conn)
                    .await?;
                diesel::update(scores::table.find(top))
                    .set(scores::status.eq(BEST))
                    .execute(conn)
                    .await?;
            }
            for &(user, stats_mode, board) in &stats_modes {
                let mode = stats_mode - 4 * board;
                let Some(mut row) = stats::table
                    .find((user, stats_mode))
                    .select(Stats::as_select())
                    .first(conn)
                    .await
                    .optional()?
                else {
                    // No statistics row: the player never submitted in this mode through
                    // this server (imported scores); nothing to correct.
                    continue;
                };
                derive_totals!(conn, user, mode, board, totals, &mut row);
                diesel::update(stats::table.find((user, stats_mode)))
                    .set((
                        stats::pp.eq(row.pp),
                        stats::accuracy.eq(row.accuracy),
                        stats::ranked_score.eq(row.ranked_score),
                        stats::xh_count.eq(row.xh_count),
                        stats::x_count.eq(row.x_count),
                        stats::sh_count.eq(row.sh_count),
                        stats::s_count.eq(row.s_count),
                        stats::a_count.eq(row.a_count),
                    ))
                    .execute(conn)
                    .await?;
            }
            let counted = diesel::update(recalc_nodes::table.find((batch.job_id, &node)))
                .set((
                    recalc_nodes::done.eq(recalc_nodes::done + batch.walked),
                    recalc_nodes::run_done.eq(recalc_nodes::run_done + batch.walked),
                    recalc_nodes::updated_at.eq(now),
                ))
                .execute(conn)
                .await?;
            if counted == 0 {
                diesel::insert_into(recalc_nodes::table)
                    .values((
                        recalc_nodes::job_id.eq(batch.job_id),
                        recalc_nodes::node.eq(&node),
                        recalc_nodes::done.eq(batch.walked),
                        recalc_nodes::run_started_at.eq(now),
                        recalc_nodes::run_done.eq(batch.walked),
                        recalc_nodes::updated_at.eq(now),
                    ))
                    .execute(conn)
                    .await?;
            }
            Ok::<_, diesel::result::Error>(BatchOutcome::Applied { changed })
        }))
    }

    /// Marks the job finished if every shard is; true when this call did.
    pub async fn finish_recalc(&self, job_id: i32) -> Result<bool, DbError> {
        run!(self, |conn| conn.transaction(async move |conn| {
            let open: i64 = recalc_shards::table
                .filter(recalc_shards::job_id.eq(job_id))
                .filter(recalc_shards::finished.eq(false))
                .count()
                .get_result(conn)
                .await?;
            if open > 0 {
                return Ok(false);
            }
            let updated = diesel::update(recalc_jobs::table.find(job_id))
                .filter(recalc_jobs::finished_at.eq(0))
                .set(recalc_jobs::finished_at.eq(crate::unix_now()))
                .execute(conn)
                .await?;
            Ok::<_, diesel::result::Error>(updated == 1)
        }))
    }

    /// The statuses of these maps (osu!api v1 numbers), for the pp rule.
    pub async fn beatmap_statuses(&self, md5s: &[String]) -> Result<Vec<(String, i16)>, DbError> {
        let md5s = md5s.to_vec();
        run!(self, |conn| async {
            beatmaps::table
                .filter(beatmaps::md5.eq_any(md5s))
                .select((beatmaps::md5, beatmaps::status))
                .load(conn)
                .await
        })
    }
}
