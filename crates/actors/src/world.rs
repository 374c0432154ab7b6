//! [`World`]: the handle through which the gateway (and the CLI) use the actor system.
//! It owns nothing game-related itself; it starts the node's actors, and turns a login
//! or a poll into messages to them, wherever in the cluster they live.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use peace_bancho::ServerPacket;
use peace_bancho::server::{Notification, Restart};
use peace_db::{Database, DbError};
use ractor::{Actor, ActorCell, ActorRef};
use tokio::task::JoinHandle;

use crate::auth::{PasswordVerifier, SessionToken, TokenSigner};
use crate::channel::ChannelState;
use crate::cluster::envelope::{Answer, RequestBody};
use crate::cluster::membership::{Membership, MembershipMsg};
use crate::cluster::node_router::{NodeRouter, RouterMsg};
use crate::cluster::shard::{ShardTable, TableOrigin, shard_of};
use crate::cluster::{ClusterView, Location, NodeStatus};
use crate::directory::OnlineUser;
use crate::limits::{AddressBlock, RateLimiter};
use crate::message::Audience;
use crate::sessions::LocalSession;
use crate::spawn::{SpawnReply, SpawnRequest};
use crate::supervisor::NodeSupervisor;
use crate::user::ports::{
    RetiredPackets, RoomError, RoomFuture, Rooms, SessionPorts, SessionSettings,
};
use crate::user::{UserCall, UserCast, UserReply, UserState};
use crate::{BOT_ID, EntityKey, RouteError, Router, WorldConfig};

/// Most packets handled from one poll; the rest of the body is dropped (and logged).
pub const MAX_PACKETS_PER_POLL: usize = 512;
/// How often the sweeper deletes stale session records.
const RECORD_PRUNE_EVERY: Duration = Duration::from_secs(600);
/// Match ids tried before creating a match gives up (ids are 16-bit on the wire).
const MATCH_ID_ATTEMPTS: usize = 64;

/// The highest match id handed out. The stable client (and the common client libraries)
/// read a match id as a signed 16-bit number, so an id of 32768 or more cannot be joined.
pub const MAX_MATCH_ID: u16 = i16::MAX as u16;

/// The `n`-th candidate match id: 1..=[`MAX_MATCH_ID`], in a cycle. Uniqueness across the
/// cluster comes from the owner of the id's shard refusing an id that is still open, so an
/// id is reused only after its match is gone.
fn match_id_candidate(n: u32) -> u16 {
    (n % u32::from(MAX_MATCH_ID)) as u16 + 1
}

/// Why the world could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Database(#[from] DbError),
    #[error("the bot account (id {BOT_ID}) is missing; was the database migrated?")]
    NoBot,
    #[error("could not spawn an actor: {0}")]
    Spawn(#[from] ractor::SpawnErr),
}

struct Inner {
    config: WorldConfig,
    db: Database,
    router: Router,
    /// The router and the database as entities' ports see them (`crate::ports`): one
    /// shared handle each, which every entity's context points at.
    shared_router: Arc<Router>,
    shared_db: Arc<Database>,
    tokens: TokenSigner,
    passwords: PasswordVerifier,
    started_ms: i64,
    view: ClusterView,
    channels: OnceLock<Vec<peace_db::Channel>>,
    bot: OnceLock<peace_db::User>,
    supervisor: OnceLock<ActorRef<()>>,
    membership: OnceLock<ActorRef<MembershipMsg>>,
    node_router: OnceLock<ActorRef<RouterMsg>>,
    /// What every session of this node uses (its context).
    session_ports: Arc<SessionPorts>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    failed_logins_by_ip: RateLimiter<AddressBlock>,
    failed_logins_by_account: RateLimiter<String>,
    registrations_by_ip: RateLimiter<AddressBlock>,
    /// Serialises starting entities on this node and giving shards away, so that two
    /// players cannot open the same spectator room twice and no entity starts in a shard
    /// that is leaving. Held only while spawning.
    spawning: tokio::sync::Mutex<()>,
    /// The next match id this node tries.
    next_match_id: AtomicU32,
    /// Set when the node was told to stop (SIGTERM): it is no longer ready.
    stopping: AtomicBool,
    migrations: crate::migrate::MigrationCounters,
    channel_counts: Arc<crate::channel::MemberCounts>,
    /// Accounts as the web endpoints last read them, by safe name: a client's
    /// getscores and replays come in runs, each carrying the login.
    web_accounts: crate::cache::TtlCache<String, peace_db::User>,
    scores: crate::scores::ScoreService,
    media: crate::media::MediaService,
    recalc: crate::scores::recalc::Recalculator,
}

/// Opens rooms for this node's sessions. It holds the node weakly: the node holds the
/// sessions' context, which holds this.
struct NodeRooms(std::sync::Weak<Inner>);

impl NodeRooms {
    fn world(&self) -> Result<World, RoomError> {
        let inner = self.0.upgrade().ok_or(RoomError::Stopping)?;
        Ok(World { inner })
    }
}

impl std::fmt::Debug for NodeRooms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NodeRooms")
    }
}

impl Rooms for NodeRooms {
    fn open_spectator_room(&self, host_id: i32) -> RoomFuture<'_, ()> {
        Box::pin(async move {
            match self
                .world()?
                .spawn(SpawnRequest::SpectatorRoom { host_id })
                .await
            {
                SpawnReply::Started | SpawnReply::Exists => Ok(()),
                other => Err(RoomError::Refused(format!("{other:?}"))),
            }
        })
    }

    fn create_match<'a>(
        &'a self,
        host_id: i32,
        host_name: &'a str,
        requested: &'a peace_bancho::MatchData,
    ) -> RoomFuture<'a, (i32, peace_bancho::MatchData)> {
        Box::pin(async move {
            self.world()?
                .create_match(host_id, host_name, requested)
                .await
        })
    }
}

