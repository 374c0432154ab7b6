//! The bot's commands. Adding one is adding a row to [`COMMANDS`] and a function; the
//! staff's moderation commands live in `moderation.rs`. In commands, a name with spaces
//! is written with underscores (`Some_Player`), as names are looked up by their safe form.
//!
//! Commands run on their own task (the bot stays responsive while one waits for the
//! database) and answer with the text the bot says.

use std::future::Future;
use std::pin::Pin;

use peace_db::Privileges;
use rand::Rng;

use super::BotPorts;
use super::moderation::{
    alert, alert_user, ban, kick, restrict, silence, unban, unrestrict, unsilence,
};
use super::now_playing::NowPlaying;

/// What a command returns: its answer, eventually.
pub type Reply = Pin<Box<dyn Future<Output = String> + Send>>;

/// One use of a command.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub ports: BotPorts,
    pub sender_id: i32,
    pub sender_name: String,
    pub sender_privileges: Privileges,
    pub args: Vec<String>,
    /// The sender's last `/np`, if the bot remembers one.
    pub now_playing: Option<NowPlaying>,
}

/// Who may run a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Everyone,
    /// Moderators, administrators and developers.
    Staff,
}

/// A command: its name (without `!`), usage, one-line help, who may run it and what it does.
#[derive(Debug)]
pub struct Command {
    pub name: &'static str,
    pub usage: &'static str,
    pub help: &'static str,
    pub access: Access,
    pub run: fn(Invocation) -> Reply,
}

/// Every command the bot knows, in the order `!help` lists them.
pub const COMMANDS: &[Command] = &[
    Command {
        name: "help",
        usage: "!help",
        help: "lists the commands",
        access: Access::Everyone,
        run: help,
    },
    Command {
        name: "roll",
        usage: "!roll [max]",
        help: "rolls a number from 0 to max (100 by default)",
        access: Access::Everyone,
        run: roll,
    },
    Command {
        name: "online",
        usage: "!online",
        help: "how many players are online",
        access: Access::Everyone,
        run: online,
    },
    Command {
        name: "recent",
        usage: "!recent",
        help: "your last play",
        access: Access::Everyone,
        run: super::plays::recent,
    },
    Command {
        name: "top",
        usage: "!top [osu|taiko|catch|mania]",
        help: "your best plays by pp",
        access: Access::Everyone,
        run: super::plays::top,
    },
    Command {
        name: "pp",
        usage: "!pp [mods]",
        help: "what the map of your last /np is worth (with its mods, or these)",
        access: Access::Everyone,
        run: super::plays::pp,
    },
    Command {
        name: "with",
        usage: "!with <mods>",
        help: "what the map of your last /np is worth with these mods",
        access: Access::Everyone,
        run: super::plays::with,
    },
    Command {
        name: "mp",
        usage: "!mp help",
        help: "referee commands, in a match's #multiplayer channel",
        access: Access::Everyone,
        run: mp_outside_match,
    },
    Command {
        name: "silence",
        usage: "!silence <name> <duration: 30s|10m|2h|7d> <reason>",
        help: "silences a player",
        access: Access::Staff,
        run: silence,
    },
    Command {
        name: "unsilence",
        usage: "!unsilence <name> [reason]",
        help: "lifts a silence",
        access: Access::Staff,
        run: unsilence,
    },
    Command {
        name: "restrict",
        usage: "!restrict <name> <reason>",
        help: "makes a player invisible and mute",
        access: Access::Staff,
        run: restrict,
    },
    Command {
        name: "unrestrict",
        usage: "!unrestrict <name> [reason]",
        help: "lifts a restriction",
        access: Access::Staff,
        run: unrestrict,
    },
    Command {
        name: "ban",
        usage: "!ban <name> <reason>",
        help: "bans a player",
        access: Access::Staff,
        run: ban,
    },
    Command {
        name: "unban",
        usage: "!unban <name> [reason]",
        help: "lifts a ban",
        access: Access::Staff,
        run: unban,
    },
    Command {
        name: "kick",
        usage: "!kick <name> [reason]",
        help: "disconnects a player",
        access: Access::Staff,
        run: kick,
    },
    Command {
        name: "map",
        usage: super::map_status::USAGE,
        help: "sets the status of the map of your last /np, or of its whole set",
        access: Access::Staff,
        run: super::map_status::map,
    },
    Command {
        name: "alert",
        usage: "!alert <message>",
        help: "notifies everyone online",
        access: Access::Staff,
        run: alert,
    },
    Command {
        name: "alertuser",
        usage: "!alertuser <name> <message>",
        help: "notifies one player",
        access: Access::Staff,
        run: alert_user,
    },
];

/// Most characters of a command line looked at; the rest is ignored.
pub const MAX_COMMAND_LEN: usize = 512;

/// The command `text` asks for and its invocation, if `text` is a command line.
/// Unknown commands and missing privileges are answered at once.
pub fn parse(text: &str, invocation: impl FnOnce(Vec<String>) -> Invocation) -> Option<Reply> {
    let text: String = text.chars().take(MAX_COMMAND_LEN).collect();
    let mut words = text.strip_prefix('!')?.split_whitespace();
    let name = words.next()?.to_ascii_lowercase();
    let inv = invocation(words.map(str::to_owned).collect());
    let Some(command) = COMMANDS.iter().find(|c| c.name == name) else {
        let answer = format!("Unknown command !{name}. Type !help for the list.");
        return Some(Box::pin(async move { answer }));
    };
    if command.access == Access::Staff && !inv.sender_privileges.is_staff() {
        let answer = format!("!{name} is for the staff.");
        return Some(Box::pin(async move { answer }));
    }
    Some((command.run)(inv))
}

fn help(inv: Invocation) -> Reply {
    let staff = inv.sender_privileges.is_staff();
    let lines: Vec<String> = COMMANDS
        .iter()
        .filter(|c| c.access == Access::Everyone || staff)
        .map(|c| format!("{}: {}", c.usage, c.help))
        .collect();
    Box::pin(async move { lines.join(" | ") })
}

fn roll(inv: Invocation) -> Reply {
    let max = inv
        .args
        .first()
        .and_then(|a| a.parse::<u32>().ok())
        .unwrap_or(100)
        .max(1);
    let n = rand::rng().random_range(0..=max);
    Box::pin(async move { format!("{} rolls {n} point(s)", inv.sender_name) })
}

fn online(inv: Invocation) -> Reply {
    // Restricted players are invisible to others, in counts too.
    let players = inv.ports.roster.visible_count();
    Box::pin(async move { format!("{players} player(s) online.") })
}

/// `!mp` reaches here only outside a match channel (inside one, the match answers).
fn mp_outside_match(_: Invocation) -> Reply {
    Box::pin(async { "!mp works in a match's #multiplayer channel.".to_owned() })
}
