//! Addressing by key. Every message to an entity goes through here: `cast`/`call` on a
//! user id, channel name, spectator room, match or the lobby — never on an actor
//! reference kept by the caller. The router looks the key's shard up in this node's
//! [`Placement`]: an entity that lives here gets the message directly, one that lives on
//! another node gets it inside an envelope sent to that node's router, and one whose
//! shard is moving has casts held (and forwarded once it has moved) and calls wait. The
//! caller cannot tell the difference, and a node of one is simply a cluster where every
//! key is here.
//!
//! A local delivery happens while the placement is read-locked, so that a move cannot
//! start between deciding "here" and putting the message in the entity's mailbox: the
//! export a move sends always comes after every message delivered before the freeze.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ractor::concurrency::OneshotReceiver;
use ractor::{ActorId, ActorRef};
use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;

use crate::EntityKey;
use crate::cluster::envelope::{
    self, Answer, Body, Envelope, Refusal, Request, RequestBody, WireError,
};
use crate::cluster::placement::Hold;
use crate::cluster::shard::{Shard, shard_of};
use crate::cluster::{EntityCounts, Location, Net, Placement};
use crate::directory::Directory;
pub use crate::message::Audience;
use crate::message::{EntityMsg, send_counted};
use crate::ports::{Mail, Outbox, Roster};
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
    #[error("too many messages are waiting for {0}, which is moving")]
    Overloaded(EntityKey),
    #[error("this node runs the most {0} entities it may ({1})")]
    Full(&'static str, usize),
    #[error("the remote node refused: {0:?}")]
    Refused(Refusal),
    #[error(transparent)]
    Wire(#[from] WireError),
}

/// Where a message comes from: this node, or a peer that sent (or forwarded) it.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    pub from: String,
    pub hops: u8,
}

impl Origin {
    /// Whether the message was made on node `me` (not received from a peer).
    fn is_local(&self, me: &str) -> bool {
        self.hops == 0 && self.from == me
    }
}

/// A message on its way: typed until it has to cross a node, or already bytes.
pub(crate) trait IntoPayload {
    fn into_payload(self) -> Result<Vec<u8>, WireError>;
}

/// A typed message.
pub(crate) struct Typed<T>(pub T);

impl<T: Serialize> IntoPayload for Typed<T> {
    fn into_payload(self) -> Result<Vec<u8>, WireError> {
        envelope::encode_payload(&self.0)
    }
}

/// A message that arrived as bytes.
pub(crate) struct Encoded(pub Vec<u8>);

impl IntoPayload for Encoded {
    fn into_payload(self) -> Result<Vec<u8>, WireError> {
        Ok(self.0)
    }
}

/// Actor references of one kind by key.
type ActorMap<K, C, Q, R, S> = HashMap<K, ActorRef<EntityMsg<C, Q, R, S>>>;
/// One entity of a kind: its key and actor.
type Keyed<K, C, Q, R, S> = (K, ActorRef<EntityMsg<C, Q, R, S>>);

/// What a starting host returns.
type Starting<M> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<ActorRef<M>, ractor::SpawnErr>> + Send>,
>;

/// How a kind whose entities start on their first message (boards) starts one on this
/// node; the node installs it at start-up ([`Table::start_on_demand`]).
struct Starter<K, M> {
    start: Box<dyn Fn(K) -> Starting<M> + Send + Sync>,
    /// Most entities of the kind this node starts.
    max: usize,
}

impl<K, M> std::fmt::Debug for Starter<K, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Starter").field("max", &self.max).finish()
    }
}

/// The actors of one entity kind that live on this node, by key. Its delivery methods
/// do not look at the placement: the router does, before calling them.
#[derive(Debug)]
pub struct Table<K, C, Q, R, S> {
    actors: RwLock<ActorMap<K, C, Q, R, S>>,
    key: fn(&K) -> EntityKey,
    /// The kind's own key in an [`EntityKey`] of this kind (`None` for another kind).
    unkey: fn(&EntityKey) -> Option<&K>,
    /// The kind's name on the wire and in the API (`channel`, `match`).
    kind: &'static str,
    starter: std::sync::OnceLock<Starter<K, EntityMsg<C, Q, R, S>>>,
}

