//! The text replies of the stable client's `/web/` endpoints, formatted exactly as the
//! client parses them. Each reply is a small typed struct with a `render` method.
//!
//! Formats checked against bancho.py (`app/api/domains/osu.py`), with the title line and
//! the chart line breaks also as titanic and Sunrise (C#) send them.

use std::fmt::Write as _;

use crate::grade::Grade;
use crate::mods::Mods;
use crate::status::RankedStatus;

/// A float the way the client reads it: no exponent, a `.` decimal point, at most two
/// decimals, and whole numbers without any.
fn decimal(x: f64) -> String {
    if !x.is_finite() {
        return "0".to_owned();
    }
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

/// How the third line of a getscores reply names the map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisplayTitle {
    /// `Artist - Title [Version]` (bancho.py).
    Full {
        /// The artist.
        artist: String,
        /// The song title.
        title: String,
        /// The difficulty name.
        version: String,
    },
    /// `[bold:0,size:20]Artist|Title`: the client's own markup, the artist in bold over
    /// the title (titanic, Ripple-style servers).
    Styled {
        /// The artist.
        artist: String,
        /// The song title.
        title: String,
    },
}

impl DisplayTitle {
    fn render(&self) -> String {
        // A line break would end the line early and shift every field after it.
        let clean = |s: &str| s.replace(['\n', '\r'], " ");
        match self {
            DisplayTitle::Full {
                artist,
                title,
                version,
            } => {
                format!("{} - {} [{}]", clean(artist), clean(title), clean(version))
            }
            DisplayTitle::Styled { artist, title } => {
                format!("[bold:0,size:20]{}|{}", clean(artist), clean(title))
            }
        }
    }
}

/// One score line of a getscores reply.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreLine {
    /// The score's id (used by the client to fetch the replay).
    pub score_id: u64,
    /// The name shown (may carry a clan tag).
    pub player_name: String,
    /// The number shown as the score (total score, or pp on pp-sorted boards).
    pub score: u64,
    /// Max combo.
    pub max_combo: u32,
    /// 50s.
    pub n50: u32,
    /// 100s.
    pub n100: u32,
    /// 300s.
    pub n300: u32,
    /// Misses.
    pub nmiss: u32,
    /// Katu.
    pub nkatu: u32,
    /// Geki.
    pub ngeki: u32,
    /// Full combo.
    pub perfect: bool,
    /// Mods.
    pub mods: Mods,
    /// The player's id (for the avatar).
    pub user_id: u32,
    /// The place on the board, from 1.
    pub rank: u32,
    /// When it was set, in unix seconds.
    pub time: i64,
    /// Whether a replay can be downloaded.
    pub has_replay: bool,
}

impl ScoreLine {
    /// `id|name|score|combo|n50|n100|n300|miss|katu|geki|perfect|mods|user_id|rank|time|replay`
    /// with the booleans as `0`/`1`.
    pub fn render(&self) -> String {
        format!(
            "{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}",
            self.score_id,
            self.player_name.replace(['|', '\n', '\r'], " "),
            self.score,
            self.max_combo,
            self.n50,
            self.n100,
            self.n300,
            self.nmiss,
            self.nkatu,
            self.ngeki,
            u8::from(self.perfect),
            self.mods.bits(),
            self.user_id,
            self.rank,
            self.time,
            u8::from(self.has_replay),
        )
    }
}

/// A leaderboard reply for a map the server knows.
#[derive(Debug, Clone, PartialEq)]
pub struct Leaderboard {
    /// The map's status (getscores numbering in the header).
    pub status: RankedStatus,
    /// The map's id.
    pub beatmap_id: u32,
    /// The set's id.
    pub set_id: u32,
    /// The featured-artist track id, 0 for none (6th header field).
    pub featured_artist_track: u32,
    /// The featured-artist licence text, empty for none (7th header field).
    pub featured_artist_license: String,
    /// The online offset in ms (2nd line).
    pub offset: i32,
    /// The map's name (3rd line).
    pub title: DisplayTitle,
    /// The map's user rating (4th line).
    pub rating: f64,
    /// The player's own best, shown apart (5th line, empty when none).
    pub personal_best: Option<ScoreLine>,
    /// The board's scores, best first. Empty for the editor (`s=1`), which reads only
    /// the map's data.
    pub scores: Vec<ScoreLine>,
}

