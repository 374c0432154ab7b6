//! The user session: one per logged-in player, keyed `User(user_id)`.
//!
//! It owns the player's outgoing packet queue. A poll from the client is one call: the
//! client's packets go in, the queued bytes come out. Everything else (chat, presence
//! from other players, channel events) arrives as casts that append to the queue.
//!
//! Rule that keeps the system deadlock-free: a session may *call* channels (join/part),
//! channels and other sessions only ever *cast* to sessions.

mod multiplayer;
mod packets;
pub mod ports;
mod quiet;
pub mod record;
mod spectating;

mod state;

use peace_bancho::ClientPacket;
use peace_bancho::server::{ChannelKick, Notification, SendMessage, UserDmBlocked, UserLogout};
use peace_db::Privileges;
use peace_sharding::{Entity, Me};
use tracing::Instrument;

use std::sync::Arc;

use crate::channel::ChannelCast;
use crate::lobby::LobbyCast;
use crate::match_room::MatchCast;
use crate::message::EntityMsg;
use crate::spectate::SpectateCast;

pub(crate) use crate::session_msg::packet_bytes;
pub use crate::session_msg::{Farewell, UserCall, UserCast, UserReply};
pub use ports::SessionPorts;
pub use quiet::QuietMarks;
pub use state::{MAX_QUEUE_BYTES, Status, UserState, client_bits, session_privileges};

pub type UserMsg = EntityMsg<UserCast, UserCall, UserReply, SessionSnapshot>;

/// What a session (or the bot, which is addressed like one) takes along when it moves.
#[derive(Debug, Clone)]
pub enum SessionSnapshot {
    /// A player's session with their directory entry.
    Player {
        state: Box<UserState>,
        entry: Box<crate::directory::OnlineUser>,
    },
    /// The bot carries nothing: it starts afresh.
    Bot,
}

/// A player's session: its serializable state plus what it uses of the node. Hosted by
/// the runtime's generic host like every entity.
///
/// It reaches the rest of the node only through its [`SessionPorts`].
#[derive(Debug)]
pub struct Session {
    ports: Arc<SessionPorts>,
    pub state: UserState,
    start: Start,
    /// What the session's database record holds (a player's own session only).
    record: Option<record::RecordSync>,
    /// What polls answered without this actor read (see `quiet`).
    quiet: std::sync::Arc<QuietMarks>,
}

/// How a session actor starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// A login: the player joins the auto-join channels.
    Login,
    /// The session moved here: it is in its channels already.
    Restored,
    /// The session is rebuilt from its database record after its node was lost: it
    /// joins these channels again, without the client noticing.
    Rebuilt(Vec<String>),
}

impl Session {
    /// Starts a session under `supervisor`; returns its entry for the node's session
    /// table (which the caller inserts).
    pub(crate) async fn start(
        ports: &Arc<SessionPorts>,
        mut state: UserState,
        start: Start,
        supervisor: ractor::ActorCell,
    ) -> Result<crate::sessions::LocalSession, ractor::SpawnErr> {
        let (user_id, session_id, privileges) = (state.id, state.session_id, state.privileges);
        let quiet = std::sync::Arc::new(QuietMarks::new());
        // The bot and a tournament client's extra sessions have no record.
        let record = (!state.extra_session && state.id != crate::BOT_ID)
            .then(|| record::RecordSync::new(&state));
        // The feed and the count board are this node's: start at their heads. (A login's
        // reply lists everyone online and every channel with its count.)
        state.presence_cursor = ports.router.users().feed().head();
        state.channel_counts_cursor = ports.channel_counts.newest();
        let session = Session {
            ports: ports.clone(),
            state,
            start,
            record,
            quiet: quiet.clone(),
        };
        let actor = crate::ports::host(session, (), supervisor).await?;
        Ok(crate::sessions::LocalSession {
            user_id,
            session_id,
            privileges,
            actor,
            quiet,
        })
    }
}

impl Entity for Session {
    const KIND: &'static str = "user";
    /// The user and the session: a tournament account may have several.
    type Key = (i32, u64);
    type Cast = UserCast;
    type Call = UserCall;
    type Reply = UserReply;
    type Snapshot = SessionSnapshot;
    type Ctx = ();

    fn key(&self) -> (i32, u64) {
        (self.state.id, self.state.session_id)
    }

    async fn started(&mut self, _: &(), _me: &Me<Self>) {
        match std::mem::replace(&mut self.start, Start::Restored) {
            Start::Login if !self.state.extra_session => self.join_auto_channels().await,
            Start::Rebuilt(channels) => {
                for name in channels {
                    self.state.channels.insert(name.clone());
                    self.rejoin_channel(name).await;
                }
                self.notify("The server you were on went down; you were moved to another.");
            }
            _ => {}
        }
        self.sync_record();
        self.quiet.publish(&self.state);
    }