impl<K, C, Q, R, S> Table<K, C, Q, R, S>
where
    K: Clone + Eq + Hash,
    C: Clone + Send + Serialize + DeserializeOwned + 'static,
    Q: Send + Serialize + DeserializeOwned + 'static,
    R: Send + Serialize + DeserializeOwned + 'static,
    S: Send + 'static,
{
    fn new(
        kind: &'static str,
        key: fn(&K) -> EntityKey,
        unkey: fn(&EntityKey) -> Option<&K>,
    ) -> Self {
        Self {
            actors: RwLock::default(),
            key,
            unkey,
            kind,
            starter: std::sync::OnceLock::new(),
        }
    }

    /// Makes the kind's entities start on their first call ([`Routed::call_or_start`]),
    /// with `start`, at most `max` of them on this node. Set once.
    pub(crate) fn start_on_demand(
        &self,
        max: usize,
        start: impl Fn(K) -> Starting<EntityMsg<C, Q, R, S>> + Send + Sync + 'static,
    ) {
        let starter = Starter {
            start: Box::new(start),
            max,
        };
        if self.starter.set(starter).is_err() {
            tracing::warn!(kind = self.kind, "a second starter was ignored");
        }
    }

    /// Starts the entity of `key` here unless it runs already. Two callers starting the
    /// same key at once both end with the one that was inserted first.
    async fn start(&self, key: &K) -> Result<(), RouteError> {
        let not_started = || RouteError::NotFound((self.key)(key));
        let starter = self.starter.get().ok_or_else(not_started)?;
        if self.contains(key) {
            return Ok(());
        }
        if self.len() >= starter.max {
            return Err(RouteError::Full(self.kind, starter.max));
        }
        let actor = (starter.start)(key.clone()).await.map_err(|e| {
            tracing::warn!(kind = self.kind, "could not start an entity: {e}");
            not_started()
        })?;
        let mut actors = self.write();
        if actors.contains_key(key) {
            actor.stop(Some("started twice".into()));
        } else {
            actors.insert(key.clone(), actor);
        }
        Ok(())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, ActorMap<K, C, Q, R, S>> {
        // Every write is one insert or remove, so a poisoned lock holds a consistent map.
        self.actors.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, ActorMap<K, C, Q, R, S>> {
        self.actors.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn insert(&self, key: K, actor: ActorRef<EntityMsg<C, Q, R, S>>) {
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

    pub(crate) fn actor(&self, key: &K) -> Option<ActorRef<EntityMsg<C, Q, R, S>>> {
        self.read().get(key).cloned()
    }

    /// The local actors whose keys are in `shards`, with their keys.
    pub(crate) fn actors_in(
        &self,
        shards: &std::collections::BTreeSet<Shard>,
    ) -> Vec<Keyed<K, C, Q, R, S>> {
        self.read()
            .iter()
            .filter(|(k, _)| shards.contains(&shard_of(&(self.key)(k))))
            .map(|(k, a)| (k.clone(), a.clone()))
            .collect()
    }

    /// How many local entities each shard holds.
    pub fn count_by_shard(&self, counts: &mut BTreeMap<Shard, usize>) {
        for key in self.read().keys() {
            *counts.entry(shard_of(&(self.key)(key))).or_insert(0) += 1;
        }
    }

    /// Puts `msg` in the entity's mailbox.
    fn deliver(&self, key: &K, msg: C) -> Result<(), RouteError> {
        let actor = self
            .actor(key)
            .ok_or_else(|| RouteError::NotFound((self.key)(key)))?;
        send_counted(&actor, self.kind, EntityMsg::Cast(msg))
            .map_err(|_| RouteError::Stopped((self.key)(key)))
    }

    fn deliver_payload(&self, key: &K, payload: &[u8]) -> Result<(), RouteError> {
        let msg: C = envelope::decode_payload(payload)?;
        self.deliver(key, msg)
    }

    /// Puts a call in the entity's mailbox; the answer comes through the receiver.
    fn start_call(&self, key: &K, msg: Q) -> Result<OneshotReceiver<R>, RouteError> {
        let actor = self
            .actor(key)
            .ok_or_else(|| RouteError::NotFound((self.key)(key)))?;
        start_call(&actor, self.kind, (self.key)(key), msg)
    }
}

/// Puts a call in `actor`'s mailbox.
fn start_call<C, Q, R, S>(
    actor: &ActorRef<EntityMsg<C, Q, R, S>>,
    kind: &'static str,
    key: EntityKey,
    msg: Q,
) -> Result<OneshotReceiver<R>, RouteError>
where
    EntityMsg<C, Q, R, S>: ractor::Message,
{
    let (tx, rx) = ractor::concurrency::oneshot();
    send_counted(actor, kind, EntityMsg::Call(msg, tx.into()))
        .map_err(|_| RouteError::Stopped(key))?;
    Ok(rx)
}

/// A future a [`Kind`] returns (kinds are trait objects, so their futures are boxed).
pub(crate) type KindFuture<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// The entities of one kind as the node handles them without knowing the kind: every
/// table of the router seen through one shape, so that what arrives from peers
/// (casts, calls, broadcasts), forgetting, counting and stopping strays are written once
/// for all kinds ([`Router::kinds`]). A new kind is one more table in that list. The
/// sessions are not among them: a user's key names a session *and* which of a
/// tournament account's sessions, so they keep their own table (`sessions.rs`).
pub(crate) trait Kind: Send + Sync + std::fmt::Debug {
    /// The kind's name on the wire, in the API and in metrics.
    fn name(&self) -> &'static str;
    /// Puts an encoded cast in the mailbox of `key`'s entity here.
    fn deliver_payload(&self, key: &EntityKey, payload: &[u8]) -> Result<(), RouteError>;
    /// Runs an encoded call from a peer on `key`'s entity, wherever it is now (started
    /// first, for a kind whose entities start on their first call), and encodes the
    /// answer.
    fn call_payload<'a>(
        &'a self,
        router: &'a Router,
        key: &'a EntityKey,
        payload: &'a [u8],
        timeout: Duration,
        origin: &'a Origin,
    ) -> KindFuture<'a, Result<Vec<u8>, RouteError>>;
    /// Tells every entity of the kind here an encoded message from a peer's broadcast.
    fn broadcast_payload(
        &self,
        router: &Router,
        payload: &[u8],
        origin: &Origin,
    ) -> Result<(), WireError>;
    /// Drops `key`'s entry if it is still `actor`.
    fn forget(&self, key: &EntityKey, actor: ActorId);
    /// Entities of the kind here.
    fn len(&self) -> usize;
    fn count_by_shard(&self, counts: &mut BTreeMap<Shard, usize>);
    /// Stops the entities here whose keys are in `shards`; how many.
    fn stop_in(&self, shards: &std::collections::BTreeSet<Shard>, reason: &str) -> usize;
}

impl<K, C, Q, R, S> Kind for Table<K, C, Q, R, S>
where
    K: Clone + Eq + Hash + Send + Sync + std::fmt::Debug + 'static,
    C: Clone + Send + Sync + Serialize + DeserializeOwned + std::fmt::Debug + 'static,
    Q: Clone + Send + Sync + Serialize + DeserializeOwned + std::fmt::Debug + 'static,
    R: Send + Sync + Serialize + DeserializeOwned + std::fmt::Debug + 'static,
    S: Send + Sync + std::fmt::Debug + 'static,
{
    fn name(&self) -> &'static str {
        self.kind
    }

    fn deliver_payload(&self, key: &EntityKey, payload: &[u8]) -> Result<(), RouteError> {
        let own = (self.unkey)(key).ok_or_else(|| RouteError::NotFound(key.clone()))?;
        Table::deliver_payload(self, own, payload)
    }

    fn call_payload<'a>(
        &'a self,
        router: &'a Router,
        key: &'a EntityKey,
        payload: &'a [u8],
        timeout: Duration,
        origin: &'a Origin,
    ) -> KindFuture<'a, Result<Vec<u8>, RouteError>> {
        Box::pin(async move {
            let own = (self.unkey)(key).ok_or_else(|| RouteError::NotFound(key.clone()))?;
            let msg: Q = envelope::decode_payload(payload)?;
            let routed = Routed {
                table: self,
                router,
            };
            let reply = if self.starter.get().is_some() {
                routed.call_or_start_from(own, msg, timeout, origin).await?
            } else {
                routed.call_from(own, msg, timeout, origin).await?
            };
            Ok(envelope::encode_payload(&reply)?)
        })
    }

    fn broadcast_payload(
        &self,
        router: &Router,
        payload: &[u8],
        origin: &Origin,
    ) -> Result<(), WireError> {
        let msg: C = envelope::decode_payload(payload)?;
        Routed {
            table: self,
            router,
        }
        .broadcast_here_from(&msg, origin);
        Ok(())
    }

    fn forget(&self, key: &EntityKey, actor: ActorId) {
        if let Some(own) = (self.unkey)(key) {
            self.remove(own, actor);
        }
    }

    fn len(&self) -> usize {
        Table::len(self)
    }

    fn count_by_shard(&self, counts: &mut BTreeMap<Shard, usize>) {
        Table::count_by_shard(self, counts)
    }

    fn stop_in(&self, shards: &std::collections::BTreeSet<Shard>, reason: &str) -> usize {
        let actors = self.actors_in(shards);
        for (_, actor) in &actors {
            actor.stop(Some(reason.to_owned()));
        }
        actors.len()
    }
}

