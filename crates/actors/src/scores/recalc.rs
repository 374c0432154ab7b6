//! `peace pp recalc`: the pp of stored scores computed again (after a formula update or
//! a map status change), then the players' totals, then the leaderboards.
//!
//! A job is a row in the database with a cursor per shard (`peace_db::repo::recalc`).
//! Every node runs one [`Recalculator`] loop (supervised, started with the node): it finds
//! the unfinished job, and works through the shards it owns *now*, a small batch at a
//! time. A player's scores belong to the shard of their `User(id)` key, so the work
//! follows the shard table: a node that leaves (drained, or lost) stops at its next batch
//! and the new owner of each shard goes on from the shard's last committed batch, and a
//! node that restarts after a crash picks the job up where the database says it was.
//!
//! Live submissions are never held up: each batch is its own short transaction, and it
//! writes a score's new pp only over the pp it was computed from (compare and set), so a
//! slower worker cannot overwrite a newer value. A score submitted during the job got
//! its pp from this same formula when it was stored; scores newer than the job are not
//! even walked (`max_score_id`).
//!
//! A map whose `.osu` file cannot be had keeps its scores' pp (a store that is briefly
//! unreachable must not zero them); failed plays have no pp and are not walked.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use peace_db::{
    BatchOutcome, Database, DbError, PpUpdate, RecalcBatch, RecalcFilter, RecalcJobRow,
    RecalcStart, ScoreRow,
};
use peace_scores::pp;
use peace_scores::status::RankedStatus;
use peace_sharding::shard::Shard;
use tokio::sync::Notify;

use super::ScoreService;
use crate::EntityKey;
use crate::cluster::shard::shard_of;
use crate::ports::{Mail, Outbox};
use crate::session_msg::UserCast;

/// Scores a batch walks by default: one short transaction each.
pub const DEFAULT_BATCH: usize = 200;
/// The most a batch may be set to: a longer transaction would hold players' rows (and
/// SQLite's one writer) for longer than a submission should wait.
pub const MAX_BATCH: usize = 2_000;
/// Players named in one query (`user_id IN (…)`): far below every backend's limit on
/// bound parameters.
pub const PLAYERS_PER_QUERY: usize = 500;
/// Players read per page when a node lists the players of a job.
const PLAYERS_PAGE: i64 = 10_000;
/// Parsed maps kept while a job runs (a parse costs milliseconds; a busy map is played
/// by many players, whose scores come in player order).
pub const MAX_CACHED_MAPS: usize = 256;
/// How often an idle node looks for a job (a job started through this node wakes it at
/// once), and how often a node waits for shards others still hold.
pub const DEFAULT_POLL: Duration = Duration::from_secs(2);
/// After a failed database call, the loop waits this long before it tries again.
const RETRY_AFTER: Duration = Duration::from_secs(2);
/// The boards are told to load again at most this often while a job runs (and once at
/// its end).
const BOARD_REFRESH_EVERY: Duration = Duration::from_secs(5);
/// A node's rate counts toward the job's only while the node reported within this time.
const RATE_WINDOW_SECS: i64 = 30;

/// How a node recalculates.
#[derive(Debug, Clone)]
pub struct RecalcConfig {
    /// Scores per batch (clamped to `1..=MAX_BATCH`).
    pub batch: usize,
    /// A pause after every batch, leaving the database to live traffic (zero: none).
    pub pause: Duration,
    /// How often an idle node looks for a job.
    pub poll: Duration,
}

impl Default for RecalcConfig {
    fn default() -> Self {
        Self {
            batch: DEFAULT_BATCH,
            pause: Duration::ZERO,
            poll: DEFAULT_POLL,
        }
    }
}

/// Why a recalculation could not be started or read.
#[derive(Debug, thiserror::Error)]
pub enum RecalcError {
    #[error(transparent)]
    Database(#[from] DbError),
    #[error("no beatmap {0} is known")]
    UnknownMap(String),
    #[error("no player {0} is known")]
    UnknownUser(String),
    #[error("mode {0} is not one of osu, taiko, catch, mania (0..=3)")]
    UnknownMode(String),
}

/// What the operator asks for, as given (names and ids are resolved here).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecalcRequest {
    /// `osu`, `taiko`, `catch`, `mania` or 0..=3.
    #[serde(default, deserialize_with = "text_or_number")]
    pub mode: Option<String>,
    /// A beatmap id or md5.
    #[serde(default, deserialize_with = "text_or_number")]
    pub map: Option<String>,
    /// A player id or name.
    #[serde(default, deserialize_with = "text_or_number")]
    pub user: Option<String>,
}