    async fn cast(&mut self, cast: UserCast, _: &(), me: &Me<Self>) {
        self.handle_cast(cast, me).await;
        self.sync_record();
    }

    async fn call(&mut self, call: UserCall, _: &(), me: &Me<Self>) -> UserReply {
        match call {
            UserCall::Poll { packets } => {
                self.state.last_poll_ms = crate::unix_millis();
                for packet in packets {
                    let name = packet.id().name();
                    peace_metrics::client_packet(packet.id() as u16, name);
                    // Idle clients send a bare PING with every poll: nothing to do, and
                    // the hottest path of the server (docs/benchmarks.md).
                    if matches!(packet, ClientPacket::Ping(_)) {
                        continue;
                    }
                    let span = tracing::debug_span!("packet", user = self.state.id, packet = name);
                    // Boxed: the packet handlers' futures are large, and the host moves
                    // this handler's future on every message; a pointer keeps that copy
                    // small for the messages that do not get here (docs/benchmarks.md).
                    let flow = Box::pin(self.handle_packet(packet).instrument(span)).await;
                    if flow == packets::Flow::Stop {
                        self.end(me, "logout").await;
                        break;
                    }
                }
                self.catch_up_presence();
                self.catch_up_channel_counts();
                let reply = UserReply::Packets(self.state.drain());
                self.sync_record();
                reply
            }
            UserCall::Retire { reason } => {
                self.quiet.close();
                self.state.enqueue_packet(Notification { text: reason });
                tracing::debug!(user = self.state.id, "replaced by a newer login");
                me.stop();
                UserReply::Packets(self.state.drain())
            }
        }
    }

    fn handled(&mut self, _: &()) {
        self.quiet.publish(&self.state);
    }

    /// The session moves to another node: it stops without ending.
    fn export(&mut self, _: &()) -> SessionSnapshot {
        self.quiet.close();
        // The new node's idle check must know of the polls answered here.
        self.state.last_poll_ms = self.last_poll_ms();
        self.state.moves = self.state.moves.saturating_add(1);
        let entry = self.directory_entry();
        SessionSnapshot::Player {
            state: Box::new(self.state.clone()),
            entry: Box::new(entry),
        }
    }

    async fn ended(&mut self, _: &(), _me: &Me<Self>) {
        self.quiet.close();
        end_session(
            &self.ports,
            self.state.id,
            self.state.session_id,
            Some(&self.state),
        );
    }

    // After a panic the session stops (the default), and the node's supervisor ends it
    // cleanly from what the router knows (`end_session` without its state).
}

/// Everything that must happen when a session ends, however it ends: leave channels,
/// rooms, the match and the lobby, and, if it is still the user's current session, go
/// offline for everyone. `state` is `None` when the session failed and its state is lost;
/// then every channel, room and match is told, since any of them may hold the player.
pub(crate) fn end_session(
    ports: &SessionPorts,
    user_id: i32,
    session_id: u64,
    state: Option<&UserState>,
) {
    let router = &ports.router;
    let forget = ChannelCast::Forget {
        user_id,
        session_id,
    };
    match state {
        Some(st) => {
            for name in &st.channels {
                let _ = router.channels().cast(name, forget.clone());
            }
            if let Some(host) = st.spectating {
                let _ = router.spectate().cast(
                    &host,
                    SpectateCast::Leave {
                        user_id,
                        session_id,
                    },
                );
            }
            if let Some(id) = st.match_id {
                let _ = router.matches().cast(&id, MatchCast::Leave { user_id });
            }
            if let Some(id) = st.watching_match {
                let _ = router.matches().cast(
                    &id,
                    MatchCast::Watch {
                        user_id,
                        session_id,
                        watching: false,
                    },
                );
            }
            if st.in_lobby {
                let _ = router.cast_lobby(LobbyCast::Leave { user_id });
            }
        }
        None => {
            router.channels().broadcast(forget);
            router.spectate().broadcast(SpectateCast::Leave {
                user_id,
                session_id,
            });
            router.matches().broadcast(MatchCast::Leave { user_id });
            let _ = router.cast_lobby(LobbyCast::Leave { user_id });
        }
    }
    if router.sessions().remove_extra(user_id, session_id) {
        tracing::info!(user = user_id, "extra tournament session ended");
    } else if ended_here(router, user_id, session_id) {
        tracing::info!(user = user_id, "session ended");
        let _ = router.spectate().cast(&user_id, SpectateCast::HostLeft);
        // Everyone hears of it through the presence feed of their node: gone from the
        // directory, the player's change reads as USER_LOGOUT (`catch_up_presence`). A
        // restricted player, whom nobody saw come online, is not in the feed at all.
        let store = ports.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.touch_last_seen(user_id).await {
                tracing::warn!(user = user_id, "could not record last seen: {e}");
            }
            // The session is over: it must not be rebuilt (a token replayed after a
            // logout gets a restart, not a session).
            record::forget(&store, user_id, session_id).await;
        });
    }
}

