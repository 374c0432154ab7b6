//! [`EntityHost`]: the one actor that hosts an entity of any kind.
//!
//! What every kind would otherwise repeat is done here once: the mailbox, calling the
//! entity's handlers one message at a time, answering an export and stopping without
//! the clean-up when the entity moves, the clean-up when it ends, counting what it
//! handles, and recovery after a panic. A panicking handler never takes the node down:
//! the panic is caught here, counted, and the kind decides from the entity's last state
//! whether it goes on ([`AfterPanic::Restart`]) or stops. Either way the host keeps its
//! mailbox and its actor reference, so tables that point at it stay true and nothing
//! queued behind the bad message is lost.

use std::any::Any;
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SpawnErr};

use crate::entity::{AfterPanic, Entity, EntityMsg, Me, MsgOf};
use crate::task::panic_text;

/// What the host reports, so that the embedding application can count it (the runtime
/// itself knows no metrics backend).
pub trait Observer: Send + Sync + std::fmt::Debug + 'static {
    /// A message to an entity of `kind` entered its mailbox by the runtime's hand (a
    /// timer); senders outside the runtime report their own sends.
    fn sent(&self, _kind: &'static str) {}
    /// An entity of `kind` took a message out of its mailbox.
    fn handled(&self, _kind: &'static str) {}
    /// An entity of `kind` panicked; `restarted` tells whether it went on.
    fn panicked(&self, _kind: &'static str, _restarted: bool) {}
}

/// An observer that reports nothing (tests, tools).
#[derive(Debug, Clone, Copy, Default)]
pub struct Unobserved;

impl Observer for Unobserved {}

/// The reason a host gives when it stops because its entity panicked and the kind chose
/// [`AfterPanic::Stop`]; a supervisor can tell such a stop from an ordinary one by it.
pub const STOPPED_AFTER_PANIC: &str = "stopped after a panic";

/// The generic host actor of entity kind `E`.
#[derive(Debug)]
pub struct EntityHost<E>(PhantomData<fn() -> E>);

impl<E> Default for EntityHost<E> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

/// What a host starts with.
#[derive(Debug)]
pub struct HostArgs<E: Entity> {
    pub entity: E,
    pub ctx: E::Ctx,
    pub observer: &'static dyn Observer,
}

/// A running host: the entity and what it may use.
#[derive(Debug)]
pub struct Hosted<E: Entity> {
    entity: E,
    ctx: E::Ctx,
    me: Me<E>,
    /// Why it stops without [`Entity::ended`]: it moved, or it panicked and the kind
    /// cleaned up itself.
    skip_ended: bool,
    /// It panicked and the kind chose to stop.
    panicked: bool,
}

impl<E: Entity> EntityHost<E> {
    /// Starts a host for `entity`, linked to `supervisor` (which hears of its stop).
    pub async fn spawn_linked(
        args: HostArgs<E>,
        supervisor: ActorCell,
    ) -> Result<ActorRef<MsgOf<E>>, SpawnErr> {
        let (actor, _) = Actor::spawn_linked(None, Self::default(), args, supervisor).await?;
        Ok(actor)
    }

    /// Starts a host for `entity` with no supervisor.
    pub async fn spawn(args: HostArgs<E>) -> Result<ActorRef<MsgOf<E>>, SpawnErr> {
        let (actor, _) = Actor::spawn(None, Self::default(), args).await?;
        Ok(actor)
    }
}

impl<E: Entity> Hosted<E> {
    /// After a caught panic: ask the kind what becomes of the entity.
    fn recover(&mut self, panic: &(dyn Any + Send)) {
        let key = self.entity.key();
        // The entity's last state, if it can still be taken.
        let last =
            std::panic::catch_unwind(AssertUnwindSafe(|| self.entity.export(&self.ctx))).ok();
        let after = E::after_panic(&key, last, &self.ctx, &self.me);
        let restarted = matches!(after, AfterPanic::Restart(_));
        tracing::error!(
            kind = E::KIND,
            ?key,
            restarted,
            "an entity panicked: {}",
            panic_text(panic)
        );
        self.me.observer.panicked(E::KIND, restarted);
        match after {
            AfterPanic::Restart(entity) => self.entity = entity,
            AfterPanic::Stop => {
                self.skip_ended = true;
                self.panicked = true;
                self.me.stop();
            }
        }
    }
}

impl<E: Entity> Actor for EntityHost<E> {
    type Msg = MsgOf<E>;
    type State = Hosted<E>;
    type Arguments = HostArgs<E>;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: HostArgs<E>,
    ) -> Result<Hosted<E>, ActorProcessingErr> {
        Ok(Hosted {
            entity: args.entity,
            ctx: args.ctx,
            me: Me::new(myself, args.observer),
            skip_ended: false,
            panicked: false,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<Self::Msg>,
        h: &mut Hosted<E>,
    ) -> Result<(), ActorProcessingErr> {
        let started = AssertUnwindSafe(h.entity.started(&h.ctx, &h.me))
            .catch_unwind()
            .await;
        if let Err(panic) = started {
            h.recover(&*panic);
        }
        if h.me.stop_requested() {
            myself.stop(h.panicked.then(|| STOPPED_AFTER_PANIC.to_owned()));
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        h: &mut Hosted<E>,
    ) -> Result<(), ActorProcessingErr> {
        h.me.observer.handled(E::KIND);
        let outcome = match msg {
            EntityMsg::Cast(cast) => {
                AssertUnwindSafe(h.entity.cast(cast, &h.ctx, &h.me))
                    .catch_unwind()
                    .await
            }
            EntityMsg::Call(call, reply) => {
                AssertUnwindSafe(h.entity.call(call, &h.ctx, &h.me))
                    .catch_unwind()
                    .await
                    // The caller may have given up waiting; nothing to do then.
                    .map(|answer| drop(reply.send(answer)))
            }
            EntityMsg::Export(reply) => {
                let snapshot = h.entity.export(&h.ctx);
                let _ = reply.send(snapshot);
                h.skip_ended = true;
                myself.stop(Some("moved".into()));
                return Ok(());
            }
        };
        match outcome {
            Ok(()) => h.entity.handled(&h.ctx),
            Err(panic) => h.recover(&*panic),
        }
        if h.me.stop_requested() {
            myself.stop(h.panicked.then(|| STOPPED_AFTER_PANIC.to_owned()));
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        h: &mut Hosted<E>,
    ) -> Result<(), ActorProcessingErr> {
        if !h.skip_ended {
            let ended = AssertUnwindSafe(h.entity.ended(&h.ctx, &h.me))
                .catch_unwind()
                .await;
            if let Err(panic) = ended {
                tracing::error!(
                    kind = E::KIND,
                    key = ?h.entity.key(),
                    "an entity's clean-up panicked: {}",
                    panic_text(&*panic)
                );
                h.me.observer.panicked(E::KIND, false);
            }
        }
        Ok(())
    }
}
