//! Addressing by key. Every message to an entity goes through here: `cast`/`call` on a
//! user id, channel name, spectator room, match or the lobby — never on an actor
//! reference kept by the caller. The router looks the key's shard up in this node's
//! [`Placement`]: an entity that lives here gets the message directly, one that lives on
//! another node gets it inside an envelope sent to that node's router. The caller cannot
//! tell the difference, and a node of one is simply a cluster where every key is here.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use peace_db::Privileges;
use ractor::{ActorId, ActorRef};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::EntityKey;
use crate::cluster::envelope::{self, Answer, Body, Refusal, RequestBody, WireError};
use crate::cluster::shard::{Shard, shard_of};
use crate::cluster::{EntityCounts, Location, Net, Placement};
use crate::directory::Directory;
use crate::message::EntityMsg;
use crate::sessions::Sessions;
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
    #[error("this node has no shard table yet (it is joining the cluster)")]
    NotPlaced,
    #[error("node {0} is not reachable")]
    Unreachable(String),
    #[error("node {0} did not answer within {1:?}")]
    NodeTimeout(String, Duration),
    #[error("the message was forwarded too many times")]
    TooManyHops,
    #[error("the remote node refused: {0:?}")]
    Refused(Refusal),
    #[error(transparent)]
    Wire(#[from] WireError),
}

/// Which sessions a broadcast reaches. A closure cannot cross nodes, so the filters are
/// named here and applied by each node to its own sessions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Audience {
    Everyone,
    /// Everyone but this user (their own presence change, say).
    AllBut(i32),
    /// Those holding these privileges (the readers of a channel).
    WithPrivileges(Privileges),
}

impl Audience {
    pub fn includes(&self, user_id: i32, privileges: Privileges) -> bool {
        match self {
            Audience::Everyone => true,
            Audience::AllBut(id) => *id != user_id,
            Audience::WithPrivileges(required) => privileges.contains(*required),
        }
    }
}

/// Actor references of one kind by key.
type ActorMap<K, C, Q, R> = HashMap<K, ActorRef<EntityMsg<C, Q, R>>>;

/// The actors of one entity kind that live on this node, by key.
#[derive(Debug)]
pub struct Table<K, C, Q, R> {
    actors: RwLock<ActorMap<K, C, Q, R>>,
    key: fn(&K) -> EntityKey,
    /// The kind's name on the wire and in the API (`channel`, `match`).
    kind: &'static str,
}

