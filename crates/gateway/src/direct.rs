//! osu!direct, the client's map browser: the search (`/web/osu-search.php`), one set's
//! line (`/web/osu-search-set.php`), the downloads (`/d/<set id>`, `/d/<set id>n` without
//! video) and the thumbnails and song previews it loads from `b.<domain>`
//! (`/thumb/<set id>l.jpg`, `/thumb/<set id>.jpg`, `/preview/<set id>.mp3`).
//!
//! The search always answers 200 with text the panel reads: a failed mirror or database
//! is the client's error line (`-1`), never a 5xx, which the client would show as a
//! broken connection. The rules live in `peace_actors::scores::direct`.

use std::net::SocketAddr;

use axum::Extension;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use peace_actors::scores::direct::{Download, SearchRequest, SetKey};
use peace_scores::direct::{DirectQuery, render_error};
use peace_scores::status::DirectFilter;

use crate::AppState;
use crate::scores::{Login, Params, ip_of, number};

type Connect = Option<Extension<ConnectInfo<SocketAddr>>>;

/// The longest set id the paths take (`i32`'s digits).
const MAX_SET_ID_DIGITS: usize = 10;

/// `GET /web/osu-search.php?u=…&h=…&r=<status filter>&q=<query>&m=<mode>&p=<page>`.
pub async fn search(
    State(state): State<AppState>,
    connect: Connect,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let ip = ip_of(&state, &headers, connect.as_ref());
    match Login::read(&params, "u", "h").check(&state, ip).await {
        Ok(_) => {}
        Err(answer) if answer.status() == StatusCode::OK => {
            return render_error("Wrong username or password.").into_response();
        }
        Err(_) => {
            return render_error("The server cannot check your login now.").into_response();
        }
    }
    let request = SearchRequest {
        query: DirectQuery::from_q(params.get("q").map_or("", String::as_str)),
        // An `r` the client does not send is read as "all".
        filter: number::<i32>(&params, "r")
            .and_then(DirectFilter::from_r)
            .unwrap_or(DirectFilter::All),
        mode: number::<u8>(&params, "m").filter(|m| *m <= 3),
        page: number::<u32>(&params, "p").unwrap_or(0),
    };
    match state.world.scores().direct_search(&request).await {
        Ok(answer) => answer.render().into_response(),
        Err(e) => {
            tracing::warn!("osu!direct search of the library failed: {e}");
            render_error("The server cannot search its maps now.").into_response()
        }
    }
}

/// `GET /web/osu-search-set.php?u=…&h=…&s=<set id>` (or `b=<beatmap id>`, `c=<md5>`): the
/// set's line, or an empty body when it is not known (the client then shows nothing).
pub async fn search_set(
    State(state): State<AppState>,
    connect: Connect,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let ip = ip_of(&state, &headers, connect.as_ref());
    if Login::read(&params, "u", "h")
        .check(&state, ip)
        .await
        .is_err()
    {
        return StatusCode::OK.into_response();
    }
    let key = if let Some(id) = number::<i32>(&params, "s") {
        SetKey::Set(id)
    } else if let Some(id) = number::<i32>(&params, "b") {
        SetKey::Map(id)
    } else if let Some(md5) = params.get("c") {
        SetKey::Md5(md5.trim().to_ascii_lowercase())
    } else {
        return StatusCode::OK.into_response();
    };
    match state.world.scores().direct_set(&key).await {
        Ok(Some(set)) => set.render().into_response(),
        Ok(None) => StatusCode::OK.into_response(),
        Err(e) => {
            tracing::warn!(?key, "osu!direct set lookup failed: {e}");
            StatusCode::OK.into_response()
        }
    }
}

/// `GET /d/<set id>` (`<set id>n`: without video): the stored archive, or a redirect to
/// the mirror; 404 when the server has neither.
pub async fn download(State(state): State<AppState>, Path(file): Path<String>) -> Response {
    let (digits, no_video) = match file.strip_suffix('n') {
        Some(digits) => (digits, true),
        None => (file.as_str(), false),
    };
    let set_id = (digits.len() <= MAX_SET_ID_DIGITS && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse::<i32>().ok())
        .flatten();
    let Some(set_id) = set_id else {
        return not_found("not a beatmap set id (/d/<set id>, or /d/<set id>n without video)");
    };
    match state.world.scores().direct_download(set_id, no_video).await {
        Download::File { name, bytes } => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/x-osu-beatmap-archive"),
                ),
                (
                    header::CONTENT_DISPOSITION,
                    HeaderValue::try_from(format!("attachment; filename=\"{name}\""))
                        .unwrap_or(HeaderValue::from_static("attachment")),
                ),
            ],
            bytes,
        )
            .into_response(),
        Download::Redirect(url) => found(&url),
        Download::NotFound => {
            not_found("this server has no archive of that set and no beatmap mirror to send you to")
        }
    }
}

/// `GET b.<domain>/thumb/<set id>l.jpg` or `/thumb/<set id>.jpg`: sent on to
/// `[web] beatmap_media_url`, or 404.
pub async fn thumbnail(State(state): State<AppState>, Path(file): Path<String>) -> Response {
    let valid = file
        .strip_suffix(".jpg")
        .map(|stem| stem.strip_suffix('l').unwrap_or(stem))
        .is_some_and(is_set_id);
    media(&state, "thumb", &file, valid)
}

/// `GET b.<domain>/preview/<set id>.mp3`: sent on to `[web] beatmap_media_url`, or 404.
pub async fn preview(State(state): State<AppState>, Path(file): Path<String>) -> Response {
    let valid = file.strip_suffix(".mp3").is_some_and(is_set_id);
    media(&state, "preview", &file, valid)
}

fn media(state: &AppState, folder: &str, file: &str, valid: bool) -> Response {
    let base = &state.config.beatmap_media_url;
    if !valid {
        return not_found("not a beatmap thumbnail or preview name");
    }
    if base.is_empty() {
        return not_found("this server has no beatmap media mirror ([web] beatmap_media_url)");
    }
    found(&format!("{base}/{folder}/{file}"))
}

fn is_set_id(text: &str) -> bool {
    !text.is_empty() && text.len() <= MAX_SET_ID_DIGITS && text.bytes().all(|b| b.is_ascii_digit())
}

/// A 302 to `url` (the client's web client follows it for downloads and images).
fn found(url: &str) -> Response {
    match HeaderValue::try_from(url) {
        Ok(location) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
        Err(_) => {
            tracing::warn!(%url, "a redirect url is not a valid header value");
            not_found("no usable url for this file")
        }
    }
}

fn not_found(why: &'static str) -> Response {
    (StatusCode::NOT_FOUND, why).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_ids_in_paths() {
        assert!(is_set_id("123"));
        assert!(!is_set_id(""));
        assert!(!is_set_id("12a"));
        assert!(!is_set_id("12345678901"));
    }
}
