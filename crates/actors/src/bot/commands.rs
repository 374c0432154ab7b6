//! The bot's commands. Adding one is adding a row to [`COMMANDS`] and a function.
//!
//! Commands run on their own task (the bot stays responsive while one waits for the
//! database) and answer with the text the bot says.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use peace_bancho::server::Notification;
use peace_db::Privileges;
use rand::Rng;

use crate::World;
use crate::user::{UserCast, packet_bytes};

/// What a command returns: its answer, eventually.
pub type Reply = Pin<Box<dyn Future<Output = String> + Send>>;

/// One use of a command.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub world: World,
    pub sender_id: i32,
    pub sender_name: String,
    pub sender_privileges: Privileges,
    pub args: Vec<String>,
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
        usage: "!unsilence <name>",
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
        usage: "!unrestrict <name>",
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
        usage: "!unban <name>",
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
const MAX_COMMAND_LEN: usize = 512;
/// The longest silence a command gives.
pub const MAX_SILENCE: Duration = Duration::from_secs(365 * 24 * 3600);

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
    let players = inv.world.online_users().len();
    Box::pin(async move { format!("{players} player(s) online.") })
}

/// `!mp` reaches here only outside a match channel (inside one, the match answers).
fn mp_outside_match(_: Invocation) -> Reply {
    Box::pin(async { "!mp works in a match's #multiplayer channel.".to_owned() })
}

/// `30s`, `10m`, `2h`, `7d` (a bare number is minutes).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let (number, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "m"),
    };
    let n: u64 = number.parse().ok()?;
    let secs = match unit.to_ascii_lowercase().as_str() {
        "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        _ => return None,
    };
    (secs > 0).then(|| Duration::from_secs(secs).min(MAX_SILENCE))
}

/// A moderation action on the account named by the first argument: looks it up, applies
/// `act` (database and, if online, the session), and writes the audit log.
async fn moderate<F, Fut>(inv: &Invocation, action: &str, reason: String, act: F) -> String
where
    F: FnOnce(World, peace_db::User) -> Fut,
    Fut: Future<Output = Result<String, peace_db::DbError>>,
{
    let Some(name) = inv.args.first() else {
        return format!("Usage: see !help ({action}).");
    };
    let db = inv.world.db();
    let target = match db.user_by_name(name).await {
        Ok(Some(user)) if user.id != crate::BOT_ID => user,
        Ok(_) => return format!("There is no player named {name}."),
        Err(e) => return format!("The database did not answer: {e}"),
    };
    if target.privileges().is_staff() && !inv.sender_privileges.contains(Privileges::ADMIN) {
        return format!("Only an administrator can {action} staff.");
    }
    let target_id = target.id;
    match act(inv.world.clone(), target).await {
        Ok(answer) => {
            if let Err(e) = db
                .audit(inv.sender_id, Some(target_id), action, &reason)
                .await
            {
                tracing::error!(
                    actor = inv.sender_id,
                    target = target_id,
                    action,
                    "audit log write failed: {e}"
                );
            }
            tracing::info!(actor = inv.sender_id, target = target_id, action, %reason, "moderation");
            answer
        }
        Err(e) => format!("The database did not answer: {e}"),
    }
}

fn rest_from(args: &[String], from: usize) -> String {
    args.get(from..).map(|r| r.join(" ")).unwrap_or_default()
}

fn silence(inv: Invocation) -> Reply {
    Box::pin(async move {
        let (Some(duration), reason) = (
            inv.args.get(1).and_then(|d| parse_duration(d)),
            rest_from(&inv.args, 2),
        ) else {
            return "Usage: !silence <name> <duration: 30s|10m|2h|7d> <reason>".to_owned();
        };
        if reason.is_empty() {
            return "Give a reason: !silence <name> <duration> <reason>".to_owned();
        }
        let until = peace_db::unix_now() + duration.as_secs() as i64;
        let why = reason.clone();
        moderate(&inv, "silence", reason, |world, target| async move {
            world.db().set_silence_end(target.id, until).await?;
            let _ = world
                .router()
                .cast_user(target.id, UserCast::Silence { until, reason: why });
            Ok(format!(
                "Silenced {} for {}s.",
                target.name,
                duration.as_secs()
            ))
        })
        .await
    })
}

