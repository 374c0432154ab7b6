//! What an osu! entity may use beyond its own state, as narrow traits: an entity gets
//! these, never the whole node. The real implementations are the router's (in
//! `router.rs`) and the database's; an entity's
//! unit tests use [`testing::Recorded`], which keeps what was sent.
//!
//! * [`Outbox`]: sending to other entities by key (and forgetting one's own table entry).
//! * [`Roster`]: who is online (the directory every node holds).
//! * [`GameRecords`]: where finished multiplayer games are written.
//! * [`AccountStore`]: the accounts, as the staff's commands read and change them.
//! * [`BeatmapLookup`]: maps by id, through the beatmap provider chain.
//! * [`ScoreDesk`]: the score pipeline, as the bot's map and score commands use it.

use std::fmt::Debug;
use std::sync::Arc;

use ractor::ActorId;

use crate::kind_msg::{ChannelCast, LobbyCast, MatchCast, SpectateCast};
use crate::session_msg::UserCast;
use crate::{Audience, EntityKey, RouteError};

/// A message to one entity, by key: everything an osu! entity may tell another.
#[derive(Debug, Clone)]
pub enum Mail {
    /// To a user's own session.
    User(i32, UserCast),
    /// To one session of a user (a tournament account may have several).
    Session(i32, u64, UserCast),
    Channel(String, ChannelCast),
    Spectate(i32, SpectateCast),
    Match(i32, MatchCast),
    Lobby(LobbyCast),
}

/// Sending by key, wherever the receiver lives. Every send is a cast: entities other
/// than sessions never wait for another entity (no call cycle, so no deadlock).
pub trait Outbox: Send + Sync + Debug + 'static {
    fn send(&self, mail: Mail) -> Result<(), RouteError>;
    /// The same message to many users' own sessions (one envelope per node).
    fn send_users(&self, users: &mut dyn Iterator<Item = i32>, msg: UserCast);
    /// The same message to particular sessions (one envelope per node).
    fn send_sessions(&self, sessions: &mut dyn Iterator<Item = (i32, u64)>, msg: UserCast);
    /// The same message to every session in `audience`, on every node.
    fn broadcast(&self, msg: UserCast, audience: Audience);
    /// The entity at `key`, hosted by `actor`, stopped on this node: drop its entry
    /// (unless a successor holds it already).
    fn forget(&self, key: &EntityKey, actor: ActorId);
    /// Every leaderboard, on every node, loads again on its next read: a player's
    /// scores became visible or hidden (restricted, unrestricted, banned).
    fn refresh_boards(&self);
}

/// The context of the osu! entity kinds that only send: rooms, matches, the lobby.
pub type Ports = Arc<dyn Outbox>;

/// Who is online, as every node knows it.
pub trait Roster: Send + Sync + Debug + 'static {
    /// A visible online player by name: their id and their name as written.
    fn online_by_name(&self, name: &str) -> Option<(i32, Arc<str>)>;
    /// Whether `user_id` has a session on any node (hidden or not).
    fn is_online(&self, user_id: i32) -> bool;
    /// How many players others can see online (the bot is not a player).
    fn visible_count(&self) -> usize;
}

/// A future that a port returns (ports are trait objects, so their futures are boxed).
pub type PortFuture<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, peace_db::DbError>> + Send + 'a>>;

/// The accounts, as the staff's commands read and change them.
pub trait AccountStore: Send + Sync + Debug + 'static {
    fn user_by_id(&self, id: i32) -> PortFuture<'_, Option<peace_db::User>>;
    fn user_by_name<'a>(&'a self, name: &'a str) -> PortFuture<'a, Option<peace_db::User>>;
    fn set_silence_end(&self, id: i32, until: i64) -> PortFuture<'_, ()>;
    /// Sets `new` if the account still has `old` (compare-and-set); whether it did.
    fn replace_privileges(
        &self,
        id: i32,
        old: peace_db::Privileges,
        new: peace_db::Privileges,
    ) -> PortFuture<'_, bool>;
    /// Writes one line of the audit log.
    fn audit<'a>(
        &'a self,
        actor: i32,
        target: Option<i32>,
        action: &'a str,
        reason: &'a str,
    ) -> PortFuture<'a, ()>;
}

