//! What staff do to maps and scores, and what the bot tells players about their plays.
//!
//! * A map's status, set by hand for one difficulty or a whole set
//!   ([`ScoreService::set_map_status`]): stored as an override that every later answer of
//!   a source is checked against (`peace_db`'s `beatmap_status_overrides`), forgotten by
//!   this node's settled-map cache at once, and pushed to the boards of the maps it
//!   changed. Another node may believe its cached copy of a settled map for at most
//!   [`super::beatmaps::SETTLED_MAP_TTL`]: a status change is rare, and telling every node
//!   would need a cluster-wide cast that the cache does not have yet.
//! * A score hidden, shown again, deleted, or (held above the pp cap) approved or
//!   rejected ([`ScoreService::moderate_score`]): the player's best on that board is
//!   elected again, their totals recomputed, the board reloaded and the player's session
//!   told.
//!
//! Every action is written to the audit log.

use peace_db::{
    BeatmapRow, DbError, Moderation, OVERRIDE_MAP, OVERRIDE_SET, ScoreRow, StatusOverride,
};
/// What staff do to a score, and the review list, as the gateway names them (it names no
/// database type).
pub use peace_db::{FlaggedScore, MAX_FLAGGED_LISTED, ScoreAction};
use peace_scores::pp;
use peace_scores::status::RankedStatus;

use super::ScoreService;
use super::submit::player_totals;
use crate::BoardKey;
use crate::leaderboard::BoardCast;
use crate::ports::{
    DeskError, DeskFuture, PlaySummary, PpTable, ScoreDesk, StatusChange, StatusScope,
};

/// Modes (osu!, taiko, catch, mania) and boards (vanilla, relax, autopilot) a map's board
/// may exist in: what a status change refreshes per changed map.
const MODES: std::ops::Range<i16> = 0..4;
const BOARDS: std::ops::Range<i16> = 0..3;

/// `"Artist - Title [Version]"`.
pub fn map_title(map: &BeatmapRow) -> String {
    format!("{} - {} [{}]", map.artist, map.title, map.version)
}

/// A score's status in words, for staff.
pub fn score_status_name(status: i16) -> &'static str {
    match status {
        peace_db::FAILED => "failed",
        peace_db::PASSED => "passed",
        peace_db::BEST => "best",
        peace_db::HIDDEN => "hidden",
        peace_db::FLAGGED => "flagged",
        _ => "unknown",
    }
}

/// The audit log's word for a score action.
fn action_name(action: ScoreAction) -> &'static str {
    match action {
        ScoreAction::Hide => "score_hide",
        ScoreAction::Unhide => "score_unhide",
        ScoreAction::Delete => "score_delete",
        ScoreAction::Approve => "score_approve",
        ScoreAction::Reject => "score_reject",
    }
}

impl ScoreService {
    /// Gives the map with osu! id `beatmap_id` (or every map of its set) `status` for
    /// good; see the module documentation.
    pub async fn set_map_status(
        &self,
        actor: i32,
        beatmap_id: i32,
        scope: StatusScope,
        status: RankedStatus,
        reason: &str,
    ) -> Result<StatusChange, DeskError> {
        let map = self
            .beatmaps
            .by_id(beatmap_id)
            .await?
            .ok_or(DeskError::UnknownMap(beatmap_id))?;
        let (scope_number, target, scope_word) = match scope {
            StatusScope::Map => (OVERRIDE_MAP, map.id, "map"),
            StatusScope::Set => (OVERRIDE_SET, map.set_id, "set"),
        };
        if target <= 0 {
            return Err(DeskError::NoOsuId);
        }
        let approved = status
            .to_api_v1()
            .ok_or(DeskError::UnknownMap(beatmap_id))?;
        let entry = StatusOverride {
            scope: scope_number,
            target_id: target,
            status: i16::try_from(approved).unwrap_or(0),
            set_by: actor,
            set_at: peace_db::unix_now(),
        };
        let changed = self.db.override_status(&entry).await?;
        for row in &changed {
            self.beatmaps.forget_settled(&row.md5);
            for mode in MODES {
                for board in BOARDS {
                    let key = BoardKey {
                        md5: row.md5.clone(),
                        mode,
                        board,
                    };
                    // Not running is fine: it loads fresh when it starts.
                    let _ = self.router.boards().cast(&key, BoardCast::Refresh);
                }
            }
        }
        let what = format!("{scope_word} {target} {status:?}: {reason}");
        self.audit(actor, None, "map_status", &what).await;
        Ok(StatusChange {
            title: format!("{} - {}", map.artist, map.title),
            changed: changed.len(),
        })
    }

