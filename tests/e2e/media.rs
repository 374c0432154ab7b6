//! Avatars and screenshots over real HTTP, on every configured backend and through an S3
//! bucket when one is configured: uploads are decoded and written anew, served with their
//! content type on `a.<domain>` and the path forms, and anything that is not an image
//! (or too large) is a 4xx.

#![allow(clippy::unwrap_used)]

use std::io::Cursor;

use base64::Engine;
use image::{DynamicImage, ImageFormat};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{Gateway, PASSWORD, TestServer, md5_hex};

const ADMIN_TOKEN: &str = "media-admin-token";
/// `peace_gateway`'s limit on an avatar upload (2 MiB; screenshots: 10 MiB).
const MAX_AVATAR_BYTES: usize = 2 << 20;

/// What an upload carries beyond its pixels: after a PNG's end, where decoders do not
/// look and a browser sniffing the file might. A re-encoded image must not carry it.
const PAYLOAD: &[u8] = b"<html><script>alert(1)</script></html>";

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A PNG of `width`×`height` with a pattern.
fn png(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbaImage::from_fn(width, height, |x, y| {
        image::Rgba([
            (x * 7 % 256) as u8,
            (y * 3 % 256) as u8,
            ((x ^ y) % 256) as u8,
            255,
        ])
    });
    let mut out = Vec::new();
    DynamicImage::ImageRgba8(image)
        .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
        .unwrap();
    out
}

/// A PNG with [`PAYLOAD`] after its end: still a valid image.
fn png_with_payload(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = png(width, height);
    bytes.extend_from_slice(PAYLOAD);
    bytes
}

fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let image = image::load_from_memory(&png(width, height)).unwrap();
    let mut out = Vec::new();
    DynamicImage::ImageRgb8(image.to_rgb8())
        .write_to(&mut Cursor::new(&mut out), ImageFormat::Jpeg)
        .unwrap();
    out
}

