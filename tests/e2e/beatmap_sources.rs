//! The beatmap chain's HTTP sources against a fake osu! started in the test: osu!api v2
//! (OAuth client credentials, the bearer token checked on every lookup, `lookup` by
//! checksum or id, 404 for an unknown map, the raw `.osu` file) behind an osu!api v1
//! mirror that knows nothing. The stable client's view is checked: the getscores header
//! of a map only the v2 source knows, getbeatmapinfo by id, and a pending map that
//! becomes ranked at the source.

#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::common::{PASSWORD, TestServer, md5_hex};

const STD_MAP: &[u8] = include_bytes!("../../crates/scores/tests/maps/std.osu");
const CLIENT_ID: &str = "4242";
const CLIENT_SECRET: &str = "fake-client-secret";

/// One map as the fake osu! describes it.
#[derive(Clone)]
struct FakeMap {
    id: i32,
    set_id: i32,
    md5: String,
    status: &'static str,
    version: &'static str,
}

impl FakeMap {
    /// The map as `GET /api/v2/beatmaps/lookup` answers it (osu-web's
    /// `BeatmapTransformer` with the set nested).
    fn lookup_json(&self) -> Value {
        json!({
            "beatmapset_id": self.set_id, "difficulty_rating": 3.25, "id": self.id,
            "mode": "osu", "status": self.status, "total_length": 120, "user_id": 2,
            "version": self.version, "accuracy": 8, "ar": 9, "bpm": 180, "convert": false,
            "count_circles": 100, "count_sliders": 50, "count_spinners": 1, "cs": 4,
            "deleted_at": null, "drain": 5, "hit_length": 110, "is_scoreable": true,
            "last_updated": "2024-01-02T03:04:05+00:00", "mode_int": 0, "passcount": 0,
            "playcount": 0, "ranked": 1, "url": "https://osu.ppy.sh/beatmaps/1",
            "checksum": self.md5, "max_combo": 512, "failtimes": {"exit": [], "fail": []},
            "beatmapset": {
                "artist": "Fake Artist", "creator": "Mapper", "id": self.set_id,
                "status": self.status, "title": "Fake Title",
                "ranked_date": "2024-01-02T03:04:05+00:00"
            }
        })
    }
}

#[derive(Default)]
struct Fake {
    maps: Mutex<Vec<FakeMap>>,
    files: Mutex<HashMap<i32, Vec<u8>>>,
    /// Valid tokens; a revoked one answers 401.
    tokens: Mutex<HashSet<String>>,
    token_requests: AtomicUsize,
    lookups: AtomicUsize,
    /// Told after every lookup is counted.
    looked_up: tokio::sync::Notify,
    v1_requests: AtomicUsize,
    /// What the v1 mirror knows (as v1 `approved` numbers); nothing unless a test says.
    v1_maps: Mutex<Vec<(FakeMap, i32)>>,
    /// Lookups answer 500.
    failing: AtomicBool,
    /// Lookups take this long (milliseconds).
    delay_ms: AtomicUsize,
    /// Tokens are given for this long (seconds); unset: a day.
    expires_in: Mutex<Option<u64>>,
}

struct FakeOsu {
    base: String,
    state: Arc<Fake>,
    task: JoinHandle<()>,
}

impl Drop for FakeOsu {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeOsu {
    async fn start(maps: Vec<FakeMap>) -> FakeOsu {
        let state = Arc::new(Fake {
            maps: Mutex::new(maps),
            ..Fake::default()
        });
        let app = Router::new()
            .route("/oauth/token", post(token))
            .route("/api/v2/beatmaps/lookup", get(lookup))
            .route("/api/v2/beatmapsets/{id}", get(beatmapset))
            .route("/osu/{id}", get(osu_file))
            .route("/v1/get_beatmaps", get(v1_get_beatmaps))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeOsu { base, state, task }
    }

    fn set_status(&self, md5: &str, status: &'static str) {
        let mut maps = self.state.maps.lock().unwrap();
        maps.iter_mut().find(|m| m.md5 == md5).unwrap().status = status;
    }

    fn revoke_tokens(&self) {
        self.state.tokens.lock().unwrap().clear();
    }

    fn token_requests(&self) -> usize {
        self.state.token_requests.load(Ordering::SeqCst)
    }

    fn lookups(&self) -> usize {
        self.state.lookups.load(Ordering::SeqCst)
    }

