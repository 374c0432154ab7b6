//! `!map rank|love|unrank|qualify set|map [reason]`: staff give the map of their last
//! `/np` (or its whole set) a status by hand. It is stored as an override that no later
//! answer of a beatmap source undoes, shows on the boards at once, and is audited (all
//! through the score desk, `crate::scores::staff`).

use peace_scores::status::RankedStatus;

use super::commands::{Invocation, Reply};
use super::moderation::staff;
use crate::ports::{DeskError, StatusScope};

pub const USAGE: &str = "!map <rank|love|unrank|qualify> <set|map> [reason]";

/// The status and the scope a `!map` line asks for.
pub fn parse_args(args: &[String]) -> Option<(RankedStatus, StatusScope)> {
    let status = match args.first()?.to_ascii_lowercase().as_str() {
        "rank" => RankedStatus::Ranked,
        "love" => RankedStatus::Loved,
        "unrank" => RankedStatus::Pending,
        "qualify" => RankedStatus::Qualified,
        _ => return None,
    };
    let scope = match args.get(1)?.to_ascii_lowercase().as_str() {
        "set" => StatusScope::Set,
        "map" => StatusScope::Map,
        _ => return None,
    };
    Some((status, scope))
}

fn status_word(status: RankedStatus) -> &'static str {
    match status {
        RankedStatus::Ranked => "ranked",
        RankedStatus::Loved => "loved",
        RankedStatus::Qualified => "qualified",
        _ => "unranked",
    }
}

pub(super) fn map(inv: Invocation) -> Reply {
    Box::pin(async move {
        let Some((status, scope)) = parse_args(&inv.args) else {
            return format!("Usage: {USAGE}");
        };
        if let Err(refused) = staff(&inv, "map").await {
            return refused.to_string();
        }
        let Some(np) = inv.now_playing else {
            return "Send me a /np of the map first, then ask again.".to_owned();
        };
        let reason = inv.args.get(2..).map(|r| r.join(" ")).unwrap_or_default();
        match inv
            .ports
            .desk
            .set_map_status(inv.sender_id, np.beatmap_id, scope, status, &reason)
            .await
        {
            Ok(change) => {
                let what = match scope {
                    StatusScope::Set => "Every difficulty of",
                    StatusScope::Map => "This difficulty of",
                };
                format!(
                    "{what} {} is now {} ({} stored map(s) changed).",
                    change.title,
                    status_word(status),
                    change.changed
                )
            }
            Err(DeskError::UnknownMap(_)) => "I do not know that map.".to_owned(),
            Err(DeskError::NoOsuId) => DeskError::NoOsuId.to_string(),
            Err(e) => {
                tracing::warn!("!map failed: {e}");
                "The database did not answer; nothing was changed. Please try again.".to_owned()
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn statuses_and_scopes() {
        assert_eq!(
            parse_args(&args("love set")),
            Some((RankedStatus::Loved, StatusScope::Set))
        );
        assert_eq!(
            parse_args(&args("RANK map because")),
            Some((RankedStatus::Ranked, StatusScope::Map))
        );
        assert_eq!(
            parse_args(&args("unrank set")),
            Some((RankedStatus::Pending, StatusScope::Set))
        );
        assert_eq!(
            parse_args(&args("qualify map")),
            Some((RankedStatus::Qualified, StatusScope::Map))
        );
        for bad in ["", "love", "love all", "approve set", "set love"] {
            assert_eq!(parse_args(&args(bad)), None, "{bad}");
        }
    }
}
