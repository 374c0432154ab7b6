//! `osu-getbeatmapinfo.php` as a whole: the client's local maps named by file name
//! (`Filenames`, answered by [`ScoreService::beatmap_info`] beside the boards) and by
//! osu! id (`Ids`, answered here), each with the player's best grade in every mode.

use peace_db::{BeatmapRow, DbError, User};
use peace_scores::grade::Grade;
use peace_scores::web::BeatmapInfoLine;

use super::ScoreService;
use super::board::MAX_BEATMAPINFO_MAPS;
use super::submit::map_status;

impl ScoreService {
    /// The whole getbeatmapinfo reply: a line per known map of `file_names` (with its
    /// index in the request), then a line per known map of `ids` (index −1: the client
    /// finds those by id). At most [`MAX_BEATMAPINFO_MAPS`] maps in all are looked at.
    pub async fn beatmap_info_reply(
        &self,
        user: &User,
        file_names: &[String],
        ids: &[i32],
    ) -> Result<String, DbError> {
        let names = &file_names[..file_names.len().min(MAX_BEATMAPINFO_MAPS)];
        let mut out = self.beatmap_info(user, names).await?;
        let room = MAX_BEATMAPINFO_MAPS - names.len();
        let mut wanted: Vec<i32> = ids.iter().copied().filter(|id| *id > 0).collect();
        wanted.truncate(room);
        if wanted.is_empty() {
            return Ok(out);
        }
        // The newest version of each map (the query lists them newest first per id).
        let mut maps: Vec<BeatmapRow> = Vec::new();
        for map in self.db.beatmaps_by_ids(&wanted).await? {
            if maps.last().is_none_or(|last| last.id != map.id) {
                maps.push(map);
            }
        }
        let md5s: Vec<String> = maps.iter().map(|m| m.md5.clone()).collect();
        let grades = self.db.best_grades(user.id, &md5s).await?;
        for id in &wanted {
            let Some(map) = maps.iter().find(|m| m.id == *id) else {
                continue;
            };
            let mut line_grades: [Option<Grade>; 4] = [None; 4];
            for (md5, mode, grade) in &grades {
                if md5 == &map.md5
                    && let Some(slot) = usize::try_from(*mode)
                        .ok()
                        .and_then(|mode| line_grades.get_mut(mode))
                {
                    *slot = grade.parse().ok();
                }
            }
            let line = BeatmapInfoLine {
                index: 0,
                beatmap_id: u32::try_from(map.id).unwrap_or(0),
                set_id: u32::try_from(map.set_id).unwrap_or(0),
                md5: map.md5.clone(),
                status: map_status(map),
                grades: line_grades,
            };
            if let Some(text) = line.render_by_id() {
                out.push_str(&text);
                out.push('\n');
            }
        }
        Ok(out)
    }
}