/// A filter given as text or as a JSON number (`"map": 75` and `"map": "75"` alike).
fn text_or_number<'de, D>(deserializer: D) -> Result<Option<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Given {
        Text(String),
        Number(i64),
    }
    let given: Option<Given> = serde::Deserialize::deserialize(deserializer)?;
    Ok(given.map(|g| match g {
        Given::Text(text) => text,
        Given::Number(n) => n.to_string(),
    }))
}

/// A job and how far it got, for the API and the CLI.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RecalcStatus {
    pub id: i32,
    pub state: &'static str,
    pub mode: Option<i16>,
    pub map: Option<String>,
    pub user: Option<i32>,
    pub done: i64,
    pub total: i64,
    /// Scores per second over the nodes working now.
    pub rate: f64,
    /// Seconds left at that rate (None: no rate yet, or finished).
    pub eta_secs: Option<f64>,
    pub shards_finished: usize,
    pub shards: usize,
    pub created_at: i64,
    pub finished_at: Option<i64>,
    pub nodes: Vec<RecalcNodeStatus>,
}

/// One node's part of a job.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RecalcNodeStatus {
    pub node: String,
    pub done: i64,
    pub rate: f64,
}

/// The answer to a start request.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RecalcStarted {
    /// False when a job was running already (it is the one described).
    pub started: bool,
    pub job: RecalcStatus,
}

/// One node's recalculation worker. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Recalculator {
    scores: ScoreService,
    node: Arc<str>,
    config: Arc<RecalcConfig>,
    wake: Arc<Notify>,
}

/// A map as the pp rule needs it: parsed, with its status (None: no file to be had).
type CachedMap = Option<(Arc<pp::Beatmap>, RankedStatus)>;

impl Recalculator {
    pub fn new(scores: ScoreService, node: &str, mut config: RecalcConfig) -> Self {
        config.batch = config.batch.clamp(1, MAX_BATCH);
        config.poll = config.poll.max(Duration::from_millis(50));
        Self {
            scores,
            node: node.into(),
            config: Arc::new(config),
            wake: Arc::new(Notify::new()),
        }
    }

    fn db(&self) -> &Database {
        &self.scores.db
    }

    /// Starts a job (unless one runs: then that one is described), and wakes this node's
    /// worker; the other nodes find it within their poll interval.
    pub async fn start(&self, request: &RecalcRequest) -> Result<RecalcStarted, RecalcError> {
        let filter = self.resolve(request).await?;
        let (started, job) = match self
            .db()
            .start_recalc(&filter, peace_sharding::shard::SHARD_COUNT)
            .await?
        {
            RecalcStart::Started(job) => (true, job),
            RecalcStart::Running(job) => (false, job),
        };
        if started {
            tracing::info!(
                job = job.id,
                total = job.total,
                ?filter,
                "pp recalculation started"
            );
        }
        self.wake.notify_one();
        Ok(RecalcStarted {
            started,
            job: self.describe(&job).await?,
        })
    }

    /// The running job, else the last one; None if there never was one.
    pub async fn status(&self) -> Result<Option<RecalcStatus>, RecalcError> {
        match self.db().current_recalc().await? {
            Some(job) => Ok(Some(self.describe(&job).await?)),
            None => Ok(None),
        }
    }

