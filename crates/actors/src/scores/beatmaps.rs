//! Beatmaps, offline first: a chain of providers asked in order — the database (which
//! caches every answer), then the configured osu!api v1 sources — and the `.osu` files,
//! from the store or from a source's file url, always checked against their md5.
//!
//! A source that is slow costs a request at most [`BeatmapsConfig::source_timeout`] and
//! never erases what the database holds; a map no source knows is remembered as a miss
//! for [`BeatmapsConfig::miss_ttl`], so that an unknown map is not asked again on every
//! request. With no source configured the server still works with the maps it imported.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use peace_db::{BeatmapRow, Database, DbError};
use peace_scores::osu_file::{OsuFile, md5_hex};
use peace_scores::status::RankedStatus;
use serde::Deserialize;
use serde_json::Value;

use super::storage::{Storage, StorageError};

/// The largest `.osu` file fetched or imported (the biggest ranked maps are ~2 MB).
pub const MAX_OSU_FILE_BYTES: usize = 8 << 20;
/// The largest osu!api answer read.
pub const MAX_API_ANSWER_BYTES: usize = 4 << 20;

/// `beatmaps.source`: where a row came from.
pub const SOURCE_LOCAL: i16 = 0;
pub const SOURCE_OSU_API_V1: i16 = 1;

/// One HTTP source of the osu!api v1 shape (`[[beatmaps.sources]]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Only `"osu-api-v1"` today.
    pub kind: String,
    /// `GET {api_url}/get_beatmaps?h=<md5>` (or `b=<id>`, `s=<set id>`), `&k=<key>`.
    pub api_url: String,
    /// The raw `.osu` file, `{id}` replaced by the beatmap id; empty for none.
    #[serde(default)]
    pub osu_file_url: String,
    /// The api key, if the source wants one.
    #[serde(default)]
    pub key: String,
}

/// How the chain asks.
#[derive(Debug, Clone)]
pub struct BeatmapsConfig {
    pub sources: Vec<SourceConfig>,
    /// The most one source may take to answer.
    pub source_timeout: Duration,
    /// How long "no source knows this map" is believed.
    pub miss_ttl: Duration,
}

impl Default for BeatmapsConfig {
    fn default() -> Self {
        Self {
            sources: Vec::new(),
            source_timeout: Duration::from_secs(3),
            miss_ttl: Duration::from_secs(3600),
        }
    }
}

/// Why a `.osu` file could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("not a .osu file: {0}")]
    NotOsuFile(String),
    #[error("the file is larger than {MAX_OSU_FILE_BYTES} bytes")]
    TooLarge,
    #[error(transparent)]
    Database(#[from] DbError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The provider chain.
#[derive(Debug, Clone)]
pub struct Beatmaps {
    db: Arc<Database>,
    storage: Storage,
    http: reqwest::Client,
    config: Arc<BeatmapsConfig>,
}

/// What the chain looks a map up by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup<'a> {
    Md5(&'a str),
    Id(i32),
}

impl Lookup<'_> {
    fn miss_key(&self) -> String {
        match self {
            Lookup::Md5(md5) => format!("md5:{md5}"),
            Lookup::Id(id) => format!("id:{id}"),
        }
    }

    fn query(&self) -> (&'static str, String) {
        match self {
            Lookup::Md5(md5) => ("h", (*md5).to_owned()),
            Lookup::Id(id) => ("b", id.to_string()),
        }
    }
}

