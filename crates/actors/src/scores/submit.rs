//! `POST /web/osu-submit-modular-selector.php`: a play as the stable client submits it.
//!
//! The client's contract decides the shape of every answer: an empty body, a non-2xx
//! status or a time-out makes it send the play again later, while any `error: …` body or
//! the chart text ends it. So a transient failure (database down, store unreachable)
//! answers [`SubmitAnswer::Retry`] on purpose, every play the server will never take gets
//! an `error: …` word, and a resent play is recognised by its online checksum and gets
//! the first answer again, without being counted twice.

use bytes::Bytes;
use peace_db::{BoardOrder, NewScore, Recorded, Recording, Submission, User};
use peace_scores::grade;
use peace_scores::mods::BoardKind;
use peace_scores::status::RankedStatus;
use peace_scores::submission::ScoreText;
use peace_scores::web::{Chart, ChartStats, SubmissionCharts, SubmitRefusal};
use peace_scores::{crypto, pp};

use super::ScoreService;
use super::beatmaps::{format_api_date, is_md5};
use super::storage::Storage;

/// The largest replay accepted (a replay of a long map is a few hundred KB).
pub const MAX_REPLAY_BYTES: usize = 8 << 20;

/// The fields of the multipart form, as the gateway read them.
#[derive(Debug, Clone, Default)]
pub struct SubmissionForm {
    /// The first `score` part: the encrypted score text, base64.
    pub score: String,
    /// The second `score` part: the replay's LZMA frame stream, as uploaded.
    pub replay: Option<Bytes>,
    /// `iv`: the cipher's initialisation vector, base64.
    pub iv: String,
    /// `osuver`: the client's version (`20231030`), part of the cipher key.
    pub osu_version: String,
    /// `pass`: the password's md5.
    pub password_md5: String,
    /// `s`: the encrypted client hash, base64.
    pub client_hash: String,
    /// `bmk`: the played map's md5 (must match the score text's).
    pub beatmap_md5: String,
    /// `sbk`: the storyboard's md5 (empty without one).
    pub storyboard_md5: String,
    /// `x`: the player quit.
    pub exited: bool,
    /// `ft`: when the player failed, in ms (0 for a pass).
    pub fail_time_ms: i64,
    /// `st`: how long the play took, in ms.
    pub score_time_ms: i64,
}

/// A decrypted, parsed play, not yet tied to an account.
#[derive(Debug, Clone)]
pub struct DecodedPlay {
    pub text: ScoreText,
    pub form: SubmissionForm,
    /// The client hash, decrypted (for the online checksum).
    pub client_hash: String,
}

/// What to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitAnswer {
    /// A 200 with this body (the chart, or an `error: …` word).
    Text(String),
    /// Nothing could be decided now (the database or the store is unreachable): the
    /// client is made to send the play again later.
    Retry,
}

impl SubmitAnswer {
    fn refuse(refusal: SubmitRefusal) -> Self {
        SubmitAnswer::Text(refusal.render().to_owned())
    }
}

/// Decrypts and parses the form; `Err` carries the answer for a form the server will
/// never take (the client must not resend garbage forever).
pub fn decode(form: SubmissionForm) -> Result<DecodedPlay, SubmitAnswer> {
    let refuse = |why: &dyn std::fmt::Display| {
        tracing::info!("score submission refused: {why}");
        SubmitAnswer::refuse(SubmitRefusal::No)
    };
    let plain =
        crypto::decrypt_field(&form.osu_version, &form.iv, &form.score).map_err(|e| refuse(&e))?;
    let text = ScoreText::parse(&plain).map_err(|e| refuse(&e))?;
    // A missing `s` only costs the checksum check; it is not a reason to refuse.
    let client_hash =
        crypto::decrypt_field(&form.osu_version, &form.iv, &form.client_hash).unwrap_or_default();
    if !is_md5(&text.beatmap_md5) {
        return Err(refuse(&"the score names no beatmap md5"));
    }
    if !form.beatmap_md5.is_empty() && form.beatmap_md5 != text.beatmap_md5 {
        return Err(refuse(&"bmk differs from the score's beatmap"));
    }
    Ok(DecodedPlay {
        text,
        form,
        client_hash,
    })
}