/// One entity kind, addressed through the router: messages go wherever the key lives.
/// Dereferences to the kind's local [`Table`].
#[derive(Debug)]
pub struct Routed<'a, K, C, Q, R, S> {
    table: &'a Table<K, C, Q, R, S>,
    router: &'a Router,
}

impl<K, C, Q, R, S> std::ops::Deref for Routed<'_, K, C, Q, R, S> {
    type Target = Table<K, C, Q, R, S>;

    fn deref(&self) -> &Self::Target {
        self.table
    }
}

impl<K, C, Q, R, S> Routed<'_, K, C, Q, R, S>
where
    K: Clone + Eq + Hash + Send + Sync,
    C: Clone + Send + Serialize + DeserializeOwned + 'static,
    Q: Send + Serialize + DeserializeOwned + 'static,
    R: Send + Serialize + DeserializeOwned + 'static,
    S: Send + 'static,
{
    pub fn cast(&self, key: &K, msg: C) -> Result<(), RouteError> {
        let entity = (self.table.key)(key);
        let origin = self.router.local_origin();
        self.router
            .cast_to(entity, None, Typed(msg), &origin, |Typed(m)| {
                self.table.deliver(key, m)
            })
    }

    pub async fn call(&self, key: &K, msg: Q, timeout: Duration) -> Result<R, RouteError> {
        let origin = self.router.local_origin();
        self.call_from(key, msg, timeout, &origin).await
    }

    pub(crate) async fn call_from(
        &self,
        key: &K,
        msg: Q,
        timeout: Duration,
        origin: &Origin,
    ) -> Result<R, RouteError> {
        let entity = (self.table.key)(key);
        self.router
            .call_to(entity, None, msg, timeout, origin, &|m| {
                self.table.start_call(key, m)
            })
            .await
    }

    /// [`Self::call`] for a kind whose entities start on their first call: the owner of
    /// the key starts the entity if it is not running (a peer asks the owner, whose
    /// inbound delivery comes here too).
    pub async fn call_or_start(&self, key: &K, msg: Q, timeout: Duration) -> Result<R, RouteError>
    where
        Q: Clone,
    {
        let origin = self.router.local_origin();
        self.call_or_start_from(key, msg, timeout, &origin).await
    }

    pub(crate) async fn call_or_start_from(
        &self,
        key: &K,
        msg: Q,
        timeout: Duration,
        origin: &Origin,
    ) -> Result<R, RouteError>
    where
        Q: Clone,
    {
        match self.call_from(key, msg.clone(), timeout, origin).await {
            // Only a key that lives here is NotFound (a peer starts its own).
            Err(RouteError::NotFound(entity)) if self.router.placement().is_here(&entity) => {
                self.table.start(key).await?;
                self.call_from(key, msg, timeout, origin).await
            }
            other => other,
        }
    }

    /// Tells every entity of this kind, on every node, the same thing.
    pub fn broadcast(&self, msg: C) {
        self.broadcast_here(&msg);
        match envelope::encode_payload(&msg) {
            Ok(payload) => self.router.net().send_all(&Body::BroadcastKind {
                kind: self.table.kind.to_owned(),
                payload,
            }),
            Err(e) => tracing::error!(kind = self.table.kind, "broadcast not encodable: {e}"),
        }
    }

    /// Tells every entity of this kind on this node (those moving get it once moved).
    pub(crate) fn broadcast_here(&self, msg: &C) {
        let origin = self.router.local_origin();
        self.broadcast_here_from(msg, &origin);
    }

    /// [`Self::broadcast_here`] for a broadcast from `origin`.
    pub(crate) fn broadcast_here_from(&self, msg: &C, origin: &Origin) {
        let actors = self.table.read().clone();
        let local = origin.is_local(self.router.net().me());
        let frozen: Vec<(EntityKey, Option<u64>)> =
            self.router.placement().route_all(local, |locate| {
                let mut frozen = Vec::new();
                for (key, actor) in &actors {
                    let entity = (self.table.key)(key);
                    match locate(&entity) {
                        Location::Frozen => frozen.push((entity, None)),
                        // An entity of a shard that left is a stray about to stop.
                        Location::There(_) | Location::Unplaced => {}
                        Location::Here => {
                            let _ =
                                send_counted(actor, self.table.kind, EntityMsg::Cast(msg.clone()));
                        }
                    }
                }
                frozen
            });
        self.router.hold_for_each(frozen, msg, origin);
    }
}

