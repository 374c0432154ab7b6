//! The players' score commands: `!recent`, `!top`, and `!pp`/`!with` on the map of their
//! last `/np`. They read through the score desk (`crate::ports::ScoreDesk`) and answer in
//! one line each.

use peace_scores::mods::Mods;

use super::commands::{Invocation, Reply};
use crate::ports::{DeskError, PlaySummary, PpTable};

/// Plays `!top` lists.
pub const TOP_PLAYS: usize = 5;
/// The accuracies `!pp` and `!with` show, in percent.
pub const PP_ACCURACIES: [f64; 4] = [95.0, 98.0, 99.0, 100.0];

/// `+HDDT`, or `NM` without mods.
fn mods_text(mods: Mods) -> String {
    if mods.is_empty() {
        "NM".to_owned()
    } else {
        format!("+{}", mods.acronyms())
    }
}

/// One play in words: map, mods, accuracy, combo, pp and grade.
pub fn describe_play(play: &PlaySummary) -> String {
    let combo = if play.map_max_combo > 0 {
        format!("{}/{}x", play.max_combo, play.map_max_combo)
    } else {
        format!("{}x", play.max_combo)
    };
    format!(
        "{} {}: {:.2}%, {combo}, {:.2}pp, {} ({} points)",
        play.map,
        mods_text(Mods::from_wire(play.mods)),
        play.accuracy,
        play.pp,
        play.grade,
        play.score
    )
}

/// What a map is worth, in words.
pub fn describe_pp(table: &PpTable) -> String {
    let figures: Vec<String> = table
        .pp
        .iter()
        .map(|(acc, pp)| format!("{acc}%: {pp:.2}pp"))
        .collect();
    format!(
        "{} {} ({:.2}*): {}",
        table.map,
        mods_text(Mods::from_wire(table.mods)),
        table.stars,
        figures.join(" | ")
    )
}

/// The answer to a failed read, in the player's words.
fn desk_failed(e: &DeskError) -> String {
    match e {
        DeskError::UnknownMap(_) => "I do not know that map.".to_owned(),
        DeskError::NoFile => {
            "I do not have that map's file, so I cannot work out its pp.".to_owned()
        }
        DeskError::Pp(_) => "That map's pp cannot be worked out.".to_owned(),
        other => {
            tracing::warn!("a score command failed: {other}");
            "The database did not answer. Please try again.".to_owned()
        }
    }
}

/// The mode `!top` is asked for: `osu`, `taiko`, `catch`, `mania` (or 0..=3).
pub fn parse_mode(word: Option<&str>) -> Option<u8> {
    match word.map(str::to_ascii_lowercase).as_deref() {
        None | Some("osu" | "std" | "0") => Some(0),
        Some("taiko" | "1") => Some(1),
        Some("catch" | "ctb" | "fruits" | "2") => Some(2),
        Some("mania" | "3") => Some(3),
        Some(_) => None,
    }
}

pub(super) fn recent(inv: Invocation) -> Reply {
    Box::pin(async move {
        match inv.ports.desk.recent_play(inv.sender_id).await {
            Ok(Some(play)) => describe_play(&play),
            Ok(None) => "You have not played anything yet.".to_owned(),
            Err(e) => desk_failed(&e),
        }
    })
}

pub(super) fn top(inv: Invocation) -> Reply {
    Box::pin(async move {
        let Some(mode) = parse_mode(inv.args.first().map(String::as_str)) else {
            return "Usage: !top [osu|taiko|catch|mania]".to_owned();
        };
        match inv
            .ports
            .desk
            .top_plays(inv.sender_id, mode, TOP_PLAYS)
            .await
        {
            Ok(plays) if plays.is_empty() => {
                "You have no ranked plays in that mode yet.".to_owned()
            }
            Ok(plays) => {
                let lines: Vec<String> = plays
                    .iter()
                    .enumerate()
                    .map(|(i, p)| format!("{}. {}", i + 1, describe_play(p)))
                    .collect();
                lines.join(" | ")
            }
            Err(e) => desk_failed(&e),
        }
    })
}

/// `!pp [mods]`: the mods of the `/np` unless others are named.
pub(super) fn pp(inv: Invocation) -> Reply {
    with_mods(inv, false)
}

/// `!with <mods>`.
pub(super) fn with(inv: Invocation) -> Reply {
    with_mods(inv, true)
}

fn with_mods(inv: Invocation, mods_required: bool) -> Reply {
    Box::pin(async move {
        let usage = if mods_required {
            "Usage: !with <mods, e.g. HDDT> (after /np)"
        } else {
            "Usage: !pp [mods, e.g. HDDT] (after /np)"
        };
        let Some(np) = inv.now_playing else {
            return "Send me a /np first, then ask again.".to_owned();
        };
        let named = inv.args.join("");
        if mods_required && named.is_empty() {
            return usage.to_owned();
        }
        let mods = if named.is_empty() {
            np.mods
        } else {
            match Mods::from_acronyms(&named) {
                Some(mods) => mods,
                None => return usage.to_owned(),
            }
        };
        match inv
            .ports
            .desk
            .pp_table(np.beatmap_id, Some(np.mode), mods.bits(), &PP_ACCURACIES)
            .await
        {
            Ok(table) => describe_pp(&table),
            Err(e) => desk_failed(&e),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plays_and_pp_read_as_players_expect() {
        let play = PlaySummary {
            map: "A - B [C]".into(),
            mods: (Mods::HIDDEN | Mods::DOUBLE_TIME).bits(),
            accuracy: 98.5,
            max_combo: 300,
            map_max_combo: 320,
            pp: 123.456,
            grade: "S".into(),
            score: 1_000_000,
        };
        assert_eq!(
            describe_play(&play),
            "A - B [C] +HDDT: 98.50%, 300/320x, 123.46pp, S (1000000 points)"
        );
        let table = PpTable {
            map: "A - B [C]".into(),
            mods: 0,
            stars: 5.0,
            pp: vec![(95.0, 100.0), (100.0, 150.5)],
        };
        assert_eq!(
            describe_pp(&table),
            "A - B [C] NM (5.00*): 95%: 100.00pp | 100%: 150.50pp"
        );
    }

    #[test]
    fn modes_by_name_or_number() {
        assert_eq!(parse_mode(None), Some(0));
        assert_eq!(parse_mode(Some("Taiko")), Some(1));
        assert_eq!(parse_mode(Some("ctb")), Some(2));
        assert_eq!(parse_mode(Some("3")), Some(3));
        assert_eq!(parse_mode(Some("4")), None);
    }
}
