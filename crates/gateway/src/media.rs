//! Avatars and screenshots over HTTP. The bytes are kept by `peace_actors::media` (the
//! object store and the database); this module checks what comes in and serves what
//! goes out.
//!
//! * `GET a.<domain>/<user id>` (also `/<id>.png`, `/<id>.jpg`): the avatar the stable
//!   client shows. The same on the main host as `GET /a/<user id>`, for servers without
//!   an `a.` name.
//! * `PUT /api/v1/me/avatar`: a player replaces their own avatar (HTTP Basic, their name
//!   and password); `DELETE` removes it. `DELETE /api/v1/admin/users/{id}/avatar`: staff
//!   remove anyone's (the admin token).
//! * `POST /web/osu-screenshot.php`: the client's screenshot upload (F12 and "upload");
//!   answered with the file name the client opens at `osu.<domain>/ss/<name>`.
//! * `GET /ss/<id>` (also `.png`, `.jpg`): a screenshot.
//!
//! Every upload is decoded (the only type check that counts: a name or a content type
//! says nothing) and encoded again from its pixels, so no uploaded file is ever served
//! as it came: whatever else a file carried (metadata, a polyglot's second meaning) is
//! gone. Decoding is bounded: the body size, the image's width and height, the
//! decoder's memory, and how many images are decoded at once.

use std::io::Cursor;
use std::net::SocketAddr;
use std::sync::OnceLock;

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRequest, Multipart, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use http_body_util::BodyExt;
use image::{DynamicImage, ImageFormat, ImageReader, Limits};
use md5::Digest;
use peace_actors::media::{MediaError, ScreenshotFormat};
use serde_json::json;
use tokio::sync::Semaphore;

use crate::{ApiError, AppState};

/// The largest avatar upload (the request body).
pub const MAX_AVATAR_BYTES: usize = 2 << 20;
/// Avatars are stored at most this wide and high (larger ones are scaled down, keeping
/// their aspect ratio). The client draws them at 128×128 at most.
pub const AVATAR_SIZE: u32 = 256;
/// The largest screenshot (the `ss` part). A 1080p PNG is 2-6 MiB.
pub const MAX_SCREENSHOT_BYTES: usize = 10 << 20;
/// The largest screenshot request: the image plus the form's small fields.
pub const MAX_SCREENSHOT_REQUEST_BYTES: usize = MAX_SCREENSHOT_BYTES + (64 << 10);
/// The widest and highest image decoded at all (8K screens fit).
pub const MAX_IMAGE_SIDE: u32 = 8192;
/// The most memory one decoder may take (an 8K × 4K RGBA image and some).
const MAX_DECODE_ALLOC: u64 = 160 << 20;
/// How many images are decoded and encoded at once on this node; further uploads wait.
/// Each may take [`MAX_DECODE_ALLOC`] and a core for a moment.
static IMAGE_WORK: Semaphore = Semaphore::const_new(2);

/// After an upload went over its limit, the rest of it is still read (and dropped), up to
/// this much in all or for this long, before the 413 is sent: a server that answers and
/// closes with unread data makes the kernel reset the connection, and the client never
/// sees the answer (nginx's "lingering close" does the same). Beyond these, the
/// connection is just closed.
const DRAIN_MAX_BYTES: usize = 32 << 20;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// How long clients and proxies may keep an avatar (a new upload shows after this).
const AVATAR_CACHE: &str = "public, max-age=300";
/// The default avatar: shorter, so that a first upload shows soon.
const DEFAULT_AVATAR_CACHE: &str = "public, max-age=60";
/// A screenshot never changes under its id.
const SCREENSHOT_CACHE: &str = "public, max-age=31536000, immutable";

/// Why an upload is not taken. Every case is the uploader's: a 4xx.
#[derive(Debug, thiserror::Error)]
enum UploadError {
    #[error("the upload is larger than {0} bytes")]
    TooLarge(usize),
    #[error("not an image this server takes (PNG, JPEG, GIF or WebP)")]
    NotAnImage,
    #[error("the image is larger than {MAX_IMAGE_SIDE}×{MAX_IMAGE_SIDE} pixels")]
    TooManyPixels,
    #[error("the image could not be read: {0}")]
    Broken(String),
}

impl UploadError {
    fn status(&self) -> StatusCode {
        match self {
            UploadError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            UploadError::NotAnImage => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            UploadError::TooManyPixels | UploadError::Broken(_) => StatusCode::BAD_REQUEST,
        }
    }
}

impl From<UploadError> for ApiError {
    fn from(e: UploadError) -> Self {
        ApiError::Rejected(e.status(), e.to_string())
    }
}

