//! Starting entities where they belong. A login on one node may start its session on
//! another: every start is a [`SpawnRequest`] routed to the node that owns the new
//! entity's key, which starts it under its supervisor.
//!
//! Starts are serialised per node (the `spawning` lock), and the node checks under that
//! lock that it still owns the key; the same lock guards giving shards away, so an
//! entity is never started in a shard that is leaving (see `release_shards`).

use peace_bancho::MatchData;
use serde::{Deserialize, Serialize};

use crate::channel::ChannelState;
use crate::cluster::envelope::{Answer, Request, RequestBody};
use crate::cluster::placement::Location;
use crate::cluster::shard::Shard;
use crate::directory::OnlineUser;
use crate::match_room::MatchState;
use crate::message::EntityMsg;
use crate::sessions::LocalSession;
use crate::spectate::SpectateState;
use crate::user::{Session, Start, UserCall, UserReply, UserState};
use crate::{EntityKey, RouteError, World};

/// An entity to start.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum SpawnRequest {
    /// A logged-in player's session (`state.extra_session` for a tournament client's
    /// additional one).
    Session {
        state: Box<UserState>,
        entry: Box<OnlineUser>,
    },
    /// Session `session_id` of `user_id` again, from its database record: its node was
    /// lost and its client polls on.
    Rebuild { user_id: i32, session_id: u64 },
    /// The spectator room of `host_id`, unless it is open already.
    SpectatorRoom { host_id: i32 },
    /// A match with this id, unless the id is taken.
    Match {
        match_id: u16,
        settings: Box<MatchData>,
        host_id: i32,
        host_name: String,
    },
}

impl SpawnRequest {
    pub fn key(&self) -> EntityKey {
        match self {
            SpawnRequest::Session { state, .. } => EntityKey::User(state.id),
            SpawnRequest::Rebuild { user_id, .. } => EntityKey::User(*user_id),
            SpawnRequest::SpectatorRoom { host_id } => EntityKey::Spectate(*host_id),
            SpawnRequest::Match { match_id, .. } => EntityKey::Match(i32::from(*match_id)),
        }
    }
}

/// How a start went.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum SpawnReply {
    Started,
    /// The match started; its full data.
    MatchStarted(Box<MatchData>),
    /// It runs already (a room), or the id is taken (a match).
    Exists,
    /// A tournament account holds the most sessions it may.
    TooManySessions,
    /// Not started, and why.
    Refused(String),
}

impl World {
    /// Starts an entity on the node that owns its key.
    pub async fn spawn(&self, request: SpawnRequest) -> SpawnReply {
        self.spawn_routed(request, 0).await
    }

    /// [`Self::spawn`] for a request that has been forwarded `hops` times already.
    pub(crate) async fn spawn_routed(&self, request: SpawnRequest, hops: u8) -> SpawnReply {
        let deadline = tokio::time::Instant::now() + self.config().call_timeout;
        // A key whose shard is moving is started where it ends up.
        let placement = self.router().placement();
        let location = placement.locate_settled(&request.key(), deadline).await;
        match location {
            Location::Here => self.spawn_here(request, hops).await,
            Location::Frozen => SpawnReply::Refused("the key is still moving".into()),
            Location::There(node) => {
                let forward = Request {
                    from: self.node_name().to_owned(),
                    hops,
                    body: RequestBody::Spawn(request),
                };
                let timeout = self.config().call_timeout;
                match self
                    .router()
                    .net()
                    .relay_request(&node, forward, timeout)
                    .await
                {
                    Ok(Answer::Spawned(reply)) => reply,
                    Ok(other) => SpawnReply::Refused(format!("unexpected answer {other:?}")),
                    Err(e) => SpawnReply::Refused(e.to_string()),
                }
            }
            Location::Unplaced => SpawnReply::Refused(RouteError::NotPlaced.to_string()),
        }
    }