/// Forgets a session that ended here, in this node's table and in the directory;
/// whether it was the user's current session.
fn ended_here(router: &crate::Router, user_id: i32, session_id: u64) -> bool {
    let local = router.sessions().remove(user_id, session_id);
    let entry = router.users().remove_session(user_id, session_id);
    local || entry.is_some()
}

impl Session {
    /// Queues the current presence and stats of everyone whose presence changed since
    /// the last poll (see [`crate::presence`]), subject to the RECEIVE_UPDATES filter.
    /// Like a login reply, it sends full packets for up to
    /// [`crate::presence::LOGIN_FULL_PRESENCE_LIMIT`] players and only the ids of the rest
    /// (USER_PRESENCE_BUNDLE; the client asks for those it shows), so that one poll after
    /// a login storm stays small.
    /// When the client last polled, here or quietly (see `quiet`).
    fn last_poll_ms(&self) -> i64 {
        self.state.last_poll_ms.max(self.quiet.last_quiet_poll_ms())
    }

    fn catch_up_presence(&mut self) {
        let feed = self.ports.router.users().feed();
        if self.state.presence_cursor >= feed.head() {
            return;
        }
        if self.state.presence_filter == peace_bancho::presence_filter::NONE {
            // The client wants nobody's updates: skip what happened, at no cost.
            self.state.presence_cursor = feed.head();
            return;
        }
        let mut changed = Vec::new();
        let missed = feed.read_since(&mut self.state.presence_cursor, &mut changed);
        let st = &mut self.state;
        let me = st.id;
        let users = self.ports.router.users();
        let mut ids_only = Vec::new();
        if missed == crate::presence::Missed::TooMany {
            // Too far behind to replay: tell the client who is online, as a login reply
            // does beyond its limit.
            users.for_each_visible(|u| {
                if u.id != me && st.wants_updates_from(u.id) {
                    ids_only.push(u.id);
                }
            });
        } else {
            // The latest state of each player once, however often it changed.
            changed.sort_unstable();
            changed.dedup();
            let mut full = 0;
            users.lookup_visible(&changed, |id, user| {
                if id == me || !st.wants_updates_from(id) {
                    return;
                }
                match user {
                    Some(u) if full < crate::presence::LOGIN_FULL_PRESENCE_LIMIT => {
                        full += 1;
                        st.enqueue(&u.presence);
                        st.enqueue(&u.stats);
                    }
                    Some(_) => ids_only.push(id),
                    // Logged out (or hidden since): the client drops them from its list.
                    None => st.enqueue_packet(UserLogout {
                        user_id: id,
                        reason: 0,
                    }),
                }
            });
        }
        for chunk in ids_only.chunks(usize::from(u16::MAX)) {
            st.enqueue_packet(peace_bancho::server::UserPresenceBundle {
                user_ids: chunk.to_vec(),
            });
        }
    }

    /// Queues the member counts of channels that changed since the last poll.
    fn catch_up_channel_counts(&mut self) {
        let st = &mut self.state;
        let mut packets = Vec::new();
        self.ports.channel_counts.read_since(
            &mut st.channel_counts_cursor,
            st.privileges,
            |packet| packets.extend_from_slice(packet),
        );
        if !packets.is_empty() {
            st.enqueue(&packets);
        }
    }

    /// Ends the session for good: its database record goes first, so that no poll can
    /// rebuild it (a token replayed after a logout or a kick gets a restart), then the
    /// actor stops and `post_stop` does the rest.
    async fn end(&mut self, me: &Me<Self>, reason: &str) {
        self.quiet.close();
        if self.record.take().is_some() {
            record::forget(&self.ports.store, self.state.id, self.state.session_id).await;
        }
        tracing::debug!(user = self.state.id, reason, "session ends");
        me.stop();
    }

