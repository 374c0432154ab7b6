//! The client's web calls around maps and itself (`osu.<domain>/web/*` and
//! `/difficulty-rating`): ratings, favourites, comments, anti-cheat flags, error
//! reports, read marks, seasonal backgrounds and star ratings. Each reads its request
//! into `peace_actors::scores::client`'s terms and writes back the text the client
//! reads; a login the endpoint cannot accept gets the client's own failure word.
//!
//! Login parameter names differ per endpoint, as the client sends them: `us`/`ha` on
//! lastfm, `u`/`p` on osu-rate and osu-comment, `u`/`h` on the rest.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use peace_actors::scores::client::{CommentPost, CommentTarget, StarsAnswer};

use crate::form::{self, FormError};
use crate::scores::{Login, Params, ip_of, number};
use crate::{ApiError, AppState};

/// The longest value kept from a posted form field (a stack trace); longer ones are cut.
const MAX_FIELD_BYTES: usize = 16 * 1024;

type Connect = Option<Extension<ConnectInfo<SocketAddr>>>;

fn unavailable(e: impl std::fmt::Display) -> Response {
    ApiError::Unavailable(e.to_string()).into_response()
}

/// `GET /web/lastfm.php?b=…&action=…&us=…&ha=…`: the client "scrobbles" what it plays,
/// and hides its anti-cheat flags in `b` as `a<flags>`. A flag report is recorded and
/// answered empty; anything else is not kept, and `-3` asks the client to stop sending.
pub async fn lastfm(
    State(state): State<AppState>,
    connect: Connect,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let ip = ip_of(&state, &headers, connect.as_ref());
    let user = match Login::read(&params, "us", "ha").check(&state, ip).await {
        Ok(user) => user,
        Err(answer) => return answer,
    };
    let b = params.get("b").map_or("", String::as_str);
    match state.world.scores().report_flags(&user, b, "").await {
        Ok(true) => StatusCode::OK.into_response(),
        Ok(false) => "-3".into_response(),
        Err(e) => unavailable(e),
    }
}

/// `GET /web/osu-rate.php?c=<md5>[&v=<1-10>]&u=…&p=…`.
pub async fn rate(
    State(state): State<AppState>,
    connect: Connect,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let ip = ip_of(&state, &headers, connect.as_ref());
    let user = match Login::read(&params, "u", "p").check(&state, ip).await {
        Ok(user) => user,
        // The rating dialog's own word for a failed login.
        Err(answer) if answer.status() == StatusCode::OK => return "auth fail".into_response(),
        Err(answer) => return answer,
    };
    let md5 = params
        .get("c")
        .map_or(String::new(), |c| c.trim().to_ascii_lowercase());
    // A vote outside 1..=10 is no vote: the client is asked again.
    let vote = number::<i16>(&params, "v").filter(|v| (1..=10).contains(v));
    match state.world.scores().rate(&user, &md5, vote).await {
        Ok(answer) => answer.render().into_response(),
        Err(e) => unavailable(e),
    }
}

/// `GET /web/osu-getfavourites.php?u=…&h=…`: favourite set ids, one per line.
pub async fn favourites(
    State(state): State<AppState>,
    connect: Connect,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let ip = ip_of(&state, &headers, connect.as_ref());
    let user = match Login::read(&params, "u", "h").check(&state, ip).await {
        Ok(user) => user,
        Err(answer) => return answer,
    };
    match state.world.scores().favourites(&user).await {
        Ok(lines) => lines.into_response(),
        Err(e) => unavailable(e),
    }
}

/// `GET /web/osu-addfavourite.php?a=<set id>&u=…&h=…`: the answer is shown as it is.
pub async fn add_favourite(
    State(state): State<AppState>,
    connect: Connect,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let ip = ip_of(&state, &headers, connect.as_ref());
    let user = match Login::read(&params, "u", "h").check(&state, ip).await {
        Ok(user) => user,
        Err(answer) => return answer,
    };
    let set_id = number::<i32>(&params, "a").unwrap_or(0);
    match state.world.scores().add_favourite(&user, set_id).await {
        Ok(text) => text.into_response(),
        Err(e) => unavailable(e),
    }
}

/// `GET /web/osu-markasread.php?channel=<name>&u=…&h=…`: the player read a private
/// conversation. Answered empty.
pub async fn mark_as_read(
    State(state): State<AppState>,
    connect: Connect,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let ip = ip_of(&state, &headers, connect.as_ref());
    let user = match Login::read(&params, "u", "h").check(&state, ip).await {
        Ok(user) => user,
        Err(answer) => return answer,
    };
    let channel = params.get("channel").map_or("", String::as_str);
    match state.world.scores().mark_read(&user, channel).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => unavailable(e),
    }
}