impl AccountStore for peace_db::Database {
    fn user_by_id(&self, id: i32) -> PortFuture<'_, Option<peace_db::User>> {
        Box::pin(peace_db::Database::user_by_id(self, id))
    }

    fn user_by_name<'a>(&'a self, name: &'a str) -> PortFuture<'a, Option<peace_db::User>> {
        Box::pin(peace_db::Database::user_by_name(self, name))
    }

    fn set_silence_end(&self, id: i32, until: i64) -> PortFuture<'_, ()> {
        Box::pin(peace_db::Database::set_silence_end(self, id, until))
    }

    fn replace_privileges(
        &self,
        id: i32,
        old: peace_db::Privileges,
        new: peace_db::Privileges,
    ) -> PortFuture<'_, bool> {
        Box::pin(peace_db::Database::replace_privileges(self, id, old, new))
    }

    fn audit<'a>(
        &'a self,
        actor: i32,
        target: Option<i32>,
        action: &'a str,
        reason: &'a str,
    ) -> PortFuture<'a, ()> {
        Box::pin(peace_db::Database::audit(
            self, actor, target, action, reason,
        ))
    }
}

/// Maps by osu! id, as the score pipeline's provider chain knows them (the database,
/// then the configured sources). A referee's `!mp map` needs the map's checksum: the
/// client finds its local copy by it.
pub trait BeatmapLookup: Send + Sync + Debug + 'static {
    fn beatmap_by_id(&self, id: i32) -> PortFuture<'_, Option<peace_db::BeatmapRow>>;
}

/// Which maps a status set by staff covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusScope {
    /// One difficulty.
    Map,
    /// Every difficulty of the map's set.
    Set,
}

/// What a status change did.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusChange {
    /// "Artist - Title" of the set.
    pub title: String,
    /// The difficulties whose stored row changed now (others of the set take the status
    /// when they are first fetched).
    pub changed: usize,
}

/// One play, as the bot tells a player about it.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaySummary {
    /// "Artist - Title [Version]", or the md5 when the map is not stored.
    pub map: String,
    pub mods: u32,
    /// Percent.
    pub accuracy: f32,
    pub max_combo: i32,
    /// The map's max combo (0 when unknown).
    pub map_max_combo: i32,
    pub pp: f32,
    /// "F" for a failed play.
    pub grade: String,
    pub score: i64,
}

/// What a map is worth at a few accuracies with some mods (`!with`).
#[derive(Debug, Clone, PartialEq)]
pub struct PpTable {
    pub map: String,
    pub mods: u32,
    pub stars: f64,
    /// `(accuracy in percent, pp)`, in the order asked.
    pub pp: Vec<(f64, f64)>,
}

/// Why the score desk could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    #[error("the database did not answer: {0}")]
    Database(#[from] peace_db::DbError),
    #[error("no map with id {0} is known")]
    UnknownMap(i32),
    #[error("the map has no osu! id (a local import): its status is set when it is imported")]
    NoOsuId,
    #[error("the map's .osu file is not available here")]
    NoFile,
    #[error("the pp calculation failed: {0}")]
    Pp(#[from] peace_scores::pp::PpError),
    #[error("no score with id {0}")]
    NoSuchScore(i32),
    #[error("the score's status ({0}) does not allow this")]
    NotApplicable(&'static str),
}

/// A future that the score desk returns.
pub type DeskFuture<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, DeskError>> + Send + 'a>>;

/// The score pipeline, as the bot's commands use it (the score service implements it).
pub trait ScoreDesk: Send + Sync + Debug + 'static {
    /// Gives the map with osu! id `beatmap_id` (or its whole set) `status` for good, as
    /// staff member `actor` did for `reason` (audited).
    fn set_map_status<'a>(
        &'a self,
        actor: i32,
        beatmap_id: i32,
        scope: StatusScope,
        status: peace_scores::status::RankedStatus,
        reason: &'a str,
    ) -> DeskFuture<'a, StatusChange>;
    /// The player's newest play (hidden ones left out).
    fn recent_play(&self, user_id: i32) -> DeskFuture<'_, Option<PlaySummary>>;
    /// The player's best plays in `mode` by pp, best first.
    fn top_plays(&self, user_id: i32, mode: u8, limit: usize) -> DeskFuture<'_, Vec<PlaySummary>>;
    /// What the map with osu! id `beatmap_id` is worth in `mode` (its own when `None`)
    /// with `mods` at each of `accuracies`.
    fn pp_table<'a>(
        &'a self,
        beatmap_id: i32,
        mode: Option<u8>,
        mods: u32,
        accuracies: &'a [f64],
    ) -> DeskFuture<'a, PpTable>;
}