impl<K, C, Q, R> Table<K, C, Q, R>
where
    K: Clone + Eq + Hash,
    C: Clone + Send + Serialize + DeserializeOwned + 'static,
    Q: Send + Serialize + DeserializeOwned + 'static,
    R: Send + Serialize + DeserializeOwned + 'static,
{
    fn new(kind: &'static str, key: fn(&K) -> EntityKey) -> Self {
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

    /// Whether the entity runs on this node.
    pub fn contains(&self, key: &K) -> bool {
        self.read().contains_key(key)
    }

    pub fn keys(&self) -> Vec<K> {
        self.read().keys().cloned().collect()
    }

    /// Entities of this kind on this node.
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

    /// The local actors whose keys are in `shards`, for stopping strays.
    pub fn actors_in(
        &self,
        shards: &std::collections::BTreeSet<Shard>,
    ) -> Vec<ActorRef<EntityMsg<C, Q, R>>> {
        self.read()
            .iter()
            .filter(|(k, _)| shards.contains(&shard_of(&(self.key)(k))))
            .map(|(_, a)| a.clone())
            .collect()
    }

    /// How many local entities each shard holds.
    pub fn count_by_shard(&self, counts: &mut BTreeMap<Shard, usize>) {
        for key in self.read().keys() {
            *counts.entry(shard_of(&(self.key)(key))).or_insert(0) += 1;
        }
    }

    pub(crate) fn cast_local(&self, key: &K, msg: C) -> Result<(), RouteError> {
        let actor = self.read().get(key).cloned();
        actor
            .ok_or_else(|| RouteError::NotFound((self.key)(key)))?
            .cast(EntityMsg::Cast(msg))
            .map_err(|_| RouteError::Stopped((self.key)(key)))
    }

    async fn call_local(&self, key: &K, msg: Q, timeout: Duration) -> Result<R, RouteError> {
        let actor = self.read().get(key).cloned();
        let actor = actor.ok_or_else(|| RouteError::NotFound((self.key)(key)))?;
        call(&actor, (self.key)(key), msg, timeout).await
    }

    pub(crate) fn broadcast_local(&self, msg: &C) {
        let actors: Vec<_> = self.read().values().cloned().collect();
        for actor in actors {
            let _ = actor.cast(EntityMsg::Cast(msg.clone()));
        }
    }

    /// A cast that arrived from another node.
    pub(crate) fn deliver_cast(&self, key: &K, payload: &[u8]) -> Result<(), RouteError> {
        let msg: C = envelope::decode_payload(payload)?;
        self.cast_local(key, msg)
    }

    /// A broadcast to this kind that arrived from another node.
    pub(crate) fn deliver_broadcast(&self, payload: &[u8]) -> Result<(), RouteError> {
        let msg: C = envelope::decode_payload(payload)?;
        self.broadcast_local(&msg);
        Ok(())
    }

    /// A call that arrived from another node; the answer goes back encoded.
    pub(crate) async fn deliver_call(
        &self,
        key: &K,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, RouteError> {
        let msg: Q = envelope::decode_payload(payload)?;
        let reply = self.call_local(key, msg, timeout).await?;
        Ok(envelope::encode_payload(&reply)?)
    }
}

/// One entity kind, addressed through the router: messages go wherever the key lives.
/// Dereferences to the kind's local [`Table`].
#[derive(Debug)]
pub struct Routed<'a, K, C, Q, R> {
    table: &'a Table<K, C, Q, R>,
    router: &'a Router,
}

impl<K, C, Q, R> std::ops::Deref for Routed<'_, K, C, Q, R> {
    type Target = Table<K, C, Q, R>;

    fn deref(&self) -> &Self::Target {
        self.table
    }
}

