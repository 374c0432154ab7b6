//! osu!direct: the in-game map browser (`osu-search.php`, `osu-search-set.php`) and its
//! downloads (`/d/<set id>`). Sets come from the first cheesegull-style mirror among the
//! configured sources (`kind = "cheesegull"`), else from the maps this server knows (its
//! `beatmaps` table: imports and whatever the score chain looked up).
//!
//! A mirror is asked with the chain's HTTP client (its time-out is the source timeout)
//! and read within [`MAX_SEARCH_ANSWER_BYTES`]; one that fails, is slow or answers
//! something else than cheesegull's JSON costs the player an error line in the client
//! (`-1`), logged here, never a 5xx. The text formats are `peace_scores::direct`'s.

use std::collections::HashMap;

use bytes::Bytes;
use peace_db::{BeatmapRow, DbError, SetOrder, SetSearch};
use peace_scores::direct::{
    DirectMap, DirectQuery, DirectSet, PAGE_SIZE, render_error, render_search,
};
use peace_scores::status::{DirectFilter, RankedStatus};
use serde::Deserialize;

use super::ScoreService;
use super::beatmaps::{
    MAX_API_ANSWER_BYTES, SourceConfig, SourceError, format_api_date, is_md5, parse_iso_date,
    read_limited,
};
use super::storage::Storage;

/// The largest search answer read from a mirror (a page of 100 sets with their maps is
/// a few hundred KB).
pub const MAX_SEARCH_ANSWER_BYTES: usize = 8 << 20;
/// The deepest page asked for (the client pages by 100: 10,000 sets).
pub const MAX_PAGE: u32 = 100;
/// The longest search text passed on (the client's box is shorter).
pub const MAX_QUERY_CHARS: usize = 128;

/// One osu!direct search, as the client asks it.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub query: DirectQuery,
    pub filter: DirectFilter,
    /// `None` for every mode (`m=-1`).
    pub mode: Option<u8>,
    /// 0-based page of [`PAGE_SIZE`] sets.
    pub page: u32,
}

/// What a search answers.
#[derive(Debug, Clone, PartialEq)]
pub enum SearchAnswer {
    Sets(Vec<DirectSet>),
    /// An error the client shows (the mirror failed).
    Failed(String),
}

impl SearchAnswer {
    pub fn render(&self) -> String {
        match self {
            SearchAnswer::Sets(sets) => render_search(sets),
            SearchAnswer::Failed(message) => render_error(message),
        }
    }
}

/// What `osu-search-set.php` names a set by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetKey {
    Set(i32),
    Map(i32),
    Md5(String),
}

/// Where a download comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Download {
    /// The archive the operator stored for the set.
    File { name: String, bytes: Bytes },
    /// A mirror's url for the set.
    Redirect(String),
    /// No stored archive and no mirror.
    NotFound,
}

