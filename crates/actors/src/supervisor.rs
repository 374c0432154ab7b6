//! The node's root supervisor. Every entity actor is spawned linked to it:
//!
//! ```text
//! NodeSupervisor
//!  ├── UserSession × online players   (a failure ends that session cleanly)
//!  ├── ChannelActor × channels        (a failure restarts the channel, members lost)
//!  ├── SpectatorRoom × watched players (a failure closes the room)
//!  ├── MatchActor × matches            (a failure disposes of the match)
//!  ├── LobbyActor                     (a failure restarts the lobby)
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
        _myself: ActorRef<()>,
        event: SupervisionEvent,
        world: &mut World,
    ) -> Result<(), ActorProcessingErr> {
        let SupervisionEvent::ActorFailed(cell, error) = event else {
            return Ok(());
        };
        let id = cell.get_id();
        let router = world.router().clone();
        if let Some(session) = router.sessions().by_actor(id) {
            if session.user_id == crate::BOT_ID {
                tracing::error!("the bot failed: {error}; restarting it");
                router.sessions().remove(crate::BOT_ID, 0);
                world.spawn_bot().await?;
            } else {
                tracing::error!(user = session.user_id, "session failed: {error}");
                crate::user::end_session(world, session.user_id, session.session_id, None);
            }
        } else if let Some(name) = router.channels().key_of(id) {
            tracing::error!(channel = %name, "channel failed: {error}; restarting it");
            router.channels().remove(&name, id);
            world.respawn_channel(&name).await?;
        } else {
            tracing::error!(actor = %id, "an unknown actor failed: {error}");
        }
        Ok(())
    }
}
