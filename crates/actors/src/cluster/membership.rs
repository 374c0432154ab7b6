//! Membership: which nodes are up, and the coordinator's duties.
//!
//! Every [`ClusterConfig::heartbeat`] the membership actor of each node
//! 1. finds the peers' routers in the pg groups that ractor_cluster keeps in sync,
//! 2. asks each for its [`NodeStatus`] (the heartbeat); a peer that has not answered for
//!    [`ClusterConfig::down_after`] is marked down, its players are forgotten, and the
//!    coordinator hands its shards to live nodes,
//! 3. reconnects to seeds and known peers it is not connected to (ractor_cluster does
//!    not reconnect by itself),
//! 4. adopts a newer shard table if a peer has one, and
//! 5. if it is the coordinator (the longest-running live node that hosts entities),
//!    deals the first table, re-homes shards of nodes that are gone, and moves empty
//!    shards to nodes that have too few.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef};
use ractor_cluster::{NodeServer, NodeServerMessage};

use super::envelope::{Answer, Body, RequestBody};
use super::node_router::{ROUTER_GROUP_PREFIX, RouterMsg};
use super::shard::{SHARD_COUNT, Shard, ShardTable, TableOrigin};
use super::status::NodeStatus;
use super::{AdminError, ClusterConfig, PeerReport, PeerState};
use crate::World;
use peace_sharding::tls::NodeTls;

/// Most peer addresses kept from what peers report (far more nodes than a cluster has).
const MAX_LEARNED_PEERS: usize = 256;

/// The membership actor.
#[derive(Debug)]
pub struct Membership;

#[derive(Debug)]
pub enum MembershipMsg {
    Tick,
    /// Drain a node (this node is the coordinator).
    Drain(String, ractor::RpcReplyPort<Result<(), AdminError>>),
    /// End the drains and even the load out (this node is the coordinator).
    Rebalance(ractor::RpcReplyPort<Result<(), AdminError>>),
}

impl ractor::Message for MembershipMsg {}

#[derive(Debug)]
struct Peer {
    router: Option<ActorRef<RouterMsg>>,
    state: PeerState,
    status: Option<NodeStatus>,
    last_ok: Option<Instant>,
    first_seen: Instant,
}

#[derive(Debug)]
pub struct MembershipState {
    world: World,
    config: ClusterConfig,
    started: Instant,
    server: Option<ActorRef<NodeServerMessage>>,
    /// TLS to peers, if configured.
    tls: Option<NodeTls>,
    /// Cluster addresses the peers reported (with TLS, how nodes find each other).
    learned: BTreeSet<String>,
    peers: BTreeMap<String, Peer>,
    /// Addresses with a connection attempt under way.
    connecting: Arc<Mutex<HashSet<SocketAddr>>>,
    /// An operator asked for a rebalance: even the load out even if automatic
    /// rebalancing is off.
    rebalance_requested: bool,
}

impl Actor for Membership {
    type Msg = MembershipMsg;
    type State = MembershipState;
    type Arguments = (World, ClusterConfig);

    async fn pre_start(
        &self,
        myself: ActorRef<MembershipMsg>,
        (world, config): Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let tls = config.tls.as_ref().map(NodeTls::load).transpose()?;
        let server = match config.listen {
            Some(listen) => Some(start_node_server(&config, listen, tls.as_ref()).await?),
            None => None,
        };
        let state = MembershipState {
            world,
            started: Instant::now(),
            server,
            tls,
            learned: BTreeSet::new(),
            peers: BTreeMap::new(),
            connecting: Arc::default(),
            rebalance_requested: false,
            config,
        };
        // The first tick at once, so that a node of one is placed before it serves.
        myself.send_interval(state.config.heartbeat, || MembershipMsg::Tick);
        let _ = myself.cast(MembershipMsg::Tick);
        Ok(state)
    }

