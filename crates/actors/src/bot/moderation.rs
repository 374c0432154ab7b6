//! The staff's commands: silence, restrict, ban, kick and alerts.
//!
//! Each takes effect at once: in the database, and in the player's session when they are
//! online (a silence is applied to the running session; a privilege change ends it so
//! that the client logs in again under the new privileges). Each action that changed
//! something is written to the audit log: who, whom, what, when and why.
//!
//! Rules: the sender's privileges are read from the database again, not taken from their
//! session, so a demotion applies at once; nobody moderates themselves; only an
//! administrator moderates other staff.

use std::time::Duration;

use peace_bancho::server::Notification;
use peace_db::{DbError, Privileges, User};

use super::commands::{Invocation, Reply};
use crate::ports::Mail;
use crate::session_msg::{Farewell, UserCast, packet_bytes};

/// The longest silence a command gives.
pub const MAX_SILENCE: Duration = Duration::from_secs(365 * 24 * 3600);

/// `30s`, `10m`, `2h`, `7d` (a bare number is minutes), at most [`MAX_SILENCE`].
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

/// Why a staff command was not carried out. Its text is what the bot answers.
#[derive(Debug, thiserror::Error)]
pub(super) enum Refused {
    #[error("!{0} is for the staff.")]
    NotStaff(String),
    #[error("Usage: {0}")]
    Usage(String),
    #[error("There is no player named {0}.")]
    NoSuchPlayer(String),
    #[error("You cannot {0} yourself.")]
    Yourself(String),
    #[error("Only an administrator can {0} staff.")]
    StaffTarget(String),
    #[error("The database did not answer; nothing was changed. Please try again.")]
    Database,
}

impl From<&DbError> for Refused {
    /// The detail is for the operator's log, not for the chat.
    fn from(e: &DbError) -> Self {
        tracing::warn!("moderation command failed: {e}");
        Refused::Database
    }
}

fn database_error(e: &DbError) -> String {
    Refused::from(e).to_string()
}

/// The words from `from` on, as one text (a reason or a message).
fn rest_from(args: &[String], from: usize) -> String {
    args.get(from..).map(|r| r.join(" ")).unwrap_or_default()
}

/// The sender's account, if it is still staff, and neither banned nor restricted.
pub(super) async fn staff(inv: &Invocation, action: &str) -> Result<User, Refused> {
    match inv.ports.accounts.user_by_id(inv.sender_id).await {
        Ok(Some(user))
            if user.privileges().is_staff()
                && user.privileges().contains(Privileges::NORMAL)
                && !user.privileges().is_restricted() =>
        {
            Ok(user)
        }
        Ok(_) => Err(Refused::NotStaff(action.to_owned())),
        Err(e) => Err(Refused::from(&e)),
    }
}

/// The player named by the first argument (spaces in names are written as `_`).
async fn target(inv: &Invocation, usage: &str) -> Result<User, Refused> {
    let Some(name) = inv.args.first() else {
        return Err(Refused::Usage(usage.to_owned()));
    };
    match inv.ports.accounts.user_by_name(name).await {
        Ok(Some(user)) if user.id != crate::BOT_ID => Ok(user),
        Ok(_) => Err(Refused::NoSuchPlayer(name.clone())),
        Err(e) => Err(Refused::from(&e)),
    }
}

/// The player an action is aimed at, if the sender may take it against them.
async fn target_for(inv: &Invocation, action: &str, usage: &str) -> Result<User, Refused> {
    let sender = staff(inv, action).await?;
    let target = target(inv, usage).await?;
    if target.id == sender.id {
        return Err(Refused::Yourself(action.to_owned()));
    }
    if target.privileges().is_staff() && !sender.privileges().contains(Privileges::ADMIN) {
        return Err(Refused::StaffTarget(action.to_owned()));
    }
    Ok(target)
}

/// Writes the audit log. The action already took effect, so a failed write is logged
/// loudly rather than reported as a failed action.
async fn audit(inv: &Invocation, target: Option<i32>, action: &str, reason: &str) {
    let accounts = &inv.ports.accounts;
    match accounts.audit(inv.sender_id, target, action, reason).await {
        Ok(()) => tracing::info!(actor = inv.sender_id, ?target, action, reason, "moderation"),
        Err(e) => tracing::error!(
            actor = inv.sender_id,
            ?target,
            action,
            reason,
            "moderation done but the audit log write failed: {e}"
        ),
    }
}

