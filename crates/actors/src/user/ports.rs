//! What a session may use beyond its own state, instead of the whole node: the router
//! (other entities by key, the directory of who is online, this node's session table),
//! the database as the narrow [`SessionStore`], opening rooms as [`Rooms`], and
//! this node's shared boards. A node builds one [`SessionPorts`] and every session
//! points at it; unit tests build one over a router of their own and test doubles.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use peace_db::{MailOutcome, Relationship, Stats, User};

use crate::Router;
use crate::channel::MemberCounts;
use crate::limits::LimitsConfig;
use crate::ports::PortFuture;

/// What a session reads and writes in the database.
pub trait SessionStore: Send + Sync + Debug + 'static {
    fn user_by_id(&self, id: i32) -> PortFuture<'_, Option<User>>;
    fn user_by_name<'a>(&'a self, name: &'a str) -> PortFuture<'a, Option<User>>;
    /// The player's statistics in one mode row (mode + 4 · board) and their global rank.
    fn standing(&self, user_id: i32, mode: i16) -> PortFuture<'_, (Stats, i32)>;
    fn set_silence_end(&self, id: i32, until: i64) -> PortFuture<'_, ()>;
    /// Leaves a private message for an offline player, under their rules.
    fn store_mail<'a>(&'a self, from: i32, to: i32, text: &'a str) -> PortFuture<'a, MailOutcome>;
    fn set_relationship(&self, user: i32, target: i32, kind: Relationship) -> PortFuture<'_, ()>;
    fn remove_relationship(&self, user: i32, target: i32, kind: Relationship)
    -> PortFuture<'_, ()>;
    fn touch_last_seen(&self, id: i32) -> PortFuture<'_, ()>;
    /// Deletes the session's record if it is still this session's; whether it did.
    fn delete_session_record(&self, user: i32, session: u64) -> PortFuture<'_, bool>;
    fn refresh_session_record(&self, user: i32, session: u64) -> PortFuture<'_, ()>;
    fn set_session_channels<'a>(
        &'a self,
        user: i32,
        session: u64,
        channels: &'a [String],
    ) -> PortFuture<'a, ()>;
}

impl SessionStore for peace_db::Database {
    fn user_by_id(&self, id: i32) -> PortFuture<'_, Option<User>> {
        Box::pin(peace_db::Database::user_by_id(self, id))
    }

    fn user_by_name<'a>(&'a self, name: &'a str) -> PortFuture<'a, Option<User>> {
        Box::pin(peace_db::Database::user_by_name(self, name))
    }

    fn standing(&self, user_id: i32, mode: i16) -> PortFuture<'_, (Stats, i32)> {
        Box::pin(async move {
            let stats = self.stats(user_id, mode).await?;
            let rank = self.global_rank(mode, stats.pp).await?;
            Ok((stats, rank))
        })
    }

    fn set_silence_end(&self, id: i32, until: i64) -> PortFuture<'_, ()> {
        Box::pin(peace_db::Database::set_silence_end(self, id, until))
    }

    fn store_mail<'a>(&'a self, from: i32, to: i32, text: &'a str) -> PortFuture<'a, MailOutcome> {
        Box::pin(peace_db::Database::store_mail(self, from, to, text))
    }

    fn set_relationship(&self, user: i32, target: i32, kind: Relationship) -> PortFuture<'_, ()> {
        Box::pin(peace_db::Database::set_relationship(
            self, user, target, kind,
        ))
    }

    fn remove_relationship(
        &self,
        user: i32,
        target: i32,
        kind: Relationship,
    ) -> PortFuture<'_, ()> {
        Box::pin(peace_db::Database::remove_relationship(
            self, user, target, kind,
        ))
    }

    fn touch_last_seen(&self, id: i32) -> PortFuture<'_, ()> {
        Box::pin(peace_db::Database::touch_last_seen(self, id))
    }

    fn delete_session_record(&self, user: i32, session: u64) -> PortFuture<'_, bool> {
        Box::pin(peace_db::Database::delete_session_record(
            self, user, session,
        ))
    }

    fn refresh_session_record(&self, user: i32, session: u64) -> PortFuture<'_, ()> {
        Box::pin(peace_db::Database::refresh_session_record(
            self, user, session,
        ))
    }

    fn set_session_channels<'a>(
        &'a self,
        user: i32,
        session: u64,
        channels: &'a [String],
    ) -> PortFuture<'a, ()> {
        Box::pin(peace_db::Database::set_session_channels(
            self, user, session, channels,
        ))
    }
}