    /// Waits (up to 5 s) until the source was asked `n` times in all.
    async fn until_lookups(&self, n: usize) {
        let wait = async {
            loop {
                let counted = self.state.looked_up.notified();
                if self.lookups() >= n {
                    return;
                }
                counted.await;
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), wait).await;
    }

    /// The sources of a server that asks this fake: the v1 mirror (which knows nothing),
    /// then osu!api v2.
    fn configure(&self, config: &mut peace::Config) {
        let source = |text: String| toml::from_str(&text).unwrap();
        config.beatmaps.sources = vec![
            source(format!(
                "kind = \"osu-api-v1\"\napi_url = \"{}/v1\"\nkey = \"k\"\n",
                self.base
            )),
            source(format!(
                "kind = \"osu-api-v2\"\nbase_url = \"{}\"\nclient_id = {CLIENT_ID}\n\
                 client_secret = \"{CLIENT_SECRET}\"\n",
                self.base
            )),
        ];
        config.beatmaps.source_timeout_ms = 1000;
    }
}

async fn token(
    State(fake): State<Arc<Fake>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    fake.token_requests.fetch_add(1, Ordering::SeqCst);
    let field = |name: &str| form.get(name).map(String::as_str);
    if field("client_id") != Some(CLIENT_ID)
        || field("client_secret") != Some(CLIENT_SECRET)
        || field("grant_type") != Some("client_credentials")
        || field("scope") != Some("public")
    {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    let value = format!("token-{}", fake.token_requests.load(Ordering::SeqCst));
    fake.tokens.lock().unwrap().insert(value.clone());
    let expires_in = fake.expires_in.lock().unwrap().unwrap_or(86400);
    Json(json!({"token_type": "Bearer", "expires_in": expires_in, "access_token": value}))
        .into_response()
}

/// Whether the request carries a token the fake gave and did not revoke.
fn authorized(fake: &Fake, headers: &HeaderMap) -> bool {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    fake.tokens.lock().unwrap().contains(bearer)
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"authentication": "basic"})),
    )
        .into_response()
}

/// `GET /api/v2/beatmapsets/<id>`: the set (as osu-web's `BeatmapsetTransformer`) with its
/// maps, which do not nest the set again.
async fn beatmapset(
    State(fake): State<Arc<Fake>>,
    headers: HeaderMap,
    Path(id): Path<i32>,
) -> Response {
    if !authorized(&fake, &headers) {
        return unauthorized();
    }
    fake.lookups.fetch_add(1, Ordering::SeqCst);
    fake.looked_up.notify_waiters();
    let maps: Vec<FakeMap> = fake
        .maps
        .lock()
        .unwrap()
        .iter()
        .filter(|m| m.set_id == id)
        .cloned()
        .collect();
    let Some(first) = maps.first() else {
        return (StatusCode::NOT_FOUND, Json(json!({"error": null}))).into_response();
    };
    let mut set = first.lookup_json()["beatmapset"].clone();
    set["beatmaps"] = maps
        .iter()
        .map(|m| {
            let mut map = m.lookup_json();
            map.as_object_mut().unwrap().remove("beatmapset");
            map
        })
        .collect();
    Json(set).into_response()
}

async fn lookup(
    State(fake): State<Arc<Fake>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if !authorized(&fake, &headers) {
        return unauthorized();
    }
    fake.lookups.fetch_add(1, Ordering::SeqCst);
    fake.looked_up.notify_waiters();
    let delay = fake.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay as u64)).await;
    }
    if fake.failing.load(Ordering::SeqCst) {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let maps = fake.maps.lock().unwrap().clone();
    let found = maps.iter().find(|m| {
        query.get("checksum").is_some_and(|c| *c == m.md5)
            || query.get("id").is_some_and(|id| *id == m.id.to_string())
    });
    match found {
        Some(map) => Json(map.lookup_json()).into_response(),
        None => (StatusCode::NOT_FOUND, Json(json!({"error": null}))).into_response(),
    }
}