/// An upload, decoded: its pixels and the format it came in.
#[derive(Debug)]
struct Decoded {
    image: DynamicImage,
    format: ImageFormat,
}

/// Decodes `bytes` as one of the formats this server takes, within the limits above.
fn decode(bytes: &[u8]) -> Result<Decoded, UploadError> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| UploadError::Broken(e.to_string()))?;
    let format = match reader.format() {
        Some(
            format @ (ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::Gif | ImageFormat::WebP),
        ) => format,
        _ => return Err(UploadError::NotAnImage),
    };
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    reader.limits(limits);
    let image = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => UploadError::TooManyPixels,
        image::ImageError::Unsupported(_) => UploadError::NotAnImage,
        other => UploadError::Broken(other.to_string()),
    })?;
    Ok(Decoded { image, format })
}

/// Encodes `image` as a PNG.
fn encode_png(image: &DynamicImage) -> Result<Vec<u8>, UploadError> {
    let mut out = Vec::new();
    // PNG takes 8- and 16-bit grey and colour with or without alpha; floating-point
    // pixels (none of the decoders above produce them) become 8-bit RGBA.
    let image = match image {
        DynamicImage::ImageRgb32F(_) | DynamicImage::ImageRgba32F(_) => {
            DynamicImage::ImageRgba8(image.to_rgba8())
        }
        other => other.clone(),
    };
    image
        .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
        .map_err(|e| UploadError::Broken(e.to_string()))?;
    Ok(out)
}

/// Encodes `image` as a JPEG (no alpha in JPEG: 8-bit RGB).
fn encode_jpeg(image: &DynamicImage) -> Result<Vec<u8>, UploadError> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&image.to_rgb8())
        .map_err(|e| UploadError::Broken(e.to_string()))?;
    Ok(out)
}

/// The avatar to store for an upload: decoded, scaled down to fit
/// [`AVATAR_SIZE`]×[`AVATAR_SIZE`], written as a PNG.
fn avatar_from_upload(bytes: &[u8]) -> Result<Vec<u8>, UploadError> {
    let decoded = decode(bytes)?;
    let image = if decoded.image.width() > AVATAR_SIZE || decoded.image.height() > AVATAR_SIZE {
        decoded.image.thumbnail(AVATAR_SIZE, AVATAR_SIZE)
    } else {
        decoded.image
    };
    encode_png(&image)
}

/// The screenshot to store for an upload: a PNG stays a PNG and a JPEG a JPEG, both
/// encoded again; a GIF or WebP becomes a PNG.
fn screenshot_from_upload(bytes: &[u8]) -> Result<(ScreenshotFormat, Vec<u8>), UploadError> {
    let decoded = decode(bytes)?;
    match decoded.format {
        ImageFormat::Jpeg => Ok((ScreenshotFormat::Jpeg, encode_jpeg(&decoded.image)?)),
        _ => Ok((ScreenshotFormat::Png, encode_png(&decoded.image)?)),
    }
}

/// Runs image work on the blocking pool, at most [`IMAGE_WORK`]'s permits at once. A
/// decoder that panics on a hostile file is the file's fault: a 400, not a 500.
async fn image_work<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, UploadError> + Send + 'static,
) -> Result<T, UploadError> {
    let _permit = IMAGE_WORK
        .acquire()
        .await
        .map_err(|_| UploadError::Broken("the server is stopping".into()))?;
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(e) => {
            tracing::warn!("image decoder failed: {e}");
            Err(UploadError::Broken("the decoder gave up".into()))
        }
    }
}