    async fn spawn_here(&self, request: SpawnRequest, hops: u8) -> SpawnReply {
        let guard = self.spawn_lock().await;
        if !self.router().placement().is_here(&request.key()) {
            // The shard left while we waited for the lock.
            drop(guard);
            return Box::pin(self.spawn_routed(request, hops.saturating_add(1))).await;
        }
        let result = match request {
            SpawnRequest::Session { state, entry } => {
                let replaced = match self.start_session(*state, *entry).await {
                    Ok(replaced) => replaced,
                    Err(reply) => return reply,
                };
                drop(guard);
                if let Some(old) = replaced {
                    self.retire(old).await;
                }
                return SpawnReply::Started;
            }
            SpawnRequest::Rebuild {
                user_id,
                session_id,
            } => return self.rebuild_session(user_id, session_id).await,
            SpawnRequest::SpectatorRoom { host_id } => self.open_spectator_room(host_id).await,
            SpawnRequest::Match {
                match_id,
                settings,
                host_id,
                host_name,
            } => {
                self.open_match(match_id, &settings, host_id, &host_name)
                    .await
            }
        };
        result.unwrap_or_else(|e| SpawnReply::Refused(e.to_string()))
    }

    /// Starts a session and makes it reachable; returns the session it replaces.
    async fn start_session(
        &self,
        state: UserState,
        entry: OnlineUser,
    ) -> Result<Option<LocalSession>, SpawnReply> {
        let supervisor = self
            .live_supervisor()
            .map_err(|e| SpawnReply::Refused(e.to_string()))?;
        let extra = state.extra_session;
        let local = Session::start(self.session_ports(), state, Start::Login, supervisor)
            .await
            .map_err(|e| SpawnReply::Refused(format!("could not start the session: {e}")))?;
        let actor = local.actor.clone();
        let sessions = self.router().sessions();
        if extra {
            if !sessions.insert_extra(local) {
                actor.stop(Some("too many tournament sessions".into()));
                return Err(SpawnReply::TooManySessions);
            }
            return Ok(None);
        }
        let replaced = sessions.insert(local);
        let entry = OnlineUser {
            node: self.node_name().into(),
            ..entry
        };
        self.router().users().insert(entry);
        Ok(replaced)
    }

    /// Starts a lost session again from its record (under the spawning lock). Refused
    /// when there is no current record for exactly this session, or the account may no
    /// longer log in: then the client is told to log in again, as before.
    async fn rebuild_session(&self, user_id: i32, session_id: u64) -> SpawnReply {
        if self
            .router()
            .sessions()
            .session(user_id, session_id)
            .is_some()
        {
            return SpawnReply::Started;
        }
        let refuse = |why: &str| SpawnReply::Refused(why.to_owned());
        let db = self.db();
        let record = match db.session_record(user_id).await {
            Ok(Some(r)) if r.session_id == session_id => r,
            Ok(_) => return refuse("no record of this session"),
            Err(e) => return refuse(&e.to_string()),
        };
        if peace_db::unix_now() - record.refreshed_at > crate::user::record::RECORD_TTL_SECS {
            return refuse("the session record is stale");
        }
        let user = match db.user_by_id(user_id).await {
            Ok(Some(u)) => u,
            Ok(None) => return refuse("no such account"),
            Err(e) => return refuse(&e.to_string()),
        };
        let privileges = user.privileges();
        if !privileges.contains(peace_db::Privileges::NORMAL)
            || privileges.contains(peace_db::Privileges::BOT)
        {
            return refuse("the account may not log in");
        }
        let (stats, relationships) =
            match (db.stats(user_id, 0).await, db.relationships(user_id).await) {
                (Ok(s), Ok(r)) => (s, r),
                (Err(e), _) | (_, Err(e)) => return refuse(&e.to_string()),
            };
        let rank = db.global_rank(0, stats.pp).await.unwrap_or(0);
        let utc_offset = i8::try_from(record.utc_offset).unwrap_or(0);
        let mut state = UserState::new(&user, session_id, utc_offset, stats, rank);
        state.privileges =
            crate::user::session_privileges(state.privileges, self.config().supporter_for_everyone);
        state.friends = relationships.friends.iter().copied().collect();
        state.blocked = relationships.blocked.iter().copied().collect();
        state.block_non_friend_dms = record.block_non_friend_dms;
        let channels: Vec<String> = record
            .channels
            .iter()
            .filter(|c| self.channel_definitions().iter().any(|d| &d.name == *c))
            .cloned()
            .collect();
        let restricted = privileges.is_restricted();
        let (presence, stats) = (state.presence_packet(), state.stats_packet());
        let supervisor = match self.live_supervisor() {
            Ok(s) => s,
            Err(e) => return refuse(&e.to_string()),
        };
        // Online again everywhere before the session rejoins its channels: a node that
        // learns only now that the old node died must see the session back on this node,
        // or it would take it for one of the dead node's and drop it from its channels.
        self.router().users().insert(OnlineUser {
            id: user_id,
            name: user.name.as_str().into(),
            session_id,
            privileges,
            presence: presence.clone(),
            stats: stats.clone(),
            login_time: peace_db::unix_now(),
            hidden: restricted,
            node: self.node_name().into(),
        });
        let local = match Session::start(
            self.session_ports(),
            state,
            Start::Rebuilt(channels),
            supervisor,
        )
        .await
        {
            Ok(local) => local,
            Err(e) => {
                self.router().users().remove_session(user_id, session_id);
                return refuse(&e.to_string());
            }
        };
        self.router().sessions().insert(local);
        tracing::info!(
            user = user_id,
            "session rebuilt from its record after its node was lost"
        );
        SpawnReply::Started
    }

