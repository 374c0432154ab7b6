//! The client's read of a board: `osu-osz2-getscores.php` (the leaderboard next to the
//! song select).

use peace_db::{BoardEntry, BoardQuery, DbError, User};
use peace_scores::mode::Mode;
use peace_scores::mods::{BoardKind, Mods};
use peace_scores::web::{DisplayTitle, GetScoresReply, Leaderboard, ScoreLine};

use super::ScoreService;
use super::submit::{board_number, board_order, map_status};
use crate::leaderboard::{BoardCall, BoardReply, BoardView, ViewerBest};
use crate::{BoardKey, RouteError};

/// Scores a board shows (the client lists 50).
pub const BOARD_SIZE: i64 = crate::leaderboard::BOARD_SHOWN as i64;
/// The most a board's entity may take to answer before the database is asked instead.
const BOARD_CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Which board the client asks for (getscores' `v`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoardFilter {
    /// `0` (local, answered as global), `1`: everyone.
    Global,
    /// `2`: scores with exactly the selected mods.
    SelectedMods,
    /// `3`: the player's friends (and the player).
    Friends,
    /// `4`: players of the player's country.
    Country,
}

impl BoardFilter {
    pub fn from_v(v: i32) -> BoardFilter {
        match v {
            2 => BoardFilter::SelectedMods,
            3 => BoardFilter::Friends,
            4 => BoardFilter::Country,
            _ => BoardFilter::Global,
        }
    }
}

/// A getscores request, read by the gateway.
#[derive(Debug, Clone)]
pub struct BoardRequest {
    /// `c`: the map's md5.
    pub md5: String,
    /// `f`: the map's file name.
    pub file_name: String,
    /// `i`: the map's set id.
    pub set_id: i32,
    /// `m`: the mode.
    pub mode: Mode,
    /// `mods`: the selected mods (pick the relax/autopilot board, and the mods filter).
    pub mods: u32,
    pub filter: BoardFilter,
    /// `s=1`: the editor asks, and wants only the map's header.
    pub editor: bool,
}

impl ScoreService {
    /// The getscores reply for `user` (their friends are `friends`; only the friends board
    /// reads them).
    pub async fn leaderboard(
        &self,
        user: &User,
        friends: &[i32],
        request: &BoardRequest,
    ) -> Result<GetScoresReply, DbError> {
        let Some(map) = self.beatmaps.by_md5(&request.md5).await? else {
            // An unknown md5 whose file name the set has: the client's copy is outdated.
            let set = self.beatmaps.set(request.set_id).await?;
            if !request.file_name.is_empty() && set.iter().any(|m| m.file_name == request.file_name)
            {
                return Ok(GetScoresReply::UpdateAvailable);
            }
            return Ok(GetScoresReply::NotSubmitted);
        };
        let status = map_status(&map);
        if !status.shows_scores() {
            return Ok(GetScoresReply::NoLeaderboard(status));
        }
        let mods = Mods::from_wire(request.mods);
        let board = BoardKind::for_play(request.mode, mods);
        let order = board_order(board);
        let mode = i16::from(request.mode.number());
        let mut query = BoardQuery {
            beatmap_md5: map.md5.clone(),
            mode,
            board: board_number(board),
            order,
            mods: None,
            users: None,
            country: None,
            // Restricted players are filtered out below; read a few more to fill the board.
            limit: BOARD_SIZE * 2,
        };
        match request.filter {
            BoardFilter::Global => {}
            BoardFilter::SelectedMods => query.mods = Some(request.mods as i32),
            BoardFilter::Friends => {
                let mut ids = friends.to_vec();
                ids.push(user.id);
                query.users = Some(ids);
            }
            BoardFilter::Country => query.country = Some(user.country.clone()),
        }
        let by_pp = order == peace_db::BoardOrder::Pp;
        let (scores, personal_best) = if request.editor {
            (Vec::new(), None)
        } else {
            // The global board is the leaderboard entity's, held in memory; the filtered
            // boards, and any board its entity cannot answer, are read from the database.
            let from_entity = match request.filter {
                BoardFilter::Global => self.board_view(&query, user.id).await,
                _ => None,
            };
            let (entries, viewer) = match from_entity {
                Some(view) => (view.entries, view.viewer),
                None => (self.db.leaderboard(&query).await?, ViewerBest::Beyond),
            };
            let visible = entries
                .into_iter()
                .filter(|e| {
                    e.score.user_id == user.id
                        || !peace_db::Privileges(e.privileges).is_restricted()
                })
                .take(BOARD_SIZE as usize);
            let scores: Vec<ScoreLine> = visible
                .enumerate()
                .map(|(i, e)| score_line(&e, i as u32 + 1, by_pp))
                .collect();
            let personal_best = match viewer {
                ViewerBest::Held { entry, rank } => Some(score_line(&entry, rank, by_pp)),
                ViewerBest::NoScore => None,
                ViewerBest::Beyond => self.personal_best(user, &query).await?,
            };
            (scores, personal_best)
        };
        Ok(GetScoresReply::Leaderboard(Box::new(Leaderboard {
            status,
            beatmap_id: u32::try_from(map.id).unwrap_or(0),
            set_id: u32::try_from(map.set_id).unwrap_or(0),
            featured_artist_track: 0,
            featured_artist_license: String::new(),
            offset: 0,
            title: DisplayTitle::Full {
                artist: map.artist.clone(),
                title: map.title.clone(),
                version: map.version.clone(),
            },
            rating: 10.0,
            personal_best,
            scores,
        })))
    }