    async fn resolve(&self, request: &RecalcRequest) -> Result<RecalcFilter, RecalcError> {
        let mode = match request.mode.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(mode_number(text).ok_or(RecalcError::UnknownMode(text.into()))?),
        };
        let beatmap_md5 = match request.map.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) if super::beatmaps::is_md5(&text.to_ascii_lowercase()) => {
                let md5 = text.to_ascii_lowercase();
                match self.db().beatmap_by_md5(&md5).await? {
                    Some(map) => Some(map.md5),
                    None => return Err(RecalcError::UnknownMap(text.into())),
                }
            }
            Some(text) => {
                let id: i32 = text
                    .parse()
                    .map_err(|_| RecalcError::UnknownMap(text.into()))?;
                match self.db().beatmap_by_id(id).await? {
                    Some(map) if id > 0 => Some(map.md5),
                    _ => return Err(RecalcError::UnknownMap(text.into())),
                }
            }
        };
        let user_id = match request.user.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => {
                let found = match text.parse::<i32>() {
                    Ok(id) => self.db().user_by_id(id).await?,
                    Err(_) => self.db().user_by_name(text).await?,
                };
                Some(
                    found
                        .ok_or_else(|| RecalcError::UnknownUser(text.into()))?
                        .id,
                )
            }
        };
        Ok(RecalcFilter {
            mode,
            beatmap_md5,
            user_id,
        })
    }

    async fn describe(&self, job: &RecalcJobRow) -> Result<RecalcStatus, DbError> {
        let shards = self.db().recalc_shards(job.id).await?;
        let nodes = self.db().recalc_nodes(job.id).await?;
        let done: i64 = shards.iter().map(|s| s.done).sum();
        let now = peace_db::unix_now();
        let nodes: Vec<RecalcNodeStatus> = nodes
            .into_iter()
            .map(|n| {
                let recent = !job.is_finished() && now - n.updated_at <= RATE_WINDOW_SECS;
                let elapsed = (n.updated_at - n.run_started_at).max(1) as f64;
                RecalcNodeStatus {
                    rate: if recent {
                        n.run_done as f64 / elapsed
                    } else {
                        0.0
                    },
                    node: n.node,
                    done: n.done,
                }
            })
            .collect();
        let rate: f64 = nodes.iter().map(|n| n.rate).sum();
        let left = (job.total - done).max(0) as f64;
        if !job.is_finished() {
            peace_metrics::recalc_progress(done, job.total);
        }
        let filter = job.filter();
        Ok(RecalcStatus {
            id: job.id,
            state: if job.is_finished() {
                "finished"
            } else {
                "running"
            },
            mode: filter.mode,
            map: filter.beatmap_md5,
            user: filter.user_id,
            done,
            total: job.total,
            rate,
            eta_secs: (!job.is_finished() && rate > 0.0).then(|| left / rate),
            shards_finished: shards.iter().filter(|s| s.finished).count(),
            shards: shards.len(),
            created_at: job.created_at,
            finished_at: job.is_finished().then_some(job.finished_at),
            nodes,
        })
    }

    /// The worker's loop: it never returns (run it under `task::supervised`).
    pub async fn run(self) {
        loop {
            match self.db().active_recalc().await {
                Ok(Some(job)) => {
                    if let Err(e) = self.work_on(&job).await {
                        tracing::warn!(job = job.id, "pp recalculation interrupted: {e}");
                        tokio::time::sleep(RETRY_AFTER).await;
                    }
                    continue;
                }
                Ok(None) => peace_metrics::recalc_progress(0, 0),
                Err(e) => tracing::debug!("looking for a pp recalculation: {e}"),
            }
            // Woken by a job started here, or the next look.
            let _ = tokio::time::timeout(self.config.poll, self.wake.notified()).await;
        }
    }

    /// Works on `job` until it is finished: the shards this node owns, then waits for
    /// the ones others hold (or that come to this node when their owner leaves).
    async fn work_on(&self, job: &RecalcJobRow) -> Result<(), DbError> {
        self.db().begin_recalc_run(job.id, &self.node).await?;
        let players = self.players_by_shard(job).await?;
        let mut maps: HashMap<String, CachedMap> = HashMap::new();
        let mut last_refresh = tokio::time::Instant::now();
        loop {
            let shards = self.db().recalc_shards(job.id).await?;
            let done: i64 = shards.iter().map(|s| s.done).sum();
            peace_metrics::recalc_progress(done, job.total);
            if shards.iter().all(|s| s.finished) {
                if self.db().finish_recalc(job.id).await? {
                    tracing::info!(job = job.id, scores = done, "pp recalculation finished");
                }
                peace_metrics::recalc_progress(0, 0);
                self.scores.router.refresh_boards();
                return Ok(());
            }
            let owned = self.scores.router.placement().owned_shards();
            let mine: Vec<_> = shards
                .into_iter()
                .filter(|s| !s.finished)
                .filter(|s| Shard::try_from(s.shard).is_ok_and(|s| owned.contains(&s)))
                .collect();
            if mine.is_empty() {
                // The rest belongs to other nodes; if one leaves, its shards come here.
                tokio::time::sleep(self.config.poll).await;
                match self.db().recalc_job(job.id).await? {
                    Some(now) if !now.is_finished() => continue,
                    _ => return Ok(()),
                }
            }
            for shard in mine {
                let Ok(number) = Shard::try_from(shard.shard) else {
                    continue;
                };
                let empty = Vec::new();
                let shard_players = players.get(&number).unwrap_or(&empty);
                self.work_on_shard(job, number, shard.cursor(), shard_players, &mut maps)
                    .await?;
                if last_refresh.elapsed() >= BOARD_REFRESH_EVERY {
                    last_refresh = tokio::time::Instant::now();
                    self.scores.router.refresh_boards();
                }
            }
        }
    }

    /// The job's players by the shard of their `User(id)` key, each list ascending.
    async fn players_by_shard(
        &self,
        job: &RecalcJobRow,
    ) -> Result<BTreeMap<Shard, Vec<i32>>, DbError> {
        let mut by_shard: BTreeMap<Shard, Vec<i32>> = BTreeMap::new();
        let mut after = 0;
        loop {
            let page = self.db().recalc_players(job, after, PLAYERS_PAGE).await?;
            let Some(&last) = page.last() else {
                return Ok(by_shard);
            };
            for user in page {
                by_shard
                    .entry(shard_of(&EntityKey::User(user)))
                    .or_default()
                    .push(user);
            }
            after = last;
        }
    }

    /// Walks one shard from `cursor` until it is finished, or is no longer this node's,
    /// or another node went on with it.
    async fn work_on_shard(
        &self,
        job: &RecalcJobRow,
        shard: Shard,
        mut cursor: (i32, i32),
        players: &[i32],
        maps: &mut HashMap<String, CachedMap>,
    ) -> Result<(), DbError> {
        let batch_size = self.config.batch;
        loop {
            if !self
                .scores
                .router
                .placement()
                .owned_shards()
                .contains(&shard)
            {
                return Ok(());
            }
            // The players not yet done: from the cursor's player on.
            let start = players.partition_point(|&p| p < cursor.0);
            let end = (start + PLAYERS_PER_QUERY).min(players.len());
            let chunk = &players[start..end];
            let last_chunk = end == players.len();
            let rows = if chunk.is_empty() {
                Vec::new()
            } else {
                self.db()
                    .recalc_scores(job, chunk, cursor, batch_size as i64)
                    .await?
            };
            let exhausted = rows.len() < batch_size;
            let (to, finished) = match rows.last() {
                // Fewer than asked: these players are done, whatever the last one was.
                _ if exhausted && !last_chunk => {
                    let last_player = chunk.last().copied().unwrap_or(cursor.0);
                    ((last_player, i32::MAX), false)
                }
                _ if exhausted => (cursor, true),
                Some(last) => ((last.user_id, last.id), false),
                None => (cursor, true),
            };
            let updates = self.new_pp(&rows, maps).await?;
            let players_touched: Vec<(i32, i16, i16)> =
                rows.iter().map(|r| (r.user_id, r.mode, r.board)).collect();
            let batch = RecalcBatch {
                job_id: job.id,
                shard: i32::from(shard),
                from: cursor,
                to,
                finished,
                walked: rows.len() as i64,
                pp: updates,
                players: players_touched,
                node: self.node.to_string(),
            };
            let outcome = self
                .db()
                .apply_recalc_batch(
                    &batch,
                    crate::leaderboard::order_of,
                    super::submit::player_totals,
                )
                .await?;
            match outcome {
                BatchOutcome::Applied { .. } => {
                    peace_metrics::recalc_batch(true, rows.len() as u64);
                    let users: HashSet<i32> = rows.iter().map(|r| r.user_id).collect();
                    for user in users {
                        // Online players see their new totals (and rank) at once.
                        let _ = self
                            .scores
                            .router
                            .send(Mail::User(user, UserCast::StatsChanged));
                    }
                    if finished {
                        return Ok(());
                    }
                    cursor = to;
                }
                BatchOutcome::Overtaken => {
                    // Someone else moved this shard on (it was theirs meanwhile): start
                    // again from where the database says it is.
                    peace_metrics::recalc_batch(false, 0);
                    let shards = self.db().recalc_shards(job.id).await?;
                    match shards.iter().find(|s| s.shard == i32::from(shard)) {
                        Some(s) if !s.finished => cursor = s.cursor(),
                        _ => return Ok(()),
                    }
                }
            }
            if !self.config.pause.is_zero() {
                tokio::time::sleep(self.config.pause).await;
            }
        }
    }

    /// The new pp of each score whose pp changes, computed as a submission computes it
    /// (`submit::score_pp`): a pass on a map that shows scores gets its pp, anything else
    /// 0. A map with no file keeps its scores' pp.
    async fn new_pp(
        &self,
        rows: &[ScoreRow],
        maps: &mut HashMap<String, CachedMap>,
    ) -> Result<Vec<PpUpdate>, DbError> {
        let missing: Vec<String> = rows
            .iter()
            .map(|r| r.beatmap_md5.clone())
            .filter(|md5| !maps.contains_key(md5))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if !missing.is_empty() {
            if maps.len() + missing.len() > MAX_CACHED_MAPS {
                maps.clear();
            }
            let statuses: HashMap<String, i16> = self
                .db()
                .beatmap_statuses(&missing)
                .await?
                .into_iter()
                .collect();
            for md5 in missing {
                let loaded = self.load_map(&md5, statuses.get(&md5).copied()).await?;
                maps.insert(md5, loaded);
            }
        }
        let work: Vec<(ScoreRow, Arc<pp::Beatmap>, RankedStatus)> = rows
            .iter()
            .filter_map(|r| {
                let (map, status) = maps.get(&r.beatmap_md5)?.as_ref()?;
                Some((r.clone(), map.clone(), *status))
            })
            .collect();
        // Difficulty calculation is CPU work: off the async threads, the batch at once.
        let computed = tokio::task::spawn_blocking(move || {
            work.into_iter()
                .filter_map(|(row, map, status)| {
                    let new = super::submit::score_pp(&map, &row, status)? as f32;
                    (new != row.pp).then_some(PpUpdate {
                        score_id: row.id,
                        old: row.pp,
                        new,
                    })
                })
                .collect::<Vec<_>>()
        })
        .await;
        Ok(computed.unwrap_or_else(|e| {
            tracing::warn!("pp recalculation of a batch panicked: {e}");
            Vec::new()
        }))
    }

    /// A map's parsed file and status; None when it has no file (or no row, or the file
    /// does not parse).
    async fn load_map(&self, md5: &str, status: Option<i16>) -> Result<CachedMap, DbError> {
        let Some(status) = status else {
            return Ok(None);
        };
        let Some(row) = self.db().beatmap_by_md5(md5).await? else {
            return Ok(None);
        };
        let Some(file) = self.scores.beatmaps.osu_file(&row).await else {
            tracing::info!(md5, "no .osu file for the map: its scores keep their pp");
            return Ok(None);
        };
        let status = RankedStatus::from_api_v1(i32::from(status)).unwrap_or(RankedStatus::Pending);
        let parsed = tokio::task::spawn_blocking(move || pp::Beatmap::parse(&file)).await;
        Ok(match parsed {
            Ok(Ok(map)) => Some((Arc::new(map), status)),
            Ok(Err(e)) => {
                tracing::warn!(
                    md5,
                    "the map's file does not parse; its scores keep their pp: {e}"
                );
                None
            }
            Err(e) => {
                tracing::warn!(md5, "parsing the map's file panicked: {e}");
                None
            }
        })
    }
}

/// A mode by name or number.
fn mode_number(text: &str) -> Option<i16> {
    match text.to_ascii_lowercase().as_str() {
        "0" | "osu" | "std" | "standard" => Some(0),
        "1" | "taiko" => Some(1),
        "2" | "catch" | "fruits" | "ctb" => Some(2),
        "3" | "mania" => Some(3),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_by_name_or_number() {
        assert_eq!(mode_number("osu"), Some(0));
        assert_eq!(mode_number("Taiko"), Some(1));
        assert_eq!(mode_number("2"), Some(2));
        assert_eq!(mode_number("mania"), Some(3));
        assert_eq!(mode_number("4"), None);
        assert_eq!(mode_number(""), None);
    }
}