fn unsilence(inv: Invocation) -> Reply {
    Box::pin(async move {
        moderate(
            &inv,
            "unsilence",
            String::new(),
            |world, target| async move {
                world.db().set_silence_end(target.id, 0).await?;
                let _ = world.router().cast_user(
                    target.id,
                    UserCast::Silence {
                        until: 0,
                        reason: String::new(),
                    },
                );
                Ok(format!("{} may talk again.", target.name))
            },
        )
        .await
    })
}

/// Changes a player's privileges and ends their session so that the change applies at
/// once (their client logs in again under the new privileges).
async fn set_privileges(
    inv: Invocation,
    action: &'static str,
    reason: String,
    change: fn(Privileges) -> Privileges,
    done: &'static str,
) -> String {
    moderate(&inv, action, reason, |world, target| async move {
        let privileges = change(target.privileges());
        world.db().set_privileges(target.id, privileges).await?;
        world.kick(
            target.id,
            &format!("Your account was changed by the staff ({action})."),
        );
        Ok(format!("{} {done}.", target.name))
    })
    .await
}

fn needs_reason(inv: &Invocation, usage: &str) -> Option<String> {
    (inv.args.len() < 2).then(|| format!("Usage: {usage}"))
}

fn restrict(inv: Invocation) -> Reply {
    Box::pin(async move {
        if let Some(usage) = needs_reason(&inv, "!restrict <name> <reason>") {
            return usage;
        }
        let reason = rest_from(&inv.args, 1);
        set_privileges(
            inv,
            "restrict",
            reason,
            |p| p.union(Privileges::RESTRICTED),
            "is restricted",
        )
        .await
    })
}

fn unrestrict(inv: Invocation) -> Reply {
    Box::pin(async move {
        set_privileges(
            inv,
            "unrestrict",
            String::new(),
            |p| p.without(Privileges::RESTRICTED),
            "is no longer restricted",
        )
        .await
    })
}

fn ban(inv: Invocation) -> Reply {
    Box::pin(async move {
        if let Some(usage) = needs_reason(&inv, "!ban <name> <reason>") {
            return usage;
        }
        let reason = rest_from(&inv.args, 1);
        set_privileges(
            inv,
            "ban",
            reason,
            |p| p.without(Privileges::NORMAL),
            "is banned",
        )
        .await
    })
}

fn unban(inv: Invocation) -> Reply {
    Box::pin(async move {
        set_privileges(
            inv,
            "unban",
            String::new(),
            |p| p.union(Privileges::NORMAL),
            "is no longer banned",
        )
        .await
    })
}

fn kick(inv: Invocation) -> Reply {
    Box::pin(async move {
        let reason = rest_from(&inv.args, 1);
        moderate(&inv, "kick", reason.clone(), |world, target| async move {
            let shown = if reason.is_empty() {
                "You were disconnected by the staff.".to_owned()
            } else {
                reason
            };
            Ok(if world.kick(target.id, &shown) {
                format!("Kicked {}.", target.name)
            } else {
                format!("{} is not online.", target.name)
            })
        })
        .await
    })
}

fn alert(inv: Invocation) -> Reply {
    Box::pin(async move {
        let message = inv.args.join(" ");
        if message.is_empty() {
            return "Usage: !alert <message>".to_owned();
        }
        let packet = packet_bytes(Notification {
            text: message.clone(),
        });
        inv.world
            .router()
            .broadcast_users(UserCast::Enqueue(packet), crate::Audience::Everyone);
        if let Err(e) = inv
            .world
            .db()
            .audit(inv.sender_id, None, "alert", &message)
            .await
        {
            tracing::error!(actor = inv.sender_id, "audit log write failed: {e}");
        }
        "Alert sent.".to_owned()
    })
}

fn alert_user(inv: Invocation) -> Reply {
    Box::pin(async move {
        let message = rest_from(&inv.args, 1);
        if message.is_empty() {
            return "Usage: !alertuser <name> <message>".to_owned();
        }
        let text = message.clone();
        moderate(&inv, "alertuser", message, |world, target| async move {
            let packet = packet_bytes(Notification { text });
            Ok(
                match world
                    .router()
                    .cast_user(target.id, UserCast::Enqueue(packet))
                {
                    Ok(()) => format!("Alerted {}.", target.name),
                    Err(_) => format!("{} is not online.", target.name),
                },
            )
        })
        .await
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse_duration("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("5"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("99999999d"), Some(MAX_SILENCE));
        for bad in ["", "0m", "m", "10y", "-5m", "18446744073709551615d"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }
}
