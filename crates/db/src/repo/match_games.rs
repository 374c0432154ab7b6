use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use crate::models::{MatchScore, NewMatchGame};
use crate::pool::run;
use crate::repo::fit;
use crate::schema::{match_games, match_scores};
use crate::{Database, DbError};

impl Database {
    /// Records a finished game and its scores (`game_id` of the scores is filled in);
    /// returns the game's id.
    pub async fn record_match_game(
        &self,
        game: &NewMatchGame,
        scores: &[MatchScore],
    ) -> Result<i32, DbError> {
        // Column widths of `match_games` (see `fit`): names come from the host's client.
        let game = NewMatchGame {
            match_name: fit(&game.match_name, 64),
            beatmap_md5: fit(&game.beatmap_md5, 32),
            beatmap_name: fit(&game.beatmap_name, 256),
            ..game.clone()
        };
        let scores = scores.to_vec();
        // One transaction: a game is recorded with all its scores or not at all.
        run!(self, |conn| conn.transaction(async move |conn| {
            diesel::insert_into(match_games::table)
                .values(&game)
                .execute(conn)
                .await?;
            // The newest game of this match: portable to backends without RETURNING.
            let id: i32 = match_games::table
                .filter(match_games::match_id.eq(game.match_id))
                .filter(match_games::started_at.eq(game.started_at))
                .select(match_games::id)
                .order(match_games::id.desc())
                .first(conn)
                .await?;
            // One insert per row: diesel's batch insert is not available for SQLite.
            for score in scores {
                let row = MatchScore {
                    game_id: id,
                    ..score
                };
                diesel::insert_into(match_scores::table)
                    .values(&row)
                    .execute(conn)
                    .await?;
            }
            Ok::<_, diesel::result::Error>(id)
        }))
    }

    /// The scores of a recorded game, by slot.
    pub async fn match_scores(&self, game_id: i32) -> Result<Vec<MatchScore>, DbError> {
        run!(self, |conn| async {
            match_scores::table
                .filter(match_scores::game_id.eq(game_id))
                .order(match_scores::slot)
                .select(MatchScore::as_select())
                .load(conn)
                .await
        })
    }

    /// How many games were recorded for in-memory match `match_id` (for tests and the API).
    pub async fn match_game_count(&self, match_id: i32) -> Result<i64, DbError> {
        run!(self, |conn| async {
            match_games::table
                .filter(match_games::match_id.eq(match_id))
                .count()
                .get_result(conn)
                .await
        })
    }
}