/// The whole reply to `/web/osu-osz2-getscores.php`.
#[derive(Debug, Clone, PartialEq)]
pub enum GetScoresReply {
    /// The server does not know the map: `-1|false`.
    NotSubmitted,
    /// The server has a newer version of the map: `1|false` (the client offers an update).
    UpdateAvailable,
    /// A known map with no leaderboard (pending and the like): `{status}|false`.
    NoLeaderboard(RankedStatus),
    /// A map with a leaderboard (boxed: the other answers are a few bytes).
    Leaderboard(Box<Leaderboard>),
}

impl GetScoresReply {
    /// The reply's text. For a leaderboard: the header
    /// `status|false|beatmap_id|set_id|count|fa_track|fa_licence` (`false`: the server has
    /// no osz2 for the map, which the client needs to submit), then the offset, the title,
    /// the rating, the personal best or an empty line, and one line per score; every line
    /// ends in `\n`.
    pub fn render(&self) -> String {
        match self {
            GetScoresReply::NotSubmitted => "-1|false".to_owned(),
            GetScoresReply::UpdateAvailable => "1|false".to_owned(),
            GetScoresReply::NoLeaderboard(status) => format!("{}|false", status.to_getscores()),
            GetScoresReply::Leaderboard(board) => {
                let mut out = format!(
                    "{}|false|{}|{}|{}|{}|{}\n{}\n{}\n{}\n",
                    board.status.to_getscores(),
                    board.beatmap_id,
                    board.set_id,
                    board.scores.len(),
                    board.featured_artist_track,
                    board
                        .featured_artist_license
                        .replace(['|', '\n', '\r'], " "),
                    board.offset,
                    board.title.render(),
                    // The client reads a float; one decimal as bancho.py's `10.0`.
                    format_args!(
                        "{:.1}",
                        if board.rating.is_finite() {
                            board.rating
                        } else {
                            0.0
                        }
                    ),
                );
                if let Some(pb) = &board.personal_best {
                    out.push_str(&pb.render());
                }
                out.push('\n');
                for score in &board.scores {
                    out.push_str(&score.render());
                    out.push('\n');
                }
                out
            }
        }
    }
}

/// A player's or a score's numbers before or after a submission, for one chart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChartStats {
    /// Place on the board or global rank.
    pub rank: u32,
    /// Ranked score.
    pub ranked_score: u64,
    /// Total score.
    pub total_score: u64,
    /// Max combo.
    pub max_combo: u32,
    /// Accuracy in percent (0..=100), sent with two decimals.
    pub accuracy: f64,
    /// Performance points.
    pub pp: f64,
}

/// One chart: its url and the before/after pairs. A missing "before" (a first score)
/// renders as empty values, which the client shows as new.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// The page the chart links to.
    pub url: String,
    /// The numbers before, if any.
    pub before: Option<ChartStats>,
    /// The numbers after.
    pub after: ChartStats,
}

impl Chart {
    fn render_pairs(&self, out: &mut String) {
        let b = self.before;
        let a = self.after;
        let mut pair = |name: &str, before: Option<String>, after: String| {
            let _ = write!(
                out,
                "|{name}Before:{}|{name}After:{after}",
                before.unwrap_or_default()
            );
        };
        pair("rank", b.map(|b| b.rank.to_string()), a.rank.to_string());
        pair(
            "rankedScore",
            b.map(|b| b.ranked_score.to_string()),
            a.ranked_score.to_string(),
        );
        pair(
            "totalScore",
            b.map(|b| b.total_score.to_string()),
            a.total_score.to_string(),
        );
        pair(
            "maxCombo",
            b.map(|b| b.max_combo.to_string()),
            a.max_combo.to_string(),
        );
        pair(
            "accuracy",
            b.map(|b| format!("{:.2}", b.accuracy)),
            format!("{:.2}", a.accuracy),
        );
        pair("pp", b.map(|b| decimal(b.pp)), decimal(a.pp));
    }
}