    /// Applies a staff `action` to score `score_id`; see the module documentation.
    /// Returns the score as it was.
    pub async fn moderate_score(
        &self,
        actor: i32,
        score_id: i32,
        action: ScoreAction,
        reason: &str,
    ) -> Result<ScoreRow, DeskError> {
        let done = self
            .db
            .moderate_score(
                score_id,
                action,
                crate::leaderboard::order_of,
                player_totals,
            )
            .await?;
        let before = match done {
            Moderation::Done(done) => done.before,
            Moderation::NoSuchScore => return Err(DeskError::NoSuchScore(score_id)),
            Moderation::NotApplicable { status } => {
                return Err(DeskError::NotApplicable(score_status_name(status)));
            }
        };
        let key = BoardKey {
            md5: before.beatmap_md5.clone(),
            mode: before.mode,
            board: before.board,
        };
        self.board_changed(key).await;
        self.notify_stats_changed(before.user_id);
        let what = format!("score {score_id}: {reason}");
        self.audit(actor, Some(before.user_id), action_name(action), &what)
            .await;
        Ok(before)
    }

    /// Passes held for review above the pp cap, oldest first.
    pub async fn flagged_scores(&self, limit: i64) -> Result<Vec<FlaggedScore>, DbError> {
        self.db.flagged_scores(limit).await
    }

    /// Writes the audit log. The action already took effect, so a failed write is
    /// logged loudly rather than reported as a failed action.
    async fn audit(&self, actor: i32, target: Option<i32>, action: &str, reason: &str) {
        match self.db.audit(actor, target, action, reason).await {
            Ok(()) => tracing::info!(actor, ?target, action, reason, "staff action"),
            Err(e) => tracing::error!(
                actor,
                ?target,
                action,
                reason,
                "staff action done but the audit log write failed: {e}"
            ),
        }
    }

    async fn recent_play(&self, user_id: i32) -> Result<Option<PlaySummary>, DeskError> {
        let recent = self.db.recent_score(user_id).await?;
        Ok(recent.map(|(score, map)| summary(&score, map.as_ref())))
    }

    async fn top_plays(
        &self,
        user_id: i32,
        mode: u8,
        limit: usize,
    ) -> Result<Vec<PlaySummary>, DeskError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let top = self.db.top_scores(user_id, i16::from(mode), limit).await?;
        Ok(top.iter().map(|(s, m)| summary(s, Some(m))).collect())
    }

    async fn pp_table(
        &self,
        beatmap_id: i32,
        mode: Option<u8>,
        mods: u32,
        accuracies: &[f64],
    ) -> Result<PpTable, DeskError> {
        let map = self
            .beatmaps
            .by_id(beatmap_id)
            .await?
            .ok_or(DeskError::UnknownMap(beatmap_id))?;
        let file = self
            .beatmaps
            .osu_file(&map)
            .await
            .ok_or(DeskError::NoFile)?;
        let mode = mode.unwrap_or(u8::try_from(map.mode).unwrap_or(0));
        let accuracies = accuracies.to_vec();
        // Difficulty calculation is CPU work of up to tens of milliseconds.
        let computed = tokio::task::spawn_blocking(move || {
            let parsed = pp::Beatmap::parse(&file)?;
            let mut table = Vec::with_capacity(accuracies.len());
            let mut stars = 0.0;
            for acc in accuracies {
                let at = pp::performance_at_accuracy(&parsed, mode, mods, acc)?;
                stars = at.stars;
                table.push((acc, at.pp));
            }
            Ok::<_, pp::PpError>((stars, table))
        })
        .await
        .map_err(|_| DeskError::Pp(pp::PpError::Panicked))?;
        let (stars, pp) = computed?;
        Ok(PpTable {
            map: map_title(&map),
            mods,
            stars,
            pp,
        })
    }
}

fn summary(score: &ScoreRow, map: Option<&BeatmapRow>) -> PlaySummary {
    PlaySummary {
        map: map.map_or_else(|| score.beatmap_md5.clone(), map_title),
        mods: u32::try_from(score.mods).unwrap_or(0),
        accuracy: score.accuracy,
        max_combo: score.max_combo,
        map_max_combo: map.map_or(0, |m| m.max_combo),
        pp: score.pp,
        grade: score.grade.clone(),
        score: score.score,
    }
}

impl ScoreDesk for ScoreService {
    fn set_map_status<'a>(
        &'a self,
        actor: i32,
        beatmap_id: i32,
        scope: StatusScope,
        status: RankedStatus,
        reason: &'a str,
    ) -> DeskFuture<'a, StatusChange> {
        Box::pin(ScoreService::set_map_status(
            self, actor, beatmap_id, scope, status, reason,
        ))
    }

    fn recent_play(&self, user_id: i32) -> DeskFuture<'_, Option<PlaySummary>> {
        Box::pin(ScoreService::recent_play(self, user_id))
    }

    fn top_plays(&self, user_id: i32, mode: u8, limit: usize) -> DeskFuture<'_, Vec<PlaySummary>> {
        Box::pin(ScoreService::top_plays(self, user_id, mode, limit))
    }

    fn pp_table<'a>(
        &'a self,
        beatmap_id: i32,
        mode: Option<u8>,
        mods: u32,
        accuracies: &'a [f64],
    ) -> DeskFuture<'a, PpTable> {
        Box::pin(ScoreService::pp_table(
            self, beatmap_id, mode, mods, accuracies,
        ))
    }
}