    /// A newer login replaced `old`: keep its last packets for its client's next poll.
    async fn retire(&self, old: LocalSession) {
        let reason = "You have logged in from another location.".to_owned();
        let call = UserCall::Retire { reason };
        let timeout = self.config().call_timeout;
        let make = |reply| EntityMsg::Call(call, reply);
        match crate::message::call_counted(&old.actor, "user", make, timeout).await {
            Ok(ractor::rpc::CallResult::Success(UserReply::Packets(bytes))) => {
                self.session_ports()
                    .retired
                    .remember(old.user_id, old.session_id, bytes);
            }
            other => {
                tracing::warn!(
                    user = old.user_id,
                    "replaced session did not retire cleanly: {other:?}"
                );
                old.actor.stop(Some("replaced".into()));
            }
        }
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
        let actor = crate::ports::host(state, self.channel_ports(), supervisor).await?;
        self.router().channels().insert(name.to_owned(), actor);
        Ok(())
    }

    async fn open_spectator_room(&self, host_id: i32) -> Result<SpawnReply, ractor::SpawnErr> {
        if self.router().spectate().contains(&host_id) {
            return Ok(SpawnReply::Exists);
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
        let room = crate::ports::host(state, self.ports(), supervisor).await?;
        self.router().spectate().insert(host_id, room);
        Ok(SpawnReply::Started)
    }

    async fn open_match(
        &self,
        match_id: u16,
        settings: &MatchData,
        host_id: i32,
        host_name: &str,
    ) -> Result<SpawnReply, ractor::SpawnErr> {
        let id = i32::from(match_id);
        if self.router().matches().contains(&id) {
            return Ok(SpawnReply::Exists);
        }
        if self.router().matches().len() >= crate::match_room::MAX_MATCHES {
            return Ok(SpawnReply::Refused(
                "this node has too many matches open".into(),
            ));
        }
        let supervisor = self.live_supervisor()?;
        let state = MatchState::create(match_id, settings, host_id, host_name);
        let data = state.data.clone();
        self.open_instance_channel(
            &crate::match_room::channel_name(id),
            crate::match_room::CHANNEL_DISPLAY_NAME,
            &data.name,
        )
        .await?;
        let actor = crate::ports::host(state, self.match_ports(), supervisor).await?;
        self.router().matches().insert(id, actor);
        tracing::info!(match_id = id, host = host_id, "match created");
        Ok(SpawnReply::MatchStarted(Box::new(data)))
    }

    /// Stops a local actor of any kind (a stray in a shard this node no longer owns).
    pub(crate) fn stop_strays(&self) {
        let owned = self.router().placement().owned_shards();
        let lost: std::collections::BTreeSet<Shard> = (0..crate::cluster::shard::SHARD_COUNT)
            .filter(|s| !owned.contains(s))
            .collect();
        let router = self.router();
        let reason = || Some("its shard moved to another node".to_owned());
        let mut stopped = 0usize;
        for session in router.sessions().all() {
            if lost.contains(&crate::cluster::shard::shard_of(&EntityKey::User(
                session.user_id,
            ))) {
                session.actor.stop(reason());
                stopped += 1;
            }
        }
        for kind in router.kinds() {
            stopped += kind.stop_in(&lost, "its shard moved to another node");
        }
        if stopped > 0 {
            tracing::warn!(stopped, "stopped entities whose shards this node lost");
        }
    }
}
