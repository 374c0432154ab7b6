//! Addressing by key. Every message to an entity goes through here: `cast`/`call` on a
//! user id, channel name, spectator room, match or the lobby — never on an actor
//! reference kept by the caller. Today the router resolves keys on this node; the cluster
//! will resolve them to other nodes behind the same calls.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use ractor::{ActorId, ActorRef};
use thiserror::Error;

use crate::EntityKey;
use crate::directory::{Directory, OnlineUser};
use crate::lobby::LobbyMsg;
use crate::message::EntityMsg;
use crate::user::{UserCall, UserCast, UserReply};

/// Why a message could not be delivered.
#[derive(Debug, Error)]
pub enum RouteError {
    #[error("{0} is not running")]
    NotFound(EntityKey),
    #[error("{0} stopped before it could answer")]
    Stopped(EntityKey),
    #[error("{0} did not answer within {1:?}")]
    Timeout(EntityKey, Duration),
}

/// Actor references of one kind by key.
type ActorMap<K, C, Q, R> = HashMap<K, ActorRef<EntityMsg<C, Q, R>>>;

/// The actors of one entity kind on this node, by key.
#[derive(Debug)]
pub struct Table<K, C, Q, R> {
    actors: RwLock<ActorMap<K, C, Q, R>>,
    key: fn(&K) -> EntityKey,
    /// The kind's label in metrics (`channel`, `match`).
    kind: &'static str,
}

