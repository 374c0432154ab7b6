//! [`World`]: the handle through which the gateway (and the CLI) use the actor system.
//! It owns nothing game-related itself; it starts the actors, and turns a login or a
//! poll into messages to them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use peace_bancho::ServerPacket;
use peace_bancho::server::{Notification, Restart};
use peace_db::{Database, DbError};
use ractor::{Actor, ActorCell, ActorRef};
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::auth::{PasswordVerifier, SessionToken, TokenSigner};
use crate::bot::BotActor;
use crate::channel::{ChannelActor, ChannelState};
use crate::directory::OnlineUser;
use crate::limits::RateLimiter;
use crate::lobby::LobbyActor;
use crate::match_room::{MatchActor, MatchState};
use crate::spectate::{SpectateState, SpectatorRoom};
use crate::supervisor::NodeSupervisor;
use crate::user::{UserCall, UserCast, UserReply, UserState};
use crate::{BOT_ID, Router, WorldConfig};

/// How long the last packets of a replaced session wait for its client's final poll.
const RETIRED_TTL_SECS: i64 = 60;
/// Most replaced sessions remembered at once.
const MAX_RETIRED: usize = 10_000;
/// Most packets handled from one poll; the rest of the body is dropped (and logged).
pub const MAX_PACKETS_PER_POLL: usize = 512;

/// Why a match could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateMatchError {
    #[error("the server has too many matches open")]
    TooMany,
    #[error("could not spawn the match: {0}")]
    Spawn(#[from] ractor::SpawnErr),
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
    tokens: TokenSigner,
    passwords: PasswordVerifier,
    channels: OnceLock<Vec<peace_db::Channel>>,
    auto_join: OnceLock<Vec<String>>,
    bot_name: OnceLock<String>,
    supervisor: OnceLock<ActorRef<()>>,
    /// Final packets of replaced sessions, by (user, session), with their expiry.
    retired: Mutex<HashMap<(i32, u64), (Bytes, i64)>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    failed_logins_by_ip: RateLimiter<IpAddr>,
    failed_logins_by_account: RateLimiter<String>,
    registrations_by_ip: RateLimiter<IpAddr>,
    presence: crate::presence::PresenceFeed,
    channel_counts: crate::channel::MemberCounts,
    /// Serialises creating rooms and matches, so that two players cannot open the same
    /// spectator room twice or take the same match id. Held only while spawning.
    spawning: tokio::sync::Mutex<u16>,
}

/// The running actor system of one node. Cloning shares it.
#[derive(Clone)]
pub struct World {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("online", &self.inner.router.users().len())
            .finish()
    }
}

impl World {
    /// Starts the node's actors: the supervisor, one actor per channel, the bot, and the
    /// idle-session sweeper.
    pub async fn start(config: WorldConfig, db: Database) -> Result<World, StartError> {
        let secret = if config.secret.is_empty() {
            tracing::warn!("no secret configured: session tokens will not survive a restart");
            rand::random::<[u8; 32]>().to_vec()
        } else {
            config.secret.clone()
        };
        let limits = config.limits.clone();
        let world = World {
            inner: Arc::new(Inner {
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
                config,
                db,
                router: Router::default(),
                passwords: PasswordVerifier::default(),
                channels: OnceLock::new(),
                auto_join: OnceLock::new(),
                bot_name: OnceLock::new(),
                supervisor: OnceLock::new(),
                retired: Mutex::default(),
                tasks: Mutex::default(),
                presence: Default::default(),
                channel_counts: Default::default(),
                spawning: tokio::sync::Mutex::new(0),
            }),
        };
        let (supervisor, _) = Actor::spawn(None, NodeSupervisor, world.clone()).await?;
        let _ = world.inner.supervisor.set(supervisor.clone());

        let channels = world.inner.db.channels().await?;
        let auto_join = channels
            .iter()
            .filter(|c| c.auto_join)
            .map(|c| c.name.clone())
            .collect();
        let _ = world.inner.auto_join.set(auto_join);
        let _ = world.inner.channels.set(channels);
        for channel in world.channel_definitions() {
            world
                .respawn_channel(&channel.name, supervisor.get_cell())
                .await?;
        }
        world.spawn_bot(supervisor.get_cell()).await?;
        world.spawn_lobby(supervisor.get_cell()).await?;
        world.spawn_sweeper();
        tracing::info!(
            channels = world.channel_definitions().len(),
            "actor system started"
        );
        Ok(world)
    }

    pub fn config(&self) -> &WorldConfig {
        &self.inner.config
    }

    pub fn db(&self) -> &Database {
        &self.inner.db
    }

    pub fn router(&self) -> &Router {
        &self.inner.router
    }

    pub fn tokens(&self) -> &TokenSigner {
        &self.inner.tokens
    }

    /// The latest member count of every channel (see [`crate::channel::MemberCounts`]).
    pub fn channel_counts(&self) -> &crate::channel::MemberCounts {
        &self.inner.channel_counts
    }

    /// Whose presence changed lately (see [`crate::presence`]).
    pub fn presence(&self) -> &crate::presence::PresenceFeed {
        &self.inner.presence
    }

