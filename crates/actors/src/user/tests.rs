//! The session alone: real session actors on a router of their own (one node that owns
//! every shard), the database as an in-memory [`SessionStore`], no network. Each test
//! drives sessions the way the gateway does — a poll carries the client's packets in and
//! the queued packets out — and reads the packets the client would get.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use peace_bancho::server as s;
use peace_bancho::{ClientPacket, ServerPacket, client as c};
use peace_db::{MailOutcome, Relationship, Stats, User};
use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::ports::{
    RetiredPackets, RoomError, RoomFuture, Rooms, SessionPorts, SessionSettings, SessionStore,
};
use super::{Session, Start, UserCall, UserCast, UserReply, UserState};
use crate::Router;
use crate::cluster::shard::{ShardTable, TableOrigin};
use crate::directory::OnlineUser;
use crate::ports::PortFuture;

const NODE: &str = "test";
const CALL: Duration = Duration::from_secs(2);

/// The database as a session sees it, in memory.
#[derive(Debug, Default)]
struct MemoryStore {
    users: Mutex<Vec<User>>,
    friends: Mutex<BTreeSet<(i32, i32)>>,
    mail: Mutex<Vec<(i32, i32, String)>>,
    silences: Mutex<Vec<(i32, i64)>>,
    deleted_records: Mutex<Vec<(i32, u64)>>,
    /// Told whenever a write lands (some are made on tasks of their own).
    wrote: tokio::sync::Notify,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn ready<'a, T: Send + 'a>(value: T) -> PortFuture<'a, T> {
    Box::pin(std::future::ready(Ok(value)))
}

impl MemoryStore {
    fn wrote(&self) {
        self.wrote.notify_waiters();
    }

    /// Waits (bounded) until `check` holds of the store.
    async fn until(&self, check: impl Fn(&Self) -> bool) {
        let wait = async {
            loop {
                let notified = self.wrote.notified();
                if check(self) {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(CALL, wait)
            .await
            .expect("the store never saw the write");
    }
}

impl SessionStore for MemoryStore {
    fn user_by_id(&self, id: i32) -> PortFuture<'_, Option<User>> {
        ready(lock(&self.users).iter().find(|u| u.id == id).cloned())
    }

    fn user_by_name<'a>(&'a self, name: &'a str) -> PortFuture<'a, Option<User>> {
        let found = lock(&self.users)
            .iter()
            .find(|u| u.name.eq_ignore_ascii_case(name))
            .cloned();
        ready(found)
    }

    fn standing(&self, user_id: i32, mode: i16) -> PortFuture<'_, (Stats, i32)> {
        let stats = Stats {
            user_id,
            mode,
            pp: 1000 + i32::from(mode),
            ..Stats::default()
        };
        ready((stats, 7))
    }

    fn set_silence_end(&self, id: i32, until: i64) -> PortFuture<'_, ()> {
        lock(&self.silences).push((id, until));
        self.wrote();
        ready(())
    }

    fn store_mail<'a>(&'a self, from: i32, to: i32, text: &'a str) -> PortFuture<'a, MailOutcome> {
        lock(&self.mail).push((from, to, text.to_owned()));
        self.wrote();
        ready(MailOutcome::Stored)
    }

    fn set_relationship(&self, user: i32, target: i32, kind: Relationship) -> PortFuture<'_, ()> {
        assert_eq!(kind, Relationship::Friend);
        lock(&self.friends).insert((user, target));
        self.wrote();
        ready(())
    }

    fn remove_relationship(
        &self,
        user: i32,
        target: i32,
        _kind: Relationship,
    ) -> PortFuture<'_, ()> {
        lock(&self.friends).remove(&(user, target));
        self.wrote();
        ready(())
    }

    fn touch_last_seen(&self, _id: i32) -> PortFuture<'_, ()> {
        ready(())
    }

    fn delete_session_record(&self, user: i32, session: u64) -> PortFuture<'_, bool> {
        lock(&self.deleted_records).push((user, session));
        self.wrote();
        ready(true)
    }

    fn refresh_session_record(&self, _user: i32, _session: u64) -> PortFuture<'_, ()> {
        ready(())
    }

    fn set_session_channels<'a>(
        &'a self,
        _user: i32,
        _session: u64,
        _channels: &'a [String],
    ) -> PortFuture<'a, ()> {
        ready(())
    }
}

