//! Who is online on this node: each session's address and the read model other sessions
//! need without asking it (name, privileges, encoded presence and stats).
//!
//! The lock is a `std` RwLock, not a tokio one: every critical section is a short map
//! operation with no `.await` inside, and readers (presence requests, fan-out) vastly
//! outnumber writers (logins, status changes).

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::Bytes;
use peace_db::Privileges;
use ractor::{ActorId, ActorRef};

use crate::user::UserMsg;

/// One online user as others see them.
#[derive(Debug, Clone)]
pub struct OnlineUser {
    pub id: i32,
    pub name: Arc<str>,
    pub session_id: u64,
    pub privileges: Privileges,
    pub actor: ActorRef<UserMsg>,
    /// The encoded USER_PRESENCE packet.
    pub presence: Bytes,
    /// The encoded USER_STATS packet.
    pub stats: Bytes,
    pub login_time: i64,
    /// Restricted players are online but invisible to others.
    pub hidden: bool,
}

/// Most extra sessions one tournament account may hold.
pub const MAX_TOURNAMENT_SESSIONS: usize = 16;

#[derive(Debug, Default)]
struct Tables {
    by_id: HashMap<i32, OnlineUser>,
    /// Additional sessions of tournament accounts (the tournament client opens one per
    /// watched player). They are reachable by token but invisible to other players.
    extra: HashMap<(i32, u64), OnlineUser>,
    /// `safe_name` → id, for private messages addressed by name.
    by_name: HashMap<String, i32>,
}

/// The table of online users. Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    tables: Arc<RwLock<Tables>>,
}

impl Directory {
    fn read(&self) -> RwLockReadGuard<'_, Tables> {
        // A panic while holding the lock cannot leave the maps half-updated (each write is
        // a single insert/remove), so a poisoned lock is still safe to use.
        self.tables.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Tables> {
        self.tables.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a session, returning the one it replaces (a second login of the same user).
    pub fn insert(&self, user: OnlineUser) -> Option<OnlineUser> {
        let mut t = self.write();
        t.by_name.insert(peace_db::safe_name(&user.name), user.id);
        t.by_id.insert(user.id, user)
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
        let user = t.by_id.remove(&user_id)?;
        t.by_name.remove(&peace_db::safe_name(&user.name));
        Some(user)
    }

    pub fn get(&self, user_id: i32) -> Option<OnlineUser> {
        self.read().by_id.get(&user_id).cloned()
    }

    /// The session `session_id` of the user: their main one or an extra one.
    pub fn session(&self, user_id: i32, session_id: u64) -> Option<OnlineUser> {
        let t = self.read();
        match t.by_id.get(&user_id) {
            Some(u) if u.session_id == session_id => Some(u.clone()),
            _ => t.extra.get(&(user_id, session_id)).cloned(),
        }
    }

    /// Only the actor of session `session_id` of the user: what a poll needs, without
    /// copying the rest of the entry.
    pub fn session_actor(&self, user_id: i32, session_id: u64) -> Option<ActorRef<UserMsg>> {
        let t = self.read();
        match t.by_id.get(&user_id) {
            Some(u) if u.session_id == session_id => Some(u.actor.clone()),
            _ => t.extra.get(&(user_id, session_id)).map(|u| u.actor.clone()),
        }
    }

    /// Adds an extra session of a tournament account; false when it already holds
    /// [`MAX_TOURNAMENT_SESSIONS`].
    pub fn insert_extra(&self, user: OnlineUser) -> bool {
        let mut t = self.write();
        if t.extra.keys().filter(|(id, _)| *id == user.id).count() >= MAX_TOURNAMENT_SESSIONS {
            return false;
        }
        t.extra.insert((user.id, user.session_id), user);
        true
    }

    /// Removes an extra session; true if it was one.
    pub fn remove_extra(&self, user_id: i32, session_id: u64) -> bool {
        self.write().extra.remove(&(user_id, session_id)).is_some()
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

    /// Which online user (if any) an actor is the session of.
    pub fn by_actor(&self, actor: ActorId) -> Option<OnlineUser> {
        let t = self.read();
        t.by_id
            .values()
            .chain(t.extra.values())
            .find(|u| u.actor.get_id() == actor)
            .cloned()
    }

    pub fn len(&self) -> usize {
        self.read().by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Replaces a user's encoded presence and/or stats.
    pub fn update(&self, user_id: i32, presence: Option<Bytes>, stats: Option<Bytes>) {
        if let Some(u) = self.write().by_id.get_mut(&user_id) {
            if let Some(p) = presence {
                u.presence = p;
            }
            if let Some(s) = stats {
                u.stats = s;
            }
        }
    }

    /// A snapshot of everyone online, for iteration without holding the lock.
    pub fn snapshot(&self) -> Vec<OnlineUser> {
        self.read().by_id.values().cloned().collect()
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

    /// The actors of every online user for whom `keep` holds.
    pub fn actors_where(&self, keep: impl Fn(&OnlineUser) -> bool) -> Vec<ActorRef<UserMsg>> {
        self.read()
            .by_id
            .values()
            .filter(|u| keep(u))
            .map(|u| u.actor.clone())
            .collect()
    }
}