    pub(crate) fn passwords(&self) -> &PasswordVerifier {
        &self.inner.passwords
    }

    /// `Err(retry_after)` while logins from `ip` or to `safe_name` are blocked after too
    /// many failures.
    pub(crate) fn login_allowed(&self, ip: IpAddr, safe_name: &str) -> Result<(), Duration> {
        self.inner.failed_logins_by_ip.check(&ip)?;
        self.inner
            .failed_logins_by_account
            .check(&safe_name.to_owned())
    }

    pub(crate) fn login_failed(&self, ip: IpAddr, safe_name: &str) {
        self.inner.failed_logins_by_ip.hit(&ip);
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
        self.inner.registrations_by_ip.hit(&ip)
    }

    pub fn bot_name(&self) -> &str {
        self.inner.bot_name.get().map_or("Peace", String::as_str)
    }

    pub fn channel_definitions(&self) -> &[peace_db::Channel] {
        self.inner.channels.get().map_or(&[], Vec::as_slice)
    }

    pub(crate) fn auto_join_channels(&self) -> &[String] {
        self.inner.auto_join.get().map_or(&[], Vec::as_slice)
    }

    pub(crate) fn supervisor_cell(&self) -> Option<ActorCell> {
        self.inner.supervisor.get().map(|s| s.get_cell())
    }

    /// The supervisor to spawn under, unless the node is shutting down.
    fn live_supervisor(&self) -> Result<ActorCell, ractor::SpawnErr> {
        self.supervisor_cell()
            .filter(|s| s.get_status() == ractor::ActorStatus::Running)
            .ok_or_else(|| ractor::SpawnErr::StartupFailed("the node is shutting down".into()))
    }

    /// (Re)starts a channel's actor from its definition.
    pub(crate) async fn respawn_channel(
        &self,
        name: &str,
        supervisor: ActorCell,
    ) -> Result<(), ractor::SpawnErr> {
        let Some(def) = self.channel_definitions().iter().find(|c| c.name == name) else {
            return Ok(());
        };
        let state = ChannelState::new(def.clone());
        let (actor, _) =
            Actor::spawn_linked(None, ChannelActor, (self.clone(), state), supervisor).await?;
        self.router().channels().insert(name.to_owned(), actor);
        Ok(())
    }

    /// (Re)starts the bot and puts it online.
    pub(crate) async fn spawn_bot(&self, supervisor: ActorCell) -> Result<(), StartError> {
        let bot = self
            .db()
            .user_by_id(BOT_ID)
            .await?
            .ok_or(StartError::NoBot)?;
        let _ = self.inner.bot_name.set(bot.name.clone());
        let (actor, _) = Actor::spawn_linked(None, BotActor, self.clone(), supervisor).await?;
        let state = UserState::new(&bot, 0, 0, peace_db::Stats::default(), 0);
        self.router().users().insert(OnlineUser {
            id: BOT_ID,
            name: bot.name.as_str().into(),
            session_id: 0,
            privileges: bot.privileges(),
            actor,
            presence: state.presence_packet(),
            stats: state.stats_packet(),
            login_time: peace_db::unix_now(),
            hidden: false,
        });
        Ok(())
    }

    /// (Re)starts the lobby. A restarted lobby starts empty; matches re-announce
    /// themselves on their next change.
    pub(crate) async fn spawn_lobby(&self, supervisor: ActorCell) -> Result<(), ractor::SpawnErr> {
        let (lobby, _) = Actor::spawn_linked(None, LobbyActor, self.clone(), supervisor).await?;
        self.router().set_lobby(lobby);
        Ok(())
    }

    /// Opens an instance channel (a room's or match's), keyed `name`, shown as `display`.
    async fn open_instance_channel(
        &self,
        name: &str,
        display: &str,
        topic: &str,
    ) -> Result<(), ractor::SpawnErr> {
        let supervisor = self.live_supervisor()?;
        let state = ChannelState::instance(name, display, topic);
        let (actor, _) =
            Actor::spawn_linked(None, ChannelActor, (self.clone(), state), supervisor).await?;
        self.router().channels().insert(name.to_owned(), actor);
        Ok(())
    }

    /// The spectator room of `host_id`, opened if nobody watches them yet. Returns the
    /// room's key.
    pub(crate) async fn spectator_room(&self, host_id: i32) -> Result<i32, ractor::SpawnErr> {
        let _guard = self.inner.spawning.lock().await;
        if self.router().spectate().contains(&host_id) {
            return Ok(host_id);
        }
        let supervisor = self.live_supervisor()?;
        let channel = crate::spectate::channel_name(host_id);
        self.open_instance_channel(
            &channel,
            crate::spectate::CHANNEL_DISPLAY_NAME,
            "Spectator chat",
        )
        .await?;
        let state = SpectateState {
            host_id,
            spectators: Default::default(),
        };
        let (room, _) =
            Actor::spawn_linked(None, SpectatorRoom, (self.clone(), state), supervisor).await?;
        self.router().spectate().insert(host_id, room);
        Ok(host_id)
    }

