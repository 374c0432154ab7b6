//! The stable client's calls around maps besides scores: ratings (`osu-rate.php`),
//! favourite sets (`osu-getfavourites.php`, `osu-addfavourite.php`), in-song comments
//! (`osu-comment.php`), its reports (`lastfm.php` anti-cheat flags, `osu-error.php`),
//! read marks (`osu-markasread.php`) and star ratings with mods (`/difficulty-rating`).
//! Each answer is the text the client reads; the gateway only reads the request.

pub use peace_db::CommentTarget;
use peace_db::{DbError, FavouriteOutcome, NewComment, Privileges, RatingOutcome, ReportKind};
use peace_scores::pp;

use super::{Account, ScoreService};
use crate::scores::submit::map_status;

/// The longest comment the client sends (its text box stops there); longer ones are cut.
pub const MAX_COMMENT_CHARS: usize = 80;

/// What `osu-rate.php` answers.
#[derive(Debug, Clone, PartialEq)]
pub enum RateAnswer {
    /// The server does not know the map.
    NoSuchMap,
    /// The map has no leaderboard: nothing to rate.
    NotRanked,
    /// The player may vote.
    MayVote,
    /// The player voted (now or before): the map's mean rating.
    Voted(f64),
}

impl RateAnswer {
    /// The client's text: `ok` opens the rating dialog; `alreadyvoted` followed by the
    /// mean on the next line shows the mean.
    pub fn render(&self) -> String {
        match self {
            RateAnswer::NoSuchMap => "no exist".into(),
            RateAnswer::NotRanked => "not ranked".into(),
            RateAnswer::MayVote => "ok".into(),
            RateAnswer::Voted(mean) => format!("alreadyvoted\n{mean:.2}"),
        }
    }
}

/// A comment as the client posts it.
#[derive(Debug, Clone)]
pub struct CommentPost {
    pub target: CommentTarget,
    pub target_id: i32,
    pub song_time: i32,
    pub colour: String,
    pub text: String,
}

/// What `/difficulty-rating` answers.
#[derive(Debug, Clone, PartialEq)]
pub enum StarsAnswer {
    Stars(f64),
    /// No such map, or no `.osu` file for it.
    NoSuchMap,
    /// The ruleset is not one of the four.
    BadRequest,
}

impl ScoreService {
    /// `osu-rate.php`: without a vote, whether the player may vote; with one, stores it
    /// (the first vote stays) and answers the mean.
    pub async fn rate(
        &self,
        user: &Account,
        md5: &str,
        vote: Option<i16>,
    ) -> Result<RateAnswer, DbError> {
        if !super::beatmaps::is_md5(md5) {
            return Ok(RateAnswer::NoSuchMap);
        }
        let Some(map) = self.beatmaps.by_md5(md5).await? else {
            return Ok(RateAnswer::NoSuchMap);
        };
        if !map_status(&map).shows_scores() {
            return Ok(RateAnswer::NotRanked);
        }
        match vote {
            None => {
                if !self.db.has_rated(&map.md5, user.id).await? {
                    return Ok(RateAnswer::MayVote);
                }
            }
            Some(vote) => {
                if let RatingOutcome::AlreadyRated =
                    self.db.rate_beatmap(&map.md5, user.id, vote).await?
                {
                    tracing::debug!(user = user.id, md5 = %map.md5, "a second vote ignored");
                }
            }
        }
        let mean = self.db.beatmap_rating(&map.md5).await?.unwrap_or(0.0);
        Ok(RateAnswer::Voted(mean))
    }

    /// `osu-getfavourites.php`: the player's favourite set ids, one per line.
    pub async fn favourites(&self, user: &Account) -> Result<String, DbError> {
        let sets = self.db.favourites(user.id).await?;
        Ok(sets
            .iter()
            .map(i32::to_string)
            .collect::<Vec<_>>()
            .join("\n"))
    }