/// Reads a request body of at most `limit` bytes. A longer one is drained (within
/// [`DRAIN_MAX_BYTES`] and [`DRAIN_TIME`]) and refused as [`UploadError::TooLarge`].
async fn read_bounded(mut body: Body, limit: usize) -> Result<Bytes, UploadError> {
    let mut kept = Vec::new();
    let mut seen: usize = 0;
    let mut draining_until = None;
    loop {
        let next = match draining_until {
            None => body.frame().await,
            Some(deadline) => match tokio::time::timeout_at(deadline, body.frame()).await {
                Ok(next) => next,
                Err(_) => break,
            },
        };
        let frame = match next {
            None => break,
            Some(Ok(frame)) => frame,
            // A client that gave up or broke the framing; when draining, the answer
            // is the 413 all the same.
            Some(Err(_)) if draining_until.is_some() => break,
            Some(Err(e)) => return Err(UploadError::Broken(format!("the body: {e}"))),
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen = seen.saturating_add(data.len());
        if seen <= limit {
            kept.extend_from_slice(&data);
        } else if draining_until.is_none() {
            kept = Vec::new();
            draining_until = Some(tokio::time::Instant::now() + DRAIN_TIME);
        } else if seen > DRAIN_MAX_BYTES {
            break;
        }
    }
    if seen > limit {
        Err(UploadError::TooLarge(limit))
    } else {
        Ok(Bytes::from(kept))
    }
}

/// The built-in default avatar: a 128×128 PNG of a grey figure on blue, drawn once.
fn default_avatar() -> Bytes {
    static PNG: OnceLock<Bytes> = OnceLock::new();
    PNG.get_or_init(|| {
        const SIDE: u32 = 128;
        let image = image::RgbImage::from_fn(SIDE, SIDE, |x, y| {
            let (x, y) = (f64::from(x), f64::from(y));
            let head = (x - 64.0).powi(2) + (y - 50.0).powi(2) <= 22.0f64.powi(2);
            let body = ((x - 64.0) / 42.0).powi(2) + ((y - 124.0) / 42.0).powi(2) <= 1.0;
            if head || body {
                image::Rgb([0xd8, 0xdc, 0xe6])
            } else {
                image::Rgb([0x4a, 0x5a, 0x8c])
            }
        });
        encode_png(&DynamicImage::ImageRgb8(image))
            .map(Bytes::from)
            .unwrap_or_default()
    })
    .clone()
}

fn image_response(content_type: &'static str, cache: &'static str, bytes: Bytes) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        bytes,
    )
        .into_response()
}

/// `<user id>`, `<user id>.png` or `<user id>.jpg` → the user id.
fn avatar_id(file: &str) -> Option<i32> {
    let id = [".png", ".jpg", ".jpeg"]
        .iter()
        .find_map(|ext| file.strip_suffix(ext))
        .unwrap_or(file);
    // Digits only: `+1` or ` 1` name no avatar.
    if id.is_empty() || id.len() > 10 || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    id.parse().ok().filter(|id| *id > 0)
}

async fn serve_avatar(state: &AppState, file: &str) -> Response {
    let Some(user_id) = avatar_id(file) else {
        return ApiError::NotFound.into_response();
    };
    match state.world.media().avatar(user_id).await {
        Ok(Some(png)) => image_response("image/png", AVATAR_CACHE, png),
        Ok(None) => image_response("image/png", DEFAULT_AVATAR_CACHE, default_avatar()),
        Err(e) => unavailable(e).into_response(),
    }
}

fn unavailable(e: MediaError) -> ApiError {
    ApiError::Unavailable(e.to_string())
}

/// Whether the request was sent to `a.<domain>` (the avatar server's name).
fn on_avatar_host(headers: &HeaderMap) -> bool {
    headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|host| host.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("a.")))
}

/// `GET /{file}`: an avatar when asked of `a.<domain>`; nothing on the other names.
pub async fn avatar_on_host(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(file): Path<String>,
) -> Response {
    if !on_avatar_host(&headers) {
        return ApiError::NotFound.into_response();
    }
    serve_avatar(&state, &file).await
}

/// `GET /a/{file}`: an avatar on any name.
pub async fn avatar_by_path(State(state): State<AppState>, Path(file): Path<String>) -> Response {
    serve_avatar(&state, &file).await
}

/// The player behind `Authorization: Basic base64(name:password)`, checked like a login
/// (the same failed-login limits). The password is the plain one; the server stores
/// bcrypt(md5(password)), as the client sends md5(password).
async fn basic_user(
    state: &AppState,
    headers: &HeaderMap,
    connect: Option<&Extension<ConnectInfo<SocketAddr>>>,
) -> Result<peace_actors::scores::Account, ApiError> {
    let decoded = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|v| {
            base64::engine::general_purpose::STANDARD
                .decode(v.trim())
                .ok()
        })
        .and_then(|v| String::from_utf8(v).ok())
        .ok_or(ApiError::BadCredentials)?;
    let (name, password) = decoded.split_once(':').ok_or(ApiError::BadCredentials)?;
    let password_md5 = hex::encode(md5::Md5::digest(password.as_bytes()));
    let ip = crate::client_ip(&state.config, headers, connect.map(|c| &c.0));
    state
        .world
        .authenticate(name, &password_md5, ip)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?
        .ok_or(ApiError::BadCredentials)
}

