//! The bot's commands. Adding one is adding a row to [`COMMANDS`] and a function.

use rand::Rng;

use crate::World;

/// One use of a command.
#[derive(Debug)]
pub struct Invocation<'a> {
    pub world: &'a World,
    pub sender_id: i32,
    pub sender_name: &'a str,
    pub args: Vec<&'a str>,
}

/// A command: its name (without `!`), usage, one-line help and what it does.
#[derive(Debug)]
pub struct Command {
    pub name: &'static str,
    pub usage: &'static str,
    pub help: &'static str,
    pub run: fn(&Invocation<'_>) -> String,
}

/// Every command the bot knows, in the order `!help` lists them.
pub const COMMANDS: &[Command] = &[
    Command {
        name: "help",
        usage: "!help",
        help: "lists the commands",
        run: help,
    },
    Command {
        name: "roll",
        usage: "!roll [max]",
        help: "rolls a number from 0 to max (100 by default)",
        run: roll,
    },
    Command {
        name: "online",
        usage: "!online",
        help: "how many players are online",
        run: online,
    },
    Command {
        name: "mp",
        usage: "!mp help",
        help: "referee commands, in a match's #multiplayer channel",
        run: mp_outside_match,
    },
];

/// Most characters of a command line looked at; the rest is ignored.
const MAX_COMMAND_LEN: usize = 256;

/// Runs `text` if it is a command; `None` if it is not (or the command is unknown).
pub fn run(world: &World, sender_id: i32, sender_name: &str, text: &str) -> Option<String> {
    let text = text.get(..MAX_COMMAND_LEN).unwrap_or(text);
    let mut words = text.strip_prefix('!')?.split_whitespace();
    let name = words.next()?.to_ascii_lowercase();
    let command = COMMANDS.iter().find(|c| c.name == name);
    let Some(command) = command else {
        return Some(format!("Unknown command !{name}. Type !help for the list."));
    };
    Some((command.run)(&Invocation {
        world,
        sender_id,
        sender_name,
        args: words.collect(),
    }))
}

fn help(_: &Invocation<'_>) -> String {
    let lines: Vec<String> = COMMANDS
        .iter()
        .map(|c| format!("{}: {}", c.usage, c.help))
        .collect();
    lines.join(" | ")
}

fn roll(inv: &Invocation<'_>) -> String {
    let max = inv
        .args
        .first()
        .and_then(|a| a.parse::<u32>().ok())
        .unwrap_or(100)
        .max(1);
    let n = rand::rng().random_range(0..=max);
    format!("{} rolls {n} point(s)", inv.sender_name)
}

fn online(inv: &Invocation<'_>) -> String {
    // The bot itself is in the directory but is not a player.
    let players = inv.world.router().users().len().saturating_sub(1);
    format!("{players} player(s) online.")
}

/// `!mp` reaches here only outside a match channel (inside one, the match answers).
fn mp_outside_match(_: &Invocation<'_>) -> String {
    "!mp works in a match's #multiplayer channel.".to_owned()
}
