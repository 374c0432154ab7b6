//! Quiet polls: a poll answered on the node without a round trip to the session actor.
//!
//! Most polls are an idle client's bare PING to a session with nothing to send, and the
//! round trip to the actor (a ractor call: a oneshot channel, two task wake-ups and a
//! timer) was most of what such a poll cost (docs/benchmarks.md). So after every message
//! it handles, the actor publishes its [`QuietMarks`]: whether it has anything queued,
//! and how far it has read this node's presence feed and channel-count board. A poll that
//! brings nothing but PINGs, to a session whose marks say it has nothing queued and has
//! read both to their heads, is answered empty at once; only its time is noted, for the
//! actor's idle check.
//!
//! The actor still owns its queue, so nothing can be lost or sent twice: a packet queued
//! while a quiet poll looks at the marks shows in them once the actor has finished the
//! message that queued it, and the next poll goes to the actor. A quiet answer is the
//! answer the actor would have given had the poll arrived a moment earlier.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use super::state::UserState;

/// What a session actor last published about itself (see the module docs).
#[derive(Debug)]
pub struct QuietMarks {
    /// Something is queued for the client, or the actor has not published yet.
    queued: AtomicBool,
    /// The session ended or moved: every poll goes the long way.
    closed: AtomicBool,
    presence_seen: AtomicU64,
    counts_seen: AtomicU64,
    /// When a quiet poll last came (unix milliseconds; 0 for never).
    last_quiet_poll_ms: AtomicI64,
}

impl QuietMarks {
    /// Marks of a session that has not published yet: its first poll goes to the actor.
    pub fn new() -> Self {
        Self {
            queued: AtomicBool::new(true),
            closed: AtomicBool::new(false),
            presence_seen: AtomicU64::new(0),
            counts_seen: AtomicU64::new(0),
            last_quiet_poll_ms: AtomicI64::new(0),
        }
    }

    /// Marks that never answer a poll (the bot's session, which no client polls).
    pub fn closed() -> Self {
        let marks = Self::new();
        marks.close();
        marks
    }

    /// Publishes the session's state after a message (the actor calls this).
    pub(crate) fn publish(&self, state: &UserState) {
        self.presence_seen
            .store(state.presence_cursor, Ordering::Release);
        self.counts_seen
            .store(state.channel_counts_cursor, Ordering::Release);
        // Last, so that a poll that sees "nothing queued" also sees the cursors above.
        self.queued
            .store(!state.queue.is_empty(), Ordering::Release);
    }

    /// The session ends or moves: no more quiet answers.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// Whether a poll of bare PINGs may be answered empty now, given the heads of the
    /// node's presence feed and count board; if so, the poll's time is noted.
    pub(crate) fn answer(&self, presence_head: u64, counts_newest: u64, now_ms: i64) -> bool {
        let quiet = !self.queued.load(Ordering::Acquire)
            && !self.closed.load(Ordering::Acquire)
            && self.presence_seen.load(Ordering::Acquire) >= presence_head
            && self.counts_seen.load(Ordering::Acquire) >= counts_newest;
        if quiet {
            self.last_quiet_poll_ms.fetch_max(now_ms, Ordering::AcqRel);
        }
        quiet
    }

    /// When a quiet poll last came (0 for never).
    pub(crate) fn last_quiet_poll_ms(&self) -> i64 {
        self.last_quiet_poll_ms.load(Ordering::Acquire)
    }
}

impl Default for QuietMarks {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> UserState {
        let user = peace_db::User {
            id: 5,
            name: "Alice".into(),
            safe_name: "alice".into(),
            email: "alice@example.com".into(),
            password_bcrypt: String::new(),
            privileges: peace_db::Privileges::NORMAL.0,
            country: "XX".into(),
            silence_end: 0,
            created_at: 0,
            last_seen: 0,
        };
        UserState::new(&user, 1, 0, peace_db::Stats::default(), 0)
    }

    #[test]
    fn only_a_session_with_nothing_to_say_is_answered_quietly() {
        let marks = QuietMarks::new();
        let mut st = state();
        assert!(!marks.answer(0, 0, 1), "not before the actor published");

        marks.publish(&st);
        assert!(marks.answer(0, 0, 10));
        assert_eq!(marks.last_quiet_poll_ms(), 10);
        assert!(!marks.answer(1, 0, 20), "the presence feed moved on");
        assert!(!marks.answer(0, 1, 20), "a channel count changed");
        assert_eq!(marks.last_quiet_poll_ms(), 10, "only quiet polls are noted");

        st.enqueue(&[1, 2, 3]);
        marks.publish(&st);
        assert!(!marks.answer(0, 0, 30), "something is queued");
        let _ = st.drain();
        marks.publish(&st);
        assert!(marks.answer(0, 0, 40));

        marks.close();
        marks.publish(&st);
        assert!(!marks.answer(0, 0, 50), "closed for good");
        assert!(!QuietMarks::closed().answer(0, 0, 1));
    }
}