    async fn handle(
        &self,
        _myself: ActorRef<MembershipMsg>,
        msg: MembershipMsg,
        state: &mut MembershipState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            // A heartbeat that panics is skipped; the next one comes a heartbeat later.
            MembershipMsg::Tick => {
                peace_sharding::task::contain("membership heartbeat", state.tick()).await;
            }
            MembershipMsg::Drain(node, reply) => {
                let _ = reply.send(state.drain(&node));
            }
            MembershipMsg::Rebalance(reply) => {
                let _ = reply.send(state.rebalance());
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<MembershipMsg>,
        state: &mut MembershipState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(server) = &state.server {
            server.stop(Some("node shutting down".into()));
        }
        Ok(())
    }
}

/// Starts ractor_cluster's listener and logs its connection events.
async fn start_node_server(
    config: &ClusterConfig,
    listen: SocketAddr,
    tls: Option<&NodeTls>,
) -> Result<ActorRef<NodeServerMessage>, ActorProcessingErr> {
    let advertise = config.advertised();
    let host = advertise
        .rsplit_once(':')
        .map_or(advertise.as_str(), |(h, _)| h)
        .to_owned();
    let server = NodeServer::new(
        listen.port(),
        config.cookie.clone(),
        config.node_name.clone(),
        host,
        tls.map(|t| ractor_cluster::IncomingEncryptionMode::Tls(t.acceptor.clone())),
        // ractor_cluster dials transitive peers without TLS; with TLS the membership
        // finds them through its peers instead (`learn_peers`).
        Some(if tls.is_some() {
            ractor_cluster::node::NodeConnectionMode::Isolated
        } else {
            ractor_cluster::node::NodeConnectionMode::Transitive
        }),
    )
    .with_listen_addr(listen.ip())
    .with_max_inbound_frame_size(super::envelope::MAX_DOCUMENT_BYTES as u64 + 4096);
    let (server, _) = Actor::spawn(None, server, ()).await?;
    let _ = server.cast(NodeServerMessage::SubscribeToEvents {
        id: "peace-membership".into(),
        subscription: Box::new(peace_sharding::connection_log::ConnectionLog::default()),
    });
    tracing::info!(%listen, advertise = %advertise, tls = tls.is_some(), "cluster listener started");
    Ok(server)
}

impl MembershipState {
    fn me(&self) -> &str {
        &self.config.node_name
    }

    async fn tick(&mut self) {
        self.world.expire_flushes();
        self.discover_routers();
        self.heartbeat().await;
        self.learn_peers().await;
        self.reconnect().await;
        self.adopt_newer_table().await;
        if self.is_coordinator() {
            self.coordinate().await;
        }
        self.publish_view();
    }

    /// Finds each peer's router in its pg group.
    fn discover_routers(&mut self) {
        let now = Instant::now();
        for group in ractor::pg::which_groups() {
            let Some(name) = group.strip_prefix(ROUTER_GROUP_PREFIX) else {
                continue;
            };
            if name == self.me() {
                continue;
            }
            // The newest member: after a reconnection the old proxy may linger. (A member
            // that is local is another node in this same process, as tests run them.)
            let Some(cell) = ractor::pg::get_members(&group)
                .into_iter()
                .max_by_key(|c| (!c.get_id().is_local(), c.get_id().pid()))
            else {
                continue;
            };
            let router: ActorRef<RouterMsg> = cell.into();
            let peer = self.peers.entry(name.to_owned()).or_insert_with(|| Peer {
                router: None,
                state: PeerState::Joining,
                status: None,
                last_ok: None,
                first_seen: now,
            });
            let changed = peer
                .router
                .as_ref()
                .is_none_or(|r| r.get_id() != router.get_id());
            peer.router = Some(router.clone());
            if changed && peer.state == PeerState::Up {
                // A new connection to a peer that was up: it may have forgotten us.
                self.world.router().net().connect(name, router);
                self.world.router().users().sync_to(name);
                let _ = self.world.router().net().send(name, Body::SyncRequest);
            }
        }
    }

