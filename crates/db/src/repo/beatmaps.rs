use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use crate::models::{BeatmapMiss, BeatmapRow};
use crate::pool::run;
use crate::repo::fit;
use crate::schema::{beatmap_misses, beatmaps};
use crate::{Database, DbError};

/// The most maps one set lookup returns (osu! sets have at most a few dozen difficulties;
/// the bound keeps a corrupted set id from loading a table).
pub const MAX_SET_SIZE: i64 = 256;

/// The most words of a library search that are matched (more are ignored).
pub const MAX_SEARCH_WORDS: usize = 4;

/// The most sets one library search returns.
pub const MAX_SEARCH_SETS: i64 = 101;

diesel::define_sql_function! {
    /// SQL's `LOWER`, the same on the three backends: the search compares lower case,
    /// since `LIKE` ignores case on SQLite only.
    fn lower(text: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// The character that escapes `%`, `_` and itself in a search pattern. Not a backslash:
/// MySQL reads one inside the `ESCAPE '\'` literal as an escape of the quote.
const LIKE_ESCAPE: char = '!';

/// How the sets of a library search are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SetOrder {
    /// The latest ranked (or imported) first.
    #[default]
    Newest,
    /// The most played first.
    MostPlayed,
}

/// A search of the maps this server knows (osu!direct without a mirror).
#[derive(Debug, Clone, Default)]
pub struct SetSearch {
    /// Each word must be in the artist, title, creator or a difficulty name (any case).
    pub words: Vec<String>,
    /// Only sets with a map of these `status` numbers; `None` for any.
    pub statuses: Option<Vec<i16>>,
    /// Only sets with a map of this mode; `None` for any.
    pub mode: Option<i16>,
    pub order: SetOrder,
    /// Sets skipped, and the most returned (at most [`MAX_SEARCH_SETS`]).
    pub offset: i64,
    pub limit: i64,
}

/// `%word%` in lower case, its own `%`, `_` and escape character escaped.
fn contains_pattern(word: &str) -> String {
    let mut pattern = String::from("%");
    for c in word.to_lowercase().chars() {
        if matches!(c, '%' | '_') || c == LIKE_ESCAPE {
            pattern.push(LIKE_ESCAPE);
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

impl Database {
    /// The ids of the sets a library search finds, in its order. Unused word slots match
    /// everything (`%`), so that one query shape serves every search.
    pub async fn search_beatmap_sets(&self, search: &SetSearch) -> Result<Vec<i32>, DbError> {
        let mut patterns: Vec<String> = search
            .words
            .iter()
            .filter(|w| !w.is_empty())
            .take(MAX_SEARCH_WORDS)
            .map(|w| contains_pattern(w))
            .collect();
        patterns.resize(MAX_SEARCH_WORDS, "%".to_owned());
        let statuses = search
            .statuses
            .clone()
            .unwrap_or_else(|| (-2..=4).collect());
        let modes: Vec<i16> = search.mode.map_or_else(|| (0..=3).collect(), |m| vec![m]);
        let (offset, limit) = (search.offset.max(0), search.limit.clamp(0, MAX_SEARCH_SETS));
        let order = search.order;
        run!(self, |conn| async {
            let word = |p: &String| {
                lower(beatmaps::artist)
                    .like(p.clone())
                    .escape(LIKE_ESCAPE)
                    .or(lower(beatmaps::title).like(p.clone()).escape(LIKE_ESCAPE))
                    .or(lower(beatmaps::creator).like(p.clone()).escape(LIKE_ESCAPE))
                    .or(lower(beatmaps::version).like(p.clone()).escape(LIKE_ESCAPE))
            };
            let found = beatmaps::table
                .filter(beatmaps::set_id.gt(0))
                .filter(beatmaps::status.eq_any(statuses))
                .filter(beatmaps::mode.eq_any(modes))
                .filter(word(&patterns[0]))
                .filter(word(&patterns[1]))
                .filter(word(&patterns[2]))
                .filter(word(&patterns[3]))
                .group_by(beatmaps::set_id)
                .select(beatmaps::set_id)
                .offset(offset)
                .limit(limit);
            match order {
                SetOrder::Newest => {
                    found
                        .order((
                            diesel::dsl::max(beatmaps::approved_at).desc(),
                            beatmaps::set_id.desc(),
                        ))
                        .load::<i32>(conn)
                        .await
                }
                SetOrder::MostPlayed => {
                    found
                        .order((
                            diesel::dsl::sum(beatmaps::plays).desc(),
                            beatmaps::set_id.desc(),
                        ))
                        .load::<i32>(conn)
                        .await
                }
            }
        })
    }

    /// The maps of these sets, by set and id (at most [`MAX_SET_SIZE`] per set).
    pub async fn beatmaps_of_sets(&self, set_ids: &[i32]) -> Result<Vec<BeatmapRow>, DbError> {
        let ids = set_ids.to_vec();
        let limit = MAX_SET_SIZE.saturating_mul(i64::try_from(ids.len()).unwrap_or(i64::MAX));
        run!(self, |conn| async {
            beatmaps::table
                .filter(beatmaps::set_id.eq_any(ids))
                .order((beatmaps::set_id, beatmaps::id, beatmaps::md5))
                .limit(limit)
                .select(BeatmapRow::as_select())
                .load(conn)
                .await
        })
    }

    /// The map whose `.osu` file has this md5.
    pub async fn beatmap_by_md5(&self, md5: &str) -> Result<Option<BeatmapRow>, DbError> {
        run!(self, |conn| async {
            beatmaps::table
                .find(md5)
                .select(BeatmapRow::as_select())
                .first(conn)
                .await
                .optional()
        })
    }

    /// The newest version of the map with osu! id `id` (several md5s may have had it).
    pub async fn beatmap_by_id(&self, id: i32) -> Result<Option<BeatmapRow>, DbError> {
        run!(self, |conn| async {
            beatmaps::table
                .filter(beatmaps::id.eq(id))
                .order(beatmaps::fetched_at.desc())
                .select(BeatmapRow::as_select())
                .first(conn)
                .await
                .optional()
        })
    }

    /// The maps of set `set_id`, by id.
    pub async fn beatmap_set(&self, set_id: i32) -> Result<Vec<BeatmapRow>, DbError> {
        run!(self, |conn| async {
            beatmaps::table
                .filter(beatmaps::set_id.eq(set_id))
                .order((beatmaps::id, beatmaps::md5))
                .limit(MAX_SET_SIZE)
                .select(BeatmapRow::as_select())
                .load(conn)
                .await
        })
    }

    /// The maps whose `.osu` file has this name (the client's name for a local map).
    pub async fn beatmaps_by_file_names(
        &self,
        names: &[String],
    ) -> Result<Vec<BeatmapRow>, DbError> {
        let names = names.to_vec();
        run!(self, |conn| async {
            beatmaps::table
                .filter(beatmaps::file_name.eq_any(names))
                .select(BeatmapRow::as_select())
                .load(conn)
                .await
        })
    }

    /// The maps with these osu! ids, every version of each (newest first per id).
    pub async fn beatmaps_by_ids(&self, ids: &[i32]) -> Result<Vec<BeatmapRow>, DbError> {
        let ids = ids.to_vec();
        run!(self, |conn| async {
            beatmaps::table
                .filter(beatmaps::id.eq_any(ids))
                .order((beatmaps::id, beatmaps::fetched_at.desc()))
                .select(BeatmapRow::as_select())
                .load(conn)
                .await
        })
    }

    /// Stores what a source said about a map, replacing an older row of the same md5.
    /// Counters (plays, passes) are kept, and a status staff set by hand stays: the
    /// override of the map or its set (`beatmap_status_overrides`), else the frozen
    /// status of the row it replaces.
    pub async fn save_beatmap(&self, row: &BeatmapRow) -> Result<BeatmapRow, DbError> {
        let mut row = BeatmapRow {
            artist: fit(&row.artist, 256),
            title: fit(&row.title, 256),
            version: fit(&row.version, 256),
            creator: fit(&row.creator, 64),
            file_name: fit(&row.file_name, 512),
            ..row.clone()
        };
        run!(self, |conn| conn.transaction(async move |conn| {
            // A write first (the md5's miss is obsolete anyway): SQLite cannot turn a read
            // transaction that another writer overtook into a write one (it fails at once,
            // without waiting out its busy time-out), so two maps saved at once would
            // fail one of them if the read below came first.
            diesel::delete(beatmap_misses::table.find(format!("md5:{}", row.md5)))
                .execute(conn)
                .await?;
            let old: Option<BeatmapRow> = beatmaps::table
                .find(&row.md5)
                .select(BeatmapRow::as_select())
                .first(conn)
                .await
                .optional()?;
            // A status staff gave the map or its set wins over the source's.
            let overrides = crate::repo::overrides::overrides_of!(conn, row.id, row.set_id)?;
            let overridden = crate::repo::overrides::pick_override(&overrides);
            if let Some(status) = overridden {
                row.status = status;
                row.status_frozen = true;
            }
            if let Some(old) = old {
                row.plays = old.plays;
                row.passes = old.passes;
                if old.status_frozen && overridden.is_none() {
                    row.status = old.status;
                    row.status_frozen = true;
                }
                diesel::delete(beatmaps::table.find(&old.md5))
                    .execute(conn)
                    .await?;
            }
            diesel::insert_into(beatmaps::table)
                .values(&row)
                .execute(conn)
                .await?;
            Ok::<_, diesel::result::Error>(row)
        }))
    }

    /// Sets a map's status by hand (`frozen`: sources no longer change it).
    pub async fn set_beatmap_status(
        &self,
        md5: &str,
        status: i16,
        frozen: bool,
    ) -> Result<bool, DbError> {
        let changed = run!(self, |conn| async {
            diesel::update(beatmaps::table.find(md5))
                .set((
                    beatmaps::status.eq(status),
                    beatmaps::status_frozen.eq(frozen),
                ))
                .execute(conn)
                .await
        })?;
        Ok(changed > 0)
    }

    /// When a lookup last found nothing (`md5:<md5>`, `id:<id>`, `set:<id>`).
    pub async fn beatmap_miss(&self, lookup: &str) -> Result<Option<i64>, DbError> {
        run!(self, |conn| async {
            beatmap_misses::table
                .find(lookup)
                .select(beatmap_misses::checked_at)
                .first(conn)
                .await
                .optional()
        })
    }

    /// Remembers that no source knew `lookup` at `checked_at`.
    pub async fn record_beatmap_miss(&self, lookup: &str, checked_at: i64) -> Result<(), DbError> {
        let row = BeatmapMiss {
            lookup: fit(lookup, 64),
            checked_at,
        };
        run!(self, |conn| conn.transaction(async move |conn| {
            diesel::delete(beatmap_misses::table.find(&row.lookup))
                .execute(conn)
                .await?;
            diesel::insert_into(beatmap_misses::table)
                .values(&row)
                .execute(conn)
                .await
        }))
        .map(drop)
    }
}
