//! A beatmap's leaderboard: one entity per map, mode and board (vanilla, relax,
//! autopilot), keyed [`EntityKey::Board`], hosted like every entity by the runtime's
//! generic host.
//!
//! It holds the top of its board in memory and answers `osu-osz2-getscores.php`'s global
//! board from there, on whichever node owns its key. The database stays the truth: the
//! board loads its top from it on the first read, again after every score stored on it
//! ([`BoardCall::Changed`], which the submission waits for, so the player's next read
//! sees the new score wherever it is answered), and again when what it holds is older
//! than [`BOARD_FRESH_FOR`] (so a renamed or restricted player shows as such within that
//! time). It carries nothing when it moves or restarts after a panic: it loads again.
//!
//! A change of who may be shown (a restriction) reaches every board at once
//! ([`BoardCast::Refresh`]). A board nobody reads for [`BOARD_IDLE`] stops; a node starts at most
//! [`MAX_BOARDS_PER_NODE`] (reads of more are answered from the database directly).

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use peace_db::{BoardEntry, BoardOrder, BoardQuery, Privileges};
use peace_sharding::{AfterPanic, Entity, Me};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::key::{BoardKey, EntityKey};
use crate::ports::{PortFuture, Ports};

/// Scores a board shows (the client lists 50).
pub const BOARD_SHOWN: usize = 50;
/// Scores a board holds: twice what it shows, so that restricted players (whom only they
/// themselves see) can be left out and the board still be full.
pub const BOARD_HELD: usize = BOARD_SHOWN * 2;
/// How long a loaded board is believed without a score stored on it.
pub const BOARD_FRESH_FOR: Duration = Duration::from_secs(60);
/// A board nobody read for this long stops (the next read starts it again).
pub const BOARD_IDLE: Duration = Duration::from_secs(600);
/// How often a board looks whether it is idle.
const IDLE_CHECK_EVERY: Duration = Duration::from_secs(60);
/// Most boards one node runs at once: at [`BOARD_HELD`] entries of a few hundred bytes,
/// about 100 MB at worst.
pub const MAX_BOARDS_PER_NODE: usize = 4096;

/// The order of a board by its number: score on the vanilla board, pp on relax and
/// autopilot (whose score means little).
pub fn order_of(board: i16) -> BoardOrder {
    if board == 0 {
        BoardOrder::Score
    } else {
        BoardOrder::Pp
    }
}

/// What a board can be asked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum BoardCall {
    /// The top of the board as `viewer` sees it.
    Read { viewer: i32 },
    /// A score on this board was stored: the next read loads the board again.
    Changed,
}

/// What a board can be told.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum BoardCast {
    /// Timer: stop if nobody read the board for [`BOARD_IDLE`].
    IdleCheck,
    /// Load again on the next read: who may be shown changed (a player was restricted
    /// or unrestricted). Told to every board at once.
    Refresh,
}

/// A board's answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum BoardReply {
    View(BoardView),
    /// The board could not be loaded (the database did not answer).
    Unavailable(String),
    Noted,
}

/// The board as one player sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoardView {
    /// At most [`BOARD_SHOWN`] best scores in board order, without restricted players
    /// (except the viewer).
    pub entries: Vec<BoardEntry>,
    pub viewer: ViewerBest,
}

/// The viewer's own best score on the board.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ViewerBest {
    /// Among the scores held, with its rank (1 = first; restricted players count, as in
    /// the database's ranking).
    Held { entry: Box<BoardEntry>, rank: u32 },
    /// The viewer has no score on this board.
    NoScore,
    /// Below what the board holds: ask the database.
    Beyond,
}

/// Where a board loads its top from (the database; a test's list).
pub trait BoardStore: Send + Sync + Debug + 'static {
    /// The best `limit` scores of the board, in board order.
    fn top<'a>(&'a self, key: &'a BoardKey, limit: usize) -> PortFuture<'a, Vec<BoardEntry>>;
}

impl BoardStore for peace_db::Database {
    fn top<'a>(&'a self, key: &'a BoardKey, limit: usize) -> PortFuture<'a, Vec<BoardEntry>> {
        Box::pin(async move {
            let query = BoardQuery {
                beatmap_md5: key.md5.clone(),
                mode: key.mode,
                board: key.board,
                order: order_of(key.board),
                mods: None,
                users: None,
                country: None,
                limit: i64::try_from(limit).unwrap_or(i64::MAX),
            };
            self.leaderboard(&query).await
        })
    }
}