async fn put_avatar(server: &Gateway, name: &str, password: &str, body: Vec<u8>) -> (u16, String) {
    let response = server
        .http
        .put(format!("{}/api/v1/me/avatar", server.base))
        .basic_auth(name, Some(password))
        .header("content-type", "image/png")
        .body(body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// `GET` with an optional `Host`: the status, content type and body.
async fn fetch(server: &Gateway, host: Option<&str>, path: &str) -> (u16, String, Vec<u8>) {
    let mut request = server.http.get(format!("{}{path}", server.base));
    if let Some(host) = host {
        request = request.header("host", host);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (
        status,
        content_type,
        response.bytes().await.unwrap().to_vec(),
    )
}

async fn upload_screenshot(
    server: &Gateway,
    name: &str,
    password: &str,
    image: Vec<u8>,
) -> (u16, String) {
    let form = reqwest::multipart::Form::new()
        .text("u", name.to_owned())
        .text("p", md5_hex(password))
        .text("v", "1")
        .part("ss", reqwest::multipart::Part::bytes(image).file_name("ss"));
    let response = server
        .http
        .post(format!("{}/web/osu-screenshot.php", server.base))
        .multipart(form)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// Sends a request over a raw connection, writing and reading at once, and returns the
/// status of the answer. For bodies over a limit: the server answers 413 and hangs up
/// before all of it is written, which an ordinary client (reqwest) reports as a broken
/// pipe instead of the answer.
async fn raw_status(server: &TestServer, head: &str, body: Vec<u8>) -> u16 {
    let addr = server.server.as_ref().unwrap().addr.unwrap();
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let mut request = format!(
        "{head}\r\nHost: osu.peace.local\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    // No shutdown of the writing half after the request: the server takes a half-closed
    // connection for a client that left, and drops its answer.
    let writer = tokio::spawn(async move {
        let _ = write.write_all(&request).await;
        std::future::pending::<()>().await;
    });
    let mut response = Vec::new();
    let read_all = read.read_to_end(&mut response);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(30), read_all).await;
    writer.abort();
    let text = String::from_utf8_lossy(&response);
    text.split_whitespace()
        .nth(1)
        .and_then(|status| status.parse().ok())
        .unwrap_or_else(|| panic!("no answer: {text:?}"))
}

async fn user_id(server: &TestServer, name: &str) -> i32 {
    server
        .world()
        .db()
        .user_by_name(name)
        .await
        .unwrap()
        .unwrap()
        .id
}

async fn scenario(server: &TestServer) {
    for name in ["Painter", "Plain"] {
        let email = format!("{}@example.com", name.to_lowercase());
        let response = server.register(name, &email, PASSWORD, false).await;
        assert_eq!(response.status(), 200);
    }
    let painter = user_id(server, "Painter").await;
    let plain = user_id(server, "Plain").await;

    // Without an avatar: the default, on both forms.
    let (status, content_type, default) =
        fetch(server, Some("a.peace.local"), &format!("/{plain}")).await;
    assert_eq!((status, content_type.as_str()), (200, "image/png"));
    let decoded = image::load_from_memory(&default).unwrap();
    assert!(decoded.width() > 0 && decoded.width() <= 256);
    let (_, _, by_path) = fetch(server, None, &format!("/a/{plain}")).await;
    assert!(by_path == default, "the path form serves the same default");

    // An upload: scaled down to fit 256×256, written anew, served on `a.` and the path.
    let upload = png_with_payload(512, 384);
    let (status, body) = put_avatar(server, "Painter", PASSWORD, upload.clone()).await;
    assert_eq!(status, 200, "{body}");
    for (host, path) in [
        (Some("a.peace.local"), format!("/{painter}")),
        (Some("A.peace.local:8080"), format!("/{painter}.png")),
        (Some("a.peace.local"), format!("/{painter}.jpg")),
        (None, format!("/a/{painter}")),
        (None, format!("/a/{painter}.png")),
    ] {
        let (status, content_type, bytes) = fetch(server, host, &path).await;
        assert_eq!(
            (status, content_type.as_str()),
            (200, "image/png"),
            "{host:?} {path}"
        );
        assert!(bytes != upload, "served as uploaded");
        assert!(!contains(&bytes, PAYLOAD), "the payload was kept");
        assert!(bytes != default, "the default instead of the upload");
        let image = image::load_from_memory(&bytes).unwrap();
        assert_eq!(
            (image.width(), image.height()),
            (256, 192),
            "{host:?} {path}"
        );
    }
    // Not the avatar host: `/<id>` is nothing on the other names.
    let (status, _, _) = fetch(server, Some("osu.peace.local"), &format!("/{painter}")).await;
    assert_eq!(status, 404);
    let (status, _, _) = fetch(server, Some("a.peace.local"), "/not-a-user").await;
    assert_eq!(status, 404);

    // Refused uploads, each a 4xx, the stored avatar untouched.
    let (status, body) = put_avatar(
        server,
        "Painter",
        PASSWORD,
        b"<svg onload=alert(1)>".to_vec(),
    )
    .await;
    assert_eq!(status, 415, "{body}");
    let mut truncated = png(64, 64);
    truncated.truncate(truncated.len() / 2);
    let (status, body) = put_avatar(server, "Painter", PASSWORD, truncated).await;
    assert_eq!(status, 400, "{body}");
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("Painter:{PASSWORD}"));
    let head = format!("PUT /api/v1/me/avatar HTTP/1.1\r\nAuthorization: Basic {credentials}");
    let mut too_big = png(8, 8);
    too_big.resize(MAX_AVATAR_BYTES + 1, 0);
    assert_eq!(raw_status(server, &head, too_big).await, 413);
    let (status, body) = put_avatar(server, "Painter", "wrong password", png(8, 8)).await;
    assert_eq!(status, 401, "{body}");
    let anonymous = server
        .http
        .put(format!("{}/api/v1/me/avatar", server.base))
        .body(png(8, 8))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(anonymous.headers().contains_key("www-authenticate"));
    let (_, _, still) = fetch(server, None, &format!("/a/{painter}")).await;
    assert_eq!(image::load_from_memory(&still).unwrap().width(), 256);

    // Staff remove it: the default again.
    let removed = server
        .http
        .delete(format!(
            "{}/api/v1/admin/users/{painter}/avatar",
            server.base
        ))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 204);
    let (_, _, after) = fetch(server, None, &format!("/a/{painter}")).await;
    assert!(after == default, "not the default after removal");

    // Screenshots: the client's form, answered with the file name to open.
    let shot = png_with_payload(320, 200);
    let (status, name) = upload_screenshot(server, "Painter", PASSWORD, shot.clone()).await;
    assert_eq!(status, 200, "{name}");
    let (id, extension) = name.split_once('.').unwrap();
    assert_eq!(extension, "png");
    assert_eq!(id.len(), 16);
    for path in [
        format!("/ss/{id}"),
        format!("/ss/{name}"),
        format!("/ss/{id}.jpg"),
    ] {
        let (status, content_type, bytes) = fetch(server, None, &path).await;
        assert_eq!(
            (status, content_type.as_str()),
            (200, "image/png"),
            "{path}"
        );
        assert!(bytes != shot, "served as uploaded");
        assert!(!contains(&bytes, PAYLOAD), "the payload was kept");
        let image = image::load_from_memory(&bytes).unwrap();
        assert_eq!((image.width(), image.height()), (320, 200));
    }
    // A JPEG stays a JPEG.
    let (status, jpeg_name) = upload_screenshot(server, "Painter", PASSWORD, jpeg(64, 48)).await;
    assert_eq!(status, 200, "{jpeg_name}");
    assert!(jpeg_name.ends_with(".jpg"), "{jpeg_name}");
    let (status, content_type, bytes) = fetch(server, None, &format!("/ss/{jpeg_name}")).await;
    assert_eq!((status, content_type.as_str()), (200, "image/jpeg"));
    assert_eq!(image::guess_format(&bytes).unwrap(), ImageFormat::Jpeg);

    // Metadata in the database.
    let records = server
        .world()
        .media()
        .screenshots_of(painter, 10)
        .await
        .unwrap();
    assert_eq!(records.len(), 2, "{records:?}");
    assert!(
        records
            .iter()
            .all(|r| r.user_id == painter && r.created_at > 0 && r.size_bytes > 0)
    );
    assert!(records.iter().any(|r| r.id == id && r.format == "png"));

    // Unknown ids, bad forms, bad credentials.
    for path in [
        "/ss/0123456789abcdef",
        "/ss/nope",
        "/ss/0123456789ABCDEF.png",
    ] {
        assert_eq!(fetch(server, None, path).await.0, 404, "{path}");
    }
    let (status, body) =
        upload_screenshot(server, "Painter", PASSWORD, b"not an image".to_vec()).await;
    assert_eq!(status, 415, "{body}");
    let (status, body) = upload_screenshot(server, "Painter", "wrong", png(8, 8)).await;
    assert_eq!((status, body.as_str()), (401, "error: pass"));
    let no_file = server
        .http
        .post(format!("{}/web/osu-screenshot.php", server.base))
        .multipart(
            reqwest::multipart::Form::new()
                .text("u", "Painter")
                .text("p", md5_hex(PASSWORD)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(no_file.status(), 400);
    let not_a_form = server
        .http
        .post(format!("{}/web/osu-screenshot.php", server.base))
        .body("u=Painter")
        .send()
        .await
        .unwrap();
    assert!(
        not_a_form.status().is_client_error(),
        "{}",
        not_a_form.status()
    );
    let mut huge = format!(
        "--b0undary\r\nContent-Disposition: form-data; name=\"u\"\r\n\r\nPainter\r\n\
         --b0undary\r\nContent-Disposition: form-data; name=\"p\"\r\n\r\n{}\r\n\
         --b0undary\r\nContent-Disposition: form-data; name=\"ss\"; filename=\"ss\"\r\n\r\n",
        md5_hex(PASSWORD)
    )
    .into_bytes();
    huge.extend_from_slice(&png(8, 8));
    huge.resize(huge.len() + (11 << 20), 0);
    huge.extend_from_slice(b"\r\n--b0undary--\r\n");
    let head = "POST /web/osu-screenshot.php HTTP/1.1\r\n\
                Content-Type: multipart/form-data; boundary=b0undary";
    assert_eq!(raw_status(server, head, huge).await, 413);
    assert_eq!(
        server
            .world()
            .media()
            .screenshots_of(painter, 10)
            .await
            .unwrap()
            .len(),
        2
    );
}

fn with_admin(config: &mut peace::Config) {
    config.api.admin_token = ADMIN_TOKEN.to_owned();
}

#[tokio::test(flavor = "multi_thread")]
async fn avatars_and_screenshots_on_sqlite() {
    let server = TestServer::start_with(with_admin).await;
    scenario(&server).await;
    // Kept in the storage folder, where every node sharing it sees them.
    let keys = peace_actors::scores::storage::Storage::local(server.files.path())
        .unwrap()
        .list("")
        .await
        .unwrap();
    assert!(
        keys.iter().any(|k| k.starts_with("screenshots/")),
        "{keys:?}"
    );
}

peace_db::backend_test!(
    Postgres,
    #[tokio::test(flavor = "multi_thread")]
    async fn avatars_and_screenshots_on_postgres() {
        if let Some(server) =
            TestServer::start_on_with(peace_db::Backend::Postgres, with_admin).await
        {
            scenario(&server).await;
        }
    }
);

peace_db::backend_test!(
    Mysql,
    #[tokio::test(flavor = "multi_thread")]
    async fn avatars_and_screenshots_on_mysql() {
        if let Some(server) = TestServer::start_on_with(peace_db::Backend::Mysql, with_admin).await
        {
            scenario(&server).await;
        }
    }
);

/// The same with `[storage] s3_*` (moto in CI): avatars and screenshots land in the
/// bucket, under the prefix. Skipped (with a note) without `PEACE_TEST_S3_ENDPOINT`.
#[tokio::test(flavor = "multi_thread")]
async fn avatars_and_screenshots_in_an_s3_bucket() {
    let Some(bucket) = crate::common::s3::TestBucket::create().await else {
        return;
    };
    let server = TestServer::start_with(|config| {
        with_admin(config);
        bucket.configure(config);
    })
    .await;
    server.config.validate().unwrap();
    scenario(&server).await;
    // A new avatar, left in place this time, to see it in the bucket.
    let (status, body) = put_avatar(&server, "Plain", PASSWORD, png(32, 32)).await;
    assert_eq!(status, 200, "{body}");

    let location = peace_actors::scores::storage::S3Location {
        prefix: String::new(),
        ..server.config.storage.s3_location().unwrap()
    };
    let keys = peace_actors::scores::storage::Storage::s3(&location)
        .unwrap()
        .list("")
        .await
        .unwrap();
    let plain = user_id(&server, "Plain").await;
    assert!(
        keys.contains(&format!("peace/avatars/{plain}.png")),
        "{keys:?}"
    );
    assert_eq!(
        keys.iter()
            .filter(|k| k.starts_with("peace/screenshots/"))
            .count(),
        2,
        "{keys:?}"
    );
    assert!(
        std::fs::read_dir(server.files.path())
            .unwrap()
            .next()
            .is_none(),
        "the folder is not used"
    );
}
