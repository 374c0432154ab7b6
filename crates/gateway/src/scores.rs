//! The score endpoints of the stable client (`osu.<domain>/web/*`) and the replay
//! download of the JSON API. Each reads its request into the score service's terms and
//! writes the answer back; the rules live in `peace_actors::scores`.
//!
//! The client names the login differently on each endpoint (`us`/`ha` on getscores,
//! `u`/`h` on getreplay and getbeatmapinfo, the score text and `pass` on submission);
//! [`Login`] reads the query pairs once, URL-decoded, for all of them.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use peace_actors::scores::board::{BoardFilter, BoardRequest};
use peace_actors::scores::submit::{SubmissionForm, SubmitAnswer};
use peace_scores::mode::Mode;

use crate::{ApiError, AppState};

/// The largest submission accepted: the replay (bounded by the score service) plus the
/// form's small fields and the optional flashlight screenshot.
pub const MAX_SUBMISSION_BYTES: usize = 16 << 20;

pub(crate) type Params = Query<HashMap<String, String>>;

/// The login of a web request, by the names this endpoint uses.
pub(crate) struct Login<'a> {
    pub(crate) name: &'a str,
    pub(crate) password_md5: &'a str,
}

impl<'a> Login<'a> {
    pub(crate) fn read(params: &'a HashMap<String, String>, name: &str, password: &str) -> Self {
        Login {
            name: params.get(name).map_or("", String::as_str).trim_end(),
            password_md5: params.get(password).map_or("", String::as_str),
        }
    }

    /// The account, or the answer to give instead (`error: pass` and the like as a 200,
    /// which ends the client's asking; 503 when the database cannot say).
    pub(crate) async fn check(
        &self,
        state: &AppState,
        ip: std::net::IpAddr,
    ) -> Result<peace_actors::scores::Account, Response> {
        match state
            .world
            .web_login(self.name, self.password_md5, ip)
            .await
        {
            Ok(Ok(user)) => Ok(user),
            Ok(Err(word)) => Err(format!("error: {word}").into_response()),
            Err(e) => Err(ApiError::Unavailable(e.to_string()).into_response()),
        }
    }
}

pub(crate) fn ip_of(
    state: &AppState,
    headers: &HeaderMap,
    connect: Option<&Extension<ConnectInfo<SocketAddr>>>,
) -> std::net::IpAddr {
    crate::client_ip(&state.config, headers, connect.map(|c| &c.0))
}

pub(crate) fn number<T: std::str::FromStr>(
    params: &HashMap<String, String>,
    key: &str,
) -> Option<T> {
    params.get(key).and_then(|v| v.trim().parse().ok())
}

/// `GET /web/osu-osz2-getscores.php`.
pub async fn get_scores(
    State(state): State<AppState>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let ip = ip_of(&state, &headers, connect.as_ref());
    let user = match Login::read(&params, "us", "ha").check(&state, ip).await {
        Ok(user) => user,
        Err(answer) => return answer,
    };
    let Some(mode) = number::<i64>(&params, "m").and_then(|m| Mode::from_number(m).ok()) else {
        return ApiError::BadRequest("m must be a mode (0-3)".into()).into_response();
    };
    let request = BoardRequest {
        md5: params
            .get("c")
            .cloned()
            .unwrap_or_default()
            .to_ascii_lowercase(),
        file_name: params.get("f").cloned().unwrap_or_default(),
        set_id: number(&params, "i").unwrap_or(0),
        mode,
        mods: number(&params, "mods").unwrap_or(0),
        filter: BoardFilter::from_v(number(&params, "v").unwrap_or(1)),
        editor: params.get("s").is_some_and(|s| s == "1"),
    };
    // Only the friends board needs them (the others are one read fewer).
    let friends = match request.filter {
        BoardFilter::Friends => match state.world.friends_of(user.id).await {
            Ok(friends) => friends,
            Err(e) => return ApiError::Unavailable(e.to_string()).into_response(),
        },
        _ => Vec::new(),
    };
    match state
        .world
        .scores()
        .leaderboard(&user, &friends, &request)
        .await
    {
        Ok(reply) => reply.render().into_response(),
        Err(e) => ApiError::Unavailable(e.to_string()).into_response(),
    }
}