/// Where finished multiplayer games go. Writing never holds the match up: a failure is
/// logged, and the game goes on.
pub trait GameRecords: Send + Sync + Debug + 'static {
    fn record_game(&self, game: peace_db::NewMatchGame, scores: Vec<peace_db::MatchScore>);
}

impl GameRecords for peace_db::Database {
    fn record_game(&self, game: peace_db::NewMatchGame, scores: Vec<peace_db::MatchScore>) {
        let db = self.clone();
        tokio::spawn(async move {
            if let Err(e) = db.record_match_game(&game, &scores).await {
                tracing::warn!(match_id = game.match_id, "could not record the game: {e}");
            }
        });
    }
}

/// Counts what entity hosts report in the node's metrics.
#[derive(Debug)]
pub(crate) struct Metrics;

impl peace_sharding::Observer for Metrics {
    fn sent(&self, kind: &'static str) {
        peace_metrics::mailbox_sent(kind);
    }

    fn handled(&self, kind: &'static str) {
        peace_metrics::mailbox_handled(kind);
    }

    fn panicked(&self, kind: &'static str, restarted: bool) {
        peace_metrics::entity_panicked(kind, restarted);
    }
}

/// Starts a host for `entity` under the node's supervisor.
pub(crate) async fn host<E>(
    entity: E,
    ctx: E::Ctx,
    supervisor: ractor::ActorCell,
) -> Result<ractor::ActorRef<peace_sharding::MsgOf<E>>, ractor::SpawnErr>
where
    E: peace_sharding::Entity,
{
    let args = peace_sharding::HostArgs {
        entity,
        ctx,
        observer: &Metrics,
    };
    peace_sharding::EntityHost::spawn_linked(args, supervisor).await
}

/// Test doubles for unit tests of entities.
#[cfg(test)]
pub(crate) mod testing {
    use std::sync::Mutex;

    use super::*;

    /// One thing an entity sent.
    #[derive(Debug, Clone)]
    pub enum Sent {
        Mail(Mail),
        Users(Vec<i32>, UserCast),
        Sessions(Vec<(i32, u64)>, UserCast),
        Broadcast(UserCast, Audience),
        Forgot(EntityKey),
        BoardsRefreshed,
    }

    /// The packets in a queued batch of bytes (an `Enqueue`).
    pub fn packets(bytes: &[u8]) -> Vec<peace_bancho::ServerPacket> {
        peace_bancho::decode_server_packets(bytes)
            .into_iter()
            .map(|p| p.expect("the entity queued an undecodable packet"))
            .collect()
    }

    /// A roster where one player (id, name) is online, and nobody else.
    #[derive(Debug)]
    pub struct OnlineAlone(pub i32, pub &'static str);

    impl Roster for OnlineAlone {
        fn online_by_name(&self, name: &str) -> Option<(i32, Arc<str>)> {
            (name == self.1).then(|| (self.0, self.1.into()))
        }

        fn is_online(&self, user_id: i32) -> bool {
            user_id == self.0
        }

        fn visible_count(&self) -> usize {
            1
        }
    }

    /// An outbox that keeps everything sent through it.
    #[derive(Debug, Default)]
    pub struct Recorded {
        sent: Mutex<Vec<Sent>>,
    }

    impl Recorded {
        pub fn ports() -> (Arc<Recorded>, Ports) {
            let recorded = Arc::new(Recorded::default());
            (recorded.clone(), recorded)
        }

        /// What was sent since the last call.
        pub fn take(&self) -> Vec<Sent> {
            std::mem::take(&mut *self.sent.lock().unwrap_or_else(|e| e.into_inner()))
        }

        fn push(&self, sent: Sent) {
            self.sent
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(sent);
        }
    }

    impl Outbox for Recorded {
        fn send(&self, mail: Mail) -> Result<(), RouteError> {
            self.push(Sent::Mail(mail));
            Ok(())
        }

        fn send_users(&self, users: &mut dyn Iterator<Item = i32>, msg: UserCast) {
            self.push(Sent::Users(users.collect(), msg));
        }

        fn send_sessions(&self, sessions: &mut dyn Iterator<Item = (i32, u64)>, msg: UserCast) {
            self.push(Sent::Sessions(sessions.collect(), msg));
        }

        fn broadcast(&self, msg: UserCast, audience: Audience) {
            self.push(Sent::Broadcast(msg, audience));
        }

        fn forget(&self, key: &EntityKey, _actor: ActorId) {
            self.push(Sent::Forgot(key.clone()));
        }

        fn refresh_boards(&self) {
            self.push(Sent::BoardsRefreshed);
        }
    }
}
