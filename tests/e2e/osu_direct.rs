//! osu!direct through HTTP into a real server: the search and set lines from a fake
//! cheesegull mirror started in the test (what is asked of it for each status filter,
//! mode, page and query; a full page answered 101; a mirror that answers garbage, fails
//! or is too slow is the client's `-1` line), the same from the server's own maps when no
//! mirror is configured (on every backend: the search is SQL), the downloads (302 to the
//! mirror, a stored archive, 404), thumbnails, and the supporter bit of the login reply.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use peace_bancho::ServerPacket;
use peace_db::{Backend, BeatmapRow, Privileges};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::common::{PASSWORD, TestServer, md5_hex};

/// How the fake mirror answers searches.
const NORMAL: u8 = 0;
/// Not JSON.
const GARBAGE: u8 = 1;
/// A 500.
const FAILING: u8 = 2;
/// Longer than the server's source timeout.
const SLOW: u8 = 3;
/// A full page of 100 sets.
const FULL_PAGE: u8 = 4;

const STD_MAP: &str = include_str!("../../crates/scores/tests/maps/std.osu");

/// The server's source timeout in these tests: a slow mirror costs a request this long.
const SOURCE_TIMEOUT_MS: u64 = 200;

#[derive(Default)]
struct Mirror {
    searches: Mutex<Vec<HashMap<String, String>>>,
    behaviour: AtomicU8,
}

struct FakeMirror {
    base: String,
    state: Arc<Mirror>,
    task: JoinHandle<()>,
}

impl Drop for FakeMirror {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A map as cheesegull writes it.
fn mirror_map(id: i64, set_id: i64, name: &str, mode: i64, stars: f64) -> Value {
    json!({
        "BeatmapID": id, "ParentSetID": set_id, "DiffName": name,
        "FileMD5": md5_hex(name), "Mode": mode, "BPM": 120, "AR": 9, "OD": 8, "CS": 4,
        "HP": 6, "TotalLength": 120, "HitLength": 100, "Playcount": 10, "Passcount": 5,
        "MaxCombo": 500, "DifficultyRating": stars
    })
}

/// A set as cheesegull writes it (`models.Set`, times in RFC 3339).
fn mirror_set(id: i64) -> Value {
    match id {
        1 => json!({
            "SetID": 1, "RankedStatus": 1, "ApprovedDate": "2007-10-06T17:46:31Z",
            "LastUpdate": "2014-03-10T16:31:10Z", "LastChecked": "2024-01-01T00:00:00Z",
            "Artist": "Kenji Ninuma", "Title": "DISCO PRINCE", "Creator": "peppy",
            "Source": "", "Tags": "", "HasVideo": false, "Genre": 2, "Language": 3,
            "Favourites": 10,
            "ChildrenBeatmaps": [mirror_map(76, 1, "Hard", 0, 3.1), mirror_map(75, 1, "Normal", 0, 2.4)]
        }),
        _ => json!({
            "SetID": id, "RankedStatus": 4, "ApprovedDate": "2020-01-01T00:00:00Z",
            "LastUpdate": "2020-02-03T04:05:06Z", "LastChecked": "2024-01-01T00:00:00Z",
            "Artist": "Some|One", "Title": "Keys", "Creator": "mapper", "Source": "",
            "Tags": "", "HasVideo": true, "Genre": 1, "Language": 1, "Favourites": 1,
            "ChildrenBeatmaps": [mirror_map(id * 10, id, "7K, @Hard", 3, 4.567)]
        }),
    }
}

const SET_1_LINE: &str = "1.osz|Kenji Ninuma|DISCO PRINCE|peppy|1|0.0|2014-03-10 16:31:10|1|0|0|0|0|0|\
                          [2.40★] Normal@0,[3.10★] Hard@0";
const SET_2_LINE: &str =
    "2.osz|SomeIOne|Keys|mapper|4|0.0|2020-02-03 04:05:06|2|0|1|0|0|0|[4.57★] 7K. Hard@3";

async fn search(
    State(mirror): State<Arc<Mirror>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    mirror.searches.lock().unwrap().push(q);
    match mirror.behaviour.load(Ordering::SeqCst) {
        GARBAGE => "<html>not json</html>".into_response(),
        FAILING => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        SLOW => {
            // Never answers: the server gives up after its source timeout, and the
            // handler goes with the fake when the test ends.
            std::future::pending::<()>().await;
            Json(json!([])).into_response()
        }
        FULL_PAGE => Json((100..200).map(mirror_set).collect::<Vec<_>>()).into_response(),
        _ => Json(json!([mirror_set(1), mirror_set(2)])).into_response(),
    }
}

async fn set(Path(id): Path<i64>) -> Response {
    match id {
        1 | 2 => Json(mirror_set(id)).into_response(),
        _ => (StatusCode::NOT_FOUND, Json(Value::Null)).into_response(),
    }
}

async fn map(Path(id): Path<i64>) -> Response {
    match id {
        75 | 76 => Json(mirror_map(id, 1, "Normal", 0, 2.4)).into_response(),
        _ => (StatusCode::NOT_FOUND, Json(Value::Null)).into_response(),
    }
}

async fn map_by_md5(Path(md5): Path<String>) -> Response {
    if md5 == md5_hex("Normal") {
        Json(mirror_map(75, 1, "Normal", 0, 2.4)).into_response()
    } else {
        (StatusCode::NOT_FOUND, Json(Value::Null)).into_response()
    }
}

impl FakeMirror {
    async fn start() -> FakeMirror {
        let state = Arc::new(Mirror::default());
        let app = Router::new()
            .route("/api/search", get(search))
            .route("/api/s/{id}", get(set))
            .route("/api/b/{id}", get(map))
            .route("/api/md5/{md5}", get(map_by_md5))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeMirror { base, state, task }
    }