impl Beatmaps {
    pub fn new(db: Arc<Database>, storage: Storage, config: BeatmapsConfig) -> Self {
        let http = reqwest::Client::builder()
            .timeout(config.source_timeout)
            .user_agent(concat!("peace/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Self {
            db,
            storage,
            http,
            config: Arc::new(config),
        }
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// The map whose `.osu` file has this md5, from the database or a source.
    pub async fn by_md5(&self, md5: &str) -> Result<Option<BeatmapRow>, DbError> {
        if !is_md5(md5) {
            return Ok(None);
        }
        if let Some(row) = self.db.beatmap_by_md5(md5).await? {
            return Ok(Some(row));
        }
        self.ask_sources(Lookup::Md5(md5)).await
    }

    /// The map with osu! id `id`.
    pub async fn by_id(&self, id: i32) -> Result<Option<BeatmapRow>, DbError> {
        if id <= 0 {
            return Ok(None);
        }
        if let Some(row) = self.db.beatmap_by_id(id).await? {
            return Ok(Some(row));
        }
        self.ask_sources(Lookup::Id(id)).await
    }

    /// The maps of a set that the database knows.
    pub async fn set(&self, set_id: i32) -> Result<Vec<BeatmapRow>, DbError> {
        if set_id <= 0 {
            return Ok(Vec::new());
        }
        self.db.beatmap_set(set_id).await
    }

    async fn ask_sources(&self, lookup: Lookup<'_>) -> Result<Option<BeatmapRow>, DbError> {
        if self.config.sources.is_empty() {
            return Ok(None);
        }
        let now = peace_db::unix_now();
        let miss_key = lookup.miss_key();
        if let Some(checked) = self.db.beatmap_miss(&miss_key).await?
            && now - checked < self.config.miss_ttl.as_secs() as i64
        {
            return Ok(None);
        }
        let mut every_source_answered = true;
        for source in &self.config.sources {
            match self.ask_v1(source, lookup).await {
                Ok(rows) => {
                    let mut found = None;
                    for row in rows {
                        let saved = self.db.save_beatmap(&row).await?;
                        let hit = match lookup {
                            Lookup::Md5(md5) => saved.md5 == md5,
                            Lookup::Id(id) => saved.id == id,
                        };
                        if hit {
                            found = Some(saved);
                        }
                    }
                    if found.is_some() {
                        return Ok(found);
                    }
                }
                Err(e) => {
                    every_source_answered = false;
                    tracing::warn!(source = %source.api_url, "beatmap source failed: {e}");
                }
            }
        }
        // Only a definite "unknown" from every source is remembered: a source that was
        // down may know the map next time.
        if every_source_answered {
            self.db.record_beatmap_miss(&miss_key, now).await?;
        }
        Ok(None)
    }

    async fn ask_v1(
        &self,
        source: &SourceConfig,
        lookup: Lookup<'_>,
    ) -> Result<Vec<BeatmapRow>, SourceError> {
        let (param, value) = lookup.query();
        let mut request = self
            .http
            .get(format!(
                "{}/get_beatmaps",
                source.api_url.trim_end_matches('/')
            ))
            .query(&[(param, value.as_str())]);
        if !source.key.is_empty() {
            request = request.query(&[("k", source.key.as_str())]);
        }
        let response = request.send().await?.error_for_status()?;
        let body = read_limited(response, MAX_API_ANSWER_BYTES).await?;
        let maps: Vec<Value> = serde_json::from_slice(&body)?;
        let now = peace_db::unix_now();
        Ok(maps.iter().filter_map(|m| v1_row(m, now)).collect())
    }

    /// The `.osu` file of `map`: from the store, else from the first source that has a
    /// file url (then stored). Checked against the md5; `None` when nobody has it.
    pub async fn osu_file(&self, map: &BeatmapRow) -> Option<Bytes> {
        let key = Storage::osu_file_key(&map.md5);
        match self.storage.get(&key).await {
            Ok(Some(bytes)) => return Some(bytes),
            Ok(None) => {}
            Err(e) => tracing::warn!(md5 = %map.md5, "reading a stored .osu file: {e}"),
        }
        if map.id <= 0 {
            return None;
        }
        for source in &self.config.sources {
            if source.osu_file_url.is_empty() {
                continue;
            }
            let url = source.osu_file_url.replace("{id}", &map.id.to_string());
            let fetched = async {
                let response = self.http.get(&url).send().await?.error_for_status()?;
                read_limited(response, MAX_OSU_FILE_BYTES).await
            };
            match fetched.await {
                Ok(bytes) if md5_hex(&bytes) == map.md5 => {
                    if let Err(e) = self.storage.put(&key, bytes.clone()).await {
                        tracing::warn!(md5 = %map.md5, "storing a fetched .osu file: {e}");
                    }
                    return Some(bytes);
                }
                Ok(_) => tracing::warn!(%url, md5 = %map.md5, "fetched .osu file has another md5"),
                Err(e) => tracing::warn!(%url, "fetching a .osu file: {e}"),
            }
        }
        None
    }

    /// Imports one `.osu` file: stored by its md5, described in the database with
    /// `status` (maps without an osu! id get 0).
    pub async fn import_osu(
        &self,
        bytes: Bytes,
        status: RankedStatus,
    ) -> Result<BeatmapRow, ImportError> {
        if bytes.len() > MAX_OSU_FILE_BYTES {
            return Err(ImportError::TooLarge);
        }
        let file = OsuFile::parse(&bytes).map_err(|e| ImportError::NotOsuFile(e.to_string()))?;
        // Difficulty without mods, in the map's own mode; the map's max combo with it.
        let difficulty = peace_scores::pp::Beatmap::parse(&bytes)
            .and_then(|map| peace_scores::pp::stars(&map, file.mode, 0));
        let (stars, max_combo) = match difficulty {
            Ok(d) => (d.stars, d.max_combo),
            Err(e) => {
                tracing::warn!(md5 = %file.md5, "no star rating for an imported map: {e}");
                (0.0, 0)
            }
        };
        let now = peace_db::unix_now();
        let row = BeatmapRow {
            md5: file.md5.clone(),
            id: file
                .beatmap_id
                .and_then(|id| i32::try_from(id).ok())
                .unwrap_or(0),
            set_id: file
                .beatmap_set_id
                .and_then(|id| i32::try_from(id).ok())
                .unwrap_or(0),
            status: status.to_api_v1().map_or(0, |s| s as i16),
            status_frozen: false,
            mode: i16::from(file.mode),
            file_name: file.file_name(),
            artist: file.artist,
            title: file.title,
            version: file.version,
            creator: file.creator,
            total_length: 0,
            max_combo: i32::try_from(max_combo).unwrap_or(i32::MAX),
            stars: stars as f32,
            plays: 0,
            passes: 0,
            source: SOURCE_LOCAL,
            approved_at: now,
            fetched_at: now,
        };
        self.storage
            .put(&Storage::osu_file_key(&row.md5), bytes)
            .await?;
        Ok(self.db.save_beatmap(&row).await?)
    }
}

#[derive(Debug, thiserror::Error)]
enum SourceError {
    #[error("{0}")]
    Http(#[from] reqwest::Error),
    #[error("answer is not the osu!api's JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("answer is larger than {0} bytes")]
    TooLarge(usize),
}

async fn read_limited(mut response: reqwest::Response, limit: usize) -> Result<Bytes, SourceError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Err(SourceError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

/// One map of an osu!api v1 `get_beatmaps` answer. Mirrors differ in sending numbers as
/// JSON numbers or as strings; both are read. `None` for an entry without an md5.
fn v1_row(map: &Value, now: i64) -> Option<BeatmapRow> {
    let text = |name: &str| match map.get(name) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    let number = |name: &str| text(name).trim().parse::<f64>().ok();
    let int = |name: &str| number(name).map_or(0, |n| n as i64);
    let md5 = text("file_md5").to_ascii_lowercase();
    if !is_md5(&md5) {
        return None;
    }
    let status = RankedStatus::from_api_v1(int("approved") as i32).unwrap_or(RankedStatus::Pending);
    let (artist, title, version, creator) = (
        text("artist"),
        text("title"),
        text("version"),
        text("creator"),
    );
    let file_name = peace_scores::osu_file::file_name(&artist, &title, &creator, &version);
    Some(BeatmapRow {
        md5,
        id: int("beatmap_id").clamp(0, i64::from(i32::MAX)) as i32,
        set_id: int("beatmapset_id").clamp(0, i64::from(i32::MAX)) as i32,
        status: status.to_api_v1().map_or(0, |s| s as i16),
        status_frozen: false,
        mode: int("mode").clamp(0, 3) as i16,
        artist,
        title,
        version,
        creator,
        file_name,
        total_length: int("total_length").clamp(0, i64::from(i32::MAX)) as i32,
        max_combo: int("max_combo").clamp(0, i64::from(i32::MAX)) as i32,
        stars: number("difficultyrating").unwrap_or(0.0) as f32,
        plays: 0,
        passes: 0,
        source: SOURCE_OSU_API_V1,
        approved_at: parse_api_date(&text("approved_date")).unwrap_or(0),
        fetched_at: now,
    })
}

/// Whether `text` is 32 lower-case hex digits.
pub fn is_md5(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `YYYY-MM-DD HH:MM:SS` (UTC, the osu!api's format) as unix seconds.
pub fn parse_api_date(text: &str) -> Option<i64> {
    let (date, time) = text.trim().split_once(' ')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':').map(|p| p.parse::<i64>().ok());
    let (h, min, s) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || h > 23 || min > 59 || s > 60 {
        return None;
    }
    Some(days_from_civil(y, m, day) * 86_400 + h * 3600 + min * 60 + s)
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS` (UTC).
pub fn format_api_date(unix: i64) -> String {
    let (days, secs) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

// Howard Hinnant's days-from-civil algorithm (proleptic Gregorian calendar).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn api_dates_round_trip() {
        assert_eq!(parse_api_date("1970-01-01 00:00:00"), Some(0));
        assert_eq!(parse_api_date("2014-03-01 12:34:56"), Some(1_393_677_296));
        assert_eq!(format_api_date(1_393_677_296), "2014-03-01 12:34:56");
        assert_eq!(parse_api_date("not a date"), None);
        assert_eq!(parse_api_date("2014-13-01 00:00:00"), None);
    }

    #[test]
    fn v1_answers_with_numbers_or_strings_read_alike() {
        let strings = serde_json::json!({
            "beatmap_id": "75", "beatmapset_id": "1", "approved": "1",
            "file_md5": "A5B99395A42BD55BC5EB1D2411CBDF8B", "artist": "Kenji Ninuma",
            "title": "DISCO PRINCE", "version": "Normal", "creator": "peppy", "mode": "0",
            "total_length": "142", "max_combo": "314", "difficultyrating": "2.4",
            "approved_date": "2007-10-06 17:46:31"
        });
        let numbers = serde_json::json!({
            "beatmap_id": 75, "beatmapset_id": 1, "approved": 1,
            "file_md5": "a5b99395a42bd55bc5eb1d2411cbdf8b", "artist": "Kenji Ninuma",
            "title": "DISCO PRINCE", "version": "Normal", "creator": "peppy", "mode": 0,
            "total_length": 142, "max_combo": 314, "difficultyrating": 2.4,
            "approved_date": "2007-10-06 17:46:31"
        });
        let (a, b) = (v1_row(&strings, 5).unwrap(), v1_row(&numbers, 5).unwrap());
        assert_eq!(a, b);
        assert_eq!((a.id, a.set_id, a.status, a.max_combo), (75, 1, 1, 314));
        assert_eq!(
            a.file_name,
            "Kenji Ninuma - DISCO PRINCE (peppy) [Normal].osu"
        );
        assert!(v1_row(&serde_json::json!({"beatmap_id": 1}), 5).is_none());
    }
}
