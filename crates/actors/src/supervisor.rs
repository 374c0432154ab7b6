//! The node's root supervisor. Every entity actor is spawned linked to it:
//!
//! ```text
//! NodeSupervisor
//!  ├── UserSession × online players   (a failure ends that session cleanly)
//!  ├── ChannelActor × channels        (a failure restarts the channel, members lost)
//!  └── BotActor                       (a failure restarts the bot)
//! ```
//!
//! A normal stop cleans up in the actor's own `post_stop`. A panic or handler error skips
//! `post_stop`, so the supervisor does the same cleanup from what the router knows.

use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};

use crate::World;

/// The root supervisor actor.
#[derive(Debug)]
pub struct NodeSupervisor;

impl Actor for NodeSupervisor {
    type Msg = ();
    type State = World;
    type Arguments = World;

    async fn pre_start(
        &self,
        _myself: ActorRef<()>,
        world: World,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(world)
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<()>,
        event: SupervisionEvent,
        world: &mut World,
    ) -> Result<(), ActorProcessingErr> {
        let SupervisionEvent::ActorFailed(cell, error) = event else {
            return Ok(());
        };
        let id = cell.get_id();
        if let Some(user) = world.router().users().by_actor(id) {
            if user.id == crate::BOT_ID {
                tracing::error!("the bot failed: {error}; restarting it");
                world.spawn_bot(myself.get_cell()).await?;
            } else {
                tracing::error!(user = user.id, "session failed: {error}");
                let channels = world.router().channel_names();
                crate::user::end_session(world, user.id, user.session_id, channels.iter());
            }
        } else if let Some(name) = world.router().channel_by_actor(id) {
            tracing::error!(channel = %name, "channel failed: {error}; restarting it");
            world.respawn_channel(&name, myself.get_cell()).await?;
        } else {
            tracing::error!(actor = %id, "an unknown actor failed: {error}");
        }
        Ok(())
    }
}