    /// Asks every known peer for its status, all at once.
    async fn heartbeat(&mut self) {
        let timeout = self.config.heartbeat.max(Duration::from_millis(200));
        let net = self.world.router().net().clone();
        let mut asks = tokio::task::JoinSet::new();
        for (name, peer) in &self.peers {
            if let Some(router) = peer.router.clone() {
                let (name, net) = (name.clone(), net.clone());
                asks.spawn(async move {
                    let answer = net
                        .ask_via(&name, &router, RequestBody::Status, timeout)
                        .await;
                    (name, answer)
                });
            }
        }
        let mut answered = HashSet::new();
        while let Some(joined) = asks.join_next().await {
            let Ok((name, answer)) = joined else { continue };
            match answer {
                Ok(Answer::Status(status)) if status.name == name => {
                    answered.insert(name.clone());
                    self.peer_answered(&name, *status);
                }
                Ok(other) => tracing::warn!(peer = %name, "odd heartbeat answer: {other:?}"),
                Err(e) => tracing::debug!(peer = %name, "heartbeat failed: {e}"),
            }
        }
        let down_after = self.config.down_after;
        let silent: Vec<String> = self
            .peers
            .iter()
            .filter(|(name, p)| {
                !answered.contains(*name)
                    && p.state != PeerState::Down
                    && p.last_ok.unwrap_or(p.first_seen).elapsed() >= down_after
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in silent {
            self.peer_down(&name, "no heartbeat");
        }
    }

    fn peer_answered(&mut self, name: &str, status: NodeStatus) {
        let Some(peer) = self.peers.get_mut(name) else {
            return;
        };
        let restarted = peer
            .status
            .as_ref()
            .is_some_and(|old| old.started_ms != status.started_ms);
        let was_up = peer.state == PeerState::Up;
        peer.last_ok = Some(Instant::now());
        peer.status = Some(status);
        if restarted && was_up {
            // The node restarted between two heartbeats: its old sessions are gone.
            self.peer_down(name, "restarted");
        }
        let Some(peer) = self.peers.get_mut(name) else {
            return;
        };
        if peer.state != PeerState::Up {
            peer.state = PeerState::Up;
            let router = peer.router.clone();
            tracing::info!(peer = %name, "node is up");
            let router_net = self.world.router().net();
            if let Some(router) = router {
                router_net.connect(name, router);
            }
            self.world.router().users().sync_to(name);
            let _ = router_net.send(name, Body::SyncRequest);
        }
    }

    fn peer_down(&mut self, name: &str, why: &str) {
        let Some(peer) = self.peers.get_mut(name) else {
            return;
        };
        if peer.state == PeerState::Down {
            return;
        }
        peer.state = PeerState::Down;
        tracing::warn!(peer = %name, why, "node is down");
        self.world.router().net().disconnect(name);
        self.world.forget_node(name);
    }

    /// With TLS (no transitive connections): asks each live peer which nodes it is
    /// connected to, so that a node that joined through one seed connects to all.
    async fn learn_peers(&mut self) {
        if self.tls.is_none() {
            return;
        }
        let timeout = self.config.heartbeat.max(Duration::from_millis(200));
        let net = self.world.router().net().clone();
        let mut asks = tokio::task::JoinSet::new();
        for (name, _) in self.up_peers() {
            let (name, net) = (name.clone(), net.clone());
            asks.spawn(async move { net.ask(&name, RequestBody::Peers, timeout).await });
        }
        let own = self.config.advertised();
        while let Some(joined) = asks.join_next().await {
            if let Ok(Ok(Answer::Peers(addrs))) = joined {
                let fresh = addrs.into_iter().filter(|a| *a != own && !a.is_empty());
                self.learned.extend(fresh.take(MAX_LEARNED_PEERS));
            }
        }
        // Bounded whatever peers report.
        while self.learned.len() > MAX_LEARNED_PEERS {
            self.learned.pop_last();
        }
    }

    /// Connects to the seeds and known peers that are not connected.
    async fn reconnect(&mut self) {
        let Some(server) = self.server.clone() else {
            return;
        };
        let connected: HashSet<SocketAddr> = match ractor::call_t!(
            server,
            NodeServerMessage::GetSessions,
            self.config.heartbeat.as_millis().max(200) as u64
        ) {
            Ok(sessions) => {
                let mut addrs = HashSet::new();
                for s in sessions.values() {
                    if let Some(name) = &s.peer_name {
                        addrs.extend(resolve(&name.connection_string).await);
                    }
                }
                addrs
            }
            Err(e) => {
                tracing::warn!("cluster listener did not answer: {e}");
                return;
            }
        };
        let mut wanted: Vec<String> = self.config.seeds.clone();
        wanted.extend(self.learned.iter().cloned());
        wanted.extend(
            self.peers
                .values()
                .filter(|p| p.state != PeerState::Up)
                .filter_map(|p| p.status.as_ref())
                .map(|s| s.cluster_addr.clone())
                .filter(|a| !a.is_empty()),
        );
        let own: HashSet<SocketAddr> = resolve(&self.config.advertised())
            .await
            .into_iter()
            .collect();
        for target in wanted {
            for addr in resolve(&target).await {
                if connected.contains(&addr)
                    || own.contains(&addr)
                    || self.config.listen == Some(addr)
                {
                    continue;
                }
                if !self
                    .connecting
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(addr)
                {
                    continue;
                }
                let (server, connecting) = (server.clone(), self.connecting.clone());
                let limit = self.config.down_after;
                let tls = self.tls.clone();
                tokio::spawn(async move {
                    let connect = async {
                        match tls {
                            Some(t) => {
                                ractor_cluster::client_connect_enc(
                                    &server,
                                    addr,
                                    t.connector,
                                    t.server_name,
                                )
                                .await
                            }
                            None => ractor_cluster::client_connect(&server, addr).await,
                        }
                    };
                    match tokio::time::timeout(limit, connect).await {
                        Ok(Ok(())) => tracing::debug!(%addr, "connecting to a peer"),
                        Ok(Err(e)) => tracing::debug!(%addr, "peer not reachable: {e}"),
                        Err(_) => tracing::debug!(%addr, "connecting to a peer timed out"),
                    }
                    connecting
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&addr);
                });
            }
        }
    }

    fn up_peers(&self) -> impl Iterator<Item = (&String, &NodeStatus)> {
        self.peers
            .iter()
            .filter(|(_, p)| p.state == PeerState::Up)
            .filter_map(|(n, p)| p.status.as_ref().map(|s| (n, s)))
    }

    /// Installs a table a peer has if it supersedes ours.
    async fn adopt_newer_table(&mut self) {
        let mine = self.world.router().placement().table();
        let newer: Option<String> = self
            .up_peers()
            .filter(|(_, s)| match (&s.table, &mine) {
                (Some((origin, epoch)), Some(t)) => {
                    origin < &t.origin || (origin == &t.origin && *epoch > t.epoch)
                }
                (Some(_), None) => true,
                (None, _) => false,
            })
            .map(|(n, _)| n.clone())
            .next();
        let Some(peer) = newer else { return };
        let net = self.world.router().net().clone();
        match net
            .ask(&peer, RequestBody::Table, self.config.heartbeat)
            .await
        {
            Ok(Answer::Table(Some(table))) => self.world.install_table(table),
            Ok(_) => {}
            Err(e) => tracing::debug!(%peer, "could not fetch the shard table: {e}"),
        }
    }

    /// Nodes that host entities and are up, with their start times, this one included,
    /// oldest first.
    fn live_actor_nodes(&self) -> Vec<(i64, String)> {
        let mut live: Vec<(i64, String)> = self
            .up_peers()
            .filter(|(_, s)| s.roles.actors)
            .map(|(n, s)| (s.started_ms, n.clone()))
            .collect();
        if self.config.roles.actors {
            live.push((self.world.started_ms(), self.me().to_owned()));
        }
        live.sort();
        live
    }

    /// Live actor nodes that take work: those not being drained.
    fn targets(&self, table: Option<&ShardTable>) -> Vec<String> {
        self.live_actor_nodes()
            .into_iter()
            .filter(|(started, n)| table.is_none_or(|t| !t.is_draining(n, *started)))
            .map(|(_, n)| n)
            .collect()
    }

    /// The longest-running live node that hosts entities and is not being drained (if
    /// every one is, the longest-running one).
    fn coordinator(&self) -> Option<String> {
        let table = self.world.router().placement().table();
        self.targets(table.as_deref())
            .into_iter()
            .next()
            .or_else(|| self.live_actor_nodes().into_iter().next().map(|(_, n)| n))
    }

    fn is_coordinator(&self) -> bool {
        self.coordinator().as_deref() == Some(self.me())
    }

    async fn coordinate(&mut self) {
        let placement = self.world.router().placement().clone();
        let Some(table) = placement.table() else {
            let live: Vec<String> = self.targets(None);
            let waited = self.started.elapsed() >= self.config.join_grace;
            if !live.is_empty() && (self.config.seeds.is_empty() || waited) {
                let origin = TableOrigin {
                    started_ms: self.world.started_ms(),
                    node: self.me().to_owned(),
                };
                let table = ShardTable::deal(origin, &live);
                tracing::info!(nodes = ?live, "dealing the first shard table");
                self.publish(table);
            }
            return;
        };
        // Never change a table some peer has a newer version of: adopt it first.
        let behind = self.up_peers().any(|(_, s)| {
            s.table
                .as_ref()
                .is_some_and(|(o, e)| o != &table.origin || *e > table.epoch)
        });
        if behind {
            return;
        }
        let alive: BTreeSet<String> = self
            .live_actor_nodes()
            .into_iter()
            .map(|(_, n)| n)
            .collect();
        let targets = self.targets(Some(&table));
        let targets = if targets.is_empty() {
            alive.iter().cloned().collect()
        } else {
            targets
        };
        let mut load: BTreeMap<String, usize> = targets.iter().map(|n| (n.clone(), 0)).collect();
        let mut orphans = Vec::new();
        let mut draining: BTreeMap<String, Vec<Shard>> = BTreeMap::new();
        for shard in 0..SHARD_COUNT {
            let owner = table.owner(shard);
            match load.get_mut(owner) {
                Some(n) => *n += 1,
                None if alive.contains(owner) => {
                    draining.entry(owner.to_owned()).or_default().push(shard)
                }
                None => orphans.push(shard),
            }
        }
        // Shards of nodes that are gone: their entities are lost; re-home them at once.
        if !orphans.is_empty() {
            let mut moves = Vec::new();
            for shard in orphans {
                let Some((node, n)) = load.iter_mut().min_by_key(|(_, n)| **n) else {
                    return;
                };
                *n += 1;
                moves.push((shard, node.clone()));
            }
            tracing::info!(
                shards = moves.len(),
                "re-homing the shards of nodes that are gone"
            );
            self.publish(table.with_moves(&moves));
            return;
        }
        // Shards of draining nodes: moved live, a batch per heartbeat.
        if let Some((from, shards)) = draining.into_iter().next() {
            let Some((to, _)) = load.iter().min_by_key(|(_, n)| **n) else {
                return;
            };
            let to = to.clone();
            let batch = self.config.rebalance_batch;
            self.move_shards(&table, &from, &to, shards, batch).await;
            return;
        }
        if (self.config.auto_rebalance || self.rebalance_requested)
            && !self.balance(&table, &load).await
        {
            self.rebalance_requested = false;
        }
    }

    /// Moves shards from the most loaded node to the least loaded one, a batch per
    /// heartbeat; false when the load is even.
    async fn balance(&mut self, table: &ShardTable, load: &BTreeMap<String, usize>) -> bool {
        let nodes = load.len().max(1);
        let fair_low = usize::from(SHARD_COUNT) / nodes;
        let fair_high = usize::from(SHARD_COUNT).div_ceil(nodes);
        let Some((from, &most)) = load.iter().max_by_key(|(_, n)| **n) else {
            return false;
        };
        let Some((to, &least)) = load.iter().min_by_key(|(_, n)| **n) else {
            return false;
        };
        if most <= fair_high && least >= fair_low {
            return false;
        }
        let wanted = (most - fair_low)
            .min(fair_high.saturating_sub(least))
            .min(self.config.rebalance_batch)
            .max(1);
        let (from, to) = (from.clone(), to.clone());
        let candidates = table.shards_of(&from);
        self.move_shards(table, &from, &to, candidates, wanted)
            .await;
        true
    }

    /// Asks `from` to give up to `limit` of `candidates` to `to` (empty ones first, the
    /// rest moved live), then publishes the new owners.
    async fn move_shards(
        &mut self,
        table: &ShardTable,
        from: &str,
        to: &str,
        candidates: Vec<Shard>,
        limit: usize,
    ) {
        let timeout = self
            .config
            .heartbeat
            .max(self.world.config().call_timeout)
            .max(Duration::from_secs(10));
        let released = if from == self.me() {
            self.world.release_shards(&candidates, to, limit).await
        } else {
            let body = RequestBody::Release {
                shards: candidates,
                to: to.to_owned(),
                limit: u16::try_from(limit).unwrap_or(u16::MAX),
            };
            match self.world.router().net().ask(from, body, timeout).await {
                Ok(Answer::Released(shards)) => shards,
                Ok(_) => Vec::new(),
                Err(e) => {
                    tracing::debug!(node = %from, "release failed: {e}");
                    Vec::new()
                }
            }
        };
        let released: BTreeSet<Shard> = released.into_iter().collect();
        if released.is_empty() {
            return;
        }
        let moves: Vec<(Shard, String)> = released.iter().map(|&s| (s, to.to_owned())).collect();
        tracing::info!(%from, %to, shards = moves.len(), "moving shards");
        // The table may have changed while the shards moved (a drain, say): build on the
        // newest one.
        let current = self
            .world
            .router()
            .placement()
            .table()
            .map_or_else(|| table.clone(), |t| (*t).clone());
        self.publish(current.with_moves(&moves));
    }

    /// Marks `node` as draining (the coordinator's side of a drain request).
    fn drain(&mut self, node: &str) -> Result<(), AdminError> {
        if !self.is_coordinator() {
            return Err(AdminError::NotCoordinator);
        }
        let table = self
            .world
            .router()
            .placement()
            .table()
            .ok_or(AdminError::NoTable)?;
        let started = if node == self.me() {
            self.world.started_ms()
        } else {
            self.up_peers()
                .find(|(n, _)| n.as_str() == node)
                .map(|(_, s)| s.started_ms)
                .ok_or_else(|| AdminError::NoSuchNode(node.to_owned()))?
        };
        if table.is_draining(node, started) {
            return Ok(());
        }
        let mut draining = table.draining.clone();
        draining.insert(node.to_owned(), started);
        tracing::info!(%node, "draining");
        self.publish(table.with_draining(draining));
        Ok(())
    }

    /// Ends every drain and evens the load out (the coordinator's side).
    fn rebalance(&mut self) -> Result<(), AdminError> {
        if !self.is_coordinator() {
            return Err(AdminError::NotCoordinator);
        }
        let table = self
            .world
            .router()
            .placement()
            .table()
            .ok_or(AdminError::NoTable)?;
        if !table.draining.is_empty() {
            self.publish(table.with_draining(Default::default()));
        }
        self.rebalance_requested = true;
        tracing::info!("rebalancing");
        Ok(())
    }

    /// Installs a table here and sends it to every peer.
    fn publish(&self, table: ShardTable) {
        self.world.install_table(table.clone());
        self.world.router().net().send_all(&Body::Table(table));
    }

    /// What the cluster API shows.
    fn publish_view(&self) {
        let coordinator = self.coordinator();
        let peers = self
            .peers
            .iter()
            .map(|(name, p)| PeerReport {
                name: name.clone(),
                state: p.state,
                status: p.status.clone(),
            })
            .collect();
        self.world.cluster().set_view(peers, coordinator);
    }
}

/// The socket addresses `target` (`host:port`) resolves to; none if it does not.
async fn resolve(target: &str) -> Vec<SocketAddr> {
    match tokio::net::lookup_host(target).await {
        Ok(addrs) => addrs.collect(),
        Err(e) => {
            tracing::debug!(%target, "cannot resolve: {e}");
            Vec::new()
        }
    }
}
