//! The session actors that live on this node, by user and session id. The cluster-wide
//! view of who is online is the [`crate::directory::Directory`]; this table only holds
//! what cannot leave the node: the actor references.
//!
//! The lock is a `std` RwLock: every critical section is a short map operation with no
//! `.await` inside.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use peace_db::Privileges;
use ractor::{ActorId, ActorRef};

use crate::EntityKey;
use crate::cluster::shard::{Shard, shard_of};
use crate::message::EntityMsg;
use crate::router::RouteError;
use crate::user::{QuietMarks, UserCast, UserMsg};

/// Most extra sessions one tournament account may hold.
pub const MAX_TOURNAMENT_SESSIONS: usize = 16;

/// One session actor of this node.
#[derive(Debug, Clone)]
pub struct LocalSession {
    pub user_id: i32,
    pub session_id: u64,
    pub privileges: Privileges,
    pub actor: ActorRef<UserMsg>,
    /// What a poll may be answered from without the actor (`crate::user::QuietMarks`).
    pub quiet: Arc<QuietMarks>,
}

#[derive(Debug, Default)]
struct Maps {
    /// Each online user's own session.
    main: HashMap<i32, LocalSession>,
    /// Additional sessions of tournament accounts (the tournament client opens one per
    /// watched player): reachable by token, invisible to other players.
    extra: HashMap<(i32, u64), LocalSession>,
}

/// The session actors of this node.
#[derive(Debug, Default)]
pub struct Sessions {
    maps: RwLock<Maps>,
}

impl Sessions {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Maps> {
        // Each write is a single insert or remove, so a poisoned lock is still whole.
        self.maps.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Maps> {
        self.maps.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a user's session, returning the one it replaces (a second login).
    pub fn insert(&self, session: LocalSession) -> Option<LocalSession> {
        self.write().main.insert(session.user_id, session)
    }

    /// Removes the user's session if it is still `session_id`; a replaced session must
    /// not remove its successor.
    pub fn remove(&self, user_id: i32, session_id: u64) -> bool {
        let mut maps = self.write();
        if maps
            .main
            .get(&user_id)
            .is_some_and(|s| s.session_id == session_id)
        {
            maps.main.remove(&user_id);
            return true;
        }
        false
    }

    /// Adds an extra session of a tournament account; false when it already holds
    /// [`MAX_TOURNAMENT_SESSIONS`].
    pub fn insert_extra(&self, session: LocalSession) -> bool {
        let mut maps = self.write();
        let held = maps
            .extra
            .keys()
            .filter(|(id, _)| *id == session.user_id)
            .count();
        if held >= MAX_TOURNAMENT_SESSIONS {
            return false;
        }
        maps.extra
            .insert((session.user_id, session.session_id), session);
        true
    }

    /// Removes an extra session; true if it was one.
    pub fn remove_extra(&self, user_id: i32, session_id: u64) -> bool {
        self.write().extra.remove(&(user_id, session_id)).is_some()
    }

    /// The user's own session, if it lives here.
    pub fn main(&self, user_id: i32) -> Option<LocalSession> {
        self.read().main.get(&user_id).cloned()
    }

    /// Session `session_id` of the user: their own or an extra one.
    pub fn session(&self, user_id: i32, session_id: u64) -> Option<LocalSession> {
        let maps = self.read();
        match maps.main.get(&user_id) {
            Some(s) if s.session_id == session_id => Some(s.clone()),
            _ => maps.extra.get(&(user_id, session_id)).cloned(),
        }
    }

    /// Which session (if any) an actor is.
    pub fn by_actor(&self, actor: ActorId) -> Option<LocalSession> {
        let maps = self.read();
        maps.main
            .values()
            .chain(maps.extra.values())
            .find(|s| s.actor.get_id() == actor)
            .cloned()
    }

    /// Sessions on this node (each user's own; extra tournament sessions not counted).
    pub fn len(&self) -> usize {
        self.read().main.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Puts `msg` in the mailbox of the user's own session, or of session `session_id`
    /// of theirs. (The router checks the placement first.)
    pub(crate) fn deliver(
        &self,
        user_id: i32,
        session: Option<u64>,
        msg: UserCast,
    ) -> Result<(), RouteError> {
        let key = || EntityKey::User(user_id);
        let target = match session {
            None => self.main(user_id),
            Some(session_id) => self.session(user_id, session_id),
        };
        let target = target.ok_or_else(|| RouteError::NotFound(key()))?;
        crate::message::send_counted(&target.actor, "user", EntityMsg::Cast(msg))
            .map_err(|_| RouteError::Stopped(key()))
    }

    /// Each user's own session here.
    pub fn main_sessions(&self) -> Vec<LocalSession> {
        self.read().main.values().cloned().collect()
    }

    /// Every session here, own and extra.
    pub fn all(&self) -> Vec<LocalSession> {
        let maps = self.read();
        maps.main
            .values()
            .chain(maps.extra.values())
            .cloned()
            .collect()
    }

    pub(crate) fn count_by_shard(&self, counts: &mut BTreeMap<Shard, usize>) {
        for user_id in self.read().main.keys() {
            *counts
                .entry(shard_of(&EntityKey::User(*user_id)))
                .or_insert(0) += 1;
        }
    }
}
