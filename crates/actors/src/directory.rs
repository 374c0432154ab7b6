//! Who is online anywhere in the cluster: the read model other sessions need without
//! asking the player's session (name, privileges, encoded presence and stats, and the
//! node the session lives on).
//!
//! Every node holds a full copy. Only the node that hosts a session changes its entry,
//! and each change is sent to every peer as a [`DirectoryEvent`] *while the lock is
//! held*, so that each peer sees one node's changes in the order they were made. A peer
//! that comes up is sent a snapshot of this node's entries the same way, and a node that
//! goes down has its entries purged by everyone.
//!
//! Every change of a visible player's entry, whichever node made it, is also published
//! in this node's [`PresenceFeed`]: the sessions here catch up with it when their client
//! polls, so a login costs one entry per node rather than a message to every session.
//!
//! The lock is a `std` RwLock, not a tokio one: every critical section is a short map
//! operation with no `.await` inside, and readers (presence requests, logins) vastly
//! outnumber writers.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::Bytes;
use peace_db::Privileges;
use serde::{Deserialize, Serialize};

use crate::cluster::Net;
use crate::cluster::envelope::Body;
use crate::presence::PresenceFeed;

/// Most entries a snapshot from one peer may hold.
pub const MAX_SNAPSHOT_ENTRIES: usize = 1_000_000;

/// One online user as others see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnlineUser {
    pub id: i32,
    pub name: Arc<str>,
    pub session_id: u64,
    pub privileges: Privileges,
    /// The encoded USER_PRESENCE packet.
    pub presence: Bytes,
    /// The encoded USER_STATS packet.
    pub stats: Bytes,
    pub login_time: i64,
    /// Restricted players are online but invisible to others.
    pub hidden: bool,
    /// The node hosting the session.
    pub node: Arc<str>,
}

impl OnlineUser {
    /// Whether other players would see the two entries alike: the same session with the
    /// same presence, wherever it is hosted.
    fn looks_the_same_as(&self, other: &OnlineUser) -> bool {
        self.id == other.id
            && self.session_id == other.session_id
            && self.name == other.name
            && self.privileges == other.privileges
            && self.presence == other.presence
            && self.stats == other.stats
            && self.hidden == other.hidden
    }
}

/// A change to the entries of the node that sends it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum DirectoryEvent {
    Online(Box<OnlineUser>),
    Offline {
        user_id: i32,
        session_id: u64,
    },
    Update {
        user_id: i32,
        presence: Option<Bytes>,
        stats: Option<Bytes>,
    },
    /// All of the sender's entries; replaces what the receiver knew of them.
    Snapshot(Vec<OnlineUser>),
}

#[derive(Debug, Default)]
struct Tables {
    by_id: HashMap<i32, OnlineUser>,
    /// `safe_name` → id, for private messages addressed by name.
    by_name: HashMap<String, i32>,
}

impl Tables {
    fn insert(&mut self, user: OnlineUser) -> Option<OnlineUser> {
        self.by_name
            .insert(peace_db::safe_name(&user.name), user.id);
        self.by_id.insert(user.id, user)
    }

    fn remove(&mut self, user_id: i32) -> Option<OnlineUser> {
        let user = self.by_id.remove(&user_id)?;
        let safe = peace_db::safe_name(&user.name);
        if self.by_name.get(&safe) == Some(&user_id) {
            self.by_name.remove(&safe);
        }
        Some(user)
    }

    fn update(&mut self, user_id: i32, presence: Option<Bytes>, stats: Option<Bytes>) {
        if let Some(u) = self.by_id.get_mut(&user_id) {
            if let Some(p) = presence {
                u.presence = p;
            }
            if let Some(s) = stats {
                u.stats = s;
            }
        }
    }
}

/// The table of online users. Cloning shares it.
#[derive(Debug, Clone)]
pub struct Directory {
    tables: Arc<RwLock<Tables>>,
    net: Net,
    feed: Arc<PresenceFeed>,
}

impl Directory {
    pub(crate) fn new(net: Net) -> Self {
        Self {
            tables: Arc::default(),
            net,
            feed: Arc::default(),
        }
    }

    /// Whose presence changed lately (see [`crate::presence`]).
    pub fn feed(&self) -> &PresenceFeed {
        &self.feed
    }

    /// Tells this node's sessions that `user`'s entry changed (came, went, or changed),
    /// unless nobody may see them.
    fn changed(&self, user: &OnlineUser) {
        if !user.hidden {
            self.feed.publish(user.id);
        }
    }