    /// The player as others see them (what the directory holds).
    fn directory_entry(&self) -> crate::directory::OnlineUser {
        let st = &self.state;
        crate::directory::OnlineUser {
            id: st.id,
            name: st.name.as_str().into(),
            session_id: st.session_id,
            privileges: st.privileges,
            presence: st.presence_packet(),
            stats: st.stats_packet(),
            login_time: st.login_time,
            hidden: st.privileges.is_restricted(),
            node: self.ports.settings.node_name.clone(),
        }
    }

    async fn handle_cast(&mut self, cast: UserCast, me: &Me<Self>) {
        let st = &mut self.state;
        match cast {
            UserCast::Enqueue(bytes) => st.enqueue(&bytes),
            UserCast::PrivateMessage {
                from_id,
                from_name,
                from_privileges,
                text,
            } => {
                self.receive_private_message(from_id, from_name, from_privileges, text);
            }
            UserCast::ChannelRemoved { name } => {
                if st.channels.remove(&name) {
                    let display = st.display_channel(&name);
                    st.channel_aliases.remove(&display);
                    st.enqueue_packet(ChannelKick { name: display });
                }
            }
            UserCast::JoinChannel { name, display } => self.join_channel_as(name, display).await,
            UserCast::SpectatingEnded { host_id } => {
                if st.spectating == Some(host_id) {
                    st.spectating = None;
                }
            }
            UserCast::RemovedFromMatch { match_id } => self.removed_from_match(match_id).await,
            UserCast::ChannelCommand { .. } => {}
            UserCast::IdleCheck => {
                let idle_ms = crate::unix_millis() - self.last_poll_ms();
                if idle_ms > self.ports.settings.idle_timeout.as_millis() as i64 {
                    tracing::info!(user = self.state.id, idle_ms, "session timed out");
                    self.end(me, "idle time-out").await;
                }
            }
            UserCast::StatsChanged => {
                self.load_stats().await;
                self.publish_presence(false);
            }
            UserCast::Silence { until, reason } => self.silence(until, &reason),
            UserCast::Rejoin { name } => self.rejoin_channel(name).await,
            UserCast::LobbyRestarted => {
                if self.state.in_lobby {
                    let join = crate::lobby::LobbyCast::Join {
                        user_id: self.state.id,
                    };
                    let _ = self.ports.router.cast_lobby(join);
                }
            }
            UserCast::NodeLost { node } => self.check_rooms_after_loss(&node).await,
            UserCast::Kick { reason, farewell } => {
                tracing::info!(user = st.id, %reason, ?farewell, "session ended by the server");
                // Only the farewell is kept for the next poll, not what was still queued:
                // the session is over, and a few bytes per ended session keep the table
                // of retired sessions small.
                let packets = farewell.packets(&reason).into();
                self.ports.retired.remember(st.id, st.session_id, packets);
                self.end(me, &reason).await;
            }
        }
    }

    /// Applies this player's rules to an incoming private message.
    fn receive_private_message(
        &mut self,
        from_id: i32,
        from_name: String,
        from_privileges: Privileges,
        text: String,
    ) {
        let st = &mut self.state;
        let router = &self.ports.router;
        let now = peace_db::unix_now();
        let (my_name, my_id) = (st.name.clone(), st.id);
        let to_sender = |message: peace_bancho::Message| peace_bancho::Message {
            sender: my_name.clone(),
            recipient: from_name.clone(),
            sender_id: my_id,
            ..message
        };
        if st.blocked.contains(&from_id) {
            tracing::debug!(
                user = st.id,
                from = from_id,
                "private message from a blocked user dropped"
            );
            return;
        }
        if st.block_non_friend_dms && !st.friends.contains(&from_id) && !from_privileges.is_staff()
        {
            let reply = UserDmBlocked {
                message: to_sender(Default::default()),
            };
            let _ = router.cast_user(from_id, UserCast::Enqueue(packet_bytes(reply)));
            return;
        }
        if st.is_silenced(now) {
            let reply = peace_bancho::server::TargetIsSilenced {
                message: to_sender(Default::default()),
            };
            let _ = router.cast_user(from_id, UserCast::Enqueue(packet_bytes(reply)));
            return;
        }
        st.enqueue_packet(SendMessage {
            message: peace_bancho::Message {
                sender: from_name.clone(),
                text,
                recipient: st.name.clone(),
                sender_id: from_id,
            },
        });
        if let Some(away) = st.away_message.clone()
            && st.away_notified.insert(from_id)
        {
            let text = format!("\x01ACTION is away: {away}\x01");
            let reply = SendMessage {
                message: to_sender(peace_bancho::Message {
                    text,
                    ..Default::default()
                }),
            };
            let _ = router.cast_user(from_id, UserCast::Enqueue(packet_bytes(reply)));
        }
    }
}

#[cfg(test)]
mod tests;