/// What a board uses: the store it loads from, and the outbox (to forget its entry).
#[derive(Debug, Clone)]
pub struct BoardPorts {
    pub store: Arc<dyn BoardStore>,
    pub outbox: Ports,
}

/// What a board holds once loaded.
#[derive(Debug)]
struct Held {
    entries: Vec<BoardEntry>,
    /// The store had no more than this: a player not held has no score.
    complete: bool,
    loaded_at: Instant,
}

/// A leaderboard entity.
#[derive(Debug)]
pub struct Leaderboard {
    key: BoardKey,
    held: Option<Held>,
    last_read: Instant,
}

impl Leaderboard {
    pub fn new(key: BoardKey) -> Self {
        Self {
            key,
            held: None,
            last_read: Instant::now(),
        }
    }

    /// Loads the board unless what it holds is fresh. A failed load keeps serving what
    /// was held before (a stale board beats none); with nothing held it is the error.
    async fn load(&mut self, store: &dyn BoardStore) -> Result<&Held, peace_db::DbError> {
        let fresh = self
            .held
            .as_ref()
            .is_some_and(|h| h.loaded_at.elapsed() < BOARD_FRESH_FOR);
        if !fresh {
            match store.top(&self.key, BOARD_HELD).await {
                Ok(entries) => {
                    self.held = Some(Held {
                        complete: entries.len() < BOARD_HELD,
                        entries,
                        loaded_at: Instant::now(),
                    });
                }
                Err(e) if self.held.is_some() => {
                    tracing::warn!(board = %EntityKey::Board(self.key.clone()), "board not reloaded, serving the last: {e}");
                }
                Err(e) => return Err(e),
            }
        }
        // Loaded just now, or fresh before.
        self.held
            .as_ref()
            .ok_or_else(|| peace_db::DbError::Unavailable("the board is not loaded".into()))
    }
}

impl Held {
    fn view(&self, viewer: i32) -> BoardView {
        let entries = self
            .entries
            .iter()
            .filter(|e| e.score.user_id == viewer || !Privileges(e.privileges).is_restricted())
            .take(BOARD_SHOWN)
            .cloned()
            .collect();
        let viewer = match self.entries.iter().position(|e| e.score.user_id == viewer) {
            Some(i) => ViewerBest::Held {
                entry: Box::new(self.entries[i].clone()),
                rank: u32::try_from(i + 1).unwrap_or(u32::MAX),
            },
            None if self.complete => ViewerBest::NoScore,
            None => ViewerBest::Beyond,
        };
        BoardView { entries, viewer }
    }
}

impl Entity for Leaderboard {
    const KIND: &'static str = "board";
    type Key = BoardKey;
    type Cast = BoardCast;
    type Call = BoardCall;
    type Reply = BoardReply;
    /// Only the key: a board loads again wherever it starts.
    type Snapshot = BoardKey;
    type Ctx = BoardPorts;

    fn key(&self) -> BoardKey {
        self.key.clone()
    }

    async fn started(&mut self, _: &BoardPorts, me: &Me<Self>) {
        me.cast_after(IDLE_CHECK_EVERY, BoardCast::IdleCheck);
    }

    async fn cast(&mut self, msg: BoardCast, _: &BoardPorts, me: &Me<Self>) {
        match msg {
            BoardCast::IdleCheck => {
                if self.last_read.elapsed() >= BOARD_IDLE {
                    me.stop();
                } else {
                    me.cast_after(IDLE_CHECK_EVERY, BoardCast::IdleCheck);
                }
            }
            BoardCast::Refresh => self.held = None,
        }
    }

    async fn call(&mut self, msg: BoardCall, ports: &BoardPorts, _: &Me<Self>) -> BoardReply {
        match msg {
            BoardCall::Read { viewer } => {
                self.last_read = Instant::now();
                match self.load(ports.store.as_ref()).await {
                    Ok(held) => BoardReply::View(held.view(viewer)),
                    // The reply crosses nodes: the error goes as its text.
                    Err(e) => BoardReply::Unavailable(e.to_string()),
                }
            }
            BoardCall::Changed => {
                self.held = None;
                BoardReply::Noted
            }
        }
    }

    fn export(&mut self, _: &BoardPorts) -> BoardKey {
        self.key.clone()
    }

    async fn ended(&mut self, ports: &BoardPorts, me: &Me<Self>) {
        ports
            .outbox
            .forget(&EntityKey::Board(self.key.clone()), me.id());
    }