/// No rooms can be opened: these tests are about sessions alone.
#[derive(Debug)]
struct NoRooms;

impl Rooms for NoRooms {
    fn open_spectator_room(&self, _host_id: i32) -> RoomFuture<'_, ()> {
        Box::pin(std::future::ready(Err(RoomError::Stopping)))
    }

    fn create_match<'a>(
        &'a self,
        _host_id: i32,
        _host_name: &'a str,
        _requested: &'a peace_bancho::MatchData,
    ) -> RoomFuture<'a, (i32, peace_bancho::MatchData)> {
        Box::pin(std::future::ready(Err(RoomError::Stopping)))
    }
}

/// Stands in for the node's supervisor: the sessions are linked to something.
struct Parent;

impl Actor for Parent {
    type Msg = ();
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    /// A session that ends is no reason to stop (ractor's default stops a supervisor
    /// when a child terminates, and its other children with it).
    async fn handle_supervisor_evt(
        &self,
        _: ActorRef<()>,
        _: ractor::SupervisionEvent,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
}

struct Node {
    ports: Arc<SessionPorts>,
    store: Arc<MemoryStore>,
    parent: ActorRef<()>,
}

impl Node {
    async fn new() -> Node {
        let router = Router::new(NODE);
        let origin = TableOrigin {
            started_ms: 1,
            node: NODE.to_owned(),
        };
        router
            .placement()
            .install(ShardTable::deal(origin, &[NODE.to_owned()]), |_| Vec::new())
            .expect("a first table installs");
        let store = Arc::new(MemoryStore::default());
        let ports = Arc::new(SessionPorts {
            router,
            store: store.clone(),
            rooms: Arc::new(NoRooms),
            settings: SessionSettings {
                idle_timeout: Duration::from_secs(60),
                call_timeout: CALL,
                limits: crate::limits::LimitsConfig::default(),
                node_name: NODE.into(),
                auto_join: Vec::new(),
            },
            channel_counts: Arc::default(),
            retired: Arc::new(RetiredPackets::default()),
        });
        let (parent, _) = Actor::spawn(None, Parent, ()).await.expect("a parent");
        Node {
            ports,
            store,
            parent,
        }
    }

    fn router(&self) -> &Router {
        &self.ports.router
    }

    /// An account in the store.
    fn account(&self, id: i32, name: &str) -> User {
        let user = User {
            id,
            name: name.to_owned(),
            safe_name: name.to_lowercase(),
            email: format!("{id}@example.com"),
            password_bcrypt: String::new(),
            privileges: peace_db::Privileges::NORMAL.0,
            country: "DE".into(),
            silence_end: 0,
            created_at: 0,
            last_seen: 0,
        };
        lock(&self.store.users).push(user.clone());
        user
    }

    /// Logs `name` in as the login path does: the session starts, then it is in the
    /// node's table and the directory. `tune` changes the state first (what a login
    /// reads from the database: friends, blocks).
    async fn login(&self, id: i32, name: &str, tune: impl FnOnce(&mut UserState)) {
        let user = self.account(id, name);
        let mut state = UserState::new(&user, id as u64, 0, Stats::default(), 0);
        tune(&mut state);
        let entry = OnlineUser {
            id,
            name: name.into(),
            session_id: state.session_id,
            privileges: state.privileges,
            presence: state.presence_packet(),
            stats: state.stats_packet(),
            login_time: state.login_time,
            hidden: state.privileges.is_restricted(),
            node: NODE.into(),
        };
        let local = Session::start(&self.ports, state, Start::Login, self.parent.get_cell())
            .await
            .expect("the session starts");
        self.router().sessions().insert(local);
        self.router().users().insert(entry);
    }

    /// One poll of `id`'s client carrying `packets`: what the client gets back.
    async fn poll(&self, id: i32, packets: Vec<ClientPacket>) -> Vec<ServerPacket> {
        let call = UserCall::Poll { packets };
        match self.router().call_session(id, id as u64, call, CALL).await {
            Ok(UserReply::Packets(bytes)) => crate::ports::testing::packets(&bytes),
            other => panic!("the poll of {id} failed: {other:?}"),
        }
    }

