//! The one shape of every entity: its state, what it can be told (`Cast`), asked
//! (`Call`) and answers (`Reply`), what it takes along when it moves (`Snapshot`), and
//! what it may use beyond its own state (`Ctx`). The actor plumbing around it lives once,
//! in [`crate::host::EntityHost`].

use std::fmt::Debug;
use std::future::Future;

use std::sync::atomic::{AtomicBool, Ordering};

use ractor::{ActorId, ActorRef, RpcReplyPort};

use crate::host::{Observer, Unobserved};

/// A message to an entity's host: `C` is what the entity can be told, `Q` what it can be
/// asked, `R` its answer and `S` its snapshot.
///
/// The payloads are plain types, so that a router can carry them to another node as
/// bytes; only the reply ports, which cannot cross a node, stay outside them.
#[derive(Debug)]
pub enum EntityMsg<C, Q, R, S> {
    Cast(C),
    Call(Q, RpcReplyPort<R>),
    /// The entity moves to another node: answer with its state and stop *without* the
    /// clean-up of an entity that ends (it lives on elsewhere). Only a migration sends
    /// this, while the entity's shard is frozen, so nothing else arrives after it.
    Export(RpcReplyPort<S>),
}

// Entity hosts are local-only actors: their messages cross nodes as bytes inside
// envelopes between node routers, never as ractor remote messages. With ractor's
// `cluster` feature every message type must opt in to being a message explicitly.
impl<C, Q, R, S> ractor::Message for EntityMsg<C, Q, R, S>
where
    C: Send + 'static,
    Q: Send + 'static,
    R: Send + 'static,
    S: Send + 'static,
{
}

/// The message type of `E`'s host.
pub type MsgOf<E> = EntityMsg<
    <E as Entity>::Cast,
    <E as Entity>::Call,
    <E as Entity>::Reply,
    <E as Entity>::Snapshot,
>;

/// What becomes of an entity whose handler panicked.
#[derive(Debug)]
pub enum AfterPanic<E> {
    /// Go on with this state; the host keeps its mailbox, so nothing queued is lost.
    Restart(E),
    /// Stop. The kind has done whatever clean-up its broken state allowed.
    Stop,
}

/// An entity kind. Implement this and register the kind once at start-up; the host does
/// the rest (mailbox, export on a move, stop, recovery after a panic, counting).
///
/// Handlers take `&mut self` and one message at a time, so an entity's rules are plain
/// code: a test calls them with a test context, without actors, network or database.
pub trait Entity: Send + Sized + 'static {
    /// The kind's name in logs, metrics, the API and on the wire. Unique per runtime.
    const KIND: &'static str;
    type Key: Clone + Debug + Send + Sync + 'static;
    type Cast: Send + 'static;
    type Call: Send + 'static;
    type Reply: Send + 'static;
    /// The state the entity takes with it when it moves.
    type Snapshot: Send + 'static;
    /// What entities of this kind may use beyond their own state: sending to other
    /// entities by key, the clock, the ports they need. Cloned into each host.
    type Ctx: Clone + Send + Sync + 'static;

    fn key(&self) -> Self::Key;

    /// Runs once when the host starts, before any message is handled.
    fn started(&mut self, _ctx: &Self::Ctx, _me: &Me<Self>) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// Handles something the entity is told.
    fn cast(
        &mut self,
        msg: Self::Cast,
        ctx: &Self::Ctx,
        me: &Me<Self>,
    ) -> impl Future<Output = ()> + Send;

    /// Answers something the entity is asked.
    fn call(
        &mut self,
        msg: Self::Call,
        ctx: &Self::Ctx,
        me: &Me<Self>,
    ) -> impl Future<Output = Self::Reply> + Send;

    /// Runs after every handled message (a cast, a call): where an entity publishes what
    /// others read without asking it.
    fn handled(&mut self, _ctx: &Self::Ctx) {}

    /// The entity's state as it leaves for another node. The host stops right after,
    /// without [`Entity::ended`].
    fn export(&mut self, ctx: &Self::Ctx) -> Self::Snapshot;

    /// The entity stops for good (not moved away): its clean-up.
    fn ended(&mut self, _ctx: &Self::Ctx, _me: &Me<Self>) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// A handler panicked. `last` is the entity's state as far as it could still be
    /// exported (`None` if that panicked too); the message that caused the panic is
    /// lost, the rest of the mailbox is not. By default the entity stops.
    fn after_panic(
        _key: &Self::Key,
        _last: Option<Self::Snapshot>,
        _ctx: &Self::Ctx,
        _me: &Me<Self>,
    ) -> AfterPanic<Self> {
        AfterPanic::Stop
    }
}

/// An entity's handle on its own host: stopping itself, and messages to itself later.
#[derive(Debug)]
pub struct Me<E: Entity> {
    /// `None` for a handle without a host (unit tests call handlers directly).
    actor: Option<ActorRef<MsgOf<E>>>,
    pub(crate) observer: &'static dyn Observer,
    stop: AtomicBool,
}

impl<E: Entity> Me<E> {
    pub(crate) fn new(actor: ActorRef<MsgOf<E>>, observer: &'static dyn Observer) -> Self {
        Self {
            actor: Some(actor),
            observer,
            stop: AtomicBool::new(false),
        }
    }

    /// A handle with no host behind it, for calling an entity's handlers in a test:
    /// [`Me::stop`] is only recorded and timers go nowhere.
    pub fn detached() -> Self {
        Self {
            actor: None,
            observer: &Unobserved,
            stop: AtomicBool::new(false),
        }
    }

    /// Stops the entity after the current message (and its reply, if it is a call);
    /// [`Entity::ended`] runs.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Whether the entity asked to stop.
    pub fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Tells the entity `msg` after `delay` (a timer); dropped if it has stopped by then.
    pub fn cast_after(&self, delay: std::time::Duration, msg: E::Cast) {
        if let Some(actor) = &self.actor {
            let observer = self.observer;
            // ractor's timer: one short task that ends with the send.
            let _timer = actor.send_after(delay, move || {
                observer.sent(E::KIND);
                EntityMsg::Cast(msg)
            });
        }
    }

    /// The host's actor id (what the node's table of this kind holds), or a placeholder
    /// for a detached handle.
    pub fn id(&self) -> ActorId {
        self.actor
            .as_ref()
            .map_or(ActorId::Local(u64::MAX), |actor| actor.get_id())
    }
}
