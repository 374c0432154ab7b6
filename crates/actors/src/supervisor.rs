//! The node's root supervisor. Every entity actor is spawned linked to it:
//!
//! ```text
//! NodeSupervisor
//!  ├── EntityHost<Session> × online players     (a panic: the session is ended)
//!  ├── EntityHost<ChannelState> × channels     (a panic: goes on from its last state)
//!  ├── EntityHost<SpectateState> × rooms       (a panic: the room is closed)
//!  ├── EntityHost<MatchState> × matches        (a panic: the match is disposed of)
//!  ├── EntityHost<LobbyState>                  (a panic: goes on from its last state)
//!  ├── EntityHost<Leaderboard> × boards read   (a panic: goes on empty, loads again)
//!  └── EntityHost<Bot>                          (a panic: goes on)
//! ```
//!
//! An entity host catches its entity's panics and lets the kind decide
//! (`Entity::after_panic`), so hosts reach this supervisor only when that decision
//! needs the node: a session that panicked is ended cleanly from what the router knows
//! (its state is not trusted), and a channel whose state could not be taken is started
//! again from its definition.

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
        let (cell, error) = match event {
            SupervisionEvent::ActorFailed(cell, error) => (cell, error.to_string()),
            // An entity host whose entity panicked and was not restarted (a channel whose
            // state could not be taken): started again below like a failed actor.
            SupervisionEvent::ActorTerminated(cell, _, Some(reason))
                if reason == peace_sharding::STOPPED_AFTER_PANIC =>
            {
                (cell, reason)
            }
            _ => return Ok(()),
        };
        let id = cell.get_id();
        let router = world.router().clone();
        if let Some(session) = router.sessions().by_actor(id) {
            tracing::error!(user = session.user_id, "session failed: {error}");
            crate::user::end_session(
                world.session_ports(),
                session.user_id,
                session.session_id,
                None,
            );
        } else if let Some(name) = router.channels().key_of(id) {
            tracing::error!(channel = %name, "channel failed: {error}; restarting it");
            router.channels().remove(&name, id);
            world.respawn_channel(&name).await?;
        } else if let Some(key) = router.boards().key_of(id) {
            // Its next read starts it again.
            tracing::error!(board = ?key, "board failed: {error}");
            router.boards().remove(&key, id);
        } else {
            tracing::debug!(actor = %id, "an entity stopped after a failure: {error}");
        }
        Ok(())
    }
}