impl ScoreService {
    /// Records a decoded play of `user` (already authenticated) and answers it.
    pub async fn submit(&self, user: &User, play: DecodedPlay) -> SubmitAnswer {
        let DecodedPlay {
            text,
            form,
            client_hash,
        } = play;
        if !text.online_checksum_matches(
            &user.name,
            &form.osu_version,
            &client_hash,
            &form.storyboard_md5,
        ) {
            // Logged, not refused: refusing needs proof that real clients always match.
            tracing::warn!(user = user.id, "online checksum does not match the score");
        }
        let map = match self.beatmaps.by_md5(&text.beatmap_md5).await {
            Ok(Some(map)) => map,
            Ok(None) => return SubmitAnswer::refuse(SubmitRefusal::Beatmap),
            Err(e) => {
                tracing::warn!("score submission: beatmap lookup failed: {e}");
                return SubmitAnswer::Retry;
            }
        };
        if !text.mods.is_ranked_combination() {
            return SubmitAnswer::refuse(SubmitRefusal::No);
        }
        let status = map_status(&map);
        let board = BoardKind::for_play(text.mode, text.mods);
        if board != BoardKind::Vanilla && !self.config.relax_boards {
            return SubmitAnswer::refuse(SubmitRefusal::No);
        }
        let passed = text.passed && !form.exited;
        // The replay first: a stored play always has its replay. Only a pass carries one
        // worth keeping (the client uploads one for every play).
        if passed {
            match &form.replay {
                Some(replay) if !replay.is_empty() && replay.len() <= MAX_REPLAY_BYTES => {
                    let key = Storage::replay_key(&text.online_checksum);
                    if let Err(e) = self.beatmaps.storage().put(&key, replay.clone()).await {
                        tracing::warn!("score submission: storing the replay failed: {e}");
                        return SubmitAnswer::Retry;
                    }
                }
                Some(replay) if replay.len() > MAX_REPLAY_BYTES => {
                    return SubmitAnswer::refuse(SubmitRefusal::No);
                }
                _ => {
                    tracing::info!(user = user.id, "a passed play without a replay");
                    return SubmitAnswer::refuse(SubmitRefusal::No);
                }
            }
        }
        let counts = text.counts;
        let accuracy = grade::accuracy(text.mode, &counts) * 100.0;
        let performance = if earns_pp(passed, status) {
            self.performance(&map, &text).await
        } else {
            0.0
        };
        let board_number = board_number(board);
        let mode_number = i16::from(text.mode.number());
        // Above the cap: kept, but off the boards and out of the totals until staff
        // approve it.
        let held_for_review =
            passed && self.config.pp_cap.exceeded(text.mode.number(), performance);
        if held_for_review {
            tracing::info!(user = user.id, pp = performance, md5 = %text.beatmap_md5, "a pass above the pp cap is held for review");
        }
        let submission = Submission {
            score: NewScore {
                user_id: user.id,
                beatmap_md5: text.beatmap_md5.clone(),
                mode: mode_number,
                board: board_number,
                score: i64::try_from(text.score).unwrap_or(i64::MAX),
                pp: performance as f32,
                accuracy: accuracy as f32,
                max_combo: clamp_i32(u64::from(text.max_combo)),
                mods: text.mods.bits() as i32,
                count_300: clamp_i32(u64::from(counts.n300)),
                count_100: clamp_i32(u64::from(counts.n100)),
                count_50: clamp_i32(u64::from(counts.n50)),
                count_geki: clamp_i32(u64::from(counts.ngeki)),
                count_katu: clamp_i32(u64::from(counts.nkatu)),
                count_miss: clamp_i32(u64::from(counts.nmiss)),
                grade: if passed {
                    text.grade.letters().to_owned()
                } else {
                    "F".to_owned()
                },
                perfect: text.perfect,
                status: 0,
                online_checksum: text.online_checksum.clone(),
                play_time: clamp_i32(u64::try_from(play_ms(&form)).unwrap_or(0)),
                client_flags: clamp_i32(u64::from(text.client_flags)),
                replay_views: 0,
                submitted_at: peace_db::unix_now(),
                reply: String::new(),
            },
            passed,
            listed: status.shows_scores(),
            order: board_order(board),
            stats_mode: mode_number + 4 * board_number,
            hits: clamp_i32(
                u64::from(counts.n300) + u64::from(counts.n100) + u64::from(counts.n50),
            ),
            held_for_review,
        };
        let domain = self.config.domain.clone();
        let render = move |recorded: &Recorded| -> String {
            if !passed {
                // A failed or quit play gets a short answer that ends the client's
                // retrying; it shows no chart for it.
                return "error: no".to_owned();
            }
            charts(recorded, &domain, status).render()
        };
        match self
            .db
            .record_score(submission, player_totals, &render)
            .await
        {
            Ok(Recording::Stored { reply, recorded }) => {
                if passed {
                    self.announce_if_first(user, &recorded, status, text.mode)
                        .await;
                }
                if passed && status.shows_scores() {
                    let key = crate::BoardKey {
                        md5: text.beatmap_md5.clone(),
                        mode: mode_number,
                        board: board_number,
                    };
                    self.board_changed(key).await;
                }
                self.notify_stats_changed(user.id);
                SubmitAnswer::Text(reply)
            }
            Ok(Recording::Duplicate { reply, .. }) => SubmitAnswer::Text(reply),
            Err(e) => {
                tracing::warn!(user = user.id, "score submission: storing failed: {e}");
                SubmitAnswer::Retry
            }
        }
    }

