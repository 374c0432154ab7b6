//! `/np`: the stable client's action message naming the map a player has open, and what
//! the bot remembers of the last one per player (the map the `!map`, `!pp` and `!with`
//! commands act on).
//!
//! The client sends it as a private message to the bot:
//! `\x01ACTION is listening to [https://osu.ppy.sh/b/123 Artist - Title [Version]]\x01`,
//! with `playing`, `watching` or `editing` instead of `listening to`, the host of the
//! server it is connected to instead of osu.ppy.sh, newer clients writing the link as
//! `/beatmapsets/<set>#<mode>/<id>`, and after the link the mode when it is not osu!
//! (`<Taiko>`, `<CatchTheBeat>`, `<osu!mania>`) and the mods (`+Hidden +DoubleTime`).

use std::collections::HashMap;

use peace_scores::mods::Mods;

/// Players whose last `/np` the bot remembers at once; the oldest is forgotten first.
pub const MAX_REMEMBERED: usize = 10_000;

/// What a player's `/np` named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NowPlaying {
    /// The map's osu! id.
    pub beatmap_id: i32,
    /// The mode the client named (0 osu!, 1 taiko, 2 catch, 3 mania).
    pub mode: u8,
    pub mods: Mods,
}

/// The verbs the client writes after `is`.
const VERBS: [&str; 4] = ["listening to ", "playing ", "watching ", "editing "];

/// The mods the client writes after the link, by the names it uses.
const MOD_NAMES: [(&str, Mods); 17] = [
    ("NoFail", Mods::NO_FAIL),
    ("Easy", Mods::EASY),
    ("TouchDevice", Mods::TOUCH_DEVICE),
    ("Hidden", Mods::HIDDEN),
    ("HardRock", Mods::HARD_ROCK),
    ("SuddenDeath", Mods::SUDDEN_DEATH),
    ("DoubleTime", Mods::DOUBLE_TIME),
    ("Relax", Mods::RELAX),
    ("HalfTime", Mods::HALF_TIME),
    ("Nightcore", Mods::NIGHTCORE.union(Mods::DOUBLE_TIME)),
    ("Flashlight", Mods::FLASHLIGHT),
    ("SpunOut", Mods::SPUN_OUT),
    ("Relax2", Mods::AUTOPILOT),
    ("Autopilot", Mods::AUTOPILOT),
    ("Perfect", Mods::PERFECT.union(Mods::SUDDEN_DEATH)),
    ("FadeIn", Mods::FADE_IN),
    ("Mirror", Mods::MIRROR),
];

/// The map a `/np` action names, or `None` when `text` is not one.
pub fn parse(text: &str) -> Option<NowPlaying> {
    let body = text.strip_prefix("\x01ACTION is ")?;
    let body = body.strip_suffix('\x01').unwrap_or(body);
    let rest = VERBS.iter().find_map(|v| body.strip_prefix(v))?;
    let link = rest.strip_prefix('[')?;
    let (url, _) = link.split_once(' ')?;
    let (beatmap_id, link_mode) = beatmap_of_url(url)?;
    // What follows the closing bracket of the link (whose title may hold brackets too).
    let after = rest.rfind(']').map_or("", |i| &rest[i + 1..]);
    let mut mode = link_mode.unwrap_or(0);
    let mut mods = Mods::empty();
    for word in after.split_whitespace() {
        match word {
            "<Taiko>" => mode = 1,
            "<CatchTheBeat>" => mode = 2,
            "<osu!mania>" => mode = 3,
            _ => {
                if let Some(name) = word.strip_prefix('+').or_else(|| word.strip_prefix('-'))
                    && let Some((_, m)) = MOD_NAMES.iter().find(|(n, _)| *n == name)
                {
                    mods |= *m;
                }
            }
        }
    }
    Some(NowPlaying {
        beatmap_id,
        mode,
        mods,
    })
}

/// The beatmap id of a link `https://<host>/b/<id>` or `https://<host>/beatmapsets/<set>#<mode>/<id>`,
/// with the mode the second form names.
fn beatmap_of_url(url: &str) -> Option<(i32, Option<u8>)> {
    let path = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let (_, path) = path.split_once('/')?;
    if let Some(id) = path
        .strip_prefix("b/")
        .or_else(|| path.strip_prefix("beatmaps/"))
    {
        return Some((positive_id(id)?, None));
    }
    let set_and_map = path.strip_prefix("beatmapsets/")?;
    let (_, fragment) = set_and_map.split_once('#')?;
    let (mode, id) = fragment.split_once('/')?;
    let mode = match mode {
        "osu" => Some(0),
        "taiko" => Some(1),
        "fruits" => Some(2),
        "mania" => Some(3),
        _ => None,
    };
    Some((positive_id(id)?, mode))
}