    /// `osu-addfavourite.php`: adds a set the server knows; the answer is shown to the
    /// player as it is (empty when added).
    pub async fn add_favourite(&self, user: &Account, set_id: i32) -> Result<String, DbError> {
        if set_id <= 0 || self.beatmaps.set(set_id).await?.is_empty() {
            return Ok("That beatmap set is not known here.".into());
        }
        Ok(match self.db.add_favourite(user.id, set_id).await? {
            FavouriteOutcome::Added => String::new(),
            FavouriteOutcome::AlreadyFavourite => "You've already favourited this beatmap!".into(),
            FavouriteOutcome::TooMany => format!(
                "You have {} favourites already: remove some first.",
                peace_db::MAX_FAVOURITES
            ),
        })
    }

    /// `osu-comment.php?a=get`: the comments on a set, a map and a replay, one per line:
    /// `time \t target \t format \t text`, the format being the author's rank word
    /// (`bat` for staff, `supporter`) and `|rrggbb` when they chose a colour.
    pub async fn comments(
        &self,
        user: &Account,
        set_id: Option<i32>,
        map_id: Option<i32>,
        score_id: Option<i32>,
    ) -> Result<String, DbError> {
        let positive = |id: Option<i32>| id.filter(|&id| id > 0);
        let comments = self
            .db
            .comments(
                positive(set_id),
                positive(map_id),
                positive(score_id),
                user.id,
            )
            .await?;
        let lines: Vec<String> = comments
            .iter()
            .map(|c| {
                let mut format = if c.privileges.is_staff() {
                    "bat".to_owned()
                } else if c.privileges.contains(Privileges::SUPPORTER) {
                    "supporter".to_owned()
                } else {
                    String::new()
                };
                if !c.colour.is_empty() {
                    format.push('|');
                    format.push_str(&c.colour);
                }
                format!(
                    "{}\t{}\t{}\t{}",
                    c.song_time,
                    c.target.word(),
                    format,
                    c.body
                )
            })
            .collect();
        Ok(lines.join("\n"))
    }

    /// `osu-comment.php?a=post`: stores a comment. Its text loses what would break the
    /// line format (tabs, line breaks) and is cut to [`MAX_COMMENT_CHARS`]; a colour is
    /// kept for supporters and staff only. `false` when there was nothing to store.
    pub async fn post_comment(&self, user: &Account, post: &CommentPost) -> Result<bool, DbError> {
        let text: String = post
            .text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(MAX_COMMENT_CHARS)
            .collect();
        let text = text.trim();
        if text.is_empty() || post.target_id <= 0 {
            return Ok(false);
        }
        let privileges = user.privileges();
        let may_colour = privileges.contains(Privileges::SUPPORTER) || privileges.is_staff();
        let colour = post.colour.to_ascii_lowercase();
        let colour =
            if may_colour && colour.len() == 6 && colour.bytes().all(|b| b.is_ascii_hexdigit()) {
                colour
            } else {
                String::new()
            };
        self.db
            .post_comment(&NewComment {
                user_id: user.id,
                target: post.target,
                target_id: post.target_id,
                song_time: post.song_time.max(0),
                colour: &colour,
                body: text,
            })
            .await?;
        Ok(true)
    }

    /// `lastfm.php?b=a<flags>`: the client's anti-cheat flags, recorded with the player
    /// and the time. Other values of `b` (a beatmap id being "scrobbled") are not kept.
    /// Returns whether the value was a flag report.
    pub async fn report_flags(
        &self,
        user: &Account,
        b: &str,
        client_version: &str,
    ) -> Result<bool, DbError> {
        let Some(flags) = parse_flags(b) else {
            return Ok(false);
        };
        if flags != 0 {
            tracing::info!(user = user.id, flags, "client reported anti-cheat flags");
        }
        self.db
            .record_client_report(Some(user.id), ReportKind::Flags, flags, client_version, "")
            .await?;
        Ok(true)
    }