    /// The board as its entity holds it, or `None` when the entity cannot answer (the
    /// database is down, its node is unreachable, this node runs the most boards it may):
    /// then the caller reads the database itself.
    async fn board_view(&self, query: &BoardQuery, viewer: i32) -> Option<BoardView> {
        let key = BoardKey {
            md5: query.beatmap_md5.clone(),
            mode: query.mode,
            board: query.board,
        };
        let read = BoardCall::Read { viewer };
        match self
            .router
            .boards()
            .call_or_start(&key, read, BOARD_CALL_TIMEOUT)
            .await
        {
            Ok(BoardReply::View(view)) => Some(view),
            Ok(other) => {
                tracing::debug!(board = ?key, "board did not answer a read: {other:?}");
                None
            }
            Err(e) => {
                tracing::debug!(board = ?key, "board not reached, reading the database: {e}");
                None
            }
        }
    }

    /// The player's best score on a board with its rank, from the database.
    async fn personal_best(
        &self,
        user: &User,
        query: &BoardQuery,
    ) -> Result<Option<ScoreLine>, DbError> {
        let by_pp = query.order == peace_db::BoardOrder::Pp;
        let best = self
            .db
            .best_score(user.id, &query.beatmap_md5, query.mode, query.board)
            .await?;
        let Some(best) = best else {
            return Ok(None);
        };
        let rank = self.db.board_rank(&best, query.order).await?;
        let entry = BoardEntry {
            score: best,
            user_name: user.name.clone(),
            country: user.country.clone(),
            privileges: user.privileges,
        };
        Ok(Some(score_line(
            &entry,
            u32::try_from(rank).unwrap_or(0),
            by_pp,
        )))
    }

    /// A score was stored on a board: its entity (if it runs) loads again before the
    /// player's next read. A board not reached is at most
    /// [`crate::leaderboard::BOARD_FRESH_FOR`] behind.
    pub(crate) async fn board_changed(&self, key: BoardKey) {
        let boards = self.router.boards();
        match boards
            .call(&key, BoardCall::Changed, BOARD_CALL_TIMEOUT)
            .await
        {
            Ok(_) | Err(RouteError::NotFound(_)) => {}
            Err(e) => tracing::debug!(board = ?key, "board not told of a new score: {e}"),
        }
    }
}

fn score_line(entry: &BoardEntry, rank: u32, by_pp: bool) -> ScoreLine {
    let s = &entry.score;
    let n = |v: i32| u32::try_from(v).unwrap_or(0);
    ScoreLine {
        score_id: u64::try_from(s.id).unwrap_or(0),
        player_name: entry.user_name.clone(),
        // Relax and autopilot boards show pp where the score would be.
        score: if by_pp {
            f64::from(s.pp).round().max(0.0) as u64
        } else {
            u64::try_from(s.score).unwrap_or(0)
        },
        max_combo: n(s.max_combo),
        n50: n(s.count_50),
        n100: n(s.count_100),
        n300: n(s.count_300),
        nmiss: n(s.count_miss),
        nkatu: n(s.count_katu),
        ngeki: n(s.count_geki),
        perfect: s.perfect,
        mods: Mods::from_wire(s.mods as u32),
        user_id: u32::try_from(s.user_id).unwrap_or(0),
        rank,
        time: s.submitted_at,
        has_replay: true,
    }
}