/// The reply to a passed submission (`/web/osu-submit-modular-selector.php`): three lines
/// of `key:value` pairs joined by `|`.
#[derive(Debug, Clone, PartialEq)]
pub struct SubmissionCharts {
    /// The map's id.
    pub beatmap_id: u32,
    /// The set's id.
    pub set_id: u32,
    /// Plays on the map.
    pub playcount: u64,
    /// Passes on the map.
    pub passcount: u64,
    /// When the map was approved, as text (`2014-05-18 15:41:48` in bancho.py).
    pub approved_date: String,
    /// The map's leaderboard chart (this score before and after).
    pub beatmap: Chart,
    /// The new score's id.
    pub online_score_id: u64,
    /// The player's overall chart.
    pub overall: Chart,
    /// Achievements unlocked, as `icon+name+description` joined by `/`; empty for none.
    pub achievements_new: String,
}

impl SubmissionCharts {
    /// The reply's text: the beatmap line, the `chartId:beatmap` line ending in
    /// `onlineScoreId`, and the `chartId:overall` line ending in `achievements-new`. The
    /// pairs come in bancho.py's order: rank, rankedScore, totalScore, maxCombo, accuracy,
    /// pp. Lines are split by a bare `\n` (bancho.py also leaves a `|` on each side of it,
    /// which the client ignores).
    pub fn render(&self) -> String {
        let clean = |s: &str| s.replace(['|', '\n', '\r'], " ");
        let mut out = format!(
            "beatmapId:{}|beatmapSetId:{}|beatmapPlaycount:{}|beatmapPasscount:{}|approvedDate:{}\n",
            self.beatmap_id,
            self.set_id,
            self.playcount,
            self.passcount,
            clean(&self.approved_date),
        );
        let _ = write!(
            out,
            "chartId:beatmap|chartUrl:{}|chartName:Beatmap Ranking",
            clean(&self.beatmap.url)
        );
        self.beatmap.render_pairs(&mut out);
        let _ = writeln!(out, "|onlineScoreId:{}", self.online_score_id);
        let _ = write!(
            out,
            "chartId:overall|chartUrl:{}|chartName:Overall Ranking",
            clean(&self.overall.url)
        );
        self.overall.render_pairs(&mut out);
        let _ = write!(out, "|achievements-new:{}", clean(&self.achievements_new));
        out
    }
}

/// A refusal of a submission. The client shows nothing and does not retry for these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitRefusal {
    /// The map is unknown: `error: beatmap`.
    Beatmap,
    /// Generic refusal (duplicate score, failed play, no charts): `error: no`.
    No,
    /// The player is restricted: `error: ban`.
    Ban,
}

impl SubmitRefusal {
    /// The reply's text.
    pub fn render(self) -> &'static str {
        match self {
            SubmitRefusal::Beatmap => "error: beatmap",
            SubmitRefusal::No => "error: no",
            SubmitRefusal::Ban => "error: ban",
        }
    }
}

/// One line of the `/web/osu-getbeatmapinfo.php` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BeatmapInfoLine {
    /// The index of the filename in the request.
    pub index: usize,
    /// The map's id.
    pub beatmap_id: u32,
    /// The set's id.
    pub set_id: u32,
    /// The map's md5.
    pub md5: String,
    /// The map's status (osu!api numbering on the wire).
    pub status: RankedStatus,
    /// The player's best grade in osu!, taiko, catch and mania; `None` shows as `N`.
    pub grades: [Option<Grade>; 4],
}