/// Whether `target` has a session on any node. The directory answers for the whole
/// cluster; a cast alone cannot, as one to another node's shard is sent whether or not
/// anyone is there.
fn online(inv: &Invocation, target: i32) -> bool {
    inv.ports.roster.is_online(target)
}

/// Ends `target`'s session, if they are online; the client is told `reason`.
fn end_session(inv: &Invocation, target: i32, reason: String, farewell: Farewell) -> bool {
    let kick = UserCast::Kick { reason, farewell };
    online(inv, target) && inv.ports.outbox.send(Mail::User(target, kick)).is_ok()
}

pub(super) fn silence(inv: Invocation) -> Reply {
    Box::pin(async move {
        const USAGE: &str = "!silence <name> <duration: 30s|10m|2h|7d> <reason>";
        let duration = inv.args.get(1).and_then(|d| parse_duration(d));
        let reason = rest_from(&inv.args, 2);
        let (Some(duration), false) = (duration, reason.is_empty()) else {
            return format!("Usage: {USAGE}");
        };
        let target = match target_for(&inv, "silence", USAGE).await {
            Ok(target) => target,
            Err(refused) => return refused.to_string(),
        };
        let until = peace_db::unix_now() + duration.as_secs() as i64;
        if let Err(e) = inv.ports.accounts.set_silence_end(target.id, until).await {
            return database_error(&e);
        }
        let cast = UserCast::Silence {
            until,
            reason: reason.clone(),
        };
        let _ = inv.ports.outbox.send(Mail::User(target.id, cast));
        audit(&inv, Some(target.id), "silence", &reason).await;
        format!("Silenced {} for {}s.", target.name, duration.as_secs())
    })
}

pub(super) fn unsilence(inv: Invocation) -> Reply {
    Box::pin(async move {
        let target = match target_for(&inv, "unsilence", "!unsilence <name>").await {
            Ok(target) => target,
            Err(refused) => return refused.to_string(),
        };
        if target.silence_end <= peace_db::unix_now() {
            return format!("{} is not silenced.", target.name);
        }
        if let Err(e) = inv.ports.accounts.set_silence_end(target.id, 0).await {
            return database_error(&e);
        }
        let cast = UserCast::Silence {
            until: 0,
            reason: String::new(),
        };
        let _ = inv.ports.outbox.send(Mail::User(target.id, cast));
        audit(&inv, Some(target.id), "unsilence", &rest_from(&inv.args, 1)).await;
        format!("{} may talk again.", target.name)
    })
}

/// A change of a player's privileges, and how their session learns of it.
struct PrivilegeChange {
    action: &'static str,
    usage: &'static str,
    /// Whether the command needs a reason.
    needs_reason: bool,
    change: fn(Privileges) -> Privileges,
    /// What the player is shown as their session ends.
    notice: fn(&str) -> String,
    farewell: Farewell,
    /// "X {done}." / "X {unchanged}."
    done: &'static str,
    unchanged: &'static str,
}

/// How often a privilege change reads the player's row again when another change (from
/// this node or another) landed between its read and its write.
const PRIVILEGE_CHANGE_ATTEMPTS: usize = 5;

/// Stores the new privileges and ends the player's session (the client logs in again
/// under them, or learns it is banned). The write is a compare-and-set on the whole
/// value, so two staff acting on one player at once never lose each other's change.
async fn change_privileges(inv: Invocation, rule: PrivilegeChange) -> String {
    let reason = rest_from(&inv.args, 1);
    if rule.needs_reason && reason.is_empty() {
        return format!("Usage: {}", rule.usage);
    }
    for _ in 0..PRIVILEGE_CHANGE_ATTEMPTS {
        let target = match target_for(&inv, rule.action, rule.usage).await {
            Ok(target) => target,
            Err(refused) => return refused.to_string(),
        };
        let privileges = (rule.change)(target.privileges());
        if privileges == target.privileges() {
            return format!("{} {}.", target.name, rule.unchanged);
        }
        match inv
            .ports
            .accounts
            .replace_privileges(target.id, target.privileges(), privileges)
            .await
        {
            Ok(true) => {
                end_session(&inv, target.id, (rule.notice)(&reason), rule.farewell);
                // Their scores leave (or come back to) every board now, not at the
                // boards' next reload.
                inv.ports.outbox.refresh_boards();
                audit(&inv, Some(target.id), rule.action, &reason).await;
                return format!("{} {}.", target.name, rule.done);
            }
            Ok(false) => continue,
            Err(e) => return database_error(&e),
        }
    }
    "The account kept changing under this command; nothing was changed. Please try again."
        .to_owned()
}