    /// The play's pp, or 0 when the map's `.osu` file is nowhere to be had.
    async fn performance(&self, map: &peace_db::BeatmapRow, text: &ScoreText) -> f64 {
        let Some(file) = self.beatmaps.osu_file(map).await else {
            tracing::info!(md5 = %map.md5, "no .osu file for the map: pp is 0");
            return 0.0;
        };
        let c = text.counts;
        let play = pp::Play {
            mode: text.mode.number(),
            mods: text.mods.bits(),
            counts: pp::HitCounts {
                n300: c.n300,
                n100: c.n100,
                n50: c.n50,
                ngeki: c.ngeki,
                nkatu: c.nkatu,
                nmiss: c.nmiss,
            },
            max_combo: text.max_combo,
            legacy_total_score: u32::try_from(text.score).ok(),
            passed: true,
        };
        // Difficulty calculation is CPU work of up to tens of milliseconds.
        let computed = tokio::task::spawn_blocking(move || {
            pp::Beatmap::parse(&file).and_then(|map| pp::performance(&map, &play))
        })
        .await;
        match computed {
            Ok(Ok(result)) => result.pp,
            Ok(Err(e)) => {
                tracing::warn!(md5 = %map.md5, "pp calculation failed: {e}");
                0.0
            }
            Err(e) => {
                tracing::warn!(md5 = %map.md5, "pp calculation panicked: {e}");
                0.0
            }
        }
    }
}

/// Whether a play earns pp: a pass on a map that shows scores. The one rule of a
/// submission and of a recalculation (`recalc.rs`).
pub(crate) fn earns_pp(passed: bool, status: RankedStatus) -> bool {
    passed && status.shows_scores()
}

/// A stored score's pp on `map` (whose status is `status`) by the rule of a submission;
/// None when the calculator refuses the play (the caller keeps what it has).
pub(crate) fn score_pp(
    map: &pp::Beatmap,
    row: &peace_db::ScoreRow,
    status: RankedStatus,
) -> Option<f64> {
    let passed = row.status != peace_db::FAILED;
    if !earns_pp(passed, status) {
        return Some(0.0);
    }
    let n = |v: i32| u32::try_from(v).unwrap_or(0);
    let play = pp::Play {
        mode: u8::try_from(row.mode).ok()?,
        mods: u32::try_from(row.mods).unwrap_or(0),
        counts: pp::HitCounts {
            n300: n(row.count_300),
            n100: n(row.count_100),
            n50: n(row.count_50),
            ngeki: n(row.count_geki),
            nkatu: n(row.count_katu),
            nmiss: n(row.count_miss),
        },
        max_combo: n(row.max_combo),
        legacy_total_score: u32::try_from(row.score).ok(),
        passed: true,
    };
    match pp::performance(map, &play) {
        Ok(result) => Some(result.pp),
        Err(e) => {
            tracing::debug!(score = row.id, "pp calculation refused: {e}");
            None
        }
    }
}