/// `POST /web/osu-submit-modular-selector.php`: the multipart form as stable sends it.
pub async fn submit(
    State(state): State<AppState>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    let ip = ip_of(&state, &headers, connect.as_ref());
    let form = match multipart {
        Ok(multipart) => read_submission(multipart).await,
        Err(e) => Err(FormError::NotMultipart(e)),
    };
    let form = match form {
        Ok(form) => form,
        Err(why) => {
            // Not a form this server can read: a word that ends the client's resending.
            tracing::info!(%ip, "unreadable score submission: {why}");
            return "error: no".into_response();
        }
    };
    match state.world.submit_score(form, ip).await {
        SubmitAnswer::Text(text) => text.into_response(),
        // Empty and 503: stable sends the play again later.
        SubmitAnswer::Retry => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

/// Why a submission's form could not be read.
#[derive(Debug, thiserror::Error)]
enum FormError {
    #[error("not a multipart form: {0}")]
    NotMultipart(#[from] axum::extract::multipart::MultipartRejection),
    #[error("unreadable multipart body: {0}")]
    Body(#[from] axum::extract::multipart::MultipartError),
    #[error("no score part")]
    NoScore,
}

async fn read_submission(mut multipart: Multipart) -> Result<SubmissionForm, FormError> {
    let mut form = SubmissionForm::default();
    let mut seen_score_text = false;
    while let Some(field) = multipart.next_field().await? {
        let name = field.name().unwrap_or_default().to_owned();
        // Two parts are called `score`: the encrypted text, then the replay file.
        if name == "score" && seen_score_text {
            form.replay = Some(field.bytes().await?);
            continue;
        }
        let bytes = field.bytes().await?;
        let text = || String::from_utf8_lossy(&bytes).into_owned();
        match name.as_str() {
            "score" => {
                form.score = text();
                seen_score_text = true;
            }
            "iv" => form.iv = text(),
            "osuver" => form.osu_version = text(),
            "pass" => form.password_md5 = text(),
            "s" => form.client_hash = text(),
            "bmk" => form.beatmap_md5 = text().to_ascii_lowercase(),
            "sbk" => form.storyboard_md5 = text(),
            "x" => form.exited = text().trim() == "1",
            "ft" => form.fail_time_ms = text().trim().parse().unwrap_or(0),
            "st" => form.score_time_ms = text().trim().parse().unwrap_or(0),
            // `fs` (visual settings), `c1` (hardware ids), `i` (a flashlight screenshot),
            // `token` and the rest: read and set aside.
            _ => {}
        }
    }
    if !seen_score_text {
        return Err(FormError::NoScore);
    }
    Ok(form)
}

/// `GET /web/osu-getreplay.php?c=<score id>`: the replay's frames, as uploaded.
pub async fn get_replay(
    State(state): State<AppState>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let ip = ip_of(&state, &headers, connect.as_ref());
    let user = match Login::read(&params, "u", "h").check(&state, ip).await {
        Ok(user) => user,
        Err(answer) => return answer,
    };
    let Some(id) = number::<i32>(&params, "c") else {
        return ApiError::BadRequest("c must be a score id".into()).into_response();
    };
    match state.world.scores().replay(id, user.id).await {
        Ok(Some(bytes)) => bytes.into_response(),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => ApiError::Unavailable(e.to_string()).into_response(),
    }
}

/// `GET /api/v1/scores/{id}/replay`: a whole `.osr` file.
pub async fn osr_download(State(state): State<AppState>, Path(id): Path<i32>) -> Response {
    match state.world.scores().osr_file(id).await {
        Ok(Some((name, bytes))) => {
            // The name is ours, but quotes in a player's name would end the header value.
            let name = name.replace(['"', '\\', '\r', '\n'], "_");
            (
                [
                    (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{name}\""),
                    ),
                ],
                bytes,
            )
                .into_response()
        }
        Ok(None) => ApiError::NotFound.into_response(),
        Err(e) => ApiError::Unavailable(e.to_string()).into_response(),
    }
}

/// The body of getbeatmapinfo: the client's local maps.
#[derive(Debug, serde::Deserialize)]
struct BeatmapInfoRequest {
    #[serde(rename = "Filenames", default)]
    filenames: Vec<String>,
    /// Maps the client knows by osu! id (anything but an id is passed over, as `Ids`
    /// was ignored before it was answered).
    #[serde(rename = "Ids", default)]
    ids: Vec<serde_json::Value>,
}

/// `POST /web/osu-getbeatmapinfo.php`: statuses and best grades of the client's maps.
/// The body is JSON whatever the content type says.
pub async fn beatmap_info(
    State(state): State<AppState>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Query(params): Params,
    body: Bytes,
) -> Response {
    let ip = ip_of(&state, &headers, connect.as_ref());
    let user = match Login::read(&params, "u", "h").check(&state, ip).await {
        Ok(user) => user,
        Err(answer) => return answer,
    };
    let request: BeatmapInfoRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            return ApiError::BadRequest(format!("not the expected JSON: {e}")).into_response();
        }
    };
    let ids: Vec<i32> = request
        .ids
        .iter()
        .filter_map(|id| i32::try_from(id.as_i64()?).ok())
        .collect();
    match state
        .world
        .scores()
        .beatmap_info_reply(&user, &request.filenames, &ids)
        .await
    {
        Ok(lines) => lines.into_response(),
        Err(e) => ApiError::Unavailable(e.to_string()).into_response(),
    }
}

/// `GET /web/maps/{file name}`: the newest `.osu` file of a map the client has an old
/// version of (after getscores answered "update available").
pub async fn osu_file(State(state): State<AppState>, Path(file_name): Path<String>) -> Response {
    match state.world.scores().osu_file_by_name(&file_name).await {
        Ok(Some(bytes)) => bytes.into_response(),
        Ok(None) => ApiError::NotFound.into_response(),
        Err(e) => ApiError::Unavailable(e.to_string()).into_response(),
    }
}
