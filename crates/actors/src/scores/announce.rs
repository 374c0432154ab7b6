//! The bot's word in `#announce` when a player takes first place on a map's vanilla
//! board (ranked, approved or loved), as public servers post it.

use peace_db::{Privileges, Recorded};
use peace_scores::mode::Mode;
use peace_scores::status::RankedStatus;

use super::ScoreService;
use crate::kind_msg::ChannelCast;
use crate::ports::{Mail, Outbox};

/// Where first places are announced (seeded by the first migration).
pub const ANNOUNCE_CHANNEL: &str = "#announce";

/// Whether a stored play took first place: its board's #1 after it, and the player did
/// not hold #1 before (improving one's own #1 is not news).
pub fn took_first_place(recorded: &Recorded) -> bool {
    recorded.map_rank_after == Some(1) && recorded.map_rank_before != Some(1)
}

/// The announcement: links to the player and the map in the client's `[url text]` form.
pub fn first_place_text(
    domain: &str,
    user_id: i32,
    name: &str,
    r: &Recorded,
    mode: Mode,
) -> String {
    let base = if domain.is_empty() {
        String::new()
    } else {
        format!("https://osu.{domain}")
    };
    let map = &r.beatmap;
    let mode_name = match mode {
        Mode::Osu => "osu!",
        Mode::Taiko => "osu!taiko",
        Mode::Catch => "osu!catch",
        Mode::Mania => "osu!mania",
    };
    let mut text = format!(
        "[{base}/u/{user_id} {name}] achieved #1 on [{base}/b/{id} {artist} - {title} [{version}]] ({mode_name}) with {acc:.2}%",
        id = map.id,
        artist = map.artist,
        title = map.title,
        version = map.version,
        acc = r.score.accuracy,
    );
    if r.score.pp > 0.0 {
        text.push_str(&format!(" for {:.0}pp", r.score.pp));
    }
    text
}

impl ScoreService {
    /// Tells `#announce` (as the bot) that the player took first place, when the play
    /// is a vanilla pass on a ranked, approved or loved map by a player others may see.
    pub(crate) async fn announce_if_first(
        &self,
        user: &super::Account,
        recorded: &Recorded,
        status: RankedStatus,
        mode: Mode,
    ) {
        if !took_first_place(recorded)
            || !status.has_leaderboard()
            || recorded.score.board != 0
            || user.privileges().contains(Privileges::RESTRICTED)
        {
            return;
        }
        let bot = match self.db.user_by_id(crate::BOT_ID).await {
            Ok(Some(bot)) => bot,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!("first place not announced: {e}");
                return;
            }
        };
        let text = first_place_text(&self.config.domain, user.id, &user.name, recorded, mode);
        let privileges = bot.privileges().union(Privileges::BOT);
        let msg = ChannelCast::Message {
            from_id: crate::BOT_ID,
            from_name: bot.name,
            privileges,
            text,
        };
        if let Err(e) = self
            .router
            .send(Mail::Channel(ANNOUNCE_CHANNEL.into(), msg))
        {
            tracing::debug!("first place not announced: {e}");
        }
    }
}
