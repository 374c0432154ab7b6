//! `!mp` commands: how a host, a referee or staff drive a match from its channel.

use peace_bancho::model::{MATCH_SLOTS, SLOT_HAS_PLAYER};
use peace_bancho::{mods, slot_status};
use peace_db::Privileges;

use super::{PlayerAction, Room};

/// Longest countdown accepted (`!mp start`, `!mp timer`).
pub const MAX_COUNTDOWN_SECS: u32 = 600;

const HELP: &str = "!mp start [seconds] | abort | host <name> | map <id> | mods <HD DT ...|number> \
    | freemod | lock | unlock | size <1-16> | invite <name> | settings | password [pw] \
    | close | timer [seconds]";

fn parse_mods(args: &[String]) -> Option<u32> {
    if let [n] = args
        && let Ok(n) = n.parse::<u32>()
    {
        return Some(n);
    }
    args.iter().try_fold(0, |acc, word| {
        let word = word.to_ascii_uppercase();
        if word == "NM" || word == "NOMOD" {
            return Some(acc);
        }
        mods::ACRONYMS
            .iter()
            .find(|(a, _)| *a == word)
            .map(|(_, bits)| acc | bits)
    })
}

/// The map's name as the client shows it in a match.
fn display_name(map: &peace_db::BeatmapRow) -> String {
    format!("{} - {} [{}]", map.artist, map.title, map.version)
}

