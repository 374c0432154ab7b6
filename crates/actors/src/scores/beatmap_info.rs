//! `osu-getbeatmapinfo.php`: the client's local maps, named by file name (`Filenames`,
//! each line with its index in the request) and by osu! id (`Ids`, index −1: the client
//! finds those by id), each with its ranked status and the player's best grade in every
//! mode.

use peace_db::{BeatmapRow, DbError, User};
use peace_scores::grade::Grade;
use peace_scores::web::BeatmapInfoLine;

use super::ScoreService;
use super::submit::map_status;

/// The most local maps one getbeatmapinfo request may ask about.
pub const MAX_BEATMAPINFO_MAPS: usize = 1000;

impl ScoreService {
    /// The whole getbeatmapinfo reply: a line per known map of `file_names`, then a line
    /// per known map of `ids`. At most [`MAX_BEATMAPINFO_MAPS`] maps in all are looked at.
    pub async fn beatmap_info_reply(
        &self,
        user: &User,
        file_names: &[String],
        ids: &[i32],
    ) -> Result<String, DbError> {
        let names = &file_names[..file_names.len().min(MAX_BEATMAPINFO_MAPS)];
        let by_name = self.db.beatmaps_by_file_names(names).await?;
        let room = MAX_BEATMAPINFO_MAPS - names.len();
        let mut wanted: Vec<i32> = ids.iter().copied().filter(|id| *id > 0).collect();
        wanted.truncate(room);
        // The newest version of each map (the query lists them newest first per id).
        let mut by_id: Vec<BeatmapRow> = Vec::new();
        if !wanted.is_empty() {
            for map in self.db.beatmaps_by_ids(&wanted).await? {
                if by_id.last().is_none_or(|last| last.id != map.id) {
                    by_id.push(map);
                }
            }
        }
        let md5s: Vec<String> = by_name
            .iter()
            .chain(&by_id)
            .map(|m| m.md5.clone())
            .collect();
        let grades = self.db.best_grades(user.id, &md5s).await?;
        let mut out = String::new();
        let mut push = |text: Option<String>| {
            if let Some(text) = text {
                out.push_str(&text);
                out.push('\n');
            }
        };
        for (index, name) in names.iter().enumerate() {
            if let Some(map) = by_name.iter().find(|m| &m.file_name == name) {
                push(info_line(map, index, &grades).render());
            }
        }
        for id in &wanted {
            if let Some(map) = by_id.iter().find(|m| m.id == *id) {
                push(info_line(map, 0, &grades).render_by_id());
            }
        }
        Ok(out)
    }
}

/// The line of `map` with the player's best grade in each mode out of `grades`
/// (`(md5, mode, grade)` triples).
fn info_line(map: &BeatmapRow, index: usize, grades: &[(String, i16, String)]) -> BeatmapInfoLine {
    let mut line_grades: [Option<Grade>; 4] = [None; 4];
    for (md5, mode, grade) in grades {
        if md5 == &map.md5
            && let Some(slot) = usize::try_from(*mode)
                .ok()
                .and_then(|mode| line_grades.get_mut(mode))
        {
            *slot = grade.parse().ok();
        }
    }
    BeatmapInfoLine {
        index,
        beatmap_id: u32::try_from(map.id).unwrap_or(0),
        set_id: u32::try_from(map.set_id).unwrap_or(0),
        md5: map.md5.clone(),
        status: map_status(map),
        grades: line_grades,
    }
}