/// `GET /web/osu-getseasonal.php`: the configured main-menu backgrounds, a JSON list
/// of urls (`[web] seasonal_backgrounds`).
pub async fn seasonal(State(state): State<AppState>) -> Response {
    axum::Json(state.config.seasonal_backgrounds.clone()).into_response()
}

/// `POST /web/osu-comment.php`: `a=get` lists the comments on the set (`s`), the map
/// (`b`) and the replay (`r`); `a=post` stores one (`target` song|map|replay,
/// `starttime` ms, `f` colour, `comment`). Login `u`/`p`.
pub async fn comment(
    State(state): State<AppState>,
    connect: Connect,
    request: Request,
) -> Response {
    let ip = ip_of(&state, request.headers(), connect.as_ref());
    let form = match read_form(request).await {
        Ok(form) => form,
        Err(why) => return ApiError::from(why).into_response(),
    };
    let user = match Login::read(&form, "u", "p").check(&state, ip).await {
        Ok(user) => user,
        Err(answer) => return answer,
    };
    let id = |key: &str| number::<i32>(&form, key);
    let scores = state.world.scores();
    match form.get("a").map(String::as_str) {
        Some("get") => match scores.comments(&user, id("s"), id("b"), id("r")).await {
            Ok(lines) => lines.into_response(),
            Err(e) => unavailable(e),
        },
        Some("post") => {
            let target = form
                .get("target")
                .and_then(|t| CommentTarget::from_word(t.trim()));
            let Some(target) = target else {
                return ApiError::BadRequest("target must be song, map or replay".into())
                    .into_response();
            };
            let target_id = match target {
                CommentTarget::Set => id("s"),
                CommentTarget::Map => id("b"),
                CommentTarget::Replay => id("r"),
            };
            let post = CommentPost {
                target,
                target_id: target_id.unwrap_or(0),
                song_time: id("starttime").unwrap_or(0),
                colour: form.get("f").cloned().unwrap_or_default(),
                text: form.get("comment").cloned().unwrap_or_default(),
            };
            match scores.post_comment(&user, &post).await {
                Ok(_) => StatusCode::OK.into_response(),
                Err(e) => unavailable(e),
            }
        }
        _ => ApiError::BadRequest("a must be get or post".into()).into_response(),
    }
}

/// `POST /web/osu-error.php`: the client's error report (a multipart form: `u`/`h` when
/// logged in, `version`, `exception`, `feedback`, `stacktrace`, the client's state, and
/// an optional screenshot, which is not kept). Stored cut to size, with the player when
/// the login is valid; answered empty, also when it cannot be read (nothing is stored).
pub async fn error_report(
    State(state): State<AppState>,
    connect: Connect,
    request: Request,
) -> Response {
    let ip = ip_of(&state, request.headers(), connect.as_ref());
    let form = match read_form(request).await {
        Ok(form) => form,
        Err(why) => {
            // The client reads nothing from the answer: an unreadable report is dropped.
            tracing::debug!(%ip, "unreadable error report: {why}");
            return StatusCode::OK.into_response();
        }
    };
    let login = Login::read(&form, "u", "h");
    let user_id = if login.name.is_empty() || login.password_md5.is_empty() {
        None
    } else {
        match state
            .world
            .authenticate(login.name, login.password_md5, ip)
            .await
        {
            Ok(user) => user.map(|u| u.id),
            Err(e) => return unavailable(e),
        }
    };
    let field = |key: &str| form.get(key).map_or("", |v| v.trim());
    let mut detail = String::new();
    for key in [
        "exception",
        "feedback",
        "osumode",
        "gamemode",
        "beatmap_id",
        "beatmap_checksum",
        "culture",
        "stacktrace",
    ] {
        if !field(key).is_empty() {
            detail.push_str(&format!("{key}: {}\n", field(key)));
        }
    }
    if detail.is_empty() {
        return StatusCode::OK.into_response();
    }
    match state
        .world
        .scores()
        .report_error(user_id, field("version"), &detail)
        .await
    {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => unavailable(e),
    }
}