/// Channel actors by name.
pub type Channels = Table<
    String,
    crate::channel::ChannelCast,
    crate::channel::ChannelCall,
    crate::channel::ChannelReply,
    crate::channel::ChannelState,
>;
/// Spectator rooms by host id.
pub type SpectatorRooms = Table<
    i32,
    crate::spectate::SpectateCast,
    crate::spectate::SpectateCall,
    crate::spectate::SpectateReply,
    crate::spectate::SpectateState,
>;
/// Matches by match id.
pub type Matches = Table<
    i32,
    crate::match_room::MatchCast,
    crate::match_room::MatchCall,
    crate::match_room::MatchReply,
    crate::match_room::MatchState,
>;
/// The lobby (one per cluster, keyed by `()`).
pub type Lobbies =
    Table<(), crate::lobby::LobbyCast, crate::lobby::LobbyCall, (), crate::lobby::LobbyState>;

type ChannelsRouted<'a> = Routed<
    'a,
    String,
    crate::channel::ChannelCast,
    crate::channel::ChannelCall,
    crate::channel::ChannelReply,
    crate::channel::ChannelState,
>;
type SpectateRouted<'a> = Routed<
    'a,
    i32,
    crate::spectate::SpectateCast,
    crate::spectate::SpectateCall,
    crate::spectate::SpectateReply,
    crate::spectate::SpectateState,
>;
type MatchesRouted<'a> = Routed<
    'a,
    i32,
    crate::match_room::MatchCast,
    crate::match_room::MatchCall,
    crate::match_room::MatchReply,
    crate::match_room::MatchState,