/// The database's totals rule: osu!'s weighting of a player's best scores.
pub(crate) fn player_totals(best: &[(f64, f64)]) -> (f64, f64) {
    let totals = pp::player_totals(best);
    (totals.pp, totals.accuracy)
}

/// How long the play lasted, in ms: the fail time for a failed play, else the play time.
fn play_ms(form: &SubmissionForm) -> i64 {
    if form.fail_time_ms > 0 {
        form.fail_time_ms
    } else {
        form.score_time_ms
    }
    .max(0)
}

fn clamp_i32(n: u64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// `scores.board`.
pub fn board_number(board: BoardKind) -> i16 {
    match board {
        BoardKind::Vanilla => 0,
        BoardKind::Relax => 1,
        BoardKind::Autopilot => 2,
    }
}

/// Relax and autopilot scores mean little: their boards are ordered by pp.
pub fn board_order(board: BoardKind) -> BoardOrder {
    crate::leaderboard::order_of(board_number(board))
}

/// A stored map's status.
pub fn map_status(map: &peace_db::BeatmapRow) -> RankedStatus {
    RankedStatus::from_api_v1(i32::from(map.status)).unwrap_or(RankedStatus::Pending)
}

/// The chart text of a stored pass.
fn charts(r: &Recorded, domain: &str, status: RankedStatus) -> SubmissionCharts {
    let map_stats = |s: &peace_db::ScoreRow, rank: Option<i64>| ChartStats {
        rank: rank.and_then(|r| u32::try_from(r).ok()).unwrap_or(0),
        ranked_score: u64::try_from(s.score).unwrap_or(0),
        total_score: u64::try_from(s.score).unwrap_or(0),
        max_combo: u32::try_from(s.max_combo).unwrap_or(0),
        accuracy: f64::from(s.accuracy),
        pp: f64::from(s.pp),
    };
    let overall = |s: &peace_db::Stats, rank: i32| ChartStats {
        rank: u32::try_from(rank).unwrap_or(0),
        ranked_score: u64::try_from(s.ranked_score).unwrap_or(0),
        total_score: u64::try_from(s.total_score).unwrap_or(0),
        max_combo: u32::try_from(s.max_combo).unwrap_or(0),
        accuracy: f64::from(s.accuracy),
        pp: f64::from(s.pp),
    };
    let before_best = r
        .previous_best
        .as_ref()
        .map(|b| map_stats(b, r.map_rank_before));
    let base = if domain.is_empty() {
        String::new()
    } else {
        format!("https://osu.{domain}")
    };
    SubmissionCharts {
        beatmap_id: u32::try_from(r.beatmap.id).unwrap_or(0),
        set_id: u32::try_from(r.beatmap.set_id).unwrap_or(0),
        playcount: u64::try_from(r.beatmap.plays).unwrap_or(0),
        passcount: u64::try_from(r.beatmap.passes).unwrap_or(0),
        approved_date: if status.has_leaderboard() {
            format_api_date(r.beatmap.approved_at)
        } else {
            String::new()
        },
        beatmap: Chart {
            url: format!("{base}/b/{}", r.beatmap.id),
            before: before_best,
            after: map_stats(&r.score, r.map_rank_after),
        },
        online_score_id: u64::try_from(r.score_id).unwrap_or(0),
        overall: Chart {
            url: format!("{base}/u/{}", r.stats_after.user_id),
            before: Some(overall(&r.stats_before, r.global_rank_before)),
            after: overall(&r.stats_after, r.global_rank_after),
        },
        achievements_new: String::new(),
    }
}
