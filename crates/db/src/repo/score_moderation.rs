//! What staff do to single scores: hide and unhide, delete, and approve or reject a pass
//! that was held for review above its mode's pp cap.
//!
//! Each is one transaction that changes the score, elects the player's best on that map,
//! mode and board again (so the next best takes a hidden best's place), and recomputes
//! what the player's statistics derive from their bests. Counters (play count, total
//! score, play time) stay: the plays happened.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::scores::{
    BEST, BoardOrder, FLAGGED, HIDDEN, LISTED_STATUSES, PASSED, PP_SCORES_COUNTED, TotalsRule,
    derive_totals,
};
use crate::models::{ScoreRow, Stats};
use crate::pool::run;
use crate::schema::{beatmaps, scores, stats, users};
use crate::{Database, DbError};

/// What staff do to a score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoreAction {
    /// Off every board and out of the player's totals (a passed or best score).
    Hide,
    /// Back (a hidden score).
    Unhide,
    /// Gone for good (any score).
    Delete,
    /// A flagged pass becomes an ordinary one (and the best, if it is).
    Approve,
    /// A flagged pass is hidden.
    Reject,
}

impl ScoreAction {
    /// The status a score must have for the action, and the one it gets (`None`: deleted).
    fn transition(self, status: i16) -> Option<Option<i16>> {
        match (self, status) {
            (ScoreAction::Hide, PASSED | BEST) => Some(Some(HIDDEN)),
            (ScoreAction::Unhide, HIDDEN) => Some(Some(PASSED)),
            (ScoreAction::Delete, _) => Some(None),
            (ScoreAction::Approve, FLAGGED) => Some(Some(PASSED)),
            (ScoreAction::Reject, FLAGGED) => Some(Some(HIDDEN)),
            _ => None,
        }
    }
}

/// The outcome of [`Database::moderate_score`].
#[derive(Debug, Clone)]
pub enum Moderation {
    /// Done (boxed: the other outcomes are a few bytes).
    Done(Box<Moderated>),
    NoSuchScore,
    /// The score's status does not allow the action (hiding a hidden score).
    NotApplicable {
        status: i16,
    },
}

/// What a done moderation changed.
#[derive(Debug, Clone)]
pub struct Moderated {
    /// The score as it was before.
    pub before: ScoreRow,
    /// The player's statistics (of the score's mode and board) after.
    pub stats: Stats,
}

/// A flagged score for the review list, with who set it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FlaggedScore {
    pub score: ScoreRow,
    pub user_name: String,
}

/// The most flagged scores one list returns.
pub const MAX_FLAGGED_LISTED: i64 = 200;

impl Database {
    /// Applies `action` to score `id`; see the module documentation. `order_of` is the
    /// order of a board by its number (score or pp), `totals` the rule of the player's
    /// pp and accuracy.
    pub async fn moderate_score(
        &self,
        id: i32,
        action: ScoreAction,
        order_of: fn(i16) -> BoardOrder,
        totals: TotalsRule,
    ) -> Result<Moderation, DbError> {
        run!(self, |conn| conn.transaction(async move |conn| {
            // A write first: SQLite cannot turn a read transaction that another writer
            // overtook into a write one (see `record_score`). It locks the player's
            // statistics rows before their score: the order a submission and a
            // recalculation keep (`lock_stats!`), so none of them can deadlock another.
            let player = scores::table
                .filter(scores::id.eq(id))
                .select(scores::user_id);
            diesel::update(stats::table.filter(stats::user_id.eq_any(player)))
                .set(stats::pp.eq(stats::pp))
                .execute(conn)
                .await?;
            let touched = diesel::update(scores::table.find(id))
                .set(scores::replay_views.eq(scores::replay_views))
                .execute(conn)
                .await?;
            if touched == 0 {
                return Ok(Moderation::NoSuchScore);
            }
            let before: ScoreRow = scores::table
                .find(id)
                .select(ScoreRow::as_select())
                .first(conn)
                .await?;
            let Some(next) = action.transition(before.status) else {
                return Ok(Moderation::NotApplicable {
                    status: before.status,
                });
            };
            match next {
                Some(status) => {
                    diesel::update(scores::table.find(id))
                        .set(scores::status.eq(status))
                        .execute(conn)
                        .await?;
                }
                None => {
                    diesel::delete(scores::table.find(id)).execute(conn).await?;
                }
            }

            // The player's best on this board, elected again among their passes (only
            // on a map that has a leaderboard, as a submission decides it).
            let listed: i64 = beatmaps::table
                .filter(beatmaps::md5.eq(&before.beatmap_md5))
                .filter(beatmaps::status.eq_any(LISTED_STATUSES))
                .count()
                .get_result(conn)
                .await?;
            let passes = scores::table
                .filter(scores::user_id.eq(before.user_id))
                .filter(scores::beatmap_md5.eq(before.beatmap_md5.clone()))
                .filter(scores::mode.eq(before.mode))
                .filter(scores::board.eq(before.board))
                .filter(scores::status.eq_any([PASSED, BEST]));
            diesel::update(passes.clone().filter(scores::status.eq(BEST)))
                .set(scores::status.eq(PASSED))
                .execute(conn)
                .await?;
            if listed > 0 {
                let best: Option<i32> = match order_of(before.board) {
                    BoardOrder::Score => {
                        passes
                            .order((scores::score.desc(), scores::id.asc()))
                            .select(scores::id)
                            .first(conn)
                            .await
                    }
                    BoardOrder::Pp => {
                        passes
                            .order((scores::pp.desc(), scores::id.asc()))
                            .select(scores::id)
                            .first(conn)
                            .await
                    }
                }
                .optional()?;
                if let Some(best) = best {
                    diesel::update(scores::table.find(best))
                        .set(scores::status.eq(BEST))
                        .execute(conn)
                        .await?;
                }
            }

            let stats_mode = before.mode + 4 * before.board;
            let mut stats_after: Stats = stats::table
                .find((before.user_id, stats_mode))
                .select(Stats::as_select())
                .first(conn)
                .await
                .optional()?
                .unwrap_or(Stats {
                    user_id: before.user_id,
                    mode: stats_mode,
                    ..Stats::default()
                });
            derive_totals!(
                conn,
                before.user_id,
                before.mode,
                before.board,
                totals,
                &mut stats_after
            );
            diesel::delete(stats::table.find((before.user_id, stats_mode)))
                .execute(conn)
                .await?;
            diesel::insert_into(stats::table)
                .values(&stats_after)
                .execute(conn)
                .await?;
            Ok::<_, diesel::result::Error>(Moderation::Done(Box::new(Moderated {
                before,
                stats: stats_after,
            })))
        }))
    }