    /// A board goes on empty: it loads again on the next read.
    fn after_panic(
        key: &BoardKey,
        _: Option<BoardKey>,
        _: &BoardPorts,
        _: &Me<Self>,
    ) -> AfterPanic<Self> {
        AfterPanic::Restart(Leaderboard::new(key.clone()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use peace_db::{DbError, ScoreRow};

    use super::*;
    use crate::ports::testing::{Recorded, Sent};

    /// A store holding one board's entries in order; counts loads, and fails on demand.
    #[derive(Debug, Default)]
    struct Listed {
        entries: Mutex<Vec<BoardEntry>>,
        loads: AtomicUsize,
        down: std::sync::atomic::AtomicBool,
    }

    impl BoardStore for Listed {
        fn top<'a>(&'a self, _: &'a BoardKey, limit: usize) -> PortFuture<'a, Vec<BoardEntry>> {
            self.loads.fetch_add(1, Ordering::Relaxed);
            let answer = if self.down.load(Ordering::Relaxed) {
                Err(DbError::Unavailable("the database is down".into()))
            } else {
                let entries = self.entries.lock().unwrap();
                Ok(entries.iter().take(limit).cloned().collect())
            };
            Box::pin(async move { answer })
        }
    }

    fn entry(user_id: i32, score: i64, restricted: bool) -> BoardEntry {
        BoardEntry {
            score: ScoreRow {
                id: user_id * 10,
                user_id,
                beatmap_md5: key().md5,
                mode: 0,
                board: 0,
                score,
                pp: 0.0,
                accuracy: 100.0,
                max_combo: 100,
                mods: 0,
                count_300: 100,
                count_100: 0,
                count_50: 0,
                count_geki: 0,
                count_katu: 0,
                count_miss: 0,
                grade: "X".into(),
                perfect: true,
                status: 2,
                online_checksum: String::new(),
                play_time: 0,
                client_flags: 0,
                replay_views: 0,
                submitted_at: 0,
                reply: String::new(),
            },
            user_name: format!("player {user_id}"),
            country: "XX".into(),
            privileges: if restricted {
                Privileges::DEFAULT_NEW.0 | Privileges::RESTRICTED.0
            } else {
                Privileges::DEFAULT_NEW.0
            },
        }
    }

    fn key() -> BoardKey {
        BoardKey {
            md5: "0".repeat(32),
            mode: 0,
            board: 0,
        }
    }

    fn ports(store: Arc<Listed>) -> (Arc<Recorded>, BoardPorts) {
        let (recorded, outbox) = Recorded::ports();
        (recorded, BoardPorts { store, outbox })
    }

    async fn read(board: &mut Leaderboard, ports: &BoardPorts, viewer: i32) -> BoardView {
        match board
            .call(BoardCall::Read { viewer }, ports, &Me::detached())
            .await
        {
            BoardReply::View(view) => view,
            other => panic!("expected a view, got {other:?}"),
        }
    }

    fn ids(view: &BoardView) -> Vec<i32> {
        view.entries.iter().map(|e| e.score.user_id).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_is_answered_from_memory_until_a_score_is_stored() {
        let store = Arc::new(Listed::default());
        *store.entries.lock().unwrap() = vec![entry(1, 300, false), entry(2, 200, false)];
        let (_, ports) = ports(store.clone());
        let mut board = Leaderboard::new(key());
        assert_eq!(ids(&read(&mut board, &ports, 9).await), [1, 2]);
        assert_eq!(ids(&read(&mut board, &ports, 9).await), [1, 2]);
        assert_eq!(
            store.loads.load(Ordering::Relaxed),
            1,
            "the second read is from memory"
        );

        store
            .entries
            .lock()
            .unwrap()
            .insert(0, entry(3, 400, false));
        let noted = board
            .call(BoardCall::Changed, &ports, &Me::detached())
            .await;
        assert!(matches!(noted, BoardReply::Noted));
        assert_eq!(ids(&read(&mut board, &ports, 9).await), [3, 1, 2]);
        assert_eq!(store.loads.load(Ordering::Relaxed), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_refresh_loads_the_board_again_on_the_next_read() {
        let store = Arc::new(Listed::default());
        *store.entries.lock().unwrap() = vec![entry(1, 300, false), entry(2, 200, false)];
        let (_, ports) = ports(store.clone());
        let mut board = Leaderboard::new(key());
        read(&mut board, &ports, 9).await;
        // Player 1 is restricted: told to every board, this one shows it at once.
        store.entries.lock().unwrap()[0] = entry(1, 300, true);
        board
            .cast(BoardCast::Refresh, &ports, &Me::detached())
            .await;
        assert_eq!(ids(&read(&mut board, &ports, 9).await), [2]);
        assert_eq!(store.loads.load(Ordering::Relaxed), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_held_board_is_loaded_again_once_it_is_stale() {
        let store = Arc::new(Listed::default());
        *store.entries.lock().unwrap() = vec![entry(1, 300, false)];
        let (_, ports) = ports(store.clone());
        let mut board = Leaderboard::new(key());
        read(&mut board, &ports, 9).await;
        tokio::time::advance(BOARD_FRESH_FOR - Duration::from_secs(1)).await;
        read(&mut board, &ports, 9).await;
        assert_eq!(store.loads.load(Ordering::Relaxed), 1);
        tokio::time::advance(Duration::from_secs(2)).await;
        read(&mut board, &ports, 9).await;
        assert_eq!(store.loads.load(Ordering::Relaxed), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn restricted_players_are_hidden_from_everyone_but_themselves() {
        let store = Arc::new(Listed::default());
        *store.entries.lock().unwrap() = vec![
            entry(1, 500, false),
            entry(2, 400, true),
            entry(3, 300, false),
        ];
        let (_, ports) = ports(store);
        let mut board = Leaderboard::new(key());
        let others = read(&mut board, &ports, 9).await;
        assert_eq!(ids(&others), [1, 3]);
        assert_eq!(others.viewer, ViewerBest::NoScore);

        let restricted = read(&mut board, &ports, 2).await;
        assert_eq!(ids(&restricted), [1, 2, 3]);
        // Ranked as the database ranks: everyone above counts.
        let ViewerBest::Held { rank, entry } = restricted.viewer else {
            panic!("the restricted player's own best is held");
        };
        assert_eq!((rank, entry.score.user_id), (2, 2));
        let third = read(&mut board, &ports, 3).await;
        assert!(matches!(third.viewer, ViewerBest::Held { rank: 3, .. }));
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_board_shows_fifty_and_sends_players_below_it_to_the_database() {
        let store = Arc::new(Listed::default());
        *store.entries.lock().unwrap() = (1..=150)
            .map(|i| entry(i, 10_000 - i64::from(i), false))
            .collect();
        let (_, ports) = ports(store);
        let mut board = Leaderboard::new(key());
        let view = read(&mut board, &ports, 120).await;
        assert_eq!(view.entries.len(), BOARD_SHOWN);
        assert_eq!(
            view.viewer,
            ViewerBest::Beyond,
            "not held, but the board is longer"
        );
        let held = read(&mut board, &ports, 100).await;
        assert!(matches!(held.viewer, ViewerBest::Held { rank: 100, .. }));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_load_serves_the_last_board_or_says_unavailable() {
        let store = Arc::new(Listed::default());
        *store.entries.lock().unwrap() = vec![entry(1, 300, false)];
        store.down.store(true, Ordering::Relaxed);
        let (_, ports) = ports(store.clone());
        let mut board = Leaderboard::new(key());
        let reply = board
            .call(BoardCall::Read { viewer: 1 }, &ports, &Me::detached())
            .await;
        assert!(matches!(reply, BoardReply::Unavailable(_)), "{reply:?}");

        store.down.store(false, Ordering::Relaxed);
        read(&mut board, &ports, 9).await;
        store.down.store(true, Ordering::Relaxed);
        tokio::time::advance(BOARD_FRESH_FOR * 2).await;
        assert_eq!(
            ids(&read(&mut board, &ports, 9).await),
            [1],
            "stale beats nothing"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_board_stops_and_forgets_its_entry() {
        let store = Arc::new(Listed::default());
        let (sent, ports) = ports(store);
        let mut board = Leaderboard::new(key());
        read(&mut board, &ports, 9).await;
        let me = Me::detached();
        tokio::time::advance(IDLE_CHECK_EVERY).await;
        board.cast(BoardCast::IdleCheck, &ports, &me).await;
        assert!(!me.stop_requested(), "read a minute ago");
        tokio::time::advance(BOARD_IDLE).await;
        board.cast(BoardCast::IdleCheck, &ports, &me).await;
        assert!(me.stop_requested());
        board.ended(&ports, &me).await;
        assert!(matches!(&sent.take()[..], [Sent::Forgot(EntityKey::Board(k))] if *k == key()));
    }

    #[test]
    fn vanilla_boards_rank_by_score_and_the_others_by_pp() {
        assert_eq!(order_of(0), BoardOrder::Score);
        assert_eq!(order_of(1), BoardOrder::Pp);
        assert_eq!(order_of(2), BoardOrder::Pp);
    }
}
