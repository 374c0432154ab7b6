//! The bot: an always-online account (id [`crate::BOT_ID`]) that answers `!commands` in
//! channels and private messages. It speaks the user-session message protocol, so the
//! router addresses it like any other user; it simply has no client to queue bytes for.

mod commands;
mod moderation;

use peace_db::Privileges;
use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::World;
use crate::channel::ChannelCast;
use crate::match_room::MatchCast;
use crate::message::EntityMsg;
use crate::user::{UserCall, UserCast, UserMsg, UserReply};

pub use commands::{Access, COMMANDS, Command, Invocation, MAX_COMMAND_LEN};
pub use moderation::{MAX_SILENCE, parse_duration};

/// The bot actor.
#[derive(Debug)]
pub struct BotActor;

impl Actor for BotActor {
    type Msg = UserMsg;
    type State = World;
    type Arguments = World;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        world: World,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(world)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        world: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        peace_metrics::mailbox_handled("user");
        match msg {
            EntityMsg::Cast(UserCast::PrivateMessage {
                from_id,
                from_name,
                from_privileges,
                text,
            }) => {
                let invocation = |args| Invocation {
                    world: world.clone(),
                    sender_id: from_id,
                    sender_name: from_name.clone(),
                    sender_privileges: from_privileges,
                    args,
                };
                let reply = commands::parse(&text, invocation);
                let world = world.clone();
                tokio::spawn(async move {
                    let answer = match reply {
                        Some(reply) => reply.await,
                        None => "Hi! Type !help to see what I can do.".to_owned(),
                    };
                    let packet = crate::user::bot_message(&world, &from_name, answer);
                    let _ = world.router().cast_user(from_id, UserCast::Enqueue(packet));
                });
            }
            EntityMsg::Cast(UserCast::ChannelCommand {
                channel,
                from_id,
                from_name,
                privileges,
                text,
            }) => {
                // `!mp` in a match channel goes to that match, which answers there itself.
                let mut words = text.split_whitespace();
                if words.next().is_some_and(|w| w.eq_ignore_ascii_case("!mp"))
                    && let Some(match_id) = crate::match_room::match_of_channel(&channel)
                {
                    let args = words.take(16).map(str::to_owned).collect();
                    let cast = MatchCast::Referee {
                        user_id: from_id,
                        name: from_name,
                        privileges,
                        args,
                    };
                    let _ = world.router().matches().cast(&match_id, cast);
                    return Ok(());
                }
                let invocation = |args| Invocation {
                    world: world.clone(),
                    sender_id: from_id,
                    sender_name: from_name.clone(),
                    sender_privileges: privileges,
                    args,
                };
                if let Some(reply) = commands::parse(&text, invocation) {
                    let world = world.clone();
                    tokio::spawn(async move {
                        let msg = ChannelCast::Message {
                            from_id: crate::BOT_ID,
                            from_name: world.bot_name().to_owned(),
                            privileges: Privileges::BOT,
                            text: reply.await,
                        };
                        let _ = world.router().channels().cast(&channel, msg);
                    });
                }
            }
            // Nothing is queued for the bot and it never times out.
            EntityMsg::Cast(_) => {}
            EntityMsg::Export(reply) => {
                // The bot carries nothing: the new node starts it afresh.
                let _ = reply.send(crate::snapshot::Snapshot::Bot);
                _myself.stop(Some("moved".into()));
            }
            EntityMsg::Call(UserCall::Poll { .. } | UserCall::Retire { .. }, reply) => {
                let _ = reply.send(UserReply::Packets(bytes::Bytes::new()));
            }
        }
        Ok(())
    }
}