    /// Scores held for review, oldest first.
    pub async fn flagged_scores(&self, limit: i64) -> Result<Vec<FlaggedScore>, DbError> {
        let rows: Vec<(ScoreRow, String)> = run!(self, |conn| async {
            scores::table
                .inner_join(users::table)
                .filter(scores::status.eq(FLAGGED))
                .order(scores::id.asc())
                .limit(limit.clamp(0, MAX_FLAGGED_LISTED))
                .select((ScoreRow::as_select(), users::name))
                .load(conn)
                .await
        })?;
        Ok(rows
            .into_iter()
            .map(|(score, user_name)| FlaggedScore { score, user_name })
            .collect())
    }

    /// A player's newest play that is not hidden, with its map (if the map is stored).
    pub async fn recent_score(
        &self,
        user_id: i32,
    ) -> Result<Option<(ScoreRow, Option<crate::BeatmapRow>)>, DbError> {
        run!(self, |conn| async {
            scores::table
                .left_join(beatmaps::table.on(beatmaps::md5.eq(scores::beatmap_md5)))
                .filter(scores::user_id.eq(user_id))
                .filter(scores::status.ne(HIDDEN))
                .order(scores::id.desc())
                .select((
                    ScoreRow::as_select(),
                    Option::<crate::BeatmapRow>::as_select(),
                ))
                .first(conn)
                .await
                .optional()
        })
    }

    /// A player's best scores in a mode (on the vanilla board) by pp, best first, with
    /// their maps; only maps that award pp.
    pub async fn top_scores(
        &self,
        user_id: i32,
        mode: i16,
        limit: i64,
    ) -> Result<Vec<(ScoreRow, crate::BeatmapRow)>, DbError> {
        run!(self, |conn| async {
            scores::table
                .inner_join(beatmaps::table.on(beatmaps::md5.eq(scores::beatmap_md5)))
                .filter(scores::user_id.eq(user_id))
                .filter(scores::mode.eq(mode))
                .filter(scores::board.eq(0))
                .filter(scores::status.eq(BEST))
                .filter(beatmaps::status.eq_any([1i16, 2]))
                .order((scores::pp.desc(), scores::id.asc()))
                .limit(limit.clamp(0, PP_SCORES_COUNTED))
                .select((ScoreRow::as_select(), crate::BeatmapRow::as_select()))
                .load(conn)
                .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::scores::FAILED;

    #[test]
    fn each_action_applies_only_to_its_statuses() {
        assert_eq!(ScoreAction::Hide.transition(BEST), Some(Some(HIDDEN)));
        assert_eq!(ScoreAction::Hide.transition(PASSED), Some(Some(HIDDEN)));
        assert_eq!(ScoreAction::Hide.transition(HIDDEN), None);
        assert_eq!(ScoreAction::Hide.transition(FLAGGED), None);
        assert_eq!(ScoreAction::Unhide.transition(HIDDEN), Some(Some(PASSED)));
        assert_eq!(ScoreAction::Unhide.transition(BEST), None);
        assert_eq!(ScoreAction::Delete.transition(FAILED), Some(None));
        assert_eq!(ScoreAction::Approve.transition(FLAGGED), Some(Some(PASSED)));
        assert_eq!(ScoreAction::Approve.transition(PASSED), None);
        assert_eq!(ScoreAction::Reject.transition(FLAGGED), Some(Some(HIDDEN)));
    }
}