fn positive_id(text: &str) -> Option<i32> {
    text.parse::<i32>().ok().filter(|id| *id > 0)
}

/// The last `/np` of each player, bounded by [`MAX_REMEMBERED`]. The bot carries it
/// nowhere: after the bot moves or restarts, players send `/np` again.
#[derive(Debug, Default)]
pub struct Remembered {
    /// Each player's last `/np` and when it came, by a counter (a clock could tie).
    last: HashMap<i32, (NowPlaying, u64)>,
    tick: u64,
}

impl Remembered {
    pub fn remember(&mut self, user_id: i32, np: NowPlaying) {
        if self.last.len() >= MAX_REMEMBERED && !self.last.contains_key(&user_id) {
            // A linear scan, only when full: cheaper than keeping an order on every /np.
            if let Some(oldest) = self
                .last
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(id, _)| *id)
            {
                self.last.remove(&oldest);
            }
        }
        self.tick = self.tick.wrapping_add(1);
        self.last.insert(user_id, (np, self.tick));
    }

    pub fn of(&self, user_id: i32) -> Option<NowPlaying> {
        self.last.get(&user_id).map(|(np, _)| *np)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_verb_and_link_form_is_read() {
        let np = parse(
            "\x01ACTION is listening to [https://osu.ppy.sh/b/123 Artist - Title [Hard]]\x01",
        );
        assert_eq!(
            np,
            Some(NowPlaying {
                beatmap_id: 123,
                mode: 0,
                mods: Mods::empty()
            })
        );
        let np = parse(
            "\x01ACTION is playing [https://osu.example.com/b/77 A - B [C [D]]] <Taiko> +Hidden +DoubleTime\x01",
        )
        .expect("a play");
        assert_eq!((np.beatmap_id, np.mode), (77, 1));
        assert_eq!(np.mods, Mods::HIDDEN | Mods::DOUBLE_TIME);
        let np = parse("\x01ACTION is watching [https://osu.ppy.sh/beatmapsets/5#mania/42 X - Y [Z]] -Easy\x01")
            .expect("a watch");
        assert_eq!((np.beatmap_id, np.mode, np.mods), (42, 3, Mods::EASY));
        let np = parse("\x01ACTION is editing [https://osu.ppy.sh/b/9 X - Y [Z]]\x01");
        assert_eq!(np.map(|n| n.beatmap_id), Some(9));
        let nc = parse("\x01ACTION is playing [https://osu.ppy.sh/b/9 X - Y [Z]] +Nightcore\x01");
        assert_eq!(
            nc.map(|n| n.mods),
            Some(Mods::NIGHTCORE | Mods::DOUBLE_TIME)
        );
    }

    #[test]
    fn anything_else_is_not_a_now_playing() {
        for text in [
            "",
            "is listening to [https://osu.ppy.sh/b/1 x]",
            "\x01ACTION dances\x01",
            "\x01ACTION is listening to [https://osu.ppy.sh/b/0 x]\x01",
            "\x01ACTION is listening to [https://osu.ppy.sh/b/-4 x]\x01",
            "\x01ACTION is listening to [https://osu.ppy.sh/s/12 x]\x01",
            "\x01ACTION is listening to [https://osu.ppy.sh/b/99999999999 x]\x01",
            "\x01ACTION is playing [ftp://x/b/1 x]\x01",
            "\x01ACTION is playing [https://osu.ppy.sh/beatmapsets/1#osu/ x]\x01",
            "!roll",
        ] {
            assert_eq!(parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn the_memory_is_bounded_and_forgets_the_oldest() {
        let mut memory = Remembered::default();
        let np = |id| NowPlaying {
            beatmap_id: id,
            mode: 0,
            mods: Mods::empty(),
        };
        for user in 0..i32::try_from(MAX_REMEMBERED).unwrap_or(i32::MAX) {
            memory.remember(user, np(1));
        }
        memory.remember(0, np(2));
        memory.remember(-1, np(3));
        assert_eq!(memory.last.len(), MAX_REMEMBERED);
        assert_eq!(memory.of(-1).map(|n| n.beatmap_id), Some(3));
        assert_eq!(
            memory.of(0).map(|n| n.beatmap_id),
            Some(2),
            "refreshed, kept"
        );
    }
}