pub(super) fn restrict(inv: Invocation) -> Reply {
    Box::pin(change_privileges(
        inv,
        PrivilegeChange {
            action: "restrict",
            usage: "!restrict <name> <reason>",
            needs_reason: true,
            change: |p| p.union(Privileges::RESTRICTED),
            notice: |reason| format!("Your account has been restricted: {reason}"),
            farewell: Farewell::Reconnect,
            done: "is restricted",
            unchanged: "is already restricted",
        },
    ))
}

pub(super) fn unrestrict(inv: Invocation) -> Reply {
    Box::pin(change_privileges(
        inv,
        PrivilegeChange {
            action: "unrestrict",
            usage: "!unrestrict <name> [reason]",
            needs_reason: false,
            change: |p| p.without(Privileges::RESTRICTED),
            notice: |_| "Your account is no longer restricted.".to_owned(),
            farewell: Farewell::Reconnect,
            done: "is no longer restricted",
            unchanged: "is not restricted",
        },
    ))
}

pub(super) fn ban(inv: Invocation) -> Reply {
    Box::pin(change_privileges(
        inv,
        PrivilegeChange {
            action: "ban",
            usage: "!ban <name> <reason>",
            needs_reason: true,
            change: |p| p.without(Privileges::NORMAL),
            notice: |reason| format!("Your account has been banned: {reason}"),
            farewell: Farewell::Banned,
            done: "is banned",
            unchanged: "is already banned",
        },
    ))
}

pub(super) fn unban(inv: Invocation) -> Reply {
    Box::pin(change_privileges(
        inv,
        PrivilegeChange {
            action: "unban",
            usage: "!unban <name> [reason]",
            needs_reason: false,
            change: |p| p.union(Privileges::NORMAL),
            // A banned player cannot be online; this is for completeness only.
            notice: |_| "Your account is no longer banned.".to_owned(),
            farewell: Farewell::Reconnect,
            done: "is no longer banned",
            unchanged: "is not banned",
        },
    ))
}

pub(super) fn kick(inv: Invocation) -> Reply {
    Box::pin(async move {
        let target = match target_for(&inv, "kick", "!kick <name> [reason]").await {
            Ok(target) => target,
            Err(refused) => return refused.to_string(),
        };
        let reason = rest_from(&inv.args, 1);
        let notice = if reason.is_empty() {
            "You have been disconnected by the staff.".to_owned()
        } else {
            format!("You have been disconnected by the staff: {reason}")
        };
        if !end_session(&inv, target.id, notice, Farewell::Disconnect) {
            return format!("{} is not online.", target.name);
        }
        audit(&inv, Some(target.id), "kick", &reason).await;
        format!("Kicked {}.", target.name)
    })
}

pub(super) fn alert(inv: Invocation) -> Reply {
    Box::pin(async move {
        let message = inv.args.join(" ");
        if message.is_empty() {
            return "Usage: !alert <message>".to_owned();
        }
        if let Err(refused) = staff(&inv, "alert").await {
            return refused.to_string();
        }
        let packet = packet_bytes(Notification {
            text: message.clone(),
        });
        inv.ports
            .outbox
            .broadcast(UserCast::Enqueue(packet), crate::Audience::Everyone);
        audit(&inv, None, "alert", &message).await;
        "Alert sent.".to_owned()
    })
}

pub(super) fn alert_user(inv: Invocation) -> Reply {
    Box::pin(async move {
        const USAGE: &str = "!alertuser <name> <message>";
        let message = rest_from(&inv.args, 1);
        if message.is_empty() {
            return format!("Usage: {USAGE}");
        }
        // A notification harms nobody: staff may alert anyone, themselves and staff too.
        if let Err(refused) = staff(&inv, "alertuser").await {
            return refused.to_string();
        }
        let target = match target(&inv, USAGE).await {
            Ok(target) => target,
            Err(refused) => return refused.to_string(),
        };
        let packet = packet_bytes(Notification {
            text: message.clone(),
        });
        if !online(&inv, target.id)
            || inv
                .ports
                .outbox
                .send(Mail::User(target.id, UserCast::Enqueue(packet)))
                .is_err()
        {
            return format!("{} is not online.", target.name);
        }
        audit(&inv, Some(target.id), "alertuser", &message).await;
        format!("Alerted {}.", target.name)
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