impl BeatmapInfoLine {
    /// `index|beatmap_id|set_id|md5|status|std|taiko|catch|mania`. `None` when the status
    /// has no osu!api number (not submitted, update available): such maps get no line.
    pub fn render(&self) -> Option<String> {
        self.render_with_index(&self.index.to_string())
    }

    /// The line of a map the client asked for by id (the request's `Ids`): the index is
    /// −1 and the client finds the map by its id. (osuTitanic's deck answers ids so;
    /// bancho.py answers no line for them.) `None` as for [`BeatmapInfoLine::render`].
    pub fn render_by_id(&self) -> Option<String> {
        self.render_with_index("-1")
    }

    fn render_with_index(&self, index: &str) -> Option<String> {
        let status = self.status.to_getbeatmapinfo()?;
        let g = self.grades.map(|g| g.map_or("N", Grade::letters));
        Some(format!(
            "{index}|{}|{}|{}|{}|{}|{}|{}|{}",
            self.beatmap_id, self.set_id, self.md5, status, g[0], g[1], g[2], g[3]
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(id: u64, name: &str, rank: u32) -> ScoreLine {
        ScoreLine {
            score_id: id,
            player_name: name.into(),
            score: 26810,
            max_combo: 52,
            n50: 1,
            n100: 2,
            n300: 3,
            nmiss: 4,
            nkatu: 5,
            ngeki: 6,
            perfect: true,
            mods: Mods::HIDDEN | Mods::DOUBLE_TIME,
            user_id: 1000,
            rank,
            time: 1_700_000_000,
            has_replay: true,
        }
    }

    fn board() -> Leaderboard {
        Leaderboard {
            status: RankedStatus::Ranked,
            beatmap_id: 315,
            set_id: 141,
            featured_artist_track: 0,
            featured_artist_license: String::new(),
            offset: 0,
            title: DisplayTitle::Full {
                artist: "xi".into(),
                title: "FREEDOM DiVE".into(),
                version: "FOUR DIMENSIONS".into(),
            },
            rating: 10.0,
            personal_best: None,
            scores: vec![],
        }
    }

    #[test]
    fn score_line_fields_in_order() {
        assert_eq!(
            line(42, "cmyui", 1).render(),
            "42|cmyui|26810|52|1|2|3|4|5|6|1|72|1000|1|1700000000|1"
        );
        let mut l = line(1, "a|b", 2);
        l.perfect = false;
        l.has_replay = false;
        assert_eq!(
            l.render(),
            "1|a b|26810|52|1|2|3|4|5|6|0|72|1000|2|1700000000|0"
        );
    }

    #[test]
    fn short_replies() {
        assert_eq!(GetScoresReply::NotSubmitted.render(), "-1|false");
        assert_eq!(GetScoresReply::UpdateAvailable.render(), "1|false");
        assert_eq!(
            GetScoresReply::NoLeaderboard(RankedStatus::Pending).render(),
            "0|false"
        );
    }

    #[test]
    fn an_empty_board() {
        assert_eq!(
            GetScoresReply::Leaderboard(Box::new(board())).render(),
            "2|false|315|141|0|0|\n0\nxi - FREEDOM DiVE [FOUR DIMENSIONS]\n10.0\n\n"
        );
    }

    #[test]
    fn a_board_with_a_personal_best_and_scores() {
        let mut b = board();
        b.status = RankedStatus::Loved;
        b.title = DisplayTitle::Styled {
            artist: "xi".into(),
            title: "FREEDOM\nDiVE".into(),
        };
        b.rating = 8.4567;
        b.personal_best = Some(line(7, "me", 2));
        b.scores = vec![line(9, "top", 1), line(7, "me", 2)];
        let text = GetScoresReply::Leaderboard(Box::new(b)).render();
        let lines: Vec<&str> = text.split('\n').collect();
        assert_eq!(lines[0], "5|false|315|141|2|0|");
        assert_eq!(lines[1], "0");
        assert_eq!(lines[2], "[bold:0,size:20]xi|FREEDOM DiVE");
        assert_eq!(lines[3], "8.5");
        assert!(lines[4].starts_with("7|me|"));
        assert!(lines[5].starts_with("9|top|"));
        assert!(lines[6].starts_with("7|me|"));
        assert_eq!(lines[7], "");
        assert_eq!(lines.len(), 8);
    }

    fn stats(rank: u32, acc: f64, pp: f64) -> ChartStats {
        ChartStats {
            rank,
            ranked_score: 26810,
            total_score: 30000,
            max_combo: 52,
            accuracy: acc,
            pp,
        }
    }

    #[test]
    fn charts_with_a_first_score() {
        let charts = SubmissionCharts {
            beatmap_id: 315,
            set_id: 141,
            playcount: 1,
            passcount: 1,
            approved_date: "2014-05-18 15:41:48".into(),
            beatmap: Chart {
                url: "https://osu.example/s/141".into(),
                before: None,
                after: stats(1, 81.9444, 10.448),
            },
            online_score_id: 42,
            overall: Chart {
                url: "https://example/u/6".into(),
                before: Some(stats(2, 80.0, 10.0)),
                after: stats(1, 81.94, 11.0),
            },
            achievements_new: String::new(),
        };
        let text = charts.render();
        let lines: Vec<&str> = text.split('\n').collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines[0],
            "beatmapId:315|beatmapSetId:141|beatmapPlaycount:1|beatmapPasscount:1|approvedDate:2014-05-18 15:41:48"
        );
        assert_eq!(
            lines[1],
            "chartId:beatmap|chartUrl:https://osu.example/s/141|chartName:Beatmap Ranking\
             |rankBefore:|rankAfter:1|rankedScoreBefore:|rankedScoreAfter:26810\
             |totalScoreBefore:|totalScoreAfter:30000|maxComboBefore:|maxComboAfter:52\
             |accuracyBefore:|accuracyAfter:81.94|ppBefore:|ppAfter:10.45|onlineScoreId:42"
        );
        assert_eq!(
            lines[2],
            "chartId:overall|chartUrl:https://example/u/6|chartName:Overall Ranking\
             |rankBefore:2|rankAfter:1|rankedScoreBefore:26810|rankedScoreAfter:26810\
             |totalScoreBefore:30000|totalScoreAfter:30000|maxComboBefore:52|maxComboAfter:52\
             |accuracyBefore:80.00|accuracyAfter:81.94|ppBefore:10|ppAfter:11|achievements-new:"
        );
    }

    #[test]
    fn refusals() {
        assert_eq!(SubmitRefusal::Beatmap.render(), "error: beatmap");
        assert_eq!(SubmitRefusal::No.render(), "error: no");
        assert_eq!(SubmitRefusal::Ban.render(), "error: ban");
    }

    #[test]
    fn beatmap_info_lines() {
        let l = BeatmapInfoLine {
            index: 0,
            beatmap_id: 315,
            set_id: 141,
            md5: "1cf5b2c2edfafd055536d2cefcb89c0e".into(),
            status: RankedStatus::Ranked,
            grades: [Some(Grade::XH), None, Some(Grade::A), None],
        };
        assert_eq!(
            l.render().unwrap(),
            "0|315|141|1cf5b2c2edfafd055536d2cefcb89c0e|1|XH|N|A|N"
        );
        assert_eq!(
            BeatmapInfoLine {
                index: 7,
                ..l.clone()
            }
            .render_by_id()
            .unwrap(),
            "-1|315|141|1cf5b2c2edfafd055536d2cefcb89c0e|1|XH|N|A|N"
        );
        let unknown = BeatmapInfoLine {
            status: RankedStatus::NotSubmitted,
            ..l
        };
        assert_eq!(unknown.render(), None);
        assert_eq!(unknown.render_by_id(), None);
    }

    #[test]
    fn decimals() {
        assert_eq!(decimal(11.0), "11");
        assert_eq!(decimal(10.448), "10.45");
        assert_eq!(decimal(f64::NAN), "0");
    }
}