/// The body of `/difficulty-rating`: mods as stable's bit set, or as a list of
/// acronyms (`["HD", "DT"]` or `[{"acronym": "HD"}]`).
#[derive(Debug, serde::Deserialize)]
struct StarsRequest {
    beatmap_id: i64,
    #[serde(default)]
    ruleset_id: i64,
    #[serde(default)]
    mods: Option<ModsField>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
enum ModsField {
    Bits(u32),
    List(Vec<ModEntry>),
}

#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
enum ModEntry {
    Acronym(String),
    Object { acronym: String },
}

/// `POST /difficulty-rating`: `{"beatmap_id", "ruleset_id", "mods"}` → the star rating
/// as a JSON number. An unknown map is 404, an unreadable request 400.
pub async fn difficulty_rating(State(state): State<AppState>, body: Bytes) -> Response {
    let request: StarsRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            return ApiError::BadRequest(format!("not the expected JSON: {e}")).into_response();
        }
    };
    let mods = match &request.mods {
        None => 0,
        Some(ModsField::Bits(bits)) => *bits,
        Some(ModsField::List(list)) => {
            let mut bits = 0;
            for entry in list.iter().take(32) {
                let acronym = match entry {
                    ModEntry::Acronym(a) | ModEntry::Object { acronym: a } => a,
                };
                match mod_bit(acronym) {
                    Some(bit) => bits |= bit,
                    None => {
                        return ApiError::BadRequest(format!("unknown mod {acronym:?}"))
                            .into_response();
                    }
                }
            }
            bits
        }
    };
    let (Ok(beatmap_id), Ok(ruleset_id)) = (
        i32::try_from(request.beatmap_id),
        i32::try_from(request.ruleset_id),
    ) else {
        return ApiError::BadRequest("beatmap_id or ruleset_id out of range".into())
            .into_response();
    };
    match state
        .world
        .scores()
        .star_rating(beatmap_id, ruleset_id, mods)
        .await
    {
        Ok(StarsAnswer::Stars(stars)) => axum::Json(stars).into_response(),
        Ok(StarsAnswer::NoSuchMap) => ApiError::NotFound.into_response(),
        Ok(StarsAnswer::BadRequest) => {
            ApiError::BadRequest("ruleset_id must be 0-3 (and the map's own or a convert)".into())
                .into_response()
        }
        Err(e) => unavailable(e),
    }
}

/// Stable's bit of a mod acronym (the mods that change a star rating and the rest).
fn mod_bit(acronym: &str) -> Option<u32> {
    Some(match acronym.to_ascii_uppercase().as_str() {
        "NF" => 1,
        "EZ" => 1 << 1,
        "TD" => 1 << 2,
        "HD" => 1 << 3,
        "HR" => 1 << 4,
        "SD" => 1 << 5,
        "DT" => 1 << 6,
        "RX" => 1 << 7,
        "HT" => 1 << 8,
        "NC" => (1 << 9) | (1 << 6),
        "FL" => 1 << 10,
        "AT" => 1 << 11,
        "SO" => 1 << 12,
        "AP" => 1 << 13,
        "PF" => (1 << 14) | (1 << 5),
        "4K" => 1 << 15,
        "5K" => 1 << 16,
        "6K" => 1 << 17,
        "7K" => 1 << 18,
        "8K" => 1 << 19,
        "FI" => 1 << 20,
        "MR" => 1 << 30,
        "9K" => 1 << 24,
        "1K" => 1 << 26,
        "3K" => 1 << 27,
        "2K" => 1 << 28,
        "CL" | "SV2" => return Some(0),
        _ => return None,
    })
}

/// A posted form's text fields by name (the last of a repeated name wins), each cut to
/// [`MAX_FIELD_BYTES`].
async fn read_form(request: Request) -> Result<HashMap<String, String>, FormError> {
    let fields = form::text_fields(request).await?;
    Ok(fields
        .into_iter()
        .map(|(name, value)| (name, cut(&value)))
        .collect())
}

fn cut(text: &str) -> String {
    if text.len() <= MAX_FIELD_BYTES {
        return text.to_owned();
    }
    let mut end = MAX_FIELD_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mod_acronyms_are_stables_bits() {
        assert_eq!(mod_bit("HD"), Some(8));
        assert_eq!(mod_bit("dt"), Some(64));
        assert_eq!(mod_bit("NC"), Some(576));
        assert_eq!(mod_bit("XX"), None);
    }

    #[test]
    fn long_fields_are_cut_at_characters() {
        let long = "é".repeat(MAX_FIELD_BYTES);
        let cut = cut(&long);
        assert!(cut.len() <= MAX_FIELD_BYTES);
        assert!(cut.chars().all(|c| c == 'é'));
    }
}