    fn configure(&self, config: &mut peace::Config) {
        config.beatmaps.sources = vec![
            toml::from_str(&format!("kind = \"cheesegull\"\nurl = \"{}\"\n", self.base)).unwrap(),
        ];
        config.beatmaps.source_timeout_ms = SOURCE_TIMEOUT_MS;
    }

    fn last_search(&self) -> HashMap<String, String> {
        self.state.searches.lock().unwrap().last().cloned().unwrap()
    }
}

/// `GET path?query` with Alice's login added; the status and the body.
async fn web(server: &TestServer, path: &str, query: &[(&str, &str)]) -> (u16, String) {
    let password = md5_hex(PASSWORD);
    let mut pairs: Vec<(&str, &str)> = vec![("u", "Alice"), ("h", &password)];
    pairs.extend_from_slice(query);
    let response = server
        .http
        .get(format!("{}{path}", server.base))
        .query(&pairs)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn direct_search(server: &TestServer, r: &str, q: &str, m: &str, p: &str) -> String {
    let (status, body) = web(
        server,
        "/web/osu-search.php",
        &[("r", r), ("q", q), ("m", m), ("p", p)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn search_set(server: &TestServer, key: &str, value: &str) -> String {
    let (status, body) = web(server, "/web/osu-search-set.php", &[(key, value)]).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// A client that does not follow redirects, to see where `/d/` sends it.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn get_raw(server: &TestServer, path: &str) -> (u16, Option<String>, Vec<u8>) {
    let response = no_redirects()
        .get(format!("{}{path}", server.base))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, location, response.bytes().await.unwrap().to_vec())
}

async fn register_alice(server: &TestServer) {
    let response = server
        .register("Alice", "alice@example.com", PASSWORD, false)
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cheesegull_mirror_answers_osu_direct() {
    let mirror = FakeMirror::start().await;
    let server = TestServer::start_with(|config| mirror.configure(config)).await;
    register_alice(&server).await;

    // The client's first view: ranked, newest, every mode, page 0.
    let body = direct_search(&server, "0", "Newest", "-1", "0").await;
    assert_eq!(body, format!("2\n{SET_1_LINE}\n{SET_2_LINE}"));
    let asked = mirror.last_search();
    assert_eq!(asked.get("amount").map(String::as_str), Some("100"));
    assert_eq!(asked.get("offset").map(String::as_str), Some("0"));
    assert_eq!(asked.get("status").map(String::as_str), Some("1"));
    assert!(
        !asked.contains_key("query"),
        "a sort word is not a query: {asked:?}"
    );
    assert!(!asked.contains_key("mode"), "-1 is every mode: {asked:?}");

    // Each status filter in the mirror's (osu!api) numbering; 4 asks for all.
    for (r, status) in [
        ("2", Some("0")),
        ("3", Some("3")),
        ("4", None),
        ("5", Some("-2")),
        ("7", Some("1")),
        ("8", Some("4")),
    ] {
        direct_search(&server, r, "Top Rated", "-1", "0").await;
        assert_eq!(
            mirror.last_search().get("status").map(String::as_str),
            status,
            "r={r}"
        );
    }
    // Text, a mode and a page.
    direct_search(&server, "4", "disco prince", "3", "2").await;
    let asked = mirror.last_search();
    assert_eq!(asked.get("query").map(String::as_str), Some("disco prince"));
    assert_eq!(asked.get("mode").map(String::as_str), Some("3"));
    assert_eq!(asked.get("offset").map(String::as_str), Some("200"));

    // A full page: 101, so that the client offers the next one.
    mirror.state.behaviour.store(FULL_PAGE, Ordering::SeqCst);
    let body = direct_search(&server, "4", "Most Played", "-1", "0").await;
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!((lines[0], lines.len()), ("101", 101));
    assert!(lines[1].starts_with("100.osz|"), "{}", lines[1]);

    // A mirror that answers garbage, fails or is too slow: the client's error line.
    for behaviour in [GARBAGE, FAILING, SLOW] {
        mirror.state.behaviour.store(behaviour, Ordering::SeqCst);
        let started = Instant::now();
        let body = direct_search(&server, "4", "Newest", "-1", "0").await;
        assert!(body.starts_with("-1\n"), "{behaviour}: {body}");
        assert_eq!(body.lines().count(), 2, "{body}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    mirror.state.behaviour.store(NORMAL, Ordering::SeqCst);

    // A wrong password is an error line too, and asks nothing of the mirror.
    let searches = mirror.state.searches.lock().unwrap().len();
    let response = server
        .http
        .get(format!("{}/web/osu-search.php", server.base))
        .query(&[
            ("u", "Alice"),
            ("h", &md5_hex("wrong")),
            ("r", "4"),
            ("q", "Newest"),
            ("m", "-1"),
            ("p", "0"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().starts_with("-1\n"));
    assert_eq!(mirror.state.searches.lock().unwrap().len(), searches);

    // One set's line, by set, beatmap id or checksum; no count line. Unknown: empty.
    assert_eq!(search_set(&server, "s", "1").await, SET_1_LINE);
    assert_eq!(search_set(&server, "b", "75").await, SET_1_LINE);
    assert_eq!(
        search_set(&server, "c", &md5_hex("Normal")).await,
        SET_1_LINE
    );
    assert_eq!(search_set(&server, "s", "999").await, "");
    assert_eq!(search_set(&server, "c", "not an md5").await, "");

    // Downloads go to the mirror; `n` asks for no video.
    let (status, location, _) = get_raw(&server, "/d/1").await;
    assert_eq!(
        (status, location),
        (302, Some(format!("{}/d/1", mirror.base)))
    );
    let (status, location, _) = get_raw(&server, "/d/1n").await;
    assert_eq!(
        (status, location),
        (302, Some(format!("{}/d/1?novideo=1", mirror.base)))
    );
    for bad in ["/d/abc", "/d/1nn", "/d/99999999999", "/d/-1"] {
        assert_eq!(get_raw(&server, bad).await.0, 404, "{bad}");
    }
}

/// A map of the server's own table.
fn row(set_id: i32, id: i32, status: i16, mode: i16, approved_at: i64) -> BeatmapRow {
    BeatmapRow {
        md5: md5_hex(&format!("map {id}")),
        id,
        set_id,
        status,
        status_frozen: false,
        mode,
        artist: format!("Artist {set_id}"),
        title: if set_id == 10 {
            "Disco_Prince 100%".into()
        } else {
            format!("Title {set_id}")
        },
        version: format!("Diff {id}"),
        creator: "Mapper".into(),
        file_name: format!("map {id}.osu"),
        total_length: 100,
        max_combo: 300,
        stars: 2.5,
        plays: id,
        passes: 0,
        source: 0,
        approved_at,
        fetched_at: 1_700_000_000,
    }
}

async fn library_scenario(server: &TestServer) {
    register_alice(server).await;
    // Nothing known, no mirror: an empty list, never an error.
    assert_eq!(direct_search(server, "4", "Newest", "-1", "0").await, "0");
    assert_eq!(search_set(server, "s", "10").await, "");

    let db = server.world().db();
    // Set 10: ranked osu! (two maps); 11: loved mania; 12: pending, newest.
    for map in [
        row(10, 100, 1, 0, 1_600_000_000),
        row(10, 101, 1, 0, 1_600_000_000),
        row(11, 110, 4, 3, 1_650_000_000),
        row(12, 120, 0, 0, 1_690_000_000),
    ] {
        db.save_beatmap(&map).await.unwrap();
    }
    let set_10 = "10.osz|Artist 10|Disco_Prince 100%|Mapper|1|0.0|2020-09-13 12:26:40|10|0|0|0|0|0|\
                  [2.50★] Diff 100@0,[2.50★] Diff 101@0";
    let body = direct_search(server, "4", "Newest", "-1", "0").await;
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines[0], "3");
    assert!(
        lines[1].starts_with("12.osz|Artist 12|Title 12|Mapper|0|"),
        "{body}"
    );
    assert!(lines[2].starts_with("11.osz|"), "{body}");
    assert_eq!(lines[3], set_10);
    // Most played: set 10's two maps add up to the most plays (ids double as play
    // counts here: 201, then 120 and 110).
    let body = direct_search(server, "4", "Most+Played", "-1", "0").await;
    let order: Vec<&str> = body
        .lines()
        .skip(1)
        .map(|l| l.split('|').next().unwrap())
        .collect();
    assert_eq!(order, ["10.osz", "12.osz", "11.osz"], "{body}");

    // Status filters, a mode, text in any case (with LIKE's wildcards taken literally),
    // and a page past the end.
    assert_eq!(
        direct_search(server, "0", "Newest", "-1", "0").await,
        format!("1\n{set_10}")
    );
    assert!(
        direct_search(server, "8", "Newest", "-1", "0")
            .await
            .starts_with("1\n11.osz|")
    );
    assert!(
        direct_search(server, "2", "Newest", "-1", "0")
            .await
            .starts_with("1\n12.osz|")
    );
    assert_eq!(direct_search(server, "3", "Newest", "-1", "0").await, "0");
    assert!(
        direct_search(server, "4", "Newest", "3", "0")
            .await
            .starts_with("1\n11.osz|")
    );
    assert_eq!(
        direct_search(server, "4", "disco_prince", "-1", "0").await,
        format!("1\n{set_10}")
    );
    assert_eq!(
        direct_search(server, "4", "PRINCE 100%", "-1", "0").await,
        format!("1\n{set_10}")
    );
    assert_eq!(
        direct_search(server, "4", "mapper diff 101", "-1", "0").await,
        format!("1\n{set_10}")
    );
    assert_eq!(
        direct_search(server, "4", "disco%prince", "-1", "0").await,
        "0"
    );
    assert_eq!(direct_search(server, "4", "Newest", "-1", "1").await, "0");

    // One set by set, map id or checksum.
    assert_eq!(search_set(server, "s", "10").await, set_10);
    assert_eq!(search_set(server, "b", "101").await, set_10);
    assert_eq!(search_set(server, "c", &md5_hex("map 100")).await, set_10);
    assert_eq!(search_set(server, "b", "999").await, "");

    // No mirror and no archive: 404 with a reason; an archive stored for the set is served.
    let (status, _, body) = get_raw(server, "/d/10").await;
    assert_eq!(status, 404);
    assert!(
        String::from_utf8(body)
            .unwrap()
            .contains("no beatmap mirror")
    );
    let archive = b"PK\x03\x04 a stored set".to_vec();
    server
        .world()
        .scores()
        .beatmaps()
        .storage()
        .put(
            &peace_actors::scores::storage::Storage::osz_key(10),
            archive.clone().into(),
        )
        .await
        .unwrap();
    let (status, _, body) = get_raw(server, "/d/10n").await;
    assert_eq!((status, body), (200, archive));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_servers_own_maps_answer_without_a_mirror_on_sqlite() {
    let server = TestServer::start().await;
    library_scenario(&server).await;

    // A full page from the table: 101.
    let db = server.world().db();
    for set in 1000..1100 {
        db.save_beatmap(&row(set, set * 10, 1, 0, 1_500_000_000))
            .await
            .unwrap();
    }
    let body = direct_search(&server, "0", "Newest", "-1", "0").await;
    assert_eq!(body.lines().next(), Some("101"));
    assert_eq!(body.lines().count(), 101);
    let body = direct_search(&server, "0", "Newest", "-1", "1").await;
    assert_eq!(
        body.lines().next(),
        Some("1"),
        "the 101st ranked set is on page 1"
    );

    // `peace beatmaps import` of a .osz keeps the archive for the set's downloads.
    let map = STD_MAP
        .replace("BeatmapID:0", "BeatmapID:424242")
        .replace("BeatmapSetID:-1", "BeatmapSetID:4242");
    let folder = tempfile::tempdir().unwrap();
    let osz = folder.path().join("4242 Test.osz");
    {
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&osz).unwrap());
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        zip.start_file("test.osu", options).unwrap();
        std::io::Write::write_all(&mut zip, map.as_bytes()).unwrap();
        zip.finish().unwrap();
    }
    let imported = peace::import_beatmaps(&server.config, db.clone(), &osz, "loved")
        .await
        .unwrap();
    assert_eq!(imported, 1);
    let (status, _, body) = get_raw(&server, "/d/4242").await;
    assert_eq!((status, body), (200, std::fs::read(&osz).unwrap()));
    let line = search_set(&server, "s", "4242").await;
    assert!(line.starts_with("4242.osz|"), "{line}");
    assert!(line.contains("|4|"), "loved: {line}");
}

async fn library_on(backend: Backend) {
    if let Some(server) = TestServer::start_on(backend).await {
        library_scenario(&server).await;
    }
}

peace_db::backend_test!(
    Postgres,
    #[tokio::test(flavor = "multi_thread")]
    async fn the_servers_own_maps_answer_without_a_mirror_on_postgres() {
        library_on(Backend::Postgres).await;
    }
);

peace_db::backend_test!(
    Mysql,
    #[tokio::test(flavor = "multi_thread")]
    async fn the_servers_own_maps_answer_without_a_mirror_on_mysql() {
        library_on(Backend::Mysql).await;
    }
);

#[tokio::test(flavor = "multi_thread")]
async fn thumbnails_and_previews_go_to_the_media_mirror() {
    let server = TestServer::start_with(|config| {
        config.web.beatmap_media_url = "https://b.mirror.example/".into();
    })
    .await;
    for (path, target) in [
        ("/thumb/1l.jpg", "https://b.mirror.example/thumb/1l.jpg"),
        ("/thumb/1.jpg", "https://b.mirror.example/thumb/1.jpg"),
        ("/preview/1.mp3", "https://b.mirror.example/preview/1.mp3"),
    ] {
        let (status, location, _) = get_raw(&server, path).await;
        assert_eq!((status, location.as_deref()), (302, Some(target)), "{path}");
    }
    for bad in [
        "/thumb/1x.jpg",
        "/thumb/.jpg",
        "/preview/1.jpg",
        "/preview/a.mp3",
    ] {
        assert_eq!(get_raw(&server, bad).await.0, 404, "{bad}");
    }
    // None configured: 404.
    let plain = TestServer::start().await;
    assert_eq!(get_raw(&plain, "/thumb/1l.jpg").await.0, 404);
}

fn privileges(packets: &[ServerPacket]) -> i32 {
    packets
        .iter()
        .find_map(|p| match p {
            ServerPacket::Privileges(p) => Some(p.privileges),
            _ => None,
        })
        .expect("a PRIVILEGES packet in the login reply")
}

/// The client's supporter bit.
const SUPPORTER_BIT: i32 = 4;

#[tokio::test(flavor = "multi_thread")]
async fn the_supporter_bit_is_a_setting() {
    // On by default: everyone sees osu!direct.
    let server = TestServer::start().await;
    let alice = server.player("Alice").await;
    assert_eq!(
        privileges(&alice.login_packets) & SUPPORTER_BIT,
        SUPPORTER_BIT
    );

    // Off: only accounts with the supporter privilege.
    let server = TestServer::start_with(|config| config.login.supporter_for_everyone = false).await;
    let bob = server.player("Bob").await;
    assert_eq!(privileges(&bob.login_packets) & SUPPORTER_BIT, 0);
    let carol = server
        .player_with(
            "Carol",
            Privileges::DEFAULT_NEW.union(Privileges::SUPPORTER),
        )
        .await;
    assert_eq!(
        privileges(&carol.login_packets) & SUPPORTER_BIT,
        SUPPORTER_BIT
    );
}