    /// `osu-error.php`: an error report, with the player when its login was valid.
    pub async fn report_error(
        &self,
        user_id: Option<i32>,
        client_version: &str,
        detail: &str,
    ) -> Result<(), DbError> {
        self.db
            .record_client_report(user_id, ReportKind::Error, 0, client_version, detail)
            .await
    }

    /// `osu-markasread.php?channel=<name>`: the player read their conversation with
    /// `name`; what that player left waiting for them is not handed out again.
    pub async fn mark_read(&self, user: &Account, channel: &str) -> Result<(), DbError> {
        let name = channel.trim();
        // A channel (#osu) has no mail; a name longer than any account's is no player.
        if name.is_empty() || name.starts_with('#') || name.chars().count() > 32 {
            return Ok(());
        }
        if let Some(sender) = self.db.user_by_name(name).await? {
            self.db.mark_mail_read(user.id, sender.id).await?;
        }
        Ok(())
    }

    /// `/difficulty-rating`: a map's star rating in a mode with stable mods.
    pub async fn star_rating(
        &self,
        beatmap_id: i32,
        ruleset_id: i32,
        mods: u32,
    ) -> Result<StarsAnswer, DbError> {
        let Ok(mode) = u8::try_from(ruleset_id) else {
            return Ok(StarsAnswer::BadRequest);
        };
        if mode > 3 {
            return Ok(StarsAnswer::BadRequest);
        }
        if beatmap_id <= 0 {
            return Ok(StarsAnswer::NoSuchMap);
        }
        let Some(map) = self.beatmaps.by_id(beatmap_id).await? else {
            return Ok(StarsAnswer::NoSuchMap);
        };
        let Some(file) = self.beatmaps.osu_file(&map).await else {
            return Ok(StarsAnswer::NoSuchMap);
        };
        // A converted map exists only from osu! (mode 0) to the others.
        if map.mode != 0 && i16::from(mode) != map.mode {
            return Ok(StarsAnswer::BadRequest);
        }
        let computed = tokio::task::spawn_blocking(move || {
            pp::Beatmap::parse(&file).and_then(|map| pp::stars(&map, mode, mods))
        })
        .await;
        match computed {
            Ok(Ok(stars)) => Ok(StarsAnswer::Stars(stars.stars)),
            Ok(Err(e)) => {
                tracing::info!(id = beatmap_id, "star rating failed: {e}");
                Ok(StarsAnswer::NoSuchMap)
            }
            Err(e) => {
                tracing::warn!(id = beatmap_id, "star rating panicked: {e}");
                Ok(StarsAnswer::NoSuchMap)
            }
        }
    }
}

/// The flags of a `lastfm.php` `b` value: `a` then a decimal number (the client's bit
/// set, kept bit for bit in a signed column).
pub fn parse_flags(b: &str) -> Option<i32> {
    let digits = b.strip_prefix('a')?;
    if digits.is_empty() || digits.len() > 10 || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let flags: u32 = digits.parse().ok()?;
    Some(i32::from_ne_bytes(flags.to_ne_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_a_then_digits() {
        assert_eq!(parse_flags("a0"), Some(0));
        assert_eq!(parse_flags("a16"), Some(16));
        assert_eq!(parse_flags("a4294967295"), Some(-1));
        for not_flags in ["", "a", "123", "a-1", "a1x", "a99999999999", "b16", "a 1"] {
            assert_eq!(parse_flags(not_flags), None, "{not_flags:?}");
        }
    }

    #[test]
    fn rate_answers_are_the_clients_words() {
        assert_eq!(RateAnswer::MayVote.render(), "ok");
        assert_eq!(RateAnswer::NoSuchMap.render(), "no exist");
        assert_eq!(RateAnswer::Voted(7.5).render(), "alreadyvoted\n7.50");
    }
}