/// Why a mirror's answer could not be used.
#[derive(Debug, thiserror::Error)]
enum MirrorError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("{0}")]
    Http(#[from] reqwest::Error),
    #[error("answer is not cheesegull's JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// A set as cheesegull writes it (`models.Set`). Mirrors differ in writing `HasVideo` as
/// a boolean or a number, and chimu-style ones spell the id `SetId`.
#[derive(Debug, Deserialize)]
struct MirrorSet {
    #[serde(rename = "SetID", alias = "SetId")]
    set_id: i64,
    #[serde(rename = "ChildrenBeatmaps", default)]
    children: Option<Vec<MirrorMap>>,
    #[serde(rename = "RankedStatus", default)]
    ranked_status: i64,
    #[serde(rename = "LastUpdate", default)]
    last_update: Option<String>,
    #[serde(rename = "Artist", default)]
    artist: Option<String>,
    #[serde(rename = "Title", default)]
    title: Option<String>,
    #[serde(rename = "Creator", default)]
    creator: Option<String>,
    #[serde(rename = "HasVideo", default)]
    has_video: Option<serde_json::Value>,
}

/// A map as cheesegull writes it (`models.Beatmap`), only what a line needs.
#[derive(Debug, Deserialize)]
struct MirrorMap {
    #[serde(rename = "ParentSetID", alias = "ParentSetId", default)]
    parent_set_id: i64,
    #[serde(rename = "DiffName", default)]
    diff_name: Option<String>,
    #[serde(rename = "Mode", default)]
    mode: i64,
    #[serde(rename = "DifficultyRating", default)]
    difficulty_rating: f64,
}

impl MirrorSet {
    /// The set's line, or `None` for a set without maps (the client cannot list it).
    fn into_direct(self) -> Option<DirectSet> {
        let children = self.children.filter(|c| !c.is_empty())?;
        let set_id = i32::try_from(self.set_id).ok().filter(|id| *id > 0)?;
        let last_update = self.last_update.unwrap_or_default();
        Some(DirectSet {
            set_id,
            artist: self.artist.unwrap_or_default(),
            title: self.title.unwrap_or_default(),
            creator: self.creator.unwrap_or_default(),
            status: self.ranked_status.clamp(-2, 4) as i32,
            rating: 0.0,
            // Cheesegull writes Go's RFC 3339 times; the client's own format is the
            // osu!api's.
            last_update: parse_iso_date(&last_update).map_or(last_update, format_api_date),
            has_video: match self.has_video {
                Some(serde_json::Value::Bool(b)) => b,
                Some(serde_json::Value::Number(n)) => n.as_i64().is_some_and(|n| n != 0),
                _ => false,
            },
            maps: children
                .into_iter()
                .map(|m| DirectMap {
                    version: m.diff_name.unwrap_or_default(),
                    stars: m.difficulty_rating,
                    mode: m.mode.clamp(0, 3) as u8,
                })
                .collect(),
        })
    }
}

impl ScoreService {
    /// The first cheesegull mirror among the sources, if any.
    fn mirror(&self) -> Option<(&str, &str)> {
        self.beatmaps
            .sources()
            .iter()
            .find_map(|source| match source {
                SourceConfig::Cheesegull { url, download_url } => {
                    Some((url.trim_end_matches('/'), download_url.as_str()))
                }
                _ => None,
            })
    }

    /// One page of osu!direct's search: from the mirror if there is one, else from the
    /// maps this server knows.
    pub async fn direct_search(&self, request: &SearchRequest) -> Result<SearchAnswer, DbError> {
        let page = request.page.min(MAX_PAGE);
        let text: Option<String> = request
            .query
            .text()
            .map(|t| t.chars().take(MAX_QUERY_CHARS).collect());
        if let Some((url, _)) = self.mirror() {
            return Ok(match self.mirror_search(url, request, page, text).await {
                Ok(sets) => SearchAnswer::Sets(sets),
                Err(e) => {
                    tracing::warn!(mirror = %url, "osu!direct search failed: {e}");
                    SearchAnswer::Failed(
                        "The beatmap mirror did not answer; try again later.".into(),
                    )
                }
            });
        }
        let search = SetSearch {
            words: text
                .as_deref()
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            statuses: request.filter.library_statuses().map(<[i16]>::to_vec),
            mode: request.mode.map(i16::from),
            order: match request.query {
                DirectQuery::MostPlayed | DirectQuery::TopRated => SetOrder::MostPlayed,
                DirectQuery::Newest | DirectQuery::Text(_) => SetOrder::Newest,
            },
            offset: i64::from(page) * PAGE_SIZE as i64,
            limit: PAGE_SIZE as i64,
        };
        let ids = self.db.search_beatmap_sets(&search).await?;
        let rows = self.db.beatmaps_of_sets(&ids).await?;
        Ok(SearchAnswer::Sets(library_sets(&ids, rows)))
    }

    async fn mirror_search(
        &self,
        url: &str,
        request: &SearchRequest,
        page: u32,
        text: Option<String>,
    ) -> Result<Vec<DirectSet>, MirrorError> {
        let mut query: Vec<(&str, String)> = vec![
            ("amount", PAGE_SIZE.to_string()),
            ("offset", (page as usize * PAGE_SIZE).to_string()),
        ];
        if let Some(text) = text {
            query.push(("query", text));
        }
        if let Some(mode) = request.mode {
            query.push(("mode", mode.to_string()));
        }
        if let Some(status) = request.filter.mirror_status() {
            query.push(("status", status.to_string()));
        }
        let response = self
            .beatmaps
            .http()
            .get(format!("{url}/api/search"))
            .query(&query)
            .send()
            .await?
            .error_for_status()?;
        let body = read_limited(response, MAX_SEARCH_ANSWER_BYTES).await?;
        // `null` is how some mirrors say "nothing".
        let sets: Option<Vec<MirrorSet>> = serde_json::from_slice(&body)?;
        Ok(sets
            .unwrap_or_default()
            .into_iter()
            .take(PAGE_SIZE)
            .filter_map(MirrorSet::into_direct)
            .collect())
    }

    /// The line of one set (`osu-search-set.php`): the mirror's, else the server's own;
    /// `None` when neither knows it.
    pub async fn direct_set(&self, key: &SetKey) -> Result<Option<DirectSet>, DbError> {
        match key {
            SetKey::Set(id) | SetKey::Map(id) if *id <= 0 => return Ok(None),
            SetKey::Md5(md5) if !is_md5(md5) => return Ok(None),
            _ => {}
        }
        if let Some((url, _)) = self.mirror() {
            match self.mirror_set(url, key).await {
                Ok(Some(set)) => return Ok(Some(set)),
                Ok(None) => {}
                Err(e) => tracing::warn!(mirror = %url, ?key, "osu!direct set lookup failed: {e}"),
            }
        }
        let set_id = match key {
            SetKey::Set(id) => Some(*id),
            SetKey::Map(id) => self.db.beatmap_by_id(*id).await?.map(|m| m.set_id),
            SetKey::Md5(md5) => self.db.beatmap_by_md5(md5).await?.map(|m| m.set_id),
        };
        let Some(set_id) = set_id.filter(|id| *id > 0) else {
            return Ok(None);
        };
        let rows = self.db.beatmap_set(set_id).await?;
        Ok(library_sets(&[set_id], rows).into_iter().next())
    }

    async fn mirror_set(&self, url: &str, key: &SetKey) -> Result<Option<DirectSet>, MirrorError> {
        let set_id = match key {
            SetKey::Set(id) => i64::from(*id),
            SetKey::Map(id) => match self
                .mirror_get::<MirrorMap>(&format!("{url}/api/b/{id}"))
                .await?
            {
                Some(map) => map.parent_set_id,
                None => return Ok(None),
            },
            SetKey::Md5(md5) => {
                match self
                    .mirror_get::<MirrorMap>(&format!("{url}/api/md5/{md5}"))
                    .await?
                {
                    Some(map) => map.parent_set_id,
                    None => return Ok(None),
                }
            }
        };
        if set_id <= 0 {
            return Ok(None);
        }
        Ok(self
            .mirror_get::<MirrorSet>(&format!("{url}/api/s/{set_id}"))
            .await?
            .and_then(MirrorSet::into_direct))
    }

    /// A mirror's JSON document; `None` for a 404 (or a `null` body: unknown).
    async fn mirror_get<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
    ) -> Result<Option<T>, MirrorError> {
        let response = self.beatmaps.http().get(url).send().await?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let body = read_limited(response.error_for_status()?, MAX_API_ANSWER_BYTES).await?;
        Ok(serde_json::from_slice(&body)?)
    }

    /// Where the client downloads set `set_id` from (`/d/<set id>`, `n` for no video): the
    /// archive stored for it, else the mirror's download url.
    pub async fn direct_download(&self, set_id: i32, no_video: bool) -> Download {
        if set_id <= 0 {
            return Download::NotFound;
        }
        match self.beatmaps.storage().get(&Storage::osz_key(set_id)).await {
            Ok(Some(bytes)) => {
                return Download::File {
                    name: format!("{set_id}.osz"),
                    bytes,
                };
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(set = set_id, "reading a stored .osz: {e}"),
        }
        match self.mirror() {
            Some((_, download_url)) => {
                Download::Redirect(download_link(download_url, set_id, no_video))
            }
            None => Download::NotFound,
        }
    }
}

/// The mirror's download url for a set. Without video, cheesegull's `novideo` flag is
/// added (it looks only at the key's presence).
fn download_link(template: &str, set_id: i32, no_video: bool) -> String {
    let url = template.replace("{id}", &set_id.to_string());
    if !no_video {
        return url;
    }
    let joiner = if url.contains('?') { '&' } else { '?' };
    format!("{url}{joiner}novideo=1")
}

/// The server's own maps as sets, in the order of `set_ids`.
fn library_sets(set_ids: &[i32], rows: Vec<BeatmapRow>) -> Vec<DirectSet> {
    let mut by_set: HashMap<i32, Vec<BeatmapRow>> = HashMap::new();
    for row in rows {
        by_set.entry(row.set_id).or_default().push(row);
    }
    set_ids
        .iter()
        .filter_map(|id| by_set.remove(id))
        .filter_map(|maps| {
            let first = maps.first()?.clone();
            // The highest status among the set's maps: staff may have set one map
            // apart, and a set with one ranked map is listed among the ranked ones.
            let status = maps.iter().map(|m| m.status).max().unwrap_or(0);
            let updated = maps
                .iter()
                .map(|m| {
                    if m.approved_at > 0 {
                        m.approved_at
                    } else {
                        m.fetched_at
                    }
                })
                .max()
                .unwrap_or(0);
            Some(DirectSet {
                set_id: first.set_id,
                artist: first.artist,
                title: first.title,
                creator: first.creator,
                status: RankedStatus::from_api_v1(i32::from(status))
                    .and_then(RankedStatus::to_api_v1)
                    .unwrap_or(0),
                rating: 0.0,
                last_update: format_api_date(updated),
                has_video: false,
                maps: maps
                    .into_iter()
                    .map(|m| DirectMap {
                        version: m.version,
                        stars: f64::from(m.stars),
                        mode: m.mode.clamp(0, 3) as u8,
                    })
                    .collect(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_cheesegull_set_becomes_a_line() {
        let set: MirrorSet = serde_json::from_value(serde_json::json!({
            "SetID": 1, "RankedStatus": 1, "ApprovedDate": "2007-10-06T17:46:31Z",
            "LastUpdate": "2014-03-10T16:31:10Z", "LastChecked": "2024-01-01T00:00:00Z",
            "Artist": "Kenji Ninuma", "Title": "DISCO PRINCE", "Creator": "peppy",
            "Source": "", "Tags": "katamari", "HasVideo": false, "Genre": 2,
            "Language": 3, "Favourites": 500,
            "ChildrenBeatmaps": [{
                "BeatmapID": 75, "ParentSetID": 1, "DiffName": "Normal",
                "FileMD5": "a5b99395a42bd55bc5eb1d2411cbdf8b", "Mode": 0, "BPM": 119.999,
                "AR": 6, "OD": 6, "CS": 4, "HP": 6, "TotalLength": 142, "HitLength": 109,
                "Playcount": 1, "Passcount": 1, "MaxCombo": 314, "DifficultyRating": 2.4
            }]
        }))
        .unwrap();
        assert_eq!(
            set.into_direct().unwrap().render(),
            "1.osz|Kenji Ninuma|DISCO PRINCE|peppy|1|0.0|2014-03-10 16:31:10|1|0|0|0|0|0|\
             [2.40★] Normal@0"
        );
    }

    #[test]
    fn mirrors_spelling_video_and_ids_differently_read_alike() {
        let set: MirrorSet = serde_json::from_value(serde_json::json!({
            "SetId": 7, "RankedStatus": -2, "HasVideo": 1,
            "ChildrenBeatmaps": [{"DiffName": "x", "Mode": 9, "DifficultyRating": 1.0}]
        }))
        .unwrap();
        let line = set.into_direct().unwrap();
        assert_eq!((line.set_id, line.status, line.has_video), (7, -2, true));
        assert_eq!(line.maps[0].mode, 3);
        let empty: MirrorSet =
            serde_json::from_value(serde_json::json!({"SetID": 8, "ChildrenBeatmaps": null}))
                .unwrap();
        assert!(empty.into_direct().is_none());
    }

    #[test]
    fn download_links_without_video() {
        assert_eq!(
            download_link("https://m.example/d/{id}", 5, false),
            "https://m.example/d/5"
        );
        assert_eq!(
            download_link("https://m.example/d/{id}", 5, true),
            "https://m.example/d/5?novideo=1"
        );
        assert_eq!(
            download_link("https://m.example/get?s={id}", 5, true),
            "https://m.example/get?s=5&novideo=1"
        );
    }
}
