//! Ranked statuses staff gave by hand (`beatmap_status_overrides`): to one map or to every
//! map of a set. Setting one writes the override and the status of every stored row it
//! covers in one transaction; [`Database::save_beatmap`] applies them to whatever a
//! source says later, so a refresh never undoes them.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use crate::models::{BeatmapRow, StatusOverride};
use crate::pool::run;
use crate::repo::beatmaps::MAX_SET_SIZE;
use crate::schema::{beatmap_status_overrides, beatmaps};
use crate::{Database, DbError};

/// `beatmap_status_overrides.scope`: one map, by its osu! beatmap id.
pub const OVERRIDE_MAP: i16 = 0;
/// `beatmap_status_overrides.scope`: every map of a set, by the set id.
pub const OVERRIDE_SET: i16 = 1;

impl Database {
    /// Gives `status` (osu!api v1 `approved`) to the map with osu! id `target_id`
    /// ([`OVERRIDE_MAP`]) or to every map of set `target_id` ([`OVERRIDE_SET`]), for good:
    /// the stored rows change now (marked as set by hand), and rows a source saves later
    /// take it too. A map override wins over its set's. Returns the rows changed now.
    pub async fn override_status(
        &self,
        entry: &StatusOverride,
    ) -> Result<Vec<BeatmapRow>, DbError> {
        let entry = entry.clone();
        run!(self, |conn| conn.transaction(async move |conn| {
            diesel::delete(beatmap_status_overrides::table.find((entry.scope, entry.target_id)))
                .execute(conn)
                .await?;
            diesel::insert_into(beatmap_status_overrides::table)
                .values(&entry)
                .execute(conn)
                .await?;
            let covered = beatmaps::table.into_boxed();
            let covered = if entry.scope == OVERRIDE_SET {
                covered.filter(beatmaps::set_id.eq(entry.target_id))
            } else {
                covered.filter(beatmaps::id.eq(entry.target_id))
            };
            let mut rows: Vec<BeatmapRow> = covered
                .limit(MAX_SET_SIZE)
                .select(BeatmapRow::as_select())
                .load(conn)
                .await?;
            if entry.scope == OVERRIDE_SET {
                // A map of the set with an override of its own keeps it.
                let ids: Vec<i32> = rows.iter().map(|r| r.id).collect();
                let own: Vec<i32> = beatmap_status_overrides::table
                    .filter(beatmap_status_overrides::scope.eq(OVERRIDE_MAP))
                    .filter(beatmap_status_overrides::target_id.eq_any(ids))
                    .select(beatmap_status_overrides::target_id)
                    .load(conn)
                    .await?;
                rows.retain(|r| !own.contains(&r.id));
            }
            for row in &mut rows {
                diesel::update(beatmaps::table.find(&row.md5))
                    .set((
                        beatmaps::status.eq(entry.status),
                        beatmaps::status_frozen.eq(true),
                    ))
                    .execute(conn)
                    .await?;
                row.status = entry.status;
                row.status_frozen = true;
            }
            Ok::<_, diesel::result::Error>(rows)
        }))
    }

    /// The status staff gave the map `id` of set `set_id`, if any: its own override, else
    /// its set's.
    pub async fn status_override(&self, id: i32, set_id: i32) -> Result<Option<i16>, DbError> {
        let found = run!(self, |conn| async { overrides_of!(conn, id, set_id) })?;
        Ok(pick_override(&found))
    }
}

/// Of the overrides `(scope, status)` that cover one map, the one that applies: the
/// map's own before its set's.
pub(crate) fn pick_override(found: &[(i16, i16)]) -> Option<i16> {
    found
        .iter()
        .find(|(scope, _)| *scope == OVERRIDE_MAP)
        .or_else(|| found.first())
        .map(|(_, status)| *status)
}

/// The overrides that may cover the map `id` of set `set_id`, as `(scope, status)`; maps
/// without osu! ids (local imports) have none.
macro_rules! overrides_of {
    ($conn:expr, $id:expr, $set_id:expr) => {{
        let (id, set_id): (i32, i32) = ($id, $set_id);
        crate::schema::beatmap_status_overrides::table
            .filter(
                crate::schema::beatmap_status_overrides::scope
                    .eq(crate::repo::overrides::OVERRIDE_MAP)
                    .and(crate::schema::beatmap_status_overrides::target_id.eq(id))
                    .and(crate::schema::beatmap_status_overrides::target_id.gt(0))
                    .or(crate::schema::beatmap_status_overrides::scope
                        .eq(crate::repo::overrides::OVERRIDE_SET)
                        .and(crate::schema::beatmap_status_overrides::target_id.eq(set_id))
                        .and(crate::schema::beatmap_status_overrides::target_id.gt(0))),
            )
            .select((
                crate::schema::beatmap_status_overrides::scope,
                crate::schema::beatmap_status_overrides::status,
            ))
            .load::<(i16, i16)>($conn)
            .await
    }};
}
pub(crate) use overrides_of;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_maps_own_override_beats_its_sets() {
        assert_eq!(pick_override(&[]), None);
        assert_eq!(pick_override(&[(OVERRIDE_SET, 4)]), Some(4));
        assert_eq!(
            pick_override(&[(OVERRIDE_SET, 4), (OVERRIDE_MAP, 1)]),
            Some(1)
        );
        assert_eq!(
            pick_override(&[(OVERRIDE_MAP, 0), (OVERRIDE_SET, 4)]),
            Some(0)
        );
    }
}