/// Why a room (a spectator room, a match) could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum RoomError {
    #[error("no free match id was found")]
    NoFreeId,
    #[error("the room could not be started: {0}")]
    Refused(String),
    #[error("the node is shutting down")]
    Stopping,
}

/// A future of [`Rooms`].
pub type RoomFuture<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, RoomError>> + Send + 'a>>;

/// Opens rooms on the node that owns their key (a room is started by whoever needs it
/// first, so two players cannot open the same one twice).
pub trait Rooms: Send + Sync + Debug + 'static {
    /// Opens `host_id`'s spectator room, or finds it open.
    fn open_spectator_room(&self, host_id: i32) -> RoomFuture<'_, ()>;
    /// Opens a new match with a free id: its id and its settings as the match holds them.
    fn create_match<'a>(
        &'a self,
        host_id: i32,
        host_name: &'a str,
        requested: &'a peace_bancho::MatchData,
    ) -> RoomFuture<'a, (i32, peace_bancho::MatchData)>;
}

/// What a session reads of the node's settings.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// A session with no poll for this long is logged out.
    pub idle_timeout: Duration,
    /// Upper bound for one call to another entity (a channel join, a match).
    pub call_timeout: Duration,
    /// Chat rate limits.
    pub limits: LimitsConfig,
    /// This node's name, shown in the directory.
    pub node_name: Arc<str>,
    /// The channels every player joins at login.
    pub auto_join: Vec<String>,
}

/// The last packets of sessions that ended here (kicked, replaced), by (user, session)
/// with their expiry in unix seconds: the client's next poll with the old token gets
/// them instead of a restart, so that it shows why.
#[derive(Debug, Default)]
pub struct RetiredPackets(Mutex<HashMap<(i32, u64), (Bytes, i64)>>);

/// How long the last packets of an ended session wait for the client's next poll.
pub const RETIRED_TTL_SECS: i64 = 60;
/// At most this many ended sessions' packets are kept; beyond it the table is emptied
/// (a burst of kicks loses farewells, never memory).
pub const MAX_RETIRED: usize = 10_000;

impl RetiredPackets {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(i32, u64), (Bytes, i64)>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps `packets` for the ended session's next poll.
    pub fn remember(&self, user_id: i32, session_id: u64, packets: Bytes) {
        let mut retired = self.lock();
        if retired.len() >= MAX_RETIRED {
            retired.clear();
        }
        retired.insert(
            (user_id, session_id),
            (packets, peace_db::unix_now() + RETIRED_TTL_SECS),
        );
    }

    /// The ended session's last packets, once.
    pub fn take(&self, user_id: i32, session_id: u64) -> Option<Bytes> {
        self.lock()
            .remove(&(user_id, session_id))
            .filter(|(_, expires)| *expires > peace_db::unix_now())
            .map(|(packets, _)| packets)
    }

    /// Forgets what expired.
    pub fn prune(&self) {
        let now = peace_db::unix_now();
        self.lock().retain(|_, (_, expires)| *expires > now);
    }
}

/// Everything a session uses beyond its own state. One per node, shared.
#[derive(Debug)]
pub struct SessionPorts {
    /// Other entities by key, the directory, and this node's session table.
    pub router: Router,
    pub store: Arc<dyn SessionStore>,
    pub rooms: Arc<dyn Rooms>,
    pub settings: SessionSettings,
    /// This node's board of channel member counts.
    pub channel_counts: Arc<MemberCounts>,
    pub retired: Arc<RetiredPackets>,
}