async fn osu_file(State(fake): State<Arc<Fake>>, Path(id): Path<i32>) -> Response {
    match fake.files.lock().unwrap().get(&id) {
        Some(bytes) => bytes.clone().into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `GET /v1/get_beatmaps?h=|b=|s=&k=`: the mirror's maps in the v1 shape, numbers as
/// strings (as osu! itself sends them). A wrong key is refused.
async fn v1_get_beatmaps(
    State(fake): State<Arc<Fake>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    fake.v1_requests.fetch_add(1, Ordering::SeqCst);
    if query.get("k").map(String::as_str) != Some("k") {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "Please provide a valid API key."})),
        )
            .into_response();
    }
    let wanted = |map: &FakeMap| {
        query.get("h").is_some_and(|h| *h == map.md5)
            || query.get("b").is_some_and(|b| *b == map.id.to_string())
            || query.get("s").is_some_and(|s| *s == map.set_id.to_string())
    };
    let maps: Vec<Value> = fake
        .v1_maps
        .lock()
        .unwrap()
        .iter()
        .filter(|(map, _)| wanted(map))
        .map(|(map, approved)| {
            json!({
                "beatmap_id": map.id.to_string(), "beatmapset_id": map.set_id.to_string(),
                "approved": approved.to_string(), "file_md5": map.md5, "version": map.version,
                "artist": "Mirror Artist", "title": "Mirror Title", "creator": "Mapper",
                "mode": "0", "total_length": "90", "max_combo": "300",
                "difficultyrating": "4.5", "approved_date": "2020-05-06 07:08:09"
            })
        })
        .collect();
    Json(Value::Array(maps)).into_response()
}

fn fake_map(id: i32, set_id: i32, md5: &str, status: &'static str) -> FakeMap {
    FakeMap {
        id,
        set_id,
        md5: md5.to_owned(),
        status,
        version: "Insane",
    }
}