/// `PUT /api/v1/me/avatar`: the body is the image (any of the formats above).
pub async fn put_avatar(
    State(state): State<AppState>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    // The body first, whatever the credentials: an answer before it is read would be
    // lost to a reset (see `DRAIN_MAX_BYTES`).
    let body = read_bounded(body, MAX_AVATAR_BYTES).await;
    let user = basic_user(&state, &headers, connect.as_ref()).await?;
    let body = body?;
    if body.is_empty() {
        return Err(ApiError::BadRequest("the body must be the image".into()));
    }
    let png = image_work(move || avatar_from_upload(&body)).await?;
    let size = png.len();
    state
        .world
        .media()
        .set_avatar(user.id, Bytes::from(png))
        .await
        .map_err(unavailable)?;
    tracing::info!(user = user.id, size, "avatar replaced");
    Ok(axum::Json(json!({ "user_id": user.id, "url": format!("/a/{}", user.id) })).into_response())
}

/// `DELETE /api/v1/me/avatar`: back to the default.
pub async fn delete_own_avatar(
    State(state): State<AppState>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let user = basic_user(&state, &headers, connect.as_ref()).await?;
    state
        .world
        .media()
        .remove_avatar(user.id)
        .await
        .map_err(unavailable)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/v1/admin/users/{id}/avatar` (admin): staff remove a player's avatar.
pub async fn delete_avatar(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(user_id): Path<i32>,
) -> Result<StatusCode, ApiError> {
    crate::cluster_api::require_admin(&state, &headers)?;
    state
        .world
        .media()
        .remove_avatar(user_id)
        .await
        .map_err(unavailable)?;
    tracing::info!(user = user_id, "avatar removed by an operator");
    Ok(StatusCode::NO_CONTENT)
}

/// The parts of a screenshot upload.
#[derive(Debug, Default)]
struct ScreenshotForm {
    name: String,
    password_md5: String,
    image: Option<Bytes>,
}

/// Reads the form; a part beyond its size is the whole request's failure.
async fn read_screenshot_form(mut multipart: Multipart) -> Result<ScreenshotForm, ApiError> {
    let mut form = ScreenshotForm::default();
    let failed = |e: axum::extract::multipart::MultipartError| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::from(UploadError::TooLarge(MAX_SCREENSHOT_BYTES))
        }
        status => ApiError::Rejected(status, e.body_text()),
    };
    while let Some(field) = multipart.next_field().await.map_err(failed)? {
        let name = field.name().unwrap_or_default().to_owned();
        let bytes = field.bytes().await.map_err(failed)?;
        match name.as_str() {
            "u" => form.name = String::from_utf8_lossy(&bytes).trim_end().to_owned(),
            "p" => form.password_md5 = String::from_utf8_lossy(&bytes).into_owned(),
            "ss" => form.image = Some(bytes),
            // `v` (the endpoint's version) and anything else: read and set aside.
            _ => {}
        }
    }
    Ok(form)
}

/// `POST /web/osu-screenshot.php`: the multipart form stable sends (`u`, `p` the
/// password md5, `v`, and the image as `ss`). The answer is the file name
/// (`<id>.png`/`<id>.jpg`), which the client opens at `osu.<domain>/ss/<name>`.
pub async fn upload_screenshot(
    State(state): State<AppState>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    request: Request,
) -> Result<Response, ApiError> {
    // Read whole (bounded) before the form is parsed, so that a 413 reaches the client.
    // The parts keep the route's body limit, which the form reader applies again.
    let (parts, body) = request.into_parts();
    let headers = parts.headers.clone();
    let body = read_bounded(body, MAX_SCREENSHOT_REQUEST_BYTES).await?;
    let multipart = Multipart::from_request(Request::from_parts(parts, Body::from(body)), &())
        .await
        .map_err(|e| ApiError::Rejected(e.status(), e.body_text()))?;
    let form = read_screenshot_form(multipart).await?;
    let ip = crate::client_ip(&state.config, &headers, connect.as_ref().map(|c| &c.0));
    let user = match state
        .world
        .web_login(&form.name, &form.password_md5, ip)
        .await
    {
        Ok(Ok(user)) => user,
        Ok(Err(word)) => {
            return Ok((StatusCode::UNAUTHORIZED, format!("error: {word}")).into_response());
        }
        Err(e) => return Err(ApiError::Unavailable(e.to_string())),
    };
    let Some(image) = form.image.filter(|image| !image.is_empty()) else {
        return Err(ApiError::BadRequest("no screenshot (the `ss` part)".into()));
    };
    if image.len() > MAX_SCREENSHOT_BYTES {
        return Err(UploadError::TooLarge(MAX_SCREENSHOT_BYTES).into());
    }
    let (format, bytes) = image_work(move || screenshot_from_upload(&image)).await?;
    let screenshot = state
        .world
        .media()
        .add_screenshot(user.id, format, Bytes::from(bytes))
        .await
        .map_err(unavailable)?;
    tracing::info!(
        user = user.id,
        id = screenshot.id,
        size = screenshot.size_bytes,
        "screenshot stored"
    );
    Ok(format!("{}.{}", screenshot.id, screenshot.format).into_response())
}

/// `GET /ss/{file}`: `<id>`, `<id>.png` or `<id>.jpg`.
pub async fn screenshot(State(state): State<AppState>, Path(file): Path<String>) -> Response {
    let id = [".png", ".jpg", ".jpeg"]
        .iter()
        .find_map(|ext| file.strip_suffix(ext))
        .unwrap_or(&file);
    if id.len() != peace_actors::media::SCREENSHOT_ID_LEN
        || !id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return ApiError::NotFound.into_response();
    }
    match state.world.media().screenshot(id).await {
        Ok(Some((format, bytes))) => image_response(format.content_type(), SCREENSHOT_CACHE, bytes),
        Ok(None) => ApiError::NotFound.into_response(),
        Err(e) => unavailable(e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let image = image::RgbaImage::from_fn(width, height, |x, y| {
            image::Rgba([(x % 256) as u8, (y % 256) as u8, 7, 255])
        });
        encode_png(&DynamicImage::ImageRgba8(image)).unwrap()
    }

    #[test]
    fn avatars_are_scaled_down_and_written_anew() {
        let upload = png(600, 300);
        let stored = avatar_from_upload(&upload).unwrap();
        assert_ne!(stored, upload);
        let back = image::load_from_memory(&stored).unwrap();
        assert_eq!((back.width(), back.height()), (256, 128));
        let small = avatar_from_upload(&png(40, 50)).unwrap();
        let back = image::load_from_memory(&small).unwrap();
        assert_eq!((back.width(), back.height()), (40, 50));
    }

    #[test]
    fn only_images_are_taken() {
        // A GIF signature and garbage: refused, whatever the decoder makes of it.
        assert!(avatar_from_upload(b"GIF89a but not really").is_err());
        assert!(matches!(
            avatar_from_upload(b"<html><script>alert(1)</script>"),
            Err(UploadError::NotAnImage)
        ));
        let mut truncated = png(64, 64);
        truncated.truncate(truncated.len() / 2);
        assert!(avatar_from_upload(&truncated).is_err());
        // A BMP decodes nowhere here: only the four formats' decoders are built in.
        assert!(matches!(
            avatar_from_upload(b"BM\x1e\0\0\0\0\0\0\0\x1a\0\0\0"),
            Err(UploadError::NotAnImage)
        ));
    }

    #[test]
    fn screenshots_keep_png_and_jpeg() {
        let (format, bytes) = screenshot_from_upload(&png(32, 16)).unwrap();
        assert_eq!(format, ScreenshotFormat::Png);
        assert_eq!(image::guess_format(&bytes).unwrap(), ImageFormat::Png);
        let jpeg = encode_jpeg(&image::load_from_memory(&png(32, 16)).unwrap()).unwrap();
        let (format, bytes) = screenshot_from_upload(&jpeg).unwrap();
        assert_eq!(format, ScreenshotFormat::Jpeg);
        assert_eq!(image::guess_format(&bytes).unwrap(), ImageFormat::Jpeg);
    }

    #[test]
    fn a_huge_image_is_refused_before_its_pixels_are_allocated() {
        // A valid PNG header claiming 100000×100000 pixels.
        let mut header = png(1, 1);
        header[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        header[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        assert!(avatar_from_upload(&header).is_err());
    }

    #[tokio::test]
    async fn bodies_are_read_within_their_limit() {
        let body = || Body::from(vec![7u8; 10]);
        assert_eq!(read_bounded(body(), 10).await.unwrap().len(), 10);
        assert!(matches!(
            read_bounded(body(), 9).await,
            Err(UploadError::TooLarge(9))
        ));
    }

    #[test]
    fn avatar_ids_are_plain_numbers() {
        assert_eq!(avatar_id("3"), Some(3));
        assert_eq!(avatar_id("3.png"), Some(3));
        assert_eq!(avatar_id("3.jpg"), Some(3));
        for bad in ["", "0", "-1", "+1", "abc", "3.gif", "99999999999", ".png"] {
            assert_eq!(avatar_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_default_avatar_is_a_png() {
        let image = image::load_from_memory(&default_avatar()).unwrap();
        assert_eq!((image.width(), image.height()), (128, 128));
    }
}