/// The running actor system of one node. Cloning shares it.
#[derive(Clone)]
pub struct World {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("node", &self.node_name())
            .field("sessions", &self.inner.router.sessions().len())
            .finish()
    }
}

/// Whether a credential check may take the account from the web endpoints' cache.
#[derive(Debug, Clone, Copy)]
enum AccountRead {
    Cached,
    Fresh,
}

/// How long the web endpoints believe an account they read: a ban or a new password
/// reaches them within this time (a Bancho login always reads the account).
pub const WEB_ACCOUNT_TTL: std::time::Duration = std::time::Duration::from_secs(5);
/// Most accounts a node keeps for the web endpoints.
pub const MAX_WEB_ACCOUNTS: usize = 20_000;

/// What a credential check found.
#[derive(Debug)]
enum Credentials {
    Valid(peace_db::User),
    /// No such account (or the bot's).
    Unknown,
    /// A wrong password, or too many failures from the name or the address.
    Wrong,
    /// The right password for an account that may not log in any more.
    Banned,
}

impl Credentials {
    /// The account, or the client's word for what is wrong.
    fn into_web_answer(self) -> Result<peace_db::User, &'static str> {
        match self {
            Credentials::Valid(user) => Ok(user),
            Credentials::Unknown => Err("nouser"),
            Credentials::Wrong => Err("pass"),
            Credentials::Banned => Err("ban"),
        }
    }
}

impl World {
    /// Starts the node's actors: the supervisor, the node router, the membership (which
    /// places the node's entities once it knows its shards), and the idle-session
    /// sweeper. A node of one is placed, with its channels, lobby and bot running, by the
    /// time this returns.
    pub async fn start(config: WorldConfig, db: Database) -> Result<World, StartError> {
        let secret = if config.secret.is_empty() {
            tracing::warn!("no secret configured: session tokens will not survive a restart");
            rand::random::<[u8; 32]>().to_vec()
        } else {
            config.secret.clone()
        };
        let limits = config.limits.clone();
        let router = Router::new(&config.cluster.node_name);
        let shared_router = Arc::new(router.clone());
        let shared_db = Arc::new(db.clone());
        let storage = config
            .storage
            .clone()
            .unwrap_or_else(crate::scores::storage::Storage::in_memory);
        let media = crate::media::MediaService::new(shared_db.clone(), storage.clone());
        let scores = crate::scores::ScoreService::new(
            shared_db.clone(),
            storage,
            router.clone(),
            config.scores.clone(),
        );
        // The channels are read first: a session's context lists the auto-join ones.
        let channels = db.channels().await?;
        let auto_join = channels
            .iter()
            .filter(|c| c.auto_join)
            .map(|c| c.name.clone())
            .collect();
        let channel_counts = Arc::new(crate::channel::MemberCounts::default());
        let settings = SessionSettings {
            idle_timeout: config.idle_timeout,
            call_timeout: config.call_timeout,
            limits: config.limits.clone(),
            node_name: config.cluster.node_name.as_str().into(),
            auto_join,
        };
        let session_store: Arc<dyn crate::user::ports::SessionStore> = shared_db.clone();
        let recalc = crate::scores::recalc::Recalculator::new(
            scores.clone(),
            &config.cluster.node_name,
            config.scores.recalc.clone(),
        );
        let world = World {
            inner: Arc::new_cyclic(|node| Inner {
                recalc,
                failed_logins_by_ip: RateLimiter::new(
                    limits.failed_logins_per_ip,
                    limits.login_window,
                ),
                failed_logins_by_account: RateLimiter::new(
                    limits.failed_logins_per_account,
                    limits.login_window,
                ),
                registrations_by_ip: RateLimiter::new(
                    limits.registrations_per_ip,
                    limits.registration_window,
                ),
                tokens: TokenSigner::new(&secret),
                router: router.clone(),
                shared_router,
                shared_db,
                scores,
                media,
                started_ms: crate::unix_millis(),
                view: ClusterView::default(),
                passwords: PasswordVerifier::new(config.bcrypt_cost),
                config,
                db,
                channels: OnceLock::new(),
                bot: OnceLock::new(),
                supervisor: OnceLock::new(),
                membership: OnceLock::new(),
                node_router: OnceLock::new(),
                tasks: Mutex::default(),
                spawning: tokio::sync::Mutex::new(()),
                next_match_id: AtomicU32::new(rand::random()),
                stopping: AtomicBool::new(false),
                migrations: Default::default(),
                session_ports: Arc::new(SessionPorts {
                    router: router.clone(),
                    store: session_store,
                    rooms: Arc::new(NodeRooms(node.clone())),
                    settings,
                    channel_counts: channel_counts.clone(),
                    retired: Arc::new(RetiredPackets::default()),
                }),
                channel_counts,
                web_accounts: crate::cache::TtlCache::new(WEB_ACCOUNT_TTL, MAX_WEB_ACCOUNTS),
            }),
        };
        let (supervisor, _) = Actor::spawn(None, NodeSupervisor, world.clone()).await?;
        let _ = world.inner.supervisor.set(supervisor.clone());
        world.start_boards_on_demand();

        let _ = world.inner.channels.set(channels);
        let bot = world
            .db()
            .user_by_id(BOT_ID)
            .await?
            .ok_or(StartError::NoBot)?;
        let _ = world.inner.bot.set(bot);

        let (router, _) = Actor::spawn(None, NodeRouter, world.clone()).await?;
        let _ = world.inner.node_router.set(router);
        let cluster = world.config().cluster.clone();
        if cluster.listen.is_none() {
            // A node of one owns every shard from the start.
            let origin = TableOrigin {
                started_ms: world.started_ms(),
                node: world.node_name().to_owned(),
            };
            let me = [world.node_name().to_owned()];
            if world
                .router()
                .placement()
                .install(ShardTable::deal(origin, &me), |_| Vec::new())
                .is_some()
            {
                world.settle().await;
            }
        }
        let (membership, _) = Actor::spawn(None, Membership, (world.clone(), cluster)).await?;
        let _ = world.inner.membership.set(membership);
        world.spawn_sweeper();
        world.spawn_recalculator();
        tracing::info!(
            node = world.node_name(),
            channels = world.channel_definitions().len(),
            "actor system started"
        );
        Ok(world)
    }