/// The getscores reply's first line, split into fields.
async fn getscores_header(server: &TestServer, md5: &str) -> Vec<String> {
    let url = format!(
        "{}/web/osu-osz2-getscores.php?s=0&vv=4&v=1&c={md5}&f=x.osu&m=0&i=0&mods=0&h=&a=0&us=Alice&ha={}",
        server.base,
        md5_hex(PASSWORD)
    );
    let body = server
        .http
        .get(url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let first = body.lines().next().unwrap_or_default();
    first.split('|').map(str::to_owned).collect()
}

async fn register_alice(server: &TestServer) {
    let response = server
        .register("Alice", "alice@example.com", PASSWORD, false)
        .await;
    assert_eq!(response.status(), 200);
}

/// Makes the cached row of `md5` look fetched two hours ago.
async fn age(server: &TestServer, md5: &str) {
    let db = server.world().db();
    let row = db.beatmap_by_md5(md5).await.unwrap().unwrap();
    db.save_beatmap(&peace_db::BeatmapRow {
        fetched_at: row.fetched_at - 7200,
        ..row
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_map_known_only_to_osu_api_v2_is_served_with_its_status() {
    let std_md5 = md5_hex_bytes(STD_MAP);
    let loved = md5_hex("a loved map");
    let fake = FakeOsu::start(vec![
        fake_map(75, 1, &std_md5, "ranked"),
        fake_map(76, 1, &loved, "loved"),
    ])
    .await;
    fake.state
        .files
        .lock()
        .unwrap()
        .insert(75, STD_MAP.to_vec());
    let server = TestServer::start_with(|config| fake.configure(config)).await;
    register_alice(&server).await;

    // The v1 mirror knows nothing; the v2 source answers with the status by name. Two
    // lookups at once wait for one token.
    let (ranked_header, loved_header) = tokio::join!(
        getscores_header(&server, &std_md5),
        getscores_header(&server, &loved)
    );
    assert_eq!(
        ranked_header[..4],
        ["2", "false", "75", "1"],
        "ranked: {ranked_header:?}"
    );
    assert_eq!(
        loved_header[..4],
        ["5", "false", "76", "1"],
        "loved: {loved_header:?}"
    );
    assert_eq!(fake.state.v1_requests.load(Ordering::SeqCst), 2);
    assert_eq!(
        fake.token_requests(),
        1,
        "one token for lookups made together"
    );
    let row = server
        .world()
        .db()
        .beatmap_by_md5(&loved)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            row.source,
            row.artist.as_str(),
            row.version.as_str(),
            row.max_combo
        ),
        (2, "Fake Artist", "Insane", 512)
    );
    assert_eq!(
        row.file_name,
        "Fake Artist - Fake Title (Mapper) [Insane].osu"
    );
    assert_eq!(row.approved_at, 1_704_164_645);

    // Unknown everywhere: "not submitted", remembered as a miss (not asked again).
    let unknown = md5_hex("nobody's map");
    assert_eq!(getscores_header(&server, &unknown).await, ["-1", "false"]);
    let asked = fake.lookups();
    assert_eq!(getscores_header(&server, &unknown).await, ["-1", "false"]);
    assert_eq!(
        fake.lookups(),
        asked,
        "a miss is not asked again within miss_ttl"
    );

    // By id (from the database now), with the same token: one token for every lookup.
    let by_id = server.world().scores().beatmaps().by_id(76).await.unwrap();
    assert_eq!(by_id.map(|m| m.md5), Some(loved.clone()));
    assert_eq!(fake.lookups(), 3, "ranked, loved, unknown");
    assert_eq!(fake.token_requests(), 1, "the token is reused");

    // A revoked token: the lookup's 401 asks for a new one, once, and goes through.
    fake.revoke_tokens();
    let other = md5_hex("another loved map");
    fake.state
        .maps
        .lock()
        .unwrap()
        .push(fake_map(77, 1, &other, "loved"));
    let header = getscores_header(&server, &other).await;
    assert_eq!(header[..3], ["5", "false", "77"], "{header:?}");
    assert_eq!(fake.token_requests(), 2);

    // A token about to expire is renewed before a lookup, without a 401 first.
    *fake.state.expires_in.lock().unwrap() = Some(0);
    fake.revoke_tokens();
    assert!(
        server
            .world()
            .scores()
            .beatmaps()
            .by_id(78)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(fake.token_requests(), 3, "renewed after the 401");
    assert!(
        server
            .world()
            .scores()
            .beatmaps()
            .by_id(79)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(fake.token_requests(), 4, "renewed before it expired");
    *fake.state.expires_in.lock().unwrap() = None;

    // An md5 no source knows, of a set the database does not know either: the set is
    // asked for, and the client's file name in it means its copy is outdated ("update
    // available").
    let newer = md5_hex("the newer version");
    fake.state
        .maps
        .lock()
        .unwrap()
        .push(fake_map(301, 30, &newer, "ranked"));
    let outdated = md5_hex("the outdated version");
    let url = format!(
        "{}/web/osu-osz2-getscores.php?s=0&vv=4&v=1&c={outdated}&f={}&m=0&i=30&mods=0&h=&a=0&us=Alice&ha={}",
        server.base,
        "Fake%20Artist%20-%20Fake%20Title%20(Mapper)%20%5BInsane%5D.osu",
        md5_hex(PASSWORD)
    );
    let reply = server
        .http
        .get(url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(reply, "1|false");
    let set = server.world().db().beatmap_set(30).await.unwrap();
    assert_eq!(
        set.iter().map(|m| m.md5.as_str()).collect::<Vec<_>>(),
        [newer.as_str()]
    );

    // The .osu file from the v2 source's default url ({base_url}/osu/{id}), md5-checked.
    let std_row = server
        .world()
        .db()
        .beatmap_by_md5(&std_md5)
        .await
        .unwrap()
        .unwrap();
    let file = server.world().scores().beatmaps().osu_file(&std_row).await;
    assert_eq!(file.as_deref(), Some(STD_MAP));

    // getbeatmapinfo by id: index -1, the map's ids, md5 and status (osu!api numbering).
    let info = server
        .http
        .post(format!(
            "{}/web/osu-getbeatmapinfo.php?u=Alice&h={}",
            server.base,
            md5_hex(PASSWORD)
        ))
        .body(r#"{"Filenames":["Fake Artist - Fake Title (Mapper) [Insane].osu"],"Ids":[75,999,"x"]}"#)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // The file name is shared by the three fake maps: the first line is whichever the
    // database lists first; the id line is exact.
    let lines: Vec<&str> = info.lines().collect();
    assert_eq!(lines.len(), 2, "{info}");
    assert!(lines[0].starts_with("0|"), "{info}");
    assert_eq!(lines[1], format!("-1|75|1|{std_md5}|1|N|N|N|N"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sources_are_asked_in_the_order_written() {
    let both = md5_hex("a map both sources know");
    let mirror_set = md5_hex("a map of a set only the mirror knows");
    let fake = FakeOsu::start(vec![fake_map(401, 40, &both, "ranked")]).await;
    fake.state.v1_maps.lock().unwrap().extend([
        (fake_map(401, 40, &both, "ranked"), 2),
        (fake_map(501, 50, &mirror_set, "ranked"), 4),
    ]);
    let server = TestServer::start_with(|config| fake.configure(config)).await;
    register_alice(&server).await;

    // The v1 mirror comes first and knows the map (approved there): osu!api v2 is not
    // asked at all.
    let header = getscores_header(&server, &both).await;
    assert_eq!(header[..4], ["3", "false", "401", "40"], "{header:?}");
    assert_eq!((fake.lookups(), fake.token_requests()), (0, 0));
    let row = server
        .world()
        .db()
        .beatmap_by_md5(&both)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((row.source, row.artist.as_str()), (1, "Mirror Artist"));

    // A set through the mirror (`s=`): its maps, saved.
    let set = server.world().scores().beatmaps().set(50).await.unwrap();
    assert_eq!(
        set.iter().map(|m| (m.id, m.status)).collect::<Vec<_>>(),
        [(501, 4)]
    );
    assert_eq!(fake.lookups(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pending_map_is_asked_again_after_the_refresh_interval() {
    let pending = md5_hex("a pending map");
    let qualified = md5_hex("a qualified map");
    let fake = FakeOsu::start(vec![
        fake_map(101, 10, &pending, "pending"),
        fake_map(102, 10, &qualified, "qualified"),
    ])
    .await;
    let server = TestServer::start_with(|config| fake.configure(config)).await;
    register_alice(&server).await;

    assert_eq!(getscores_header(&server, &pending).await, ["0", "false"]);
    assert_eq!(fake.lookups(), 1);

    // Ranked at the source, but the cached row is younger than refresh_after_secs.
    fake.set_status(&pending, "ranked");
    assert_eq!(getscores_header(&server, &pending).await, ["0", "false"]);
    assert_eq!(fake.lookups(), 1, "not asked within the interval");

    // Older than the interval: asked again, and the answer is what the client sees.
    age(&server, &pending).await;
    let header = getscores_header(&server, &pending).await;
    assert_eq!(header[..3], ["2", "false", "101"], "{header:?}");
    assert_eq!(fake.lookups(), 2);

    // Ranked is settled: never asked again, however old the row.
    age(&server, &pending).await;
    let header = getscores_header(&server, &pending).await;
    assert_eq!(header[0], "2");
    assert_eq!(fake.lookups(), 2, "a ranked map is not re-asked");

    // A failing source erases nothing: the qualified map stays qualified.
    assert_eq!(getscores_header(&server, &qualified).await[0], "4");
    assert_eq!(fake.lookups(), 3);
    fake.state.failing.store(true, Ordering::SeqCst);
    fake.set_status(&qualified, "ranked");
    age(&server, &qualified).await;
    assert_eq!(getscores_header(&server, &qualified).await[0], "4");
    assert_eq!(fake.lookups(), 4, "asked, failed");
    // The attempt counts for the interval: the source is not asked on every request.
    fake.state.failing.store(false, Ordering::SeqCst);
    assert_eq!(getscores_header(&server, &qualified).await[0], "4");
    assert_eq!(fake.lookups(), 4, "one attempt per interval");
    let row = server
        .world()
        .db()
        .beatmap_by_md5(&qualified)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status, 3, "the cached row is as it was");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_refresh_costs_a_request_at_most_the_source_timeout() {
    let pending = md5_hex("a slow pending map");
    let fake = FakeOsu::start(vec![fake_map(201, 20, &pending, "pending")]).await;
    let server = TestServer::start_with(|config| {
        fake.configure(config);
        config.beatmaps.source_timeout_ms = 500;
    })
    .await;
    register_alice(&server).await;
    assert_eq!(getscores_header(&server, &pending).await, ["0", "false"]);

    fake.state.delay_ms.store(3000, Ordering::SeqCst);
    fake.set_status(&pending, "ranked");
    age(&server, &pending).await;
    let started = Instant::now();
    assert_eq!(getscores_header(&server, &pending).await, ["0", "false"]);
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(2000),
        "the request waited {took:?}"
    );
    // The refresh reached the source (it may still be on its way when getscores answers).
    fake.until_lookups(2).await;
    assert_eq!(fake.lookups(), 2, "the refresh was tried");
    let row = server
        .world()
        .db()
        .beatmap_by_md5(&pending)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status, 0, "a source that timed out changes nothing");
}

fn md5_hex_bytes(bytes: &[u8]) -> String {
    use md5::{Digest, Md5};
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