impl<K, C, Q, R> Routed<'_, K, C, Q, R>
where
    K: Clone + Eq + Hash,
    C: Clone + Send + Serialize + DeserializeOwned + 'static,
    Q: Send + Serialize + DeserializeOwned + 'static,
    R: Send + Serialize + DeserializeOwned + 'static,
{
    pub fn cast(&self, key: &K, msg: C) -> Result<(), RouteError> {
        let entity = (self.table.key)(key);
        match self.router.placement().locate(&entity) {
            Location::Here => self.table.cast_local(key, msg),
            Location::There(node) => {
                let payload = envelope::encode_payload(&msg)?;
                self.router.net().send(
                    &node,
                    Body::Cast {
                        key: entity,
                        session: None,
                        payload,
                    },
                )
            }
            Location::Unplaced => Err(RouteError::NotPlaced),
        }
    }

    pub async fn call(&self, key: &K, msg: Q, timeout: Duration) -> Result<R, RouteError> {
        let entity = (self.table.key)(key);
        match self.router.placement().locate(&entity) {
            Location::Here => self.table.call_local(key, msg, timeout).await,
            Location::There(node) => {
                let payload = envelope::encode_payload(&msg)?;
                let body = RequestBody::Call {
                    key: entity.clone(),
                    session: None,
                    payload,
                };
                self.router.ask_entity(&node, &entity, body, timeout).await
            }
            Location::Unplaced => Err(RouteError::NotPlaced),
        }
    }

    /// Tells every entity of this kind, on every node, the same thing.
    pub fn broadcast(&self, msg: C) {
        self.table.broadcast_local(&msg);
        match envelope::encode_payload(&msg) {
            Ok(payload) => self.router.net().send_all(&Body::BroadcastKind {
                kind: self.table.kind.to_owned(),
                payload,
            }),
            Err(e) => tracing::error!(kind = self.table.kind, "broadcast not encodable: {e}"),
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
/// The lobby (one per cluster, keyed by `()`).
pub type Lobbies = Table<(), crate::lobby::LobbyCast, crate::lobby::LobbyCall, ()>;

/// Resolves entity keys to actors, here or on other nodes. Cloning shares it.
#[derive(Debug, Clone)]
pub struct Router {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    placement: Placement,
    net: Net,
    users: Directory,
    sessions: Sessions,
    channels: Channels,
    spectate: SpectatorRooms,
    matches: Matches,
    lobby: Lobbies,
}

impl Router {
    /// The router of the node named `node`.
    pub fn new(node: &str) -> Self {
        let net = Net::new(node);
        Self {
            inner: Arc::new(Inner {
                placement: Placement::new(node),
                users: Directory::new(net.clone()),
                net,
                sessions: Sessions::default(),
                channels: Table::new("channel", |name| EntityKey::Channel(name.clone())),
                spectate: Table::new("spectate", |host| EntityKey::Spectate(*host)),
                matches: Table::new("match", |id| EntityKey::Match(*id)),
                lobby: Table::new("lobby", |()| EntityKey::Lobby),
            }),
        }
    }

    pub fn placement(&self) -> &Placement {
        &self.inner.placement
    }

    pub fn net(&self) -> &Net {
        &self.inner.net
    }

    /// Who is online anywhere in the cluster (addresses and presence).
    pub fn users(&self) -> &Directory {
        &self.inner.users
    }

    /// The sessions that live on this node.
    pub fn sessions(&self) -> &Sessions {
        &self.inner.sessions
    }

    pub fn channels(
        &self,
    ) -> Routed<
        '_,
        String,
        crate::channel::ChannelCast,
        crate::channel::ChannelCall,
        crate::channel::ChannelReply,
    > {
        Routed {
            table: &self.inner.channels,
            router: self,
        }
    }

    pub fn spectate(
        &self,
    ) -> Routed<
        '_,
        i32,
        crate::spectate::SpectateCast,
        crate::spectate::SpectateCall,
        crate::spectate::SpectateReply,
    > {
        Routed {
            table: &self.inner.spectate,
            router: self,
        }
    }

    pub fn matches(
        &self,
    ) -> Routed<
        '_,
        i32,
        crate::match_room::MatchCast,
        crate::match_room::MatchCall,
        crate::match_room::MatchReply,
    > {
        Routed {
            table: &self.inner.matches,
            router: self,
        }
    }

    pub fn lobby(&self) -> Routed<'_, (), crate::lobby::LobbyCast, crate::lobby::LobbyCall, ()> {
        Routed {
            table: &self.inner.lobby,
            router: self,
        }
    }

    /// Tells the lobby something.
    pub fn cast_lobby(&self, msg: crate::lobby::LobbyCast) -> Result<(), RouteError> {
        self.lobby().cast(&(), msg)
    }

    /// Entities on this node, by kind.
    pub fn local_counts(&self) -> EntityCounts {
        EntityCounts {
            user: self.inner.sessions.len(),
            channel: self.inner.channels.len(),
            spectate: self.inner.spectate.len(),
            matches: self.inner.matches.len(),
            lobby: self.inner.lobby.len(),
        }
    }

    /// How many local entities each shard holds (shards holding none are left out).
    pub fn local_shard_load(&self) -> BTreeMap<Shard, usize> {
        let mut counts = BTreeMap::new();
        self.inner.sessions.count_by_shard(&mut counts);
        self.inner.channels.count_by_shard(&mut counts);
        self.inner.spectate.count_by_shard(&mut counts);
        self.inner.matches.count_by_shard(&mut counts);
        self.inner.lobby.count_by_shard(&mut counts);
        counts
    }

    /// Asks `node` something about `entity` and decodes the entity's answer.
    async fn ask_entity<R: DeserializeOwned>(
        &self,
        node: &str,
        entity: &EntityKey,
        body: RequestBody,
        timeout: Duration,
    ) -> Result<R, RouteError> {
        match self.net().ask(node, body, timeout).await {
            Ok(Answer::Reply(bytes)) => Ok(envelope::decode_payload(&bytes)?),
            Ok(other) => {
                tracing::warn!(%node, "unexpected answer to a call: {other:?}");
                Err(RouteError::Refused(Refusal::Undecodable(
                    "unexpected answer".into(),
                )))
            }
            Err(RouteError::Refused(refusal)) => Err(RouteError::from_refusal(refusal, entity)),
            Err(e) => Err(e),
        }
    }

    pub fn cast_user(&self, user_id: i32, msg: UserCast) -> Result<(), RouteError> {
        self.cast_user_session(user_id, None, msg)
    }

    /// Tells one session of a user (a tournament account may have several).
    pub fn cast_session(
        &self,
        user_id: i32,
        session_id: u64,
        msg: UserCast,
    ) -> Result<(), RouteError> {
        self.cast_user_session(user_id, Some(session_id), msg)
    }

    fn cast_user_session(
        &self,
        user_id: i32,
        session: Option<u64>,
        msg: UserCast,
    ) -> Result<(), RouteError> {
        let key = EntityKey::User(user_id);
        match self.placement().locate(&key) {
            Location::Here => self.inner.sessions.cast(user_id, session, msg),
            Location::There(node) => {
                let payload = envelope::encode_payload(&msg)?;
                self.net().send(
                    &node,
                    Body::Cast {
                        key,
                        session,
                        payload,
                    },
                )
            }
            Location::Unplaced => Err(RouteError::NotPlaced),
        }
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
        match self.placement().locate(&key) {
            Location::Here => {
                let session = self
                    .inner
                    .sessions
                    .session(user_id, session_id)
                    .ok_or_else(|| RouteError::NotFound(key.clone()))?;
                call(&session.actor, key, msg, timeout).await
            }
            Location::There(node) => {
                let payload = envelope::encode_payload(&msg)?;
                let body = RequestBody::Call {
                    key: key.clone(),
                    session: Some(session_id),
                    payload,
                };
                self.ask_entity(&node, &key, body, timeout).await
            }
            Location::Unplaced => Err(RouteError::NotPlaced),
        }
    }

    /// Tells many users the same thing (a channel's fan-out): users here are told
    /// directly, and each other node gets one envelope with its users' ids.
    pub fn cast_users(&self, user_ids: impl IntoIterator<Item = i32>, msg: UserCast) {
        let mut remote: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for user_id in user_ids {
            match self.placement().locate(&EntityKey::User(user_id)) {
                Location::Here => {
                    let _ = self.inner.sessions.cast(user_id, None, msg.clone());
                }
                Location::There(node) => remote.entry(node).or_default().push(user_id),
                Location::Unplaced => {}
            }
        }
        if remote.is_empty() {
            return;
        }
        let payload = match envelope::encode_payload(&msg) {
            Ok(p) => p,
            Err(e) => return tracing::error!("fan-out not encodable: {e}"),
        };
        for (node, user_ids) in remote {
            let body = Body::CastUsers {
                user_ids,
                payload: payload.clone(),
            };
            if let Err(e) = self.net().send(&node, body) {
                tracing::debug!(%node, "fan-out not sent: {e}");
            }
        }
    }

    /// Tells every online user in `audience`, on every node.
    pub fn broadcast_users(&self, msg: UserCast, audience: Audience) {
        match envelope::encode_payload(&msg) {
            Ok(payload) => self.net().send_all(&Body::Broadcast {
                audience: audience.clone(),
                payload,
            }),
            Err(e) => tracing::error!("broadcast not encodable: {e}"),
        }
        self.inner.sessions.broadcast(&msg, &audience);
    }

    pub(crate) fn channels_table(&self) -> &Channels {
        &self.inner.channels
    }

    pub(crate) fn spectate_table(&self) -> &SpectatorRooms {
        &self.inner.spectate
    }

    pub(crate) fn matches_table(&self) -> &Matches {
        &self.inner.matches
    }

    pub(crate) fn lobby_table(&self) -> &Lobbies {
        &self.inner.lobby
    }
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
    match actor
        .call(|reply| EntityMsg::Call(msg, reply), Some(timeout))
        .await
    {
        Ok(ractor::rpc::CallResult::Success(reply)) => Ok(reply),
        Ok(ractor::rpc::CallResult::Timeout) => Err(RouteError::Timeout(key, timeout)),
        Ok(ractor::rpc::CallResult::SenderError) | Err(_) => Err(RouteError::Stopped(key)),
    }
}