>;
type LobbyRouted<'a> =
    Routed<'a, (), crate::lobby::LobbyCast, crate::lobby::LobbyCall, (), crate::lobby::LobbyState>;
/// Leaderboards by map, mode and board.
pub type Boards = Table<
    crate::BoardKey,
    crate::leaderboard::BoardCast,
    crate::leaderboard::BoardCall,
    crate::leaderboard::BoardReply,
    crate::BoardKey,
>;
type BoardsRouted<'a> = Routed<
    'a,
    crate::BoardKey,
    crate::leaderboard::BoardCast,
    crate::leaderboard::BoardCall,
    crate::leaderboard::BoardReply,
    crate::BoardKey,
>;

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
    boards: Boards,
}

/// How a cast goes on once its key is located.
enum CastStep<M> {
    Done(Result<(), RouteError>),
    Hold(M),
}

/// How a call goes on once its key is located.
enum CallStep<Q, R> {
    Wait(Result<OneshotReceiver<R>, RouteError>),
    Ask(String, Q),
    Frozen(Q),
    Fail(RouteError),
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
                channels: Table::new(
                    "channel",
                    |name| EntityKey::Channel(name.clone()),
                    |key| match key {
                        EntityKey::Channel(name) => Some(name),
                        _ => None,
                    },
                ),
                spectate: Table::new(
                    "spectate",
                    |host| EntityKey::Spectate(*host),
                    |key| match key {
                        EntityKey::Spectate(host) => Some(host),
                        _ => None,
                    },
                ),
                matches: Table::new(
                    "match",
                    |id| EntityKey::Match(*id),
                    |key| match key {
                        EntityKey::Match(id) => Some(id),
                        _ => None,
                    },
                ),
                lobby: Table::new(
                    "lobby",
                    |()| EntityKey::Lobby,
                    |key| matches!(key, EntityKey::Lobby).then_some(&()),
                ),
                boards: Table::new(
                    "board",
                    |board| EntityKey::Board(board.clone()),
                    |key| match key {
                        EntityKey::Board(board) => Some(board),
                        _ => None,
                    },
                ),
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

