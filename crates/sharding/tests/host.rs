//! The generic host with toy entities: a counter that survives its own panics and a
//! room that closes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use peace_sharding::{AfterPanic, Entity, EntityHost, EntityMsg, HostArgs, Me, Observer};

const CALL: Option<Duration> = Some(Duration::from_secs(5));

/// Counts what hosts report.
#[derive(Debug, Default)]
struct Counts {
    handled: AtomicUsize,
    restarted: AtomicUsize,
    stopped: AtomicUsize,
}

impl Observer for Counts {
    fn handled(&self, _kind: &'static str) {
        self.handled.fetch_add(1, Ordering::Relaxed);
    }
    fn panicked(&self, _kind: &'static str, restarted: bool) {
        let count = if restarted {
            &self.restarted
        } else {
            &self.stopped
        };
        count.fetch_add(1, Ordering::Relaxed);
    }
}

fn observer() -> &'static Counts {
    Box::leak(Box::default())
}

/// A counter: told to add, asked for its value; a panic restarts it from its last value.
#[derive(Debug)]
struct Counter {
    name: String,
    value: i64,
}

#[derive(Debug)]
enum CounterCast {
    Add(i64),
    Panic,
}

impl Entity for Counter {
    const KIND: &'static str = "counter";
    type Key = String;
    type Cast = CounterCast;
    type Call = ();
    type Reply = i64;
    type Snapshot = i64;
    type Ctx = ();

    fn key(&self) -> String {
        self.name.clone()
    }

    async fn cast(&mut self, msg: CounterCast, _ctx: &(), _me: &Me<Self>) {
        match msg {
            CounterCast::Add(n) => self.value += n,
            CounterCast::Panic => panic!("the counter was told to panic"),
        }
    }

    async fn call(&mut self, (): (), _ctx: &(), _me: &Me<Self>) -> i64 {
        self.value
    }

    fn export(&mut self, _ctx: &()) -> i64 {
        self.value
    }

    fn after_panic(key: &String, last: Option<i64>, _ctx: &(), _me: &Me<Self>) -> AfterPanic<Self> {
        AfterPanic::Restart(Counter {
            name: key.clone(),
            value: last.unwrap_or_default(),
        })
    }
}

async fn counter(observer: &'static Counts) -> ractor::ActorRef<peace_sharding::MsgOf<Counter>> {
    EntityHost::spawn(HostArgs {
        entity: Counter {
            name: "c".into(),
            value: 0,
        },
        ctx: (),
        observer,
    })
    .await
    .unwrap()
}