    /// Feeds a new entry, unless it only says that the same session moved to another
    /// node: players see nothing of a move, so nothing is announced (a drain would
    /// otherwise send every player the presence of everyone who moved).
    fn changed_from(&self, old: Option<&OnlineUser>, new: &OnlineUser) {
        if old.is_none_or(|old| !old.looks_the_same_as(new)) {
            self.changed(new);
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Tables> {
        // A panic while holding the lock cannot leave the maps half-updated (each write is
        // a single insert/remove), so a poisoned lock is still safe to use.
        self.tables.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Tables> {
        self.tables.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes a change of this node's entries to every peer. Called with the write
    /// lock held, which is what keeps each peer's copy in order.
    fn publish(&self, event: DirectoryEvent) {
        self.net.send_all(&Body::Directory(event));
    }

    /// Adds a session hosted here, returning the entry it replaces.
    pub fn insert(&self, user: OnlineUser) -> Option<OnlineUser> {
        let mut t = self.write();
        let old = t.insert(user.clone());
        self.changed_from(old.as_ref(), &user);
        self.publish(DirectoryEvent::Online(Box::new(user)));
        old
    }

    /// Removes the user if `session_id` is still their current session; a stale session
    /// (already replaced) must not remove its successor.
    pub fn remove_session(&self, user_id: i32, session_id: u64) -> Option<OnlineUser> {
        let mut t = self.write();
        if t.by_id
            .get(&user_id)
            .is_none_or(|u| u.session_id != session_id)
        {
            return None;
        }
        let user = t.remove(user_id);
        if let Some(u) = &user {
            self.changed(u);
        }
        self.publish(DirectoryEvent::Offline {
            user_id,
            session_id,
        });
        user
    }

    /// Replaces a user's encoded presence and/or stats.
    pub fn update(&self, user_id: i32, presence: Option<Bytes>, stats: Option<Bytes>) {
        let mut t = self.write();
        t.update(user_id, presence.clone(), stats.clone());
        if let Some(u) = t.by_id.get(&user_id) {
            self.changed(u);
        }
        self.publish(DirectoryEvent::Update {
            user_id,
            presence,
            stats,
        });
    }

    /// Applies a change sent by `node` to its own entries.
    pub(crate) fn apply(&self, node: &str, event: DirectoryEvent) {
        let mut t = self.write();
        match event {
            DirectoryEvent::Online(user) => {
                let user = OnlineUser {
                    node: node.into(),
                    ..*user
                };
                let old = t.insert(user.clone());
                self.changed_from(old.as_ref(), &user);
            }
            DirectoryEvent::Offline {
                user_id,
                session_id,
            } => {
                if t.by_id
                    .get(&user_id)
                    .is_some_and(|u| u.session_id == session_id && &*u.node == node)
                    && let Some(u) = t.remove(user_id)
                {
                    self.changed(&u);
                }
            }
            DirectoryEvent::Update {
                user_id,
                presence,
                stats,
            } => {
                if t.by_id.get(&user_id).is_some_and(|u| &*u.node == node) {
                    t.update(user_id, presence, stats);
                    if let Some(u) = t.by_id.get(&user_id) {
                        self.changed(u);
                    }
                }
            }
            DirectoryEvent::Snapshot(users) => {
                let stale: Vec<i32> = t
                    .by_id
                    .values()
                    .filter(|u| &*u.node == node)
                    .map(|u| u.id)
                    .collect();
                for id in stale {
                    if let Some(u) = t.remove(id) {
                        self.changed(&u);
                    }
                }
                let node: Arc<str> = node.into();
                for user in users.into_iter().take(MAX_SNAPSHOT_ENTRIES) {
                    let user = OnlineUser {
                        node: node.clone(),
                        ..user
                    };
                    self.changed(&user);
                    t.insert(user);
                }
            }
        }
    }

    /// Sends `peer` a snapshot of the entries of this node (a peer came up).
    pub(crate) fn sync_to(&self, peer: &str) {
        let t = self.read();
        let me = self.net.me();
        let mine: Vec<OnlineUser> = t
            .by_id
            .values()
            .filter(|u| &*u.node == me)
            .cloned()
            .collect();
        if let Err(e) = self
            .net
            .send(peer, Body::Directory(DirectoryEvent::Snapshot(mine)))
        {
            tracing::warn!(%peer, "directory snapshot not sent: {e}");
        }
    }

    /// Forgets everyone whose session lived on `node` (it went down); returns them.
    pub(crate) fn purge_node(&self, node: &str) -> Vec<OnlineUser> {
        let mut t = self.write();
        let gone: Vec<i32> = t
            .by_id
            .values()
            .filter(|u| &*u.node == node)
            .map(|u| u.id)
            .collect();
        let gone: Vec<OnlineUser> = gone.into_iter().filter_map(|id| t.remove(id)).collect();
        for u in &gone {
            self.changed(u);
        }
        gone
    }

    pub fn get(&self, user_id: i32) -> Option<OnlineUser> {
        self.read().by_id.get(&user_id).cloned()
    }

    /// A visible online user by name (a hidden one looks offline).
    pub fn by_name(&self, name: &str) -> Option<OnlineUser> {
        let t = self.read();
        let id = t.by_name.get(&peace_db::safe_name(name))?;
        t.by_id.get(id).filter(|u| !u.hidden).cloned()
    }

    /// A visible online user by id (a hidden one looks offline).
    pub fn visible(&self, user_id: i32) -> Option<OnlineUser> {
        self.read()
            .by_id
            .get(&user_id)
            .filter(|u| !u.hidden)
            .cloned()
    }

    /// Everyone online in the cluster.
    pub fn len(&self) -> usize {
        self.read().by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A snapshot of everyone online, for iteration without holding the lock.
    pub fn snapshot(&self) -> Vec<OnlineUser> {
        self.read().by_id.values().cloned().collect()
    }

    /// Calls `f` for everyone others may see online, under the read lock and without
    /// copying the entries (a login looks at everyone). `f` must not block or lock.
    pub fn for_each_visible(&self, mut f: impl FnMut(&OnlineUser)) {
        for u in self.read().by_id.values().filter(|u| !u.hidden) {
            f(u);
        }
    }

    /// Calls `f` for each of `ids` with their entry if they are online and visible, or
    /// `None`, under one read lock and without copying entries. `f` must not block or
    /// lock.
    pub fn lookup_visible(&self, ids: &[i32], mut f: impl FnMut(i32, Option<&OnlineUser>)) {
        let t = self.read();
        for &id in ids {
            f(id, t.by_id.get(&id).filter(|u| !u.hidden));
        }
    }

    /// A snapshot of everyone others may see online.
    pub fn visible_snapshot(&self) -> Vec<OnlineUser> {
        self.read()
            .by_id
            .values()
            .filter(|u| !u.hidden)
            .cloned()
            .collect()
    }
}