    pub fn config(&self) -> &WorldConfig {
        &self.inner.config
    }

    /// The score pipeline (submission, boards, replays, beatmaps).
    pub fn scores(&self) -> &crate::scores::ScoreService {
        &self.inner.scores
    }

    /// `peace pp recalc`: starting a job and reading its progress.
    pub fn recalc(&self) -> &crate::scores::recalc::Recalculator {
        &self.inner.recalc
    }

    /// Avatars and screenshots.
    pub fn media(&self) -> &crate::media::MediaService {
        &self.inner.media
    }

    pub fn db(&self) -> &Database {
        &self.inner.db
    }

    pub fn router(&self) -> &Router {
        &self.inner.router
    }

    /// What entities that only send to others get as their context.
    pub(crate) fn ports(&self) -> crate::ports::Ports {
        self.inner.shared_router.clone()
    }

    pub fn tokens(&self) -> &TokenSigner {
        &self.inner.tokens
    }

    pub fn node_name(&self) -> &str {
        &self.inner.config.cluster.node_name
    }

    /// Unix milliseconds of this node's start (its incarnation).
    pub fn started_ms(&self) -> i64 {
        self.inner.started_ms
    }

    /// The membership's latest view of the cluster.
    pub fn cluster(&self) -> &ClusterView {
        &self.inner.view
    }

    /// The latest member count of every channel (see [`crate::channel::MemberCounts`]).
    pub fn channel_counts(&self) -> &crate::channel::MemberCounts {
        &self.inner.channel_counts
    }

    /// Whose presence changed lately, on this node (see [`crate::presence`]).
    pub fn presence(&self) -> &crate::presence::PresenceFeed {
        self.router().users().feed()
    }

    pub(crate) fn membership(&self) -> Option<ActorRef<MembershipMsg>> {
        self.inner.membership.get().cloned()
    }

    pub(crate) fn migrations(&self) -> &crate::migrate::MigrationCounters {
        &self.inner.migrations
    }

    pub(crate) fn passwords(&self) -> &PasswordVerifier {
        &self.inner.passwords
    }