impl Room<'_> {
    /// `!mp map <id> [mode]`: the map (with the checksum the client finds its copy by)
    /// from the provider chain; a map the server cannot find is refused, since no client
    /// could play it. Without a mode, a converted standard map keeps the match's mode and
    /// a map of another mode brings its own.
    async fn change_map(&mut self, args: &[String]) -> String {
        const USAGE: &str = "Usage: !mp map <beatmap id> [mode: 0 osu, 1 taiko, 2 catch, 3 mania]";
        let Some(id) = args
            .first()
            .and_then(|id| id.parse::<i32>().ok())
            .filter(|id| *id > 0)
        else {
            return USAGE.into();
        };
        let mode = match args.get(1).map(|m| m.parse::<u8>()) {
            None => None,
            Some(Ok(m)) if m <= 3 => Some(m),
            Some(_) => return USAGE.into(),
        };
        let map = match self.ports.maps.beatmap_by_id(id).await {
            Ok(Some(map)) => map,
            Ok(None) => return format!("No beatmap #{id} is known to this server."),
            Err(e) => {
                tracing::warn!(map = id, "!mp map: the lookup failed: {e}");
                return "The beatmap could not be looked up; please try again.".into();
            }
        };
        let d = &mut self.state.data;
        d.beatmap_id = map.id;
        d.beatmap_md5.clone_from(&map.md5);
        d.beatmap_name = display_name(&map);
        let own_mode = u8::try_from(map.mode).ok().filter(|m| *m <= 3);
        if let Some(mode) = mode.or(own_mode.filter(|m| *m != 0)) {
            d.mode = mode;
        }
        self.state.unready_all();
        self.announce();
        format!("Changed the beatmap to {}.", self.state.data.beatmap_name)
    }

    /// Runs `!mp <args>` for `user_id`; the answer goes to the channel.
    pub(super) async fn referee(
        &mut self,
        user_id: i32,
        name: &str,
        privileges: Privileges,
        args: &[String],
    ) -> String {
        let Some((command, rest)) = args.split_first() else {
            return HELP.to_owned();
        };
        let command = command.to_ascii_lowercase();
        if command == "help" {
            return HELP.to_owned();
        }
        if !self.is_referee(user_id, privileges) {
            return format!("{name}: only the host or a referee can use !mp {command}.");
        }
        let seconds = |default: u32| {
            rest.first()
                .and_then(|s| s.parse::<u32>().ok())
                .unwrap_or(default)
                .min(MAX_COUNTDOWN_SECS)
        };
        match command.as_str() {
            "start" => {
                if self.state.data.in_progress {
                    return "The match is already in progress.".into();
                }
                match seconds(0) {
                    0 => {
                        if self.start() {
                            self.announce();
                            "Started the match.".into()
                        } else {
                            "Nobody can play: no player has the beatmap.".into()
                        }
                    }
                    n => {
                        self.start_countdown(n, true);
                        format!("Match starts in {n} second(s).")
                    }
                }
            }
            "timer" => {
                let n = seconds(30).max(1);
                self.start_countdown(n, false);
                format!("Countdown ends in {n} second(s).")
            }
            "abort" => {
                if self.state.countdown.take().is_some() && !self.state.data.in_progress {
                    return "Countdown aborted.".into();
                }
                if !self.state.data.in_progress {
                    return "The match is not in progress.".into();
                }
                self.end_game(true);
                "Aborted the match.".into()
            }
            "host" => match self.player_named(rest) {
                Some((slot, _)) => {
                    if self.transfer_host(slot as i32) {
                        self.announce();
                        format!("{} is now the host.", rest.join(" "))
                    } else {
                        format!("{} is already the host.", rest.join(" "))
                    }
                }
                None => "Usage: !mp host <name of a player in the match>".into(),
            },
            "map" => self.change_map(rest).await,
            "mods" => match parse_mods(rest) {
                Some(bits) => {
                    if self.state.data.freemod {
                        self.state.data.mods = bits & mods::SPEED;
                    } else {
                        self.state.data.mods = bits;
                    }
                    self.state.unready_all();
                    self.announce();
                    format!("Set the match mods to {bits}.")
                }
                None => "Usage: !mp mods <HD DT ...> or a number".into(),
            },
            "freemod" => {
                let on = !self.state.data.freemod;
                self.state.set_freemod(on);
                self.announce();
                format!("Freemod {}.", if on { "on" } else { "off" })
            }
            "lock" | "unlock" => {
                self.state.slots_locked = command == "lock";
                format!(
                    "Slots and teams are {}.",
                    if self.state.slots_locked {
                        "locked"
                    } else {
                        "unlocked"
                    }
                )
            }
            "size" => match rest
                .first()
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|n| (1..=MATCH_SLOTS).contains(n))
            {
                Some(size) => {
                    for index in 0..MATCH_SLOTS {
                        let status = self.state.data.slots[index].status;
                        let locked = status == slot_status::LOCKED;
                        if (index >= size) != locked
                            && let Some(kicked) = self.state.toggle_lock(index)
                        {
                            self.kick(kicked);
                        }
                    }
                    self.announce();
                    format!("The match now has {size} slot(s).")
                }
                None => format!("Usage: !mp size <1-{MATCH_SLOTS}>"),
            },
            "invite" => {
                let target = rest.join(" ");
                match self.ports.roster.online_by_name(&target) {
                    Some((id, online_name)) => {
                        let to = online_name.to_string();
                        self.send_invite(user_id, name.to_owned(), id, to);
                        format!("Invited {online_name}.")
                    }
                    None => format!("{target} is not online."),
                }
            }
            "password" => {
                let password = rest.join(" ");
                self.player(
                    self.state.data.host_id,
                    PlayerAction::ChangePassword(password.clone()),
                );
                if password.is_empty() {
                    "Removed the password.".into()
                } else {
                    "Changed the password.".into()
                }
            }
            "settings" => self.settings_text(),
            "close" => {
                let players: Vec<i32> = self.state.players().collect();
                for player in players {
                    self.kick(player);
                }
                "Closed the match.".into()
            }
            other => format!("Unknown command !mp {other}. {HELP}"),
        }
    }

    /// The slot and id of the player whose name is `words`.
    fn player_named(&self, words: &[String]) -> Option<(usize, i32)> {
        let wanted = peace_db::safe_name(&words.join(" "));
        let (&id, _) = self
            .state
            .names
            .iter()
            .find(|(_, n)| peace_db::safe_name(n) == wanted)?;
        Some((self.state.slot_of(id)?, id))
    }

    fn settings_text(&self) -> String {
        let d = &self.state.data;
        let mut lines = vec![format!(
            "{} | map #{} {} | mods {} | {} | team type {} | win condition {}",
            d.name,
            d.beatmap_id,
            d.beatmap_name,
            d.mods,
            if d.freemod { "freemod" } else { "no freemod" },
            d.team_type,
            d.win_condition
        )];
        for (index, slot) in d
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.status & SLOT_HAS_PLAYER != 0)
        {
            let name = self
                .state
                .names
                .get(&slot.user_id)
                .map_or("?", String::as_str);
            let host = if slot.user_id == d.host_id {
                " (host)"
            } else {
                ""
            };
            lines.push(format!(
                "slot {}: {name}{host}, status {}, team {}",
                index + 1,
                slot.status,
                slot.team
            ));
        }
        lines.join(" | ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn mods_by_name_or_number() {
        assert_eq!(
            parse_mods(&words("HD dt")),
            Some(mods::HIDDEN | mods::DOUBLE_TIME)
        );
        assert_eq!(parse_mods(&words("72")), Some(72));
        assert_eq!(parse_mods(&words("NM")), Some(0));
        assert_eq!(parse_mods(&words("HD XX")), None);
    }
}