async fn value(actor: &ractor::ActorRef<peace_sharding::MsgOf<Counter>>) -> i64 {
    actor
        .call(|reply| EntityMsg::Call((), reply), CALL)
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn a_counter_counts_and_exports_its_state() {
    let counts = observer();
    let actor = counter(counts).await;
    for n in 1..=10 {
        actor.cast(EntityMsg::Cast(CounterCast::Add(n))).unwrap();
    }
    assert_eq!(value(&actor).await, 55);
    assert_eq!(counts.handled.load(Ordering::Relaxed), 11);

    let snapshot = actor.call(EntityMsg::Export, CALL).await.unwrap().unwrap();
    assert_eq!(snapshot, 55);
    // An exported entity stops: it lives on elsewhere.
    stopped(&actor).await;
}

#[tokio::test]
async fn a_panicking_counter_restarts_from_its_last_state_and_loses_no_queued_message() {
    let counts = observer();
    let actor = counter(counts).await;
    actor.cast(EntityMsg::Cast(CounterCast::Add(5))).unwrap();
    actor.cast(EntityMsg::Cast(CounterCast::Panic)).unwrap();
    // Queued behind the panic: handled by the restarted counter.
    actor.cast(EntityMsg::Cast(CounterCast::Add(2))).unwrap();
    assert_eq!(value(&actor).await, 7);
    assert_eq!(counts.restarted.load(Ordering::Relaxed), 1);
    assert_eq!(counts.stopped.load(Ordering::Relaxed), 0);
    assert_eq!(actor.get_status(), ractor::ActorStatus::Running);
}

/// A room that records its clean-up in the context its kind shares.
#[derive(Debug)]
struct Room {
    id: u32,
    members: Vec<u32>,
}

#[derive(Debug)]
enum RoomCast {
    Join(u32),
    Leave(u32),
    Panic,
    /// Closes the room a little later (a timer).
    CloseIn(Duration),
    Close,
}

/// The room kind's context: a log of what rooms did outside themselves.
type Log = Arc<Mutex<Vec<String>>>;

impl Entity for Room {
    const KIND: &'static str = "room";
    type Key = u32;
    type Cast = RoomCast;
    type Call = ();
    type Reply = Vec<u32>;
    type Snapshot = Vec<u32>;
    type Ctx = Log;

    fn key(&self) -> u32 {
        self.id
    }

    async fn started(&mut self, log: &Log, _me: &Me<Self>) {
        log.lock().unwrap().push(format!("opened {}", self.id));
    }

    async fn cast(&mut self, msg: RoomCast, _log: &Log, me: &Me<Self>) {
        match msg {
            RoomCast::Join(user) => self.members.push(user),
            RoomCast::Leave(user) => {
                self.members.retain(|&m| m != user);
                if self.members.is_empty() {
                    me.stop();
                }
            }
            RoomCast::Panic => panic!("the room was told to panic"),
            RoomCast::CloseIn(delay) => me.cast_after(delay, RoomCast::Close),
            RoomCast::Close => me.stop(),
        }
    }

    async fn call(&mut self, (): (), _log: &Log, _me: &Me<Self>) -> Vec<u32> {
        self.members.clone()
    }

    fn export(&mut self, _log: &Log) -> Vec<u32> {
        self.members.clone()
    }

    async fn ended(&mut self, log: &Log, _me: &Me<Self>) {
        log.lock().unwrap().push(format!("closed {}", self.id));
    }

    fn after_panic(
        key: &u32,
        last: Option<Vec<u32>>,
        log: &Log,
        _me: &Me<Self>,
    ) -> AfterPanic<Self> {
        let members = last.map_or(0, |m| m.len());
        log.lock()
            .unwrap()
            .push(format!("failed {key} with {members} members"));
        AfterPanic::Stop
    }
}

async fn room(log: &Log, counts: &'static Counts) -> ractor::ActorRef<peace_sharding::MsgOf<Room>> {
    EntityHost::spawn(HostArgs {
        entity: Room {
            id: 1,
            members: Vec::new(),
        },
        ctx: log.clone(),
        observer: counts,
    })
    .await
    .unwrap()
}

/// Waits for the actor to exit (its own event, not a poll of its status).
async fn stopped<M: ractor::Message>(actor: &ractor::ActorRef<M>) {
    actor
        .get_cell()
        .wait(Some(Duration::from_secs(5)))
        .await
        .expect("the actor stops");
}

#[tokio::test]
async fn a_room_that_empties_stops_and_cleans_up() {
    let log = Log::default();
    let actor = room(&log, observer()).await;
    actor.cast(EntityMsg::Cast(RoomCast::Join(7))).unwrap();
    actor.cast(EntityMsg::Cast(RoomCast::Join(8))).unwrap();
    let members = actor
        .call(|reply| EntityMsg::Call((), reply), CALL)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(members, [7, 8]);
    actor.cast(EntityMsg::Cast(RoomCast::Leave(7))).unwrap();
    actor.cast(EntityMsg::Cast(RoomCast::Leave(8))).unwrap();
    stopped(&actor).await;
    assert_eq!(*log.lock().unwrap(), ["opened 1", "closed 1"]);
}

#[tokio::test]
async fn a_room_that_panics_stops_without_its_normal_clean_up() {
    let log = Log::default();
    let counts = observer();
    // A supervisor hears why the room stopped.
    let (supervisor, events) = Supervisor::start().await;
    let actor = EntityHost::spawn_linked(
        HostArgs {
            entity: Room {
                id: 1,
                members: Vec::new(),
            },
            ctx: log.clone(),
            observer: counts,
        },
        supervisor.get_cell(),
    )
    .await
    .unwrap();
    actor.cast(EntityMsg::Cast(RoomCast::Join(7))).unwrap();
    actor.cast(EntityMsg::Cast(RoomCast::Panic)).unwrap();
    stopped(&actor).await;
    let reason = tokio::time::timeout(Duration::from_secs(5), events)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reason.as_deref(), Some(peace_sharding::STOPPED_AFTER_PANIC));
    assert_eq!(
        *log.lock().unwrap(),
        ["opened 1", "failed 1 with 1 members"]
    );
    assert_eq!(counts.stopped.load(Ordering::Relaxed), 1);
}

#[tokio::test(start_paused = true)]
async fn a_timer_reaches_the_entity_later() {
    let log = Log::default();
    let actor = room(&log, observer()).await;
    actor
        .cast(EntityMsg::Cast(RoomCast::CloseIn(Duration::from_secs(60))))
        .unwrap();
    // Paused time: the minute passes at once, and the room closes only after it.
    tokio::time::sleep(Duration::from_secs(59)).await;
    assert_eq!(actor.get_status(), ractor::ActorStatus::Running);
    tokio::time::sleep(Duration::from_secs(2)).await;
    stopped(&actor).await;
    assert_eq!(*log.lock().unwrap(), ["opened 1", "closed 1"]);
}

/// A supervisor that reports the stop reason of the first child that stops.
struct Supervisor;

type FirstStop = Option<tokio::sync::oneshot::Sender<Option<String>>>;

impl ractor::Actor for Supervisor {
    type Msg = ();
    type State = FirstStop;
    type Arguments = FirstStop;

    async fn pre_start(
        &self,
        _myself: ractor::ActorRef<()>,
        tx: FirstStop,
    ) -> Result<FirstStop, ractor::ActorProcessingErr> {
        Ok(tx)
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ractor::ActorRef<()>,
        event: ractor::SupervisionEvent,
        tx: &mut FirstStop,
    ) -> Result<(), ractor::ActorProcessingErr> {
        if let ractor::SupervisionEvent::ActorTerminated(_, _, reason) = event
            && let Some(tx) = tx.take()
        {
            let _ = tx.send(reason);
        }
        Ok(())
    }
}

impl Supervisor {
    async fn start() -> (
        ractor::ActorRef<()>,
        tokio::sync::oneshot::Receiver<Option<String>>,
    ) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (actor, _) = ractor::Actor::spawn(None, Supervisor, Some(tx))
            .await
            .unwrap();
        (actor, rx)
    }
}