    pub(crate) async fn spawn_lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.inner.spawning.lock().await
    }

    /// `Err(retry_after)` while logins from `ip` or to `safe_name` are blocked after too
    /// many failures.
    pub(crate) fn login_allowed(&self, ip: IpAddr, safe_name: &str) -> Result<(), Duration> {
        self.inner.failed_logins_by_ip.check(&ip.into())?;
        self.inner
            .failed_logins_by_account
            .check(&safe_name.to_owned())
    }

    pub(crate) fn login_failed(&self, ip: IpAddr, safe_name: &str) {
        self.inner.failed_logins_by_ip.hit(&ip.into());
        self.inner
            .failed_logins_by_account
            .hit(&safe_name.to_owned());
    }

    pub(crate) fn login_succeeded(&self, safe_name: &str) {
        self.inner
            .failed_logins_by_account
            .reset(&safe_name.to_owned());
    }

    /// Counts an account creation from `ip`; false when the address created too many.
    pub fn registration_allowed(&self, ip: IpAddr) -> bool {
        self.inner.registrations_by_ip.hit(&ip.into())
    }

    /// Whether the database answers (`/api/v1/health`).
    pub async fn check_database(&self) -> Result<(), DbError> {
        self.db().ping().await
    }

    /// Whether this node can serve a login now (`/readyz`): the database answers, its
    /// schema is this build's, and the node holds a shard table (a joining node has none
    /// and refuses every login). The reasons it cannot, when it cannot.
    pub async fn readiness(&self) -> Readiness {
        let mut reasons = Vec::new();
        if self.inner.stopping.load(Ordering::Relaxed) {
            reasons.push("this node is stopping".to_owned());
        }
        match self.db().pending_migrations().await {
            Ok(0) => {}
            Ok(n) => reasons.push(format!("the database has {n} pending migration(s)")),
            Err(e) => reasons.push(format!("the database does not answer: {e}")),
        }
        if self.router().placement().table().is_none() {
            reasons.push("this node has no shard table yet (it is joining the cluster)".into());
        }
        Readiness { reasons }
    }

    /// Marks the node as stopping (it got SIGTERM): from now on `/readyz` says so, so that
    /// a load balancer sends new players elsewhere while this node drains.
    pub fn begin_stopping(&self) {
        self.inner.stopping.store(true, Ordering::Relaxed);
    }

    /// The ids of `user_id`'s friends (`/web/osu-getfriends.php`).
    pub async fn friends_of(&self, user_id: i32) -> Result<Vec<i32>, DbError> {
        let relationships = self.db().relationships(user_id).await?;
        Ok(relationships.friends.into_iter().collect())
    }

    /// Checks a sign-up form against the rules and the existing accounts.
    pub async fn validate_registration(
        &self,
        reg: &crate::accounts::Registration,
    ) -> Result<(), crate::accounts::RegisterError> {
        crate::accounts::validate(self.db(), reg).await
    }

    /// Creates an account from a sign-up form, with a new player's privileges and the
    /// configured bcrypt cost; returns its id.
    pub async fn register(
        &self,
        reg: &crate::accounts::Registration,
    ) -> Result<i32, crate::accounts::RegisterError> {
        let cost = self.config().bcrypt_cost;
        crate::accounts::register(self.db(), reg, peace_db::Privileges::DEFAULT_NEW, cost).await
    }

    /// What the bot (and its commands) get as their context.
    pub(crate) fn bot_ports(&self) -> crate::bot::BotPorts {
        crate::bot::BotPorts {
            outbox: self.ports(),
            roster: self.inner.shared_router.clone(),
            accounts: self.inner.shared_db.clone(),
            desk: Arc::new(self.inner.scores.clone()),
            name: self.bot_name().into(),
        }
    }

    /// What a channel gets as its context.
    pub(crate) fn channel_ports(&self) -> crate::channel::ChannelPorts {
        crate::channel::ChannelPorts {
            outbox: self.ports(),
            counts: Arc::new(self.clone()),
        }
    }

    /// What a leaderboard gets as its context.
    pub(crate) fn board_ports(&self) -> crate::leaderboard::BoardPorts {
        crate::leaderboard::BoardPorts {
            store: self.inner.shared_db.clone(),
            outbox: self.ports(),
        }
    }

    /// Boards start on their first read, on the node that owns their key. The starter
    /// holds the node weakly: the router it lives in belongs to the node.
    fn start_boards_on_demand(&self) {
        let node = Arc::downgrade(&self.inner);
        let max = crate::leaderboard::MAX_BOARDS_PER_NODE;
        self.router()
            .boards_table()
            .start_on_demand(max, move |key| {
                let node = node.clone();
                Box::pin(async move {
                    let world = node.upgrade().map(|inner| World { inner }).ok_or_else(|| {
                        ractor::SpawnErr::StartupFailed("the node is shutting down".into())
                    })?;
                    let supervisor = world.live_supervisor()?;
                    let board = crate::leaderboard::Leaderboard::new(key);
                    crate::ports::host(board, world.board_ports(), supervisor).await
                })
            });
    }

    /// What a match gets as its context.
    pub(crate) fn match_ports(&self) -> crate::match_room::MatchPorts {
        crate::match_room::MatchPorts {
            outbox: self.ports(),
            roster: self.inner.shared_router.clone(),
            games: self.inner.shared_db.clone(),
            maps: Arc::new(self.inner.scores.beatmaps().clone()),
            bot_name: self.bot_name().into(),
        }
    }

    pub fn bot_name(&self) -> &str {
        self.inner.bot.get().map_or("Peace", |b| b.name.as_str())
    }

    pub fn channel_definitions(&self) -> &[peace_db::Channel] {
        self.inner.channels.get().map_or(&[], Vec::as_slice)
    }

    /// What every session of this node uses.
    pub(crate) fn session_ports(&self) -> &Arc<SessionPorts> {
        &self.inner.session_ports
    }

    pub(crate) fn supervisor_cell(&self) -> Option<ActorCell> {
        self.inner.supervisor.get().map(|s| s.get_cell())
    }

    /// The supervisor to spawn under, unless the node is shutting down. (A supervisor
    /// that is still `Starting` counts: ractor marks an actor `Running` from its own
    /// task, which may not have run yet when `World::start` settles the node.)
    pub(crate) fn live_supervisor(&self) -> Result<ActorCell, ractor::SpawnErr> {
        self.supervisor_cell()
            .filter(|s| ractor::ACTIVE_STATES.contains(&s.get_status()))
            .ok_or_else(|| ractor::SpawnErr::StartupFailed("the node is shutting down".into()))
    }

    /// (Re)starts a channel's actor from its definition, if this node owns it.
    pub(crate) async fn respawn_channel(&self, name: &str) -> Result<(), ractor::SpawnErr> {
        let Some(def) = self.channel_definitions().iter().find(|c| c.name == name) else {
            return Ok(());
        };
        if !self
            .router()
            .placement()
            .is_here(&EntityKey::Channel(name.to_owned()))
        {
            return Ok(());
        }
        let state = ChannelState::new(def.clone());
        let supervisor = self.live_supervisor()?;
        let actor = crate::ports::host(state, self.channel_ports(), supervisor).await?;
        self.router().channels().insert(name.to_owned(), actor);
        // Players who were in it (a restart after a failure or a lost node) join again.
        let rejoin = UserCast::Rejoin {
            name: name.to_owned(),
        };
        self.router().broadcast_users(rejoin, Audience::Everyone);
        Ok(())
    }

    /// (Re)starts the bot and puts it online, if this node owns it.
    pub(crate) async fn spawn_bot(&self) -> Result<(), ractor::SpawnErr> {
        if !self.router().placement().is_here(&EntityKey::User(BOT_ID)) {
            return Ok(());
        }
        self.start_bot().await
    }

    /// Starts the bot here and puts it online.
    pub(crate) async fn start_bot(&self) -> Result<(), ractor::SpawnErr> {
        let Some(bot) = self.inner.bot.get() else {
            return Ok(());
        };
        let supervisor = self.live_supervisor()?;
        let actor =
            crate::ports::host(crate::bot::Bot::default(), self.bot_ports(), supervisor).await?;
        let state = UserState::new(bot, 0, 0, peace_db::Stats::default(), 0);
        self.router().sessions().insert(LocalSession {
            user_id: BOT_ID,
            session_id: 0,
            privileges: bot.privileges(),
            actor,
            quiet: std::sync::Arc::new(crate::user::QuietMarks::closed()),
        });
        self.router().users().insert(OnlineUser {
            id: BOT_ID,
            name: bot.name.as_str().into(),
            session_id: 0,
            privileges: bot.privileges(),
            presence: state.presence_packet(),
            stats: state.stats_packet(),
            login_time: peace_db::unix_now(),
            hidden: false,
            node: self.node_name().into(),
        });
        Ok(())
    }

    /// (Re)starts the lobby, if this node owns it. A restarted lobby starts empty;
    /// matches re-announce themselves on their next change.
    pub(crate) async fn spawn_lobby(&self) -> Result<(), ractor::SpawnErr> {
        if !self.router().placement().is_here(&EntityKey::Lobby) {
            return Ok(());
        }
        let supervisor = self.live_supervisor()?;
        let lobby = crate::lobby::LobbyState::default();
        let lobby = crate::ports::host(lobby, self.ports(), supervisor).await?;
        self.router().lobby().insert((), lobby);
        // Players browsing the lobby (it restarted after a failure or a lost node) join
        // it again; matches announce themselves at their next change.
        self.router()
            .broadcast_users(UserCast::LobbyRestarted, Audience::Everyone);
        Ok(())
    }

    /// Installs a shard table and, if it changed anything here, settles the node to it.
    /// (The coordinator's tables arrive here; tests install their own.)
    pub fn install_table(&self, table: ShardTable) {
        // For shards that moved between two other nodes, this node holds its messages
        // and sends each old owner a flush marker (see `Placement`).
        let net = self.router().net().clone();
        let me = self.node_name().to_owned();
        let flush =
            |moved: &std::collections::BTreeMap<String, Vec<crate::cluster::shard::Shard>>| {
                let mut unsent = Vec::new();
                for (old, shards) in moved {
                    for &shard in shards {
                        let marker = crate::cluster::envelope::Body::Flush {
                            shard,
                            origin: me.clone(),
                        };
                        if net.send(old, marker).is_err() {
                            unsent.push(shard);
                        }
                    }
                }
                unsent
            };
        if self.router().placement().install(table, flush).is_some() {
            let world = self.clone();
            tokio::spawn(async move { world.settle().await });
        }
    }

    /// Makes the node's entities match its shards: starts the permanent entities
    /// (channels, lobby, bot) of the shards it owns that are not running, and stops
    /// entities of shards it does not own. Idempotent.
    pub(crate) async fn settle(&self) {
        let _guard = self.spawn_lock().await;
        self.stop_strays();
        let router = self.router();
        for def in self.channel_definitions() {
            let key = EntityKey::Channel(def.name.clone());
            if router.placement().is_here(&key)
                && !router.channels().contains(&def.name)
                && let Err(e) = self.respawn_channel(&def.name).await
            {
                tracing::error!(channel = %def.name, "could not start the channel: {e}");
            }
        }
        if router.placement().is_here(&EntityKey::Lobby)
            && router.lobby().is_empty()
            && let Err(e) = self.spawn_lobby().await
        {
            tracing::error!("could not start the lobby: {e}");
        }
        if router.placement().is_here(&EntityKey::User(BOT_ID))
            && router.sessions().main(BOT_ID).is_none()
            && let Err(e) = self.spawn_bot().await
        {
            tracing::error!("could not start the bot: {e}");
        }
    }

    /// A peer went down: everyone whose session lived there goes offline here, and
    /// leaves the channels, rooms, matches and lobby of this node (each node cleans its
    /// own entities, so this costs no envelope).
    pub(crate) fn forget_node(&self, node: &str) {
        // Messages held for moved shards until a flush marker that went through the lost
        // node comes back go direct now rather than after FLUSH_TIMEOUT.
        self.end_flushes_through(node);
        let gone = self.router().users().purge_node(node);
        if !gone.is_empty() {
            tracing::warn!(%node, players = gone.len(), "players of a lost node went offline");
        }
        let router = self.router();
        for user in &gone {
            let (user_id, session_id) = (user.id, user.session_id);
            router
                .channels()
                .broadcast_here(&crate::channel::ChannelCast::Forget {
                    user_id,
                    session_id,
                });
            router
                .spectate()
                .broadcast_here(&crate::spectate::SpectateCast::Leave {
                    user_id,
                    session_id,
                });
            if router.spectate().contains(&user_id) {
                let _ = router
                    .spectate()
                    .cast(&user_id, crate::spectate::SpectateCast::HostLeft);
            }
            router
                .matches()
                .broadcast_here(&crate::match_room::MatchCast::Leave { user_id });
            router
                .lobby()
                .broadcast_here(&crate::lobby::LobbyCast::Leave { user_id });
        }
        // The players here check whether their match or room went with the node.
        router.broadcast_here(
            &UserCast::NodeLost {
                node: node.to_owned(),
            },
            &Audience::Everyone,
        );
        // Their USER_LOGOUT reaches the players here through the presence feed, which
        // the purge above fed.
    }

    /// A cast from another node found its user offline: a private message becomes an
    /// offline message, the rest is dropped.
    pub(crate) fn undeliverable(&self, user_id: i32, msg: UserCast) {
        if let UserCast::PrivateMessage { from_id, text, .. } = msg {
            let db = self.db().clone();
            tokio::spawn(async move {
                match db.store_mail(from_id, user_id, &text).await {
                    Ok(peace_db::MailOutcome::Stored) => {}
                    Ok(refused) => {
                        tracing::debug!(
                            user = user_id,
                            from = from_id,
                            ?refused,
                            "offline message not kept"
                        );
                    }
                    Err(e) => {
                        tracing::warn!(user = user_id, "could not store an offline message: {e}");
                    }
                }
            });
        }
    }

    /// The cluster addresses of the peers this node sees up (for `RequestBody::Peers`).
    pub(crate) fn peer_addresses(&self) -> Vec<String> {
        self.inner
            .view
            .peers()
            .into_iter()
            .filter(|p| p.state == crate::cluster::PeerState::Up)
            .filter_map(|p| p.status.map(|s| s.cluster_addr))
            .filter(|a| !a.is_empty())
            .collect()
    }

    /// What this node tells its peers and the API about itself.
    pub fn node_status(&self) -> NodeStatus {
        let placement = self.router().placement();
        let cluster = &self.config().cluster;
        NodeStatus {
            name: self.node_name().to_owned(),
            started_ms: self.started_ms(),
            cluster_addr: cluster.advertised(),
            http_addr: cluster.http_addr.clone(),
            roles: cluster.roles,
            entities: self.router().local_counts(),
            shards: placement.owned_shards().len(),
            table: placement.table().map(|t| (t.origin.clone(), t.epoch)),
            traffic: self.router().net().traffic(),
            draining: placement
                .table()
                .is_some_and(|t| t.is_draining(self.node_name(), self.started_ms())),
            migrations: self.migrations().stats(),
            held: placement.held(),
        }
    }

    /// The node that hosts `key` now, as this node sees it.
    pub fn locate(&self, key: &EntityKey) -> Option<String> {
        match self.router().placement().locate(key) {
            Location::Here | Location::Frozen => Some(self.node_name().to_owned()),
            Location::There(node) => Some(node),
            Location::Unplaced => None,
        }
    }

    /// Opens a match hosted by `host_id` with the settings the client asked for, on the
    /// node that owns the first free id; returns its id and full data.
    pub(crate) async fn create_match(
        &self,
        host_id: i32,
        host_name: &str,
        requested: &peace_bancho::MatchData,
    ) -> Result<(i32, peace_bancho::MatchData), RoomError> {
        for _ in 0..MATCH_ID_ATTEMPTS {
            let match_id =
                match_id_candidate(self.inner.next_match_id.fetch_add(1, Ordering::Relaxed));
            let request = SpawnRequest::Match {
                match_id,
                settings: Box::new(requested.clone()),
                host_id,
                host_name: host_name.to_owned(),
            };
            match self.spawn(request).await {
                SpawnReply::MatchStarted(data) => return Ok((i32::from(match_id), *data)),
                SpawnReply::Exists => continue,
                other => return Err(RoomError::Refused(format!("{other:?}"))),
            }
        }
        Err(RoomError::NoFreeId)
    }

    /// Every quarter of the idle time-out: ask this node's sessions to check themselves,
    /// and forget expired replaced sessions; every [`RECORD_PRUNE_EVERY`], delete the
    /// records of sessions that are long gone (their node died and nobody came back).
    fn spawn_sweeper(&self) {
        let world = self.clone();
        let period = (self.config().idle_timeout / 4).max(Duration::from_millis(250));
        let task = peace_sharding::task::supervised("sweeper", move || {
            let world = world.clone();
            async move { world.sweep(period).await }
        });
        self.inner
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(task);
    }

    /// This node's part of pp recalculations: it picks up an unfinished job at start
    /// (resuming after a crash) and any job started later, and works on the shards the
    /// node owns. A node without the actors role owns no shards and takes no part.
    fn spawn_recalculator(&self) {
        if !self.config().cluster.roles.actors {
            return;
        }
        let recalc = self.inner.recalc.clone();
        let task = peace_sharding::task::supervised("pp recalculation", move || {
            let recalc = recalc.clone();
            async move { recalc.run().await }
        });
        self.inner
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(task);
    }

    /// The sweeper's loop (see [`Self::spawn_sweeper`]); it never returns.
    async fn sweep(&self, period: Duration) {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_prune = tokio::time::Instant::now();
        loop {
            tick.tick().await;
            self.router()
                .broadcast_here(&UserCast::IdleCheck, &Audience::AllBut(BOT_ID));
            let now = peace_db::unix_now();
            self.inner.session_ports.retired.prune();
            if last_prune.elapsed() >= RECORD_PRUNE_EVERY {
                last_prune = tokio::time::Instant::now();
                let before = now - crate::user::record::RECORD_TTL_SECS;
                match self.db().prune_session_records(before).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(records = n, "stale session records deleted"),
                    Err(e) => tracing::warn!("could not prune session records: {e}"),
                }
            }
        }
    }

    /// Handles a poll: `token` from the `osu-token` header, `body` the client's packets.
    /// Returns the reply body: a bad token gets the restart reply, bad packets are
    /// skipped (and logged), a poll that failed after its packets may have reached the
    /// session gets an empty reply (the client polls again).
    ///
    /// Fails only when this node cannot route polls at all (it has no shard table yet: it
    /// is joining its cluster, and `/readyz` says so). Nothing was delivered, so the
    /// gateway answers 503, which a load balancer retries on another node without
    /// doubling anything, instead of a 200 that would silently drop the player's chat.
    /// A transient failure (the session's node unreachable, its shard moving) still gets
    /// an empty 200: the stable client treats a failed poll as a lost connection and logs
    /// in again, which costs the player more than the one poll.
    pub async fn poll(&self, token: &str, body: Bytes) -> Result<Bytes, PollNotServed> {
        let Some(SessionToken {
            user_id,
            session_id,
        }) = self.tokens().verify(token)
        else {
            tracing::debug!("poll with an invalid token");
            return Ok(restart_reply());
        };
        let origin = self.router().local_origin();
        match self.poll_routed(user_id, session_id, body, &origin).await {
            Ok(bytes) => Ok(bytes),
            Err(e @ RouteError::NotPlaced) => {
                tracing::warn!(user = user_id, "poll refused, nothing delivered: {e}");
                Err(PollNotServed(e))
            }
            Err(e) => {
                tracing::warn!(user = user_id, "poll not answered: {e}");
                Ok(Bytes::new())
            }
        }
    }

    /// Whether a poll of nothing but PINGs finds the session with nothing to send, so that
    /// it is answered empty without asking the actor (see `crate::user::QuietMarks`).
    fn answer_quietly(&self, user_id: i32, session_id: u64, body: &[u8]) -> bool {
        let ping = peace_bancho::ClientPacketId::Ping;
        let Some(pings) = peace_bancho::frame::count_bare(body, ping as u16) else {
            return false;
        };
        let router = self.router();
        let Some(session) = router.sessions().session(user_id, session_id) else {
            return false;
        };
        let quiet = session.quiet.answer(
            router.users().feed().head(),
            self.channel_counts().newest(),
            crate::unix_millis(),
        );
        if quiet {
            peace_metrics::quiet_poll();
            peace_metrics::client_packets(ping as u16, ping.name(), pings as u64);
        }
        quiet
    }

    /// A poll for the session wherever it lives: answered here, asked of its node, or,
    /// while it moves, answered once it has moved.
    pub(crate) async fn poll_routed(
        &self,
        user_id: i32,
        session_id: u64,
        body: Bytes,
        origin: &crate::router::Origin,
    ) -> Result<Bytes, RouteError> {
        let timeout = self.config().call_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let key = EntityKey::User(user_id);
        match self
            .router()
            .placement()
            .locate_settled(&key, deadline)
            .await
        {
            Location::Here => Ok(self.poll_here(user_id, session_id, &body).await),
            Location::There(node) => {
                let request = crate::cluster::envelope::Request {
                    from: origin.from.clone(),
                    hops: origin.hops,
                    body: RequestBody::Poll {
                        user_id,
                        session_id,
                        body,
                    },
                };
                let net = self.router().net();
                match net.relay_request(&node, request, timeout).await {
                    Ok(Answer::Packets(bytes)) => Ok(bytes),
                    Ok(other) => Err(RouteError::Refused(
                        crate::cluster::envelope::Refusal::Failed(format!(
                            "odd answer to a poll: {other:?}"
                        )),
                    )),
                    Err(e) => Err(e),
                }
            }
            Location::Frozen => Err(RouteError::Timeout(key, timeout)),
            Location::Unplaced => Err(RouteError::NotPlaced),
        }
    }

    /// A poll for a session of this node.
    pub(crate) async fn poll_here(&self, user_id: i32, session_id: u64, body: &[u8]) -> Bytes {
        if self.answer_quietly(user_id, session_id, body) {
            return Bytes::new();
        }
        let packets = decode_poll(user_id, body);
        let call = UserCall::Poll { packets };
        let timeout = self.config().call_timeout;
        match self
            .router()
            .call_session(user_id, session_id, call, timeout)
            .await
        {
            Ok(UserReply::Packets(bytes)) => bytes,
            // A session that is not there, or is ending right now (a logout a moment
            // ago): its last words if any, else a rebuild from its record, else restart.
            Err(RouteError::NotFound(_) | RouteError::Stopped(_)) => {
                if let Some(bytes) = self.inner.session_ports.retired.take(user_id, session_id) {
                    return bytes;
                }
                // No node holds the session: if its node was lost, it comes back from
                // its record and the client plays on; otherwise the client logs in again.
                let rebuild = SpawnRequest::Rebuild {
                    user_id,
                    session_id,
                };
                match self.spawn(rebuild).await {
                    SpawnReply::Started => {
                        // The rebuilt session handles this poll's packets.
                        let call = UserCall::Poll {
                            packets: decode_poll(user_id, body),
                        };
                        match self
                            .router()
                            .call_session(user_id, session_id, call, timeout)
                            .await
                        {
                            Ok(UserReply::Packets(bytes)) => bytes,
                            Err(_) => restart_reply(),
                        }
                    }
                    _ => restart_reply(),
                }
            }
            Err(e) => {
                tracing::warn!(user = user_id, "poll failed: {e}");
                Bytes::new()
            }
        }
    }

    /// Checks web-endpoint credentials (user name and password md5) under the same
    /// failed-login limits as Bancho logins, so the web endpoints are no way around them.
    pub async fn authenticate(
        &self,
        name: &str,
        password_md5: &str,
        ip: IpAddr,
    ) -> Result<Option<peace_db::User>, DbError> {
        Ok(
            match self
                .check_credentials(name, password_md5, ip, AccountRead::Cached)
                .await?
            {
                Credentials::Valid(user) => Some(user),
                Credentials::Unknown | Credentials::Wrong | Credentials::Banned => None,
            },
        )
    }

    /// Checks a name and password md5 with one read of the account. Failures count
    /// towards the login rate limits; a limited name or address is answered as a wrong
    /// password without reading anything. An account's state (banned) is told only to
    /// whoever knows its password.
    async fn check_credentials(
        &self,
        name: &str,
        password_md5: &str,
        ip: IpAddr,
        read: AccountRead,
    ) -> Result<Credentials, DbError> {
        let safe_name = peace_db::safe_name(name);
        if self.login_allowed(ip, &safe_name).is_err() {
            return Ok(Credentials::Wrong);
        }
        let cached = match read {
            AccountRead::Cached => self.inner.web_accounts.get(&safe_name),
            AccountRead::Fresh => None,
        };
        let user = match cached {
            Some(user) => Some(user),
            None => {
                let user = self.db().user_by_name(name).await?;
                if let Some(user) = &user {
                    self.inner.web_accounts.put(safe_name.clone(), user.clone());
                }
                user
            }
        };
        let (verified, found) = match user {
            // The bot's account is never logged into.
            Some(u) if !u.privileges().contains(peace_db::Privileges::BOT) => {
                let ok = self
                    .passwords()
                    .verify(password_md5, &u.password_bcrypt)
                    .await;
                (ok, Some(u))
            }
            other => {
                // As long as a real check, so that timing tells no names apart.
                self.passwords().verify_absent(password_md5).await;
                (false, other)
            }
        };
        if !verified {
            self.login_failed(ip, &safe_name);
            return Ok(match found {
                None => Credentials::Unknown,
                Some(_) => Credentials::Wrong,
            });
        }
        self.login_succeeded(&safe_name);
        match found {
            Some(u) if u.privileges().contains(peace_db::Privileges::NORMAL) => {
                Ok(Credentials::Valid(u))
            }
            Some(_) => Ok(Credentials::Banned),
            None => Ok(Credentials::Unknown),
        }
    }

    /// Web-endpoint credentials as the score endpoints answer them: the account, or the
    /// client's word for what is wrong (`nouser`, `pass`, `ban`); `Err` when the database could
    /// not say (the client should ask again later).
    pub async fn web_login(
        &self,
        name: &str,
        password_md5: &str,
        ip: IpAddr,
    ) -> Result<Result<peace_db::User, &'static str>, DbError> {
        let checked = self
            .check_credentials(name, password_md5, ip, AccountRead::Cached)
            .await?;
        Ok(checked.into_web_answer())
    }

    /// A stable client's score submission, from its form to the answer.
    pub async fn submit_score(
        &self,
        form: crate::scores::submit::SubmissionForm,
        ip: IpAddr,
    ) -> crate::scores::submit::SubmitAnswer {
        use crate::scores::submit::{SubmitAnswer, decode};
        let play = match decode(form) {
            Ok(play) => play,
            Err(answer) => return answer,
        };
        let name = play.text.player_name.clone();
        // A submission writes: it reads the account afresh, so that a ban stops it at
        // once (the reads of the web endpoints may be a few seconds behind).
        let checked = self
            .check_credentials(&name, &play.form.password_md5, ip, AccountRead::Fresh)
            .await;
        match checked.map(Credentials::into_web_answer) {
            Ok(Ok(user)) => self.scores().submit(&user, play).await,
            Ok(Err(word)) => SubmitAnswer::Text(format!("error: {word}")),
            Err(e) => {
                tracing::warn!("score submission: login check failed: {e}");
                SubmitAnswer::Retry
            }
        }
    }

    /// Players online anywhere in the cluster (the bot excluded).
    pub fn online_users(&self) -> Vec<OnlineUser> {
        let mut users: Vec<_> = self
            .router()
            .users()
            .snapshot()
            .into_iter()
            .filter(|u| u.id != BOT_ID)
            .collect();
        users.sort_by_key(|u| u.id);
        users
    }

    /// Ends a user's session if they are online, showing `reason`.
    pub fn kick(&self, user_id: i32, reason: &str) -> bool {
        let online = self.router().users().get(user_id).is_some();
        let cast = UserCast::Kick {
            reason: reason.to_owned(),
            farewell: crate::user::Farewell::Disconnect,
        };
        online && self.router().cast_user(user_id, cast).is_ok()
    }

    /// Stops every actor and background task (sessions end, players are logged out).
    pub async fn shutdown(&self) {
        for task in self
            .inner
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            task.abort();
        }
        if let Some(membership) = self.inner.membership.get() {
            let _ = membership
                .stop_and_wait(Some("shutdown".into()), Some(Duration::from_secs(5)))
                .await;
        }
        if let Some(supervisor) = self.inner.supervisor.get() {
            let cell = supervisor.get_cell();
            let _ = cell
                .stop_children_and_wait(Some("shutdown".into()), Some(Duration::from_secs(10)))
                .await;
            let _ = cell
                .stop_and_wait(Some("shutdown".into()), Some(Duration::from_secs(5)))
                .await;
        }
        if let Some(router) = self.inner.node_router.get() {
            router.stop(Some("shutdown".into()));
        }
    }
}