    async fn pm(&self, from: i32, to: &str, text: &str) -> Vec<ServerPacket> {
        let message = peace_bancho::Message {
            recipient: to.into(),
            text: text.into(),
            ..Default::default()
        };
        let packet = ClientPacket::SendPrivateMessage(c::SendPrivateMessage { message });
        self.poll(from, vec![packet]).await
    }
}

/// Waits (bounded) for something other tasks do, yielding to them meanwhile.
async fn eventually(check: impl Fn() -> bool) {
    let wait = async {
        while !check() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    tokio::time::timeout(CALL, wait)
        .await
        .expect("it never happened");
}

fn messages(packets: &[ServerPacket]) -> Vec<(String, String)> {
    packets
        .iter()
        .filter_map(|p| match p {
            ServerPacket::SendMessage(s::SendMessage { message }) => {
                Some((message.sender.clone(), message.text.clone()))
            }
            _ => None,
        })
        .collect()
}

fn notifications(packets: &[ServerPacket]) -> Vec<String> {
    packets
        .iter()
        .filter_map(|p| match p {
            ServerPacket::Notification(s::Notification { text }) => Some(text.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn others_see_a_login_on_their_next_poll_and_a_logout_after_it() {
    let node = Node::new().await;
    node.login(10, "alice", |_| {}).await;
    node.poll(10, vec![]).await;
    // Logged in a while ago: a logout in a session's first second is the client's
    // leftover from an earlier one, and ignored.
    node.login(11, "bob", |st| st.login_time -= 5).await;

    let got = node.poll(10, vec![]).await;
    assert!(
        got.iter().any(|p| matches!(p,
            ServerPacket::UserPresence(s::UserPresence { presence }) if presence.user_id == 11)),
        "alice sees bob's presence: {got:?}"
    );
    assert!(
        got.iter()
            .any(|p| matches!(p, ServerPacket::UserStats(s::UserStats { user_id: 11, .. }))),
        "and his stats: {got:?}"
    );
    assert!(node.poll(10, vec![]).await.is_empty(), "once");

    node.poll(11, vec![ClientPacket::Logout(c::Logout {})])
        .await;
    eventually(|| node.router().users().get(11).is_none()).await;
    assert!(lock(&node.store.deleted_records).contains(&(11, 11)));
    let got = node.poll(10, vec![]).await;
    assert!(
        got.iter().any(|p| matches!(
            p,
            ServerPacket::UserLogout(s::UserLogout { user_id: 11, .. })
        )),
        "alice hears bob left: {got:?}"
    );
}

#[tokio::test]
async fn a_private_message_reaches_an_online_player_and_an_offline_one_gets_mail() {
    let node = Node::new().await;
    node.login(10, "alice", |_| {}).await;
    node.login(11, "bob", |_| {}).await;

    node.pm(10, "bob", "hello bob").await;
    let got = node.poll(11, vec![]).await;
    assert_eq!(
        messages(&got),
        [("alice".to_owned(), "hello bob".to_owned())]
    );

    node.account(12, "carol");
    node.pm(10, "carol", "see you later").await;
    assert_eq!(
        *lock(&node.store.mail),
        [(10, 12, "see you later".to_owned())]
    );

    let got = node.pm(10, "nobody", "hi?").await;
    assert_eq!(notifications(&got), ["There is no user named nobody."]);
}

#[tokio::test]
async fn a_blocked_sender_is_dropped_silently() {
    let node = Node::new().await;
    node.login(10, "alice", |_| {}).await;
    node.login(11, "bob", |st| {
        st.blocked.insert(10);
    })
    .await;

    let to_alice = node.pm(10, "bob", "are you there?").await;
    assert!(messages(&node.poll(11, vec![]).await).is_empty());
    assert!(
        messages(&to_alice).is_empty() && notifications(&to_alice).is_empty(),
        "the sender is not told: {to_alice:?}"
    );
}

#[tokio::test]
async fn friends_only_messages_answer_strangers_and_a_new_friend_gets_through() {
    let node = Node::new().await;
    node.login(10, "alice", |_| {}).await;
    node.login(11, "bob", |_| {}).await;
    let friends_only =
        ClientPacket::ToggleBlockNonFriendDms(c::ToggleBlockNonFriendDms { value: 1 });
    node.poll(11, vec![friends_only]).await;

    node.pm(10, "bob", "hi").await;
    // Bob's poll returns once his session handled the message (and answered alice).
    assert!(messages(&node.poll(11, vec![]).await).is_empty());
    let got = node.poll(10, vec![]).await;
    assert!(
        got.iter()
            .any(|p| matches!(p, ServerPacket::UserDmBlocked(_))),
        "alice learns bob takes messages from friends only: {got:?}"
    );

    let befriend = ClientPacket::FriendAdd(c::FriendAdd { user_id: 10 });
    node.poll(11, vec![befriend]).await;
    assert!(lock(&node.store.friends).contains(&(11, 10)), "stored");
    node.pm(10, "bob", "hi again").await;
    assert_eq!(
        messages(&node.poll(11, vec![]).await),
        [("alice".to_owned(), "hi again".to_owned())]
    );
}

#[tokio::test]
async fn an_away_message_answers_each_sender_once() {
    let node = Node::new().await;
    node.login(10, "alice", |_| {}).await;
    node.login(11, "bob", |_| {}).await;
    let away = peace_bancho::Message {
        text: "brb".into(),
        ..Default::default()
    };
    node.poll(
        11,
        vec![ClientPacket::SetAwayMessage(c::SetAwayMessage {
            message: away,
        })],
    )
    .await;

    // Bob answers as soon as he has the first message: alice's next poll may get it.
    let mut got = node.pm(10, "bob", "one").await;
    got.extend(node.pm(10, "bob", "two").await);
    assert_eq!(
        messages(&node.poll(11, vec![]).await).len(),
        2,
        "both delivered"
    );
    got.extend(node.poll(10, vec![]).await);
    assert_eq!(
        messages(&got),
        [("bob".to_owned(), "\x01ACTION is away: brb\x01".to_owned())],
        "one answer for two messages: {got:?}"
    );
}

#[tokio::test]
async fn spamming_silences_the_sender_and_everyone_is_told() {
    let node = Node::new().await;
    node.login(10, "alice", |_| {}).await;
    node.login(11, "bob", |_| {}).await;
    let limit = crate::limits::LimitsConfig::default().messages_per_window as usize;
    let mut got = Vec::new();
    for n in 0..=limit {
        got.extend(node.pm(10, "bob", &format!("message {n}")).await);
    }
    assert!(
        got.iter().any(
            |p| matches!(p, ServerPacket::SilenceEnd(s::SilenceEnd { seconds }) if *seconds > 0)
        ),
        "alice is told she is silenced: {got:?}"
    );
    node.store
        .until(|s| {
            lock(&s.silences)
                .iter()
                .any(|(id, until)| *id == 10 && *until > 0)
        })
        .await;
    assert_eq!(messages(&node.poll(11, vec![]).await).len(), limit);
    let after = node.pm(10, "bob", "let me talk").await;
    assert_eq!(notifications(&after), ["You are silenced and cannot chat."]);
}

#[tokio::test]
async fn an_idle_session_times_out_and_its_record_goes() {
    let node = Node::new().await;
    node.login(10, "alice", |st| {
        st.last_poll_ms = 0;
    })
    .await;
    let session = node
        .router()
        .sessions()
        .session(10, 10)
        .expect("alice is in the table");
    node.router()
        .cast_user(10, UserCast::IdleCheck)
        .expect("the check is delivered");
    node.store
        .until(|s| lock(&s.deleted_records).contains(&(10, 10)))
        .await;
    eventually(|| session.actor.get_status() == ractor::ActorStatus::Stopped).await;
    assert!(node.router().users().get(10).is_none(), "offline");
}

#[tokio::test]
async fn a_kicked_session_leaves_its_farewell_for_the_next_poll() {
    let node = Node::new().await;
    node.login(10, "alice", |_| {}).await;
    let kick = UserCast::Kick {
        reason: "bye".into(),
        farewell: super::Farewell::Disconnect,
    };
    node.router().cast_user(10, kick).expect("delivered");
    node.store
        .until(|s| lock(&s.deleted_records).contains(&(10, 10)))
        .await;
    let farewell = node
        .ports
        .retired
        .take(10, 10)
        .expect("kept for the client");
    assert!(!farewell.is_empty());
    assert!(node.ports.retired.take(10, 10).is_none(), "once");
}