    /// Opens a match hosted by `host_id` with the settings the client asked for; returns
    /// its id and full data.
    pub(crate) async fn create_match(
        &self,
        host_id: i32,
        host_name: &str,
        requested: &peace_bancho::MatchData,
    ) -> Result<(i32, peace_bancho::MatchData), CreateMatchError> {
        let mut next_id = self.inner.spawning.lock().await;
        if self.router().matches().len() >= crate::match_room::MAX_MATCHES {
            return Err(CreateMatchError::TooMany);
        }
        // Ids are 16-bit on the wire: take the next one not in use, skipping 0.
        let match_id = loop {
            *next_id = next_id.wrapping_add(1).max(1);
            if !self.router().matches().contains(&i32::from(*next_id)) {
                break *next_id;
            }
        };
        let supervisor = self.live_supervisor()?;
        let id = i32::from(match_id);
        let state = MatchState::create(match_id, requested, host_id, host_name);
        let data = state.data.clone();
        self.open_instance_channel(
            &crate::match_room::channel_name(id),
            crate::match_room::CHANNEL_DISPLAY_NAME,
            &data.name,
        )
        .await?;
        let (actor, _) =
            Actor::spawn_linked(None, MatchActor, (self.clone(), state), supervisor).await?;
        self.router().matches().insert(id, actor);
        tracing::info!(match_id = id, host = host_id, "match created");
        Ok((id, data))
    }

    /// Every quarter of the idle time-out: ask sessions to check themselves, and forget
    /// expired replaced sessions.
    fn spawn_sweeper(&self) {
        let world = self.clone();
        let period = (self.config().idle_timeout / 4).max(Duration::from_millis(250));
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                world
                    .router()
                    .broadcast_users_where(UserCast::IdleCheck, |u| u.id != BOT_ID);
                let now = peace_db::unix_now();
                world.retired().retain(|_, (_, expires)| *expires > now);
            }
        });
        self.inner
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(task);
    }

    fn retired(&self) -> std::sync::MutexGuard<'_, HashMap<(i32, u64), (Bytes, i64)>> {
        self.inner.retired.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn remember_retired(&self, user_id: i32, session_id: u64, packets: Bytes) {
        let mut retired = self.retired();
        if retired.len() >= MAX_RETIRED {
            retired.clear();
        }
        retired.insert(
            (user_id, session_id),
            (packets, peace_db::unix_now() + RETIRED_TTL_SECS),
        );
    }

    /// Handles a poll: `token` from the `osu-token` header, `body` the client's packets.
    /// Returns the reply body. Never fails: a bad token gets the restart reply, bad
    /// packets are skipped (and logged).
    pub async fn poll(&self, token: &str, body: &[u8]) -> Bytes {
        let Some(SessionToken {
            user_id,
            session_id,
        }) = self.tokens().verify(token)
        else {
            tracing::debug!("poll with an invalid token");
            return restart_reply();
        };
        let mut packets = Vec::new();
        // Frames are decoded as they are split off, without collecting them first: this
        // runs on every poll.
        let decoded = peace_bancho::Frames::new(body)
            .map(|frame| frame.and_then(|f| peace_bancho::ClientPacket::decode(f.id, f.payload)));
        for (i, decoded) in decoded.enumerate() {
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
        let call = UserCall::Poll { packets };
        let timeout = self.config().call_timeout;
        match self
            .router()
            .call_session(user_id, session_id, call, timeout)
            .instrument(tracing::debug_span!("poll", user = user_id))
            .await
        {
            Ok(UserReply::Packets(bytes)) => bytes,
            Err(crate::RouteError::NotFound(_)) => {
                match self.retired().remove(&(user_id, session_id)) {
                    Some((bytes, _)) => bytes,
                    None => restart_reply(),
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
        let safe_name = peace_db::safe_name(name);
        if self.login_allowed(ip, &safe_name).is_err() {
            return Ok(None);
        }
        let user = self.db().user_by_name(name).await?;
        let usable = |u: &peace_db::User| {
            u.privileges().contains(peace_db::Privileges::NORMAL)
                && !u.privileges().contains(peace_db::Privileges::BOT)
        };
        let verified = match &user {
            Some(u) if usable(u) => {
                self.passwords()
                    .verify(password_md5, &u.password_bcrypt)
                    .await
            }
            _ => false,
        };
        if !verified {
            self.login_failed(ip, &safe_name);
            return Ok(None);
        }
        self.login_succeeded(&safe_name);
        Ok(user)
    }

    /// Players online (the bot excluded).
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
        self.router()
            .cast_user(
                user_id,
                UserCast::Kick {
                    reason: reason.to_owned(),
                },
            )
            .is_ok()
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
        if let Some(supervisor) = self.inner.supervisor.get() {
            let cell = supervisor.get_cell();
            let _ = cell
                .stop_children_and_wait(Some("shutdown".into()), Some(Duration::from_secs(10)))
                .await;
            let _ = cell
                .stop_and_wait(Some("shutdown".into()), Some(Duration::from_secs(5)))
                .await;
        }
    }
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