    pub fn channels(&self) -> ChannelsRouted<'_> {
        Routed {
            table: &self.inner.channels,
            router: self,
        }
    }

    pub fn spectate(&self) -> SpectateRouted<'_> {
        Routed {
            table: &self.inner.spectate,
            router: self,
        }
    }

    pub fn matches(&self) -> MatchesRouted<'_> {
        Routed {
            table: &self.inner.matches,
            router: self,
        }
    }

    pub fn lobby(&self) -> LobbyRouted<'_> {
        Routed {
            table: &self.inner.lobby,
            router: self,
        }
    }

    /// Every kind kept in a [`Table`], as one shape (all but the sessions).
    pub(crate) fn kinds(&self) -> [&dyn Kind; 5] {
        let i = &self.inner;
        [&i.channels, &i.spectate, &i.matches, &i.lobby, &i.boards]
    }

    /// The kind named `name`, if it is kept in a [`Table`].
    pub(crate) fn kind(&self, name: &str) -> Option<&dyn Kind> {
        self.kinds().into_iter().find(|k| k.name() == name)
    }

    /// How many entities of each table kind run here, by name (for metrics).
    pub fn kind_counts(&self) -> Vec<(&'static str, usize)> {
        self.kinds().iter().map(|k| (k.name(), k.len())).collect()
    }

    pub fn boards(&self) -> BoardsRouted<'_> {
        Routed {
            table: &self.inner.boards,
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
        for kind in self.kinds() {
            kind.count_by_shard(&mut counts);
        }
        counts
    }

    pub(crate) fn local_origin(&self) -> Origin {
        Origin {
            from: self.net().me().to_owned(),
            hops: 0,
        }
    }

    /// Sends `body` on to `node`: as a new envelope from here, or as the peer's
    /// envelope forwarded (one hop more).
    fn send_on(&self, node: &str, origin: &Origin, body: Body) -> Result<(), RouteError> {
        if origin.hops == 0 && origin.from == self.net().me() {
            self.net().send(node, body)
        } else {
            let envelope = Envelope {
                from: origin.from.clone(),
                hops: origin.hops,
                body,
            };
            self.net().forward(node, envelope)
        }
    }

    /// Routes a cast for `entity`; `here` delivers it locally. A send to another node
    /// happens under the placement lock too, so that it cannot fall behind a flush marker
    /// this node sends when a shard moves (see `Placement`).
    fn cast_to<M: IntoPayload>(
        &self,
        entity: EntityKey,
        session: Option<u64>,
        msg: M,
        origin: &Origin,
        here: impl FnOnce(M) -> Result<(), RouteError>,
    ) -> Result<(), RouteError> {
        let local = origin.is_local(self.net().me());
        let step = self
            .placement()
            .route(&entity, local, |location| match location {
                Location::Here => CastStep::Done(here(msg)),
                Location::There(node) => {
                    let sent = msg
                        .into_payload()
                        .map_err(RouteError::from)
                        .and_then(|payload| {
                            let body = Body::Cast {
                                key: entity.clone(),
                                session,
                                payload,
                            };
                            self.send_on(&node, origin, body)
                        });
                    CastStep::Done(sent)
                }
                Location::Frozen => CastStep::Hold(msg),
                Location::Unplaced => CastStep::Done(Err(RouteError::NotPlaced)),
            });
        match step {
            CastStep::Done(result) => result,
            CastStep::Hold(msg) => {
                let envelope = Envelope {
                    from: origin.from.clone(),
                    hops: origin.hops,
                    body: Body::Cast {
                        key: entity,
                        session,
                        payload: msg.into_payload()?,
                    },
                };
                self.hold(envelope, local)
            }
        }
    }

    /// Holds a cast for a moving shard, or routes it again if the shard moved since.
    fn hold(&self, envelope: Envelope, local: bool) -> Result<(), RouteError> {
        let Body::Cast { key, .. } = &envelope.body else {
            return Ok(());
        };
        let key = key.clone();
        match self.placement().hold(shard_of(&key), envelope, local) {
            Hold::Kept => Ok(()),
            Hold::Full => {
                self.net().dropped();
                tracing::warn!(%key, "message dropped: too many wait for a moving entity");
                Err(RouteError::Overloaded(key))
            }
            Hold::Thawed(envelope) => self.route_envelope(*envelope),
        }
    }

    /// Holds `msg` from `origin` for each of `keys` (entities whose shard is moving).
    fn hold_for_each<M: Serialize>(
        &self,
        keys: Vec<(EntityKey, Option<u64>)>,
        msg: &M,
        origin: &Origin,
    ) {
        if keys.is_empty() {
            return;
        }
        let Ok(payload) = envelope::encode_payload(msg) else {
            return;
        };
        let local = origin.is_local(self.net().me());
        for (key, session) in keys {
            let envelope = Envelope {
                from: origin.from.clone(),
                hops: origin.hops,
                body: Body::Cast {
                    key,
                    session,
                    payload: payload.clone(),
                },
            };
            let _ = self.hold(envelope, local);
        }
    }

    /// Routes a cast that is already an envelope (from a peer, or held while its shard
    /// moved): delivered here, forwarded, or held.
    pub(crate) fn route_envelope(&self, envelope: Envelope) -> Result<(), RouteError> {
        let origin = Origin {
            from: envelope.from,
            hops: envelope.hops,
        };
        let Body::Cast {
            key,
            session,
            payload,
        } = envelope.body
        else {
            return Ok(());
        };
        let here_key = key.clone();
        self.cast_to(key, session, Encoded(payload), &origin, |Encoded(p)| {
            self.deliver_payload_here(&here_key, session, &p)
        })
    }

    /// Delivers a held cast to its entity here, whatever the placement says (the new
    /// owner of moving shards empties what was held for them before it serves them).
    pub(crate) fn deliver_held(&self, world: &crate::World, envelope: Envelope) {
        let Body::Cast {
            key,
            session,
            payload,
        } = &envelope.body
        else {
            return;
        };
        match self.deliver_payload_here(key, *session, payload) {
            Ok(()) => {}
            Err(RouteError::NotFound(_) | RouteError::Stopped(_)) => {
                if let EntityKey::User(id) = key
                    && let Ok(msg) = envelope::decode_payload::<UserCast>(payload)
                {
                    world.undeliverable(*id, msg);
                }
            }
            Err(RouteError::Wire(e)) => self.net().undecodable(&envelope.from, &e),
            Err(e) => tracing::warn!(%key, "held message not delivered: {e}"),
        }
    }

    /// Delivers an encoded cast to an entity of this node.
    fn deliver_payload_here(
        &self,
        key: &EntityKey,
        session: Option<u64>,
        payload: &[u8],
    ) -> Result<(), RouteError> {
        match key {
            EntityKey::User(id) => {
                let msg: UserCast = envelope::decode_payload(payload)?;
                self.inner.sessions.deliver(*id, session, msg)
            }
            other => match self.kind(other.kind()) {
                Some(kind) => kind.deliver_payload(other, payload),
                None => Err(RouteError::NotFound(other.clone())),
            },
        }
    }

    /// Routes a call for `entity`; `here` puts it in the local entity's mailbox. While
    /// the entity's shard moves, the call waits (within `timeout`) and goes wherever the
    /// entity ends up.
    async fn call_to<Q: Serialize, R: DeserializeOwned>(
        &self,
        entity: EntityKey,
        session: Option<u64>,
        msg: Q,
        timeout: Duration,
        origin: &Origin,
        here: &(dyn Fn(Q) -> Result<OneshotReceiver<R>, RouteError> + Sync),
    ) -> Result<R, RouteError> {
        let deadline = tokio::time::Instant::now() + timeout;
        // Watched only once the key is found frozen (the common call never needs it).
        let mut changes = None;
        let mut msg = msg;
        loop {
            let local = origin.is_local(self.net().me());
            let step = self
                .placement()
                .route(&entity, local, |location| match location {
                    Location::Here => CallStep::Wait(here(msg)),
                    Location::There(node) => CallStep::Ask(node, msg),
                    Location::Frozen => CallStep::Frozen(msg),
                    Location::Unplaced => CallStep::Fail(RouteError::NotPlaced),
                });
            match step {
                CallStep::Wait(receiver) => {
                    return match tokio::time::timeout_at(deadline, receiver?).await {
                        Ok(Ok(reply)) => Ok(reply),
                        Ok(Err(_)) => Err(RouteError::Stopped(entity)),
                        Err(_) => Err(RouteError::Timeout(entity, timeout)),
                    };
                }
                CallStep::Ask(node, msg) => {
                    let body = RequestBody::Call {
                        key: entity.clone(),
                        session,
                        payload: envelope::encode_payload(&msg)?,
                    };
                    return self.ask_entity(&node, &entity, body, timeout, origin).await;
                }
                CallStep::Frozen(m) => {
                    msg = m;
                    let Some(changes) = &mut changes else {
                        // Watch from now on, then look again: a move that ended between
                        // the first look and now is not missed.
                        changes = Some(self.placement().changes());
                        continue;
                    };
                    // Woken by the next change of the placement (the move ends or is
                    // aborted), not by polling.
                    let changed = tokio::time::timeout_at(deadline, changes.changed()).await;
                    if !matches!(changed, Ok(Ok(()))) {
                        return Err(RouteError::Timeout(entity, timeout));
                    }
                }
                CallStep::Fail(e) => return Err(e),
            }
        }
    }

    /// Asks `node` something about `entity` and decodes the entity's answer.
    async fn ask_entity<R: DeserializeOwned>(
        &self,
        node: &str,
        entity: &EntityKey,
        body: RequestBody,
        timeout: Duration,
        origin: &Origin,
    ) -> Result<R, RouteError> {
        let request = Request {
            from: origin.from.clone(),
            hops: origin.hops,
            body,
        };
        match self.net().relay_request(node, request, timeout).await {
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
        let origin = self.local_origin();
        let entity = EntityKey::User(user_id);
        self.cast_to(entity, session, Typed(msg), &origin, |Typed(m)| {
            self.inner.sessions.deliver(user_id, session, m)
        })
    }

    /// Asks a user's session, but only if it is still session `session_id`.
    pub async fn call_session(
        &self,
        user_id: i32,
        session_id: u64,
        msg: UserCall,
        timeout: Duration,
    ) -> Result<UserReply, RouteError> {
        let origin = self.local_origin();
        self.call_user(user_id, Some(session_id), msg, timeout, &origin)
            .await
    }

    /// Asks a user's own session (`session` `None`) or one of their sessions.
    pub(crate) async fn call_user(
        &self,
        user_id: i32,
        session: Option<u64>,
        msg: UserCall,
        timeout: Duration,
        origin: &Origin,
    ) -> Result<UserReply, RouteError> {
        let entity = EntityKey::User(user_id);
        let sessions = &self.inner.sessions;
        self.call_to(entity.clone(), session, msg, timeout, origin, &|m| {
            let target = match session {
                Some(s) => sessions.session(user_id, s),
                None => sessions.main(user_id),
            };
            let target = target.ok_or_else(|| RouteError::NotFound(entity.clone()))?;
            start_call(&target.actor, "user", entity.clone(), m)
        })
        .await
    }

    /// Tells many users the same thing (a channel's fan-out): users here are told
    /// directly, and each other node gets one envelope with its users' ids.
    pub fn cast_users(&self, user_ids: impl IntoIterator<Item = i32>, msg: UserCast) {
        let origin = self.local_origin();
        self.cast_users_from(user_ids.into_iter().map(|id| (id, None)), msg, &origin);
    }

    /// [`Self::cast_users`] to particular sessions (a spectator room's or a match's
    /// watchers, who may be a tournament account's extra sessions).
    pub fn cast_sessions(&self, sessions: impl IntoIterator<Item = (i32, u64)>, msg: UserCast) {
        let origin = self.local_origin();
        let targets = sessions.into_iter().map(|(id, s)| (id, Some(s)));
        self.cast_users_from(targets, msg, &origin);
    }

    /// The fan-out behind [`Self::cast_users`] and [`Self::cast_sessions`], also for
    /// fan-outs that arrive from peers: `None` is a user's own session.
    pub(crate) fn cast_users_from(
        &self,
        targets: impl IntoIterator<Item = (i32, Option<u64>)>,
        msg: UserCast,
        origin: &Origin,
    ) {
        /// What one other node is sent: its users' own sessions, and particular ones.
        #[derive(Default)]
        struct ForNode {
            users: Vec<i32>,
            sessions: Vec<(i32, u64)>,
        }
        let sessions = &self.inner.sessions;
        let local = origin.is_local(self.net().me());
        let payload = std::cell::OnceCell::new();
        let frozen = self.placement().route_all(local, |locate| {
            let mut remote: BTreeMap<String, ForNode> = BTreeMap::new();
            let mut frozen = Vec::new();
            for (user_id, session) in targets {
                let entity = EntityKey::User(user_id);
                match locate(&entity) {
                    Location::Here => {
                        let _ = sessions.deliver(user_id, session, msg.clone());
                    }
                    Location::There(node) => {
                        let for_node = remote.entry(node).or_default();
                        match session {
                            None => for_node.users.push(user_id),
                            Some(s) => for_node.sessions.push((user_id, s)),
                        }
                    }
                    Location::Frozen => frozen.push((entity, session)),
                    Location::Unplaced => {}
                }
            }
            // Sent under the placement lock, like every cast (see `cast_to`).
            for (node, ForNode { users, sessions }) in remote {
                let Some(payload) = payload
                    .get_or_init(|| envelope::encode_payload(&msg).ok())
                    .clone()
                else {
                    tracing::error!("fan-out not encodable");
                    break;
                };
                let send = |body| {
                    if let Err(e) = self.send_on(&node, origin, body) {
                        tracing::debug!(%node, "fan-out not sent: {e}");
                    }
                };
                if !users.is_empty() {
                    send(Body::CastUsers {
                        user_ids: users,
                        payload: payload.clone(),
                    });
                }
                if !sessions.is_empty() {
                    send(Body::CastSessions { sessions, payload });
                }
            }
            frozen
        });
        self.hold_for_each(frozen, &msg, origin);
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
        self.broadcast_here(&msg, &audience);
    }

    /// Tells every session of this node in `audience` (those moving get it once moved).
    pub fn broadcast_here(&self, msg: &UserCast, audience: &Audience) {
        let origin = self.local_origin();
        self.broadcast_here_from(msg, audience, &origin);
    }

    /// [`Self::broadcast_here`] for a broadcast from `origin`.
    pub(crate) fn broadcast_here_from(&self, msg: &UserCast, audience: &Audience, origin: &Origin) {
        let sessions = self.inner.sessions.main_sessions();
        let local = origin.is_local(self.net().me());
        let frozen = self.placement().route_all(local, |locate| {
            let mut frozen = Vec::new();
            for s in sessions
                .iter()
                .filter(|s| audience.includes(s.user_id, s.privileges))
            {
                let entity = EntityKey::User(s.user_id);
                match locate(&entity) {
                    Location::Here => {
                        let _ = send_counted(&s.actor, "user", EntityMsg::Cast(msg.clone()));
                    }
                    Location::Frozen => frozen.push((entity, None)),
                    Location::There(_) | Location::Unplaced => {}
                }
            }
            frozen
        });
        self.hold_for_each(frozen, msg, origin);
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

    pub(crate) fn boards_table(&self) -> &Boards {
        &self.inner.boards
    }
}

// The router is what entities send through and look players up in (`crate::ports`).
impl Outbox for Router {
    fn send(&self, mail: Mail) -> Result<(), RouteError> {
        match mail {
            Mail::User(id, msg) => self.cast_user(id, msg),
            Mail::Session(id, session, msg) => self.cast_session(id, session, msg),
            Mail::Channel(name, msg) => self.channels().cast(&name, msg),
            Mail::Spectate(host, msg) => self.spectate().cast(&host, msg),
            Mail::Match(id, msg) => self.matches().cast(&id, msg),
            Mail::Lobby(msg) => self.cast_lobby(msg),
        }
    }

    fn send_users(&self, users: &mut dyn Iterator<Item = i32>, msg: UserCast) {
        self.cast_users(users, msg);
    }

    fn send_sessions(&self, sessions: &mut dyn Iterator<Item = (i32, u64)>, msg: UserCast) {
        self.cast_sessions(sessions, msg);
    }

    fn broadcast(&self, msg: UserCast, audience: Audience) {
        self.broadcast_users(msg, audience);
    }

    fn refresh_boards(&self) {
        self.boards()
            .broadcast(crate::leaderboard::BoardCast::Refresh);
    }

    fn forget(&self, key: &EntityKey, actor: ActorId) {
        match key {
            EntityKey::User(_) => {}
            other => {
                if let Some(kind) = self.kind(other.kind()) {
                    kind.forget(other, actor);
                }
            }
        }
    }
}

impl Roster for Router {
    fn online_by_name(&self, name: &str) -> Option<(i32, Arc<str>)> {
        self.users().by_name(name).map(|user| (user.id, user.name))
    }

    fn is_online(&self, user_id: i32) -> bool {
        self.users().get(user_id).is_some()
    }

    fn visible_count(&self) -> usize {
        let mut count = 0;
        self.users()
            .for_each_visible(|u| count += usize::from(u.id != crate::BOT_ID));
        count
    }
}