/// The client packets of a poll body; undecodable ones are skipped (and logged), and at
/// most [`MAX_PACKETS_PER_POLL`] are kept.
fn decode_poll(user_id: i32, body: &[u8]) -> Vec<peace_bancho::ClientPacket> {
    let mut packets = Vec::new();
    // Lazily: a body of a million tiny frames is decoded only as far as the cap.
    for (i, decoded) in peace_bancho::client_packets(body).enumerate() {
        match decoded {
            _ if i >= MAX_PACKETS_PER_POLL => {
                tracing::warn!(
                    user = user_id,
                    "more than {MAX_PACKETS_PER_POLL} packets in one poll; rest dropped"
                );
                break;
            }
            Ok(packet) => packets.push(packet),
            Err(e) => tracing::info!(user = user_id, "undecodable packet skipped: {e}"),
        }
    }
    packets
}

/// Which shard a key is in (for the API).
pub fn shard_of_key(key: &EntityKey) -> u16 {
    shard_of(key)
}

/// What a client with an unknown, forged or expired token is told: re-login now.
pub fn restart_reply() -> Bytes {
    let mut out = Vec::new();
    ServerPacket::from(Notification {
        text: "Your session has expired. Reconnecting...".into(),
    })
    .encode(&mut out);
    ServerPacket::from(Restart { delay_ms: 0 }).encode(&mut out);
    out.into()
}

