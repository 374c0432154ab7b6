//! The presence feed: which players logged in, changed their presence or stats, or
//! logged out, in order, for every session of the node to catch up with when its client
//! polls. An entry is only a user id: whether it means "here is their state" or "they
//! left" is read from the directory at catch-up time.
//!
//! Why not a cast to every session per change: a login (or a status change) concerns
//! everyone online, so a login storm of N players cost N² casts and queued N² encoded
//! packets before anyone polled: 10,000 logins took 80 s and left 4 GB resident
//! (docs/benchmarks.md). Here a change is one entry (a user id) in a shared ring, each
//! session keeps only a cursor into it, and the packets are taken from the directory
//! when the client polls, so a client gets each player's *latest* state once, however
//! often it changed in between.
//!
//! The lock is a `std` RwLock: every critical section is a few ring operations, readers
//! (polls) far outnumber writers (logins, status changes), and nothing awaits inside.

use std::collections::VecDeque;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Full presence and stats of this many online players go into a login reply (and into
/// one poll's catch-up); beyond it only their ids (USER_PRESENCE_BUNDLE), and the client
/// asks for what it shows.
pub const LOGIN_FULL_PRESENCE_LIMIT: usize = 1024;

/// Changes the ring remembers. A session that falls further behind (a client that did
/// not poll through this many changes) is resynchronised with the list of everyone
/// online instead, as at login.
pub const FEED_CAPACITY: usize = 1 << 16;

/// The node's presence feed.
#[derive(Debug, Default)]
pub struct PresenceFeed {
    ring: RwLock<Ring>,
    /// Sequence number the next change will get; read without the lock by polls that
    /// have nothing to catch up with (almost all of them).
    head: AtomicU64,
}

#[derive(Debug, Default)]
struct Ring {
    /// Sequence number of `ids[0]`.
    first: u64,
    ids: VecDeque<i32>,
}

/// What a session missed since its cursor.
#[derive(Debug, PartialEq, Eq)]
pub enum Missed {
    /// The players whose presence changed (possibly repeated).
    Changes,
    /// More than [`FEED_CAPACITY`] changes: the caller must resynchronise.
    TooMany,
}

impl PresenceFeed {
    /// Records that `user_id` logged in or out, or that their presence or stats changed.
    pub fn publish(&self, user_id: i32) {
        let mut ring = self.ring.write().unwrap_or_else(|e| e.into_inner());
        if ring.ids.len() == FEED_CAPACITY {
            ring.ids.pop_front();
            ring.first += 1;
        }
        ring.ids.push_back(user_id);
        // Under the lock, so that a reader who sees the new head also sees the entry.
        self.head
            .store(ring.first + ring.ids.len() as u64, Ordering::Release);
    }

    /// The cursor of a session that has seen everything so far.
    pub fn head(&self) -> u64 {
        self.head.load(Ordering::Acquire)
    }

    /// Appends to `out` the changes after `cursor` and moves `cursor` to the head.
    pub fn read_since(&self, cursor: &mut u64, out: &mut Vec<i32>) -> Missed {
        if *cursor >= self.head() {
            return Missed::Changes;
        }
        let ring = self.ring.read().unwrap_or_else(|e| e.into_inner());
        let head = ring.first + ring.ids.len() as u64;
        let missed = if *cursor < ring.first {
            Missed::TooMany
        } else {
            // `cursor - first` < len here, so the conversion and the range are in bounds.
            let skip = usize::try_from(*cursor - ring.first).unwrap_or(usize::MAX);
            out.extend(ring.ids.iter().skip(skip));
            Missed::Changes
        };
        *cursor = head;
        missed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_see_each_change_once_and_overrun_is_reported() {
        let feed = PresenceFeed::default();
        let mut cursor = feed.head();
        let mut out = Vec::new();
        assert_eq!(feed.read_since(&mut cursor, &mut out), Missed::Changes);
        assert!(out.is_empty());

        feed.publish(7);
        feed.publish(9);
        assert_eq!(feed.read_since(&mut cursor, &mut out), Missed::Changes);
        assert_eq!(out, [7, 9]);
        out.clear();
        assert_eq!(feed.read_since(&mut cursor, &mut out), Missed::Changes);
        assert!(out.is_empty(), "nothing is delivered twice");

        let mut late = cursor;
        for id in 0..=FEED_CAPACITY as i32 {
            feed.publish(id);
        }
        assert_eq!(feed.read_since(&mut late, &mut out), Missed::TooMany);
        assert_eq!(late, feed.head(), "a resynchronised reader is at the head");
        out.clear();
        feed.publish(42);
        assert_eq!(feed.read_since(&mut late, &mut out), Missed::Changes);
        assert_eq!(out, [42]);
    }
}