impl<K, C, Q, R> Table<K, C, Q, R>
where
    K: Clone + Eq + Hash,
    C: Clone + Send + 'static,
    Q: Send + 'static,
    R: Send + 'static,
{
    fn new(key: fn(&K) -> EntityKey, kind: &'static str) -> Self {
        Self {
            actors: RwLock::default(),
            key,
            kind,
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, ActorMap<K, C, Q, R>> {
        // Every write is one insert or remove, so a poisoned lock holds a consistent map.
        self.actors.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, ActorMap<K, C, Q, R>> {
        self.actors.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn insert(&self, key: K, actor: ActorRef<EntityMsg<C, Q, R>>) {
        self.write().insert(key, actor);
    }

    /// Removes `key` if it is still `actor` (a successor must not be removed).
    pub fn remove(&self, key: &K, actor: ActorId) {
        let mut actors = self.write();
        if actors.get(key).is_some_and(|a| a.get_id() == actor) {
            actors.remove(key);
        }
    }

    pub fn contains(&self, key: &K) -> bool {
        self.read().contains_key(key)
    }

    pub fn keys(&self) -> Vec<K> {
        self.read().keys().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Which key (if any) an actor serves.
    pub fn key_of(&self, actor: ActorId) -> Option<K> {
        self.read()
            .iter()
            .find(|(_, a)| a.get_id() == actor)
            .map(|(k, _)| k.clone())
    }

    fn get(&self, key: &K) -> Result<ActorRef<EntityMsg<C, Q, R>>, RouteError> {
        self.read()
            .get(key)
            .cloned()
            .ok_or_else(|| RouteError::NotFound((self.key)(key)))
    }

    pub fn cast(&self, key: &K, msg: C) -> Result<(), RouteError> {
        counted_cast(&self.get(key)?, self.kind, msg)
            .map_err(|_| RouteError::Stopped((self.key)(key)))
    }

    pub async fn call(&self, key: &K, msg: Q, timeout: Duration) -> Result<R, RouteError> {
        let actor = self.get(key)?;
        call(&actor, (self.key)(key), msg, timeout).await
    }

    /// Tells every actor of this kind the same thing.
    pub fn broadcast(&self, msg: C) {
        let actors: Vec<_> = self.read().values().cloned().collect();
        for actor in actors {
            let _ = counted_cast(&actor, self.kind, msg.clone());
        }
    }
}

/// Resolves entity keys to actors.
#[derive(Debug, Clone)]
pub struct Router {
    inner: Arc<Tables>,
}

#[derive(Debug)]
struct Tables {
    users: Directory,
    channels: Channels,
    spectate: SpectatorRooms,
    matches: Matches,
    lobby: OnceLock<ActorRef<LobbyMsg>>,
}

impl Default for Router {
    fn default() -> Self {
        Self {
            inner: Arc::new(Tables {
                users: Directory::default(),
                channels: Table::new(|name| EntityKey::Channel(name.clone()), "channel"),
                spectate: Table::new(|host| EntityKey::Spectate(*host), "spectate"),
                matches: Table::new(|id| EntityKey::Match(*id), "match"),
                lobby: OnceLock::new(),
            }),
        }
    }
}

/// Channel actors by name.
pub type Channels = Table<
    String,
    crate::channel::ChannelCast,
    crate::channel::ChannelCall,
    crate::channel::ChannelReply,
>;
/// Spectator rooms by host id.
pub type SpectatorRooms = Table<
    i32,
    crate::spectate::SpectateCast,
    crate::spectate::SpectateCall,
    crate::spectate::SpectateReply,
>;
/// Matches by match id.
pub type Matches = Table<
    i32,
    crate::match_room::MatchCast,
    crate::match_room::MatchCall,
    crate::match_room::MatchReply,
>;

impl Router {
    /// The online-user table (addresses and presence).
    pub fn users(&self) -> &Directory {
        &self.inner.users
    }

    pub fn channels(&self) -> &Channels {
        &self.inner.channels
    }

    pub fn spectate(&self) -> &SpectatorRooms {
        &self.inner.spectate
    }

    pub fn matches(&self) -> &Matches {
        &self.inner.matches
    }

    pub(crate) fn set_lobby(&self, lobby: ActorRef<LobbyMsg>) {
        let _ = self.inner.lobby.set(lobby);
    }

    pub fn lobby_actor(&self) -> Option<ActorId> {
        self.inner.lobby.get().map(|l| l.get_id())
    }

    /// Tells the lobby something.
    pub fn cast_lobby(&self, msg: crate::lobby::LobbyCast) -> Result<(), RouteError> {
        let lobby = self
            .inner
            .lobby
            .get()
            .ok_or(RouteError::NotFound(EntityKey::Lobby))?;
        counted_cast(lobby, "lobby", msg).map_err(|_| RouteError::Stopped(EntityKey::Lobby))
    }

    pub fn cast_user(&self, user_id: i32, msg: UserCast) -> Result<(), RouteError> {
        let key = EntityKey::User(user_id);
        let user = self
            .users()
            .get(user_id)
            .ok_or_else(|| RouteError::NotFound(key.clone()))?;
        counted_cast(&user.actor, "user", msg).map_err(|_| RouteError::Stopped(key))
    }

    /// Tells one session of a user (a tournament account may have several).
    pub fn cast_session(
        &self,
        user_id: i32,
        session_id: u64,
        msg: UserCast,
    ) -> Result<(), RouteError> {
        let key = EntityKey::User(user_id);
        let user = self
            .users()
            .session(user_id, session_id)
            .ok_or_else(|| RouteError::NotFound(key.clone()))?;
        counted_cast(&user.actor, "user", msg).map_err(|_| RouteError::Stopped(key))
    }

    /// Asks a user's session, but only if it is still session `session_id`.
    pub async fn call_session(
        &self,
        user_id: i32,
        session_id: u64,
        msg: UserCall,
        timeout: Duration,
    ) -> Result<UserReply, RouteError> {
        let key = EntityKey::User(user_id);
        let actor = self
            .users()
            .session_actor(user_id, session_id)
            .ok_or_else(|| RouteError::NotFound(key.clone()))?;
        call(&actor, key, msg, timeout).await
    }

    /// Tells every online user the same thing.
    pub fn broadcast_users(&self, msg: UserCast) {
        self.broadcast_users_where(msg, |_| true);
    }

    /// Tells every online user for whom `keep` holds.
    pub fn broadcast_users_where(&self, msg: UserCast, keep: impl Fn(&OnlineUser) -> bool) {
        for actor in self.users().actors_where(keep) {
            // A session that stopped meanwhile has nothing left to be told.
            let _ = counted_cast(&actor, "user", msg.clone());
        }
    }
}

/// Casts `msg`, counting it in the mailbox backlog of `kind` (before sending, so that the
/// handler's decrement never comes first; taken back if the actor is gone).
fn counted_cast<C, Q, R>(
    actor: &ActorRef<EntityMsg<C, Q, R>>,
    kind: &'static str,
    msg: C,
) -> Result<(), ractor::MessagingErr<EntityMsg<C, Q, R>>>
where
    EntityMsg<C, Q, R>: ractor::Message,
{
    peace_metrics::mailbox_sent(kind);
    actor
        .cast(EntityMsg::Cast(msg))
        .inspect_err(|_| peace_metrics::mailbox_handled(kind))
}

/// One request/response with a time-out; the only way anything awaits an entity.
pub(crate) async fn call<C, Q, R>(
    actor: &ActorRef<EntityMsg<C, Q, R>>,
    key: EntityKey,
    msg: Q,
    timeout: Duration,
) -> Result<R, RouteError>
where
    EntityMsg<C, Q, R>: ractor::Message,
    R: Send + 'static,
{
    // Counted like a cast (see `counted_cast`).
    peace_metrics::mailbox_sent(key.kind());
    match actor
        .call(|reply| EntityMsg::Call(msg, reply), Some(timeout))
        .await
    {
        Ok(ractor::rpc::CallResult::Success(reply)) => Ok(reply),
        Ok(ractor::rpc::CallResult::Timeout) => Err(RouteError::Timeout(key, timeout)),
        Ok(ractor::rpc::CallResult::SenderError) => Err(RouteError::Stopped(key)),
        Err(_) => {
            // Not delivered: it never entered a mailbox.
            peace_metrics::mailbox_handled(key.kind());
            Err(RouteError::Stopped(key))
        }
    }
}