/// Channels publish their member counts on this node's board and, through an envelope,
/// on every other node's.
impl crate::channel::CountBoard for World {
    fn publish(&self, channel: String, required: peace_db::Privileges, packet: bytes::Bytes) {
        self.channel_counts()
            .publish(&channel, required, packet.clone());
        let body = crate::cluster::envelope::Body::MemberCount {
            channel,
            required,
            packet,
        };
        self.router().net().send_all(&body);
    }
}

/// A poll none of whose packets reached the session (see [`World::poll`]).
#[derive(Debug, thiserror::Error)]
#[error("the poll was not served: {0}")]
pub struct PollNotServed(pub RouteError);

/// What [`World::readiness`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// Why the node cannot serve a login; empty when it can.
    pub reasons: Vec<String>,
}

impl Readiness {
    /// Whether the node can serve a login.
    pub fn is_ready(&self) -> bool {
        self.reasons.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn match_ids_stay_within_what_the_client_reads_as_signed() {
        for n in [
            0,
            1,
            32_766,
            32_767,
            32_768,
            65_535,
            65_536,
            u32::MAX - 1,
            u32::MAX,
        ] {
            let id = match_id_candidate(n);
            assert!((1..=MAX_MATCH_ID).contains(&id), "{n} gave {id}");
        }
        // Consecutive counters give consecutive ids, wrapping from the top back to 1.
        assert_eq!(match_id_candidate(0), 1);
        assert_eq!(match_id_candidate(32_766), 32_767);
        assert_eq!(match_id_candidate(32_767), 1);
    }
}
