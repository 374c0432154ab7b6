//! In-game registration through `POST /users`, sent the way the osu! client sends it,
//! and hostile forms that must be refused with a 4xx without hurting the server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::raw_http::raw_post;
use crate::common::{PASSWORD, TestServer, login_body};
use peace_bancho::ServerPacket;
use reqwest::StatusCode;
use serde_json::Value;

/// The largest request body the server accepts (`peace_gateway::MAX_BODY_BYTES`).
const MAX_BODY: usize = 1 << 20;

/// The `USER_ID` a login of `name` with `password` gets (negative: refused).
async fn login_code(server: &TestServer, name: &str, password: &str) -> i32 {
    let (_, packets) = server
        .login_raw(login_body(name, password, "b20240101.1"))
        .await;
    packets
        .iter()
        .find_map(|p| match p {
            ServerPacket::UserId(u) => Some(u.user_id),
            _ => None,
        })
        .expect("a login reply always has USER_ID")
}

/// Sends a raw body to `POST /users`; returns the status and the body.
async fn post_users(
    server: &TestServer,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> (StatusCode, String) {
    let mut request = server.http.post(format!("{}/users", server.base));
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    let response = request.body(body).send().await.unwrap();
    let status = response.status();
    (status, response.text().await.unwrap())
}

const URLENCODED: Option<&str> = Some("application/x-www-form-urlencoded");

/// The client's form as a urlencoded body.
fn urlencoded(name: &str, email: &str, password: &str, check: &str) -> String {
    let form = [
        ("user[username]", name),
        ("user[user_email]", email),
        ("user[password]", password),
        ("check", check),
    ];
    form.iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encodes everything but unreserved characters.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn multipart(name: &str, email: &str, password: &str, check: &str) -> reqwest::multipart::Form {
    reqwest::multipart::Form::new()
        .text("user[username]", name.to_owned())
        .text("user[user_email]", email.to_owned())
        .text("user[password]", password.to_owned())
        .text("check", check.to_owned())
}

/// The `form_error.user` object of a 400 answer, asserting the shape.
fn form_errors(status: StatusCode, body: &str) -> serde_json::Map<String, Value> {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let json: Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
    let user = json["form_error"]["user"]
        .as_object()
        .unwrap_or_else(|| panic!("no form_error.user: {body}"))
        .clone();
    assert!(!user.is_empty(), "form_error.user is empty: {body}");
    for (field, messages) in &user {
        let messages = messages.as_array().expect("messages are a list");
        assert!(!messages.is_empty(), "{field} has no messages: {body}");
        assert!(
            messages
                .iter()
                .all(|m| m.as_str().is_some_and(|m| !m.is_empty())),
            "{field}: {body}"
        );
    }
    user
}

/// The fields with errors, sorted.
fn fields(errors: &serde_json::Map<String, Value>) -> Vec<&str> {
    errors.keys().map(String::as_str).collect()
}

/// Whether any message of `field` contains `needle`.
fn says(errors: &serde_json::Map<String, Value>, field: &str, needle: &str) -> bool {
    errors
        .get(field)
        .and_then(Value::as_array)
        .is_some_and(|m| {
            m.iter()
                .any(|m| m.as_str().is_some_and(|m| m.contains(needle)))
        })
}

/// A refusal that is not a form error: a 4xx with a JSON `error` message.
fn plain_error(status: StatusCode, body: &str, expected: StatusCode) {
    assert_eq!(status, expected, "{body}");
    let json: Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
    let message = json["error"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "no error message: {body}");
}

async fn assert_still_serves(server: &TestServer, name: &str) {
    let email = format!("{}@example.com", name.to_lowercase().replace(' ', "_"));
    let response = server.register(name, &email, PASSWORD, false).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "ok");
    assert!(login_code(server, name, PASSWORD).await > 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn check_only_validates_and_check_zero_creates() {
    let server = TestServer::start().await;

    let response = server
        .register("Checker", "checker@example.com", PASSWORD, true)
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "ok");
    // Nothing was created: the login fails, and the same form validates again.
    assert_eq!(login_code(&server, "Checker", PASSWORD).await, -1);
    assert!(
        server
            .world()
            .db()
            .user_by_name("Checker")
            .await
            .unwrap()
            .is_none()
    );
    let response = server
        .register("Checker", "checker@example.com", PASSWORD, true)
        .await;
    assert_eq!(response.status(), 200);

    // check=0 creates it.
    let response = server
        .register("Checker", "checker@example.com", PASSWORD, false)
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "ok");
    let id = login_code(&server, "Checker", PASSWORD).await;
    assert!(id > 0);
    assert_eq!(login_code(&server, "Checker", "wrong password").await, -1);
    let user = server
        .world()
        .db()
        .user_by_name("checker")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((user.id, user.name.as_str()), (id, "Checker"));
    assert_eq!(user.email, "checker@example.com");
    assert_ne!(user.password_bcrypt, PASSWORD, "the password is hashed");

    // Now check=1 reports the name as taken.
    let response = server
        .register("Checker", "other@example.com", PASSWORD, true)
        .await;
    let status = response.status();
    let errors = form_errors(status, &response.text().await.unwrap());
    assert_eq!(fields(&errors), ["username"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn multipart_form_works_like_urlencoded() {
    let server = TestServer::start().await;
    let url = format!("{}/users", server.base);

    let response = server
        .http
        .post(&url)
        .multipart(multipart("Multi Part", "mp@example.com", PASSWORD, "1"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "ok");
    assert_eq!(login_code(&server, "Multi Part", PASSWORD).await, -1);

    let response = server
        .http
        .post(&url)
        .multipart(multipart("Multi Part", "mp@example.com", PASSWORD, "0"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "ok");
    assert!(login_code(&server, "Multi Part", PASSWORD).await > 0);

    // Errors come back the same way.
    let response = server
        .http
        .post(&url)
        .multipart(multipart("multi_part", "MP@example.com", "short", "0"))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let errors = form_errors(status, &response.text().await.unwrap());
    assert_eq!(fields(&errors), ["password", "user_email", "username"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn taken_names_and_emails_are_refused_regardless_of_case_and_spacing() {
    let server = TestServer::start().await;
    let response = server
        .register("Some Player", "Some.Player@Example.com", PASSWORD, false)
        .await;
    assert_eq!(response.status(), 200);

    for name in [
        "Some Player",
        "some player",
        "SOME PLAYER",
        "some_player",
        "Some_Player",
    ] {
        for check in [true, false] {
            let response = server
                .register(name, "fresh@example.com", PASSWORD, check)
                .await;
            let status = response.status();
            let errors = form_errors(status, &response.text().await.unwrap());
            assert_eq!(fields(&errors), ["username"], "{name}");
            assert!(says(&errors, "username", "taken"), "{name}: {errors:?}");
        }
    }
    for email in [
        "some.player@example.com",
        "SOME.PLAYER@EXAMPLE.COM",
        "Some.Player@Example.com",
    ] {
        for check in [true, false] {
            let response = server.register("Another One", email, PASSWORD, check).await;
            let status = response.status();
            let errors = form_errors(status, &response.text().await.unwrap());
            assert_eq!(fields(&errors), ["user_email"], "{email}");
            assert!(says(&errors, "user_email", "in use"), "{email}: {errors:?}");
        }
    }
    // Both at once.
    let response = server
        .register("some_player", "SOME.player@example.com", PASSWORD, false)
        .await;
    let status = response.status();
    let errors = form_errors(status, &response.text().await.unwrap());
    assert_eq!(fields(&errors), ["user_email", "username"]);

    // None of those created anything; "Another One" is still free.
    assert_eq!(login_code(&server, "Another One", PASSWORD).await, -1);
    assert_still_serves(&server, "Another One").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn racing_registrations_of_one_name_create_exactly_one_account() {
    let server = TestServer::start().await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let http = server.http.clone();
        let url = format!("{}/users", server.base);
        tasks.push(tokio::spawn(async move {
            let response = http
                .post(url)
                .body(urlencoded(
                    "Racer",
                    &format!("racer{i}@example.com"),
                    PASSWORD,
                    "0",
                ))
                .header("content-type", "application/x-www-form-urlencoded")
                .send()
                .await
                .unwrap();
            let status = response.status();
            (status, response.text().await.unwrap())
        }));
    }
    let mut created = 0;
    for task in tasks {
        let (status, body) = task.await.unwrap();
        if status == StatusCode::OK {
            created += 1;
        } else {
            let errors = form_errors(status, &body);
            assert_eq!(fields(&errors), ["username"]);
        }
    }
    assert_eq!(created, 1);
    assert!(login_code(&server, "Racer", PASSWORD).await > 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn password_rules_show_under_password() {
    let server = TestServer::start().await;
    let cases = [
        // (name, password, expected message fragment)
        ("Shorty", "abc1234", "8 to 32"),
        ("Longy", &"abcdefghij".repeat(4), "8 to 32"),
        ("Samey", "aaaabbbbaaaabbbb", "distinct"),
        ("Samey", "abcabcabcabc", "distinct"),
        ("Mirror Name", "Mirror Name", "username"),
        ("Mirror Name", "mirror name", "username"),
        ("MirrorName12", "MIRRORNAME12", "username"),
    ];
    for (name, password, fragment) in cases {
        for check in [true, false] {
            let response = server
                .register(name, "pw@example.com", password, check)
                .await;
            let status = response.status();
            let errors = form_errors(status, &response.text().await.unwrap());
            assert_eq!(fields(&errors), ["password"], "{name}/{password}");
            assert!(
                says(&errors, "password", fragment),
                "{name}/{password}: {errors:?}"
            );
        }
        assert_eq!(login_code(&server, name, password).await, -1);
    }
    // Several problems at once are all listed.
    let response = server.register("Tiny", "pw@example.com", "aaa", true).await;
    let status = response.status();
    let errors = form_errors(status, &response.text().await.unwrap());
    assert_eq!(
        errors["password"].as_array().unwrap().len(),
        2,
        "{errors:?}"
    );
    // The limits themselves are fine (8 and 32 characters, 4 distinct).
    for (name, password) in [
        ("Edge Eight", "abcdabcd"),
        ("Edge Thirty", &"abcd".repeat(8)),
    ] {
        let response = server
            .register(
                name,
                &format!("{}@example.com", password.len()),
                password,
                false,
            )
            .await;
        assert_eq!(response.status(), 200, "{name}");
        assert!(login_code(&server, name, password).await > 0);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sql_injection_is_data_not_code() {
    let server = TestServer::start().await;
    for name in [
        "x'; DROP TABLE users;--",
        "' OR '1'='1",
        "admin'--",
        "a\"); --",
        "Robert'); DROP",
    ] {
        let response = server
            .register(name, "inj@example.com", PASSWORD, false)
            .await;
        let status = response.status();
        let errors = form_errors(status, &response.text().await.unwrap());
        assert_eq!(fields(&errors), ["username"], "{name}");
    }

    // Quotes are legal in an email's local part and any password: they must be stored
    // verbatim, not interpreted.
    let email = "x'OR'1'='1@evil.com";
    let password = "' OR 1=1 --";
    let response = server
        .register("Bobby Tables", email, password, false)
        .await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    assert!(login_code(&server, "Bobby Tables", password).await > 0);
    assert_eq!(
        login_code(&server, "Bobby Tables", "' OR 1=1 -- ").await,
        -1
    );
    let user = server
        .world()
        .db()
        .user_by_name("bobby tables")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.email, email.to_lowercase());
    // The same email with other case is taken (the comparison is not a LIKE pattern).
    let response = server
        .register("Bobby Two", "X'or'1'='1@EVIL.com", PASSWORD, true)
        .await;
    let status = response.status();
    assert_eq!(
        fields(&form_errors(status, &response.text().await.unwrap())),
        ["user_email"]
    );
    // A LIKE wildcard does not match other emails.
    let response = server
        .register("Bobby Three", "%@evil.com", PASSWORD, true)
        .await;
    assert_eq!(response.status(), 200);

    assert_still_serves(&server, "After Sql").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn control_characters_are_refused() {
    let server = TestServer::start().await;
    for name in [
        "Bad\0Name",
        "Tab\tName",
        "New\nLine",
        "Car\rReturn",
        "Bell\u{7}",
        "Esc\u{1b}[31m",
        "Del\u{7f}ete",
        "Zero\u{200b}Width",
        "Rtl\u{202e}Name",
    ] {
        let response = server
            .register(name, "ctl@example.com", PASSWORD, false)
            .await;
        let status = response.status();
        let errors = form_errors(status, &response.text().await.unwrap());
        assert_eq!(fields(&errors), ["username"], "{name:?}");
    }
    for email in [
        "a\0b@example.com",
        "ab@exa\nmple.com",
        "ab@example.com\r\nBcc: x@y.z",
        "a b@example.com",
        "tab\t@example.com",
    ] {
        let response = server.register("Control", email, PASSWORD, false).await;
        let status = response.status();
        let errors = form_errors(status, &response.text().await.unwrap());
        assert_eq!(fields(&errors), ["user_email"], "{email:?}");
    }
    assert_eq!(login_code(&server, "Control", PASSWORD).await, -1);
    assert_still_serves(&server, "Control").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_fields_and_empty_bodies_are_form_errors() {
    let server = TestServer::start().await;

    let (status, body) = post_users(&server, URLENCODED, "check=0").await;
    let errors = form_errors(status, &body);
    assert_eq!(fields(&errors), ["password", "user_email", "username"]);

    let (status, body) = post_users(&server, URLENCODED, "").await;
    let errors = form_errors(status, &body);
    assert_eq!(fields(&errors), ["password", "user_email", "username"]);

    let (status, body) = post_users(&server, URLENCODED, "user%5Busername%5D=Lonely&check=0").await;
    let errors = form_errors(status, &body);
    assert_eq!(fields(&errors), ["password", "user_email"]);

    let (status, body) = post_users(
        &server,
        URLENCODED,
        "user%5Busername%5D=Lonely&user%5Bpassword%5D=abcdefgh&check=0",
    )
    .await;
    let errors = form_errors(status, &body);
    assert_eq!(fields(&errors), ["user_email"]);

    // Keys without the `user[...]` wrapping are not the client's form.
    let (status, body) = post_users(
        &server,
        URLENCODED,
        "username=Lonely&user_email=l%40example.com&password=abcdefgh&check=0",
    )
    .await;
    let errors = form_errors(status, &body);
    assert_eq!(fields(&errors), ["password", "user_email", "username"]);

    // A multipart body without any part (RFC 2046 wants at least one).
    let response = server
        .http
        .post(format!("{}/users", server.base))
        .multipart(reqwest::multipart::Form::new())
        .send()
        .await
        .unwrap();
    let status = response.status();
    plain_error(
        status,
        &response.text().await.unwrap(),
        StatusCode::BAD_REQUEST,
    );

    // Without `check` the form is only validated (the client always sends it).
    let (status, body) = post_users(
        &server,
        URLENCODED,
        "user%5Busername%5D=Lonely&user%5Buser_email%5D=l%40example.com&user%5Bpassword%5D=abcdefgh",
    )
    .await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
    assert_eq!(login_code(&server, "Lonely", "abcdefgh").await, -1);

    assert_still_serves(&server, "Lonely").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unreadable_bodies_are_refused_with_a_message() {
    let server = TestServer::start().await;

    // A wrong content type is refused (see `wrong_content_types_are_415` for the
    // status); it is never a 5xx and always explained.
    for ct in [None, Some("application/json"), Some("text/plain")] {
        let (status, body) = post_users(
            &server,
            ct,
            urlencoded("Typeless", "t@example.com", PASSWORD, "0"),
        )
        .await;
        assert!(status.is_client_error(), "{ct:?}: {status} {body}");
        assert!(body.contains("Content-Type"), "{ct:?}: {body}");
    }

    // Multipart without a boundary, and with a broken one.
    let (status, body) = post_users(&server, Some("multipart/form-data"), "whatever").await;
    plain_error(status, &body, StatusCode::BAD_REQUEST);
    let (status, body) = post_users(
        &server,
        Some("multipart/form-data; boundary=XYZ"),
        "--XYZ\r\nContent-Disposition: form-data; name=\"user[username]\"\r\n\r\nCut",
    )
    .await;
    plain_error(status, &body, StatusCode::BAD_REQUEST);

    // Invalid UTF-8, percent-encoded and raw: never stored, never a 5xx.
    for raw in [
        b"user%5Busername%5D=%FF%FEab&user%5Buser_email%5D=u%40example.com&user%5Bpassword%5D=abcdefgh&check=0".to_vec(),
        [
            b"user%5Busername%5D=ab".as_slice(),
            &[0xff, 0xc0, 0x80],
            b"&user%5Buser_email%5D=u%40example.com&user%5Bpassword%5D=abcdefgh&check=0",
        ]
        .concat(),
    ] {
        let (status, body) = post_users(&server, URLENCODED, raw).await;
        assert!(
            [StatusCode::BAD_REQUEST, StatusCode::UNPROCESSABLE_ENTITY].contains(&status),
            "{status} {body}"
        );
        assert!(body.contains("username") || body.contains("error"), "{body}");
    }
    // Invalid UTF-8 in a multipart field.
    let form = reqwest::multipart::Form::new()
        .part(
            "user[username]",
            reqwest::multipart::Part::bytes(vec![b'a', b'b', 0xff, 0xfe]),
        )
        .text("user[user_email]", "u@example.com")
        .text("user[password]", "abcdefgh")
        .text("check", "0");
    let response = server
        .http
        .post(format!("{}/users", server.base))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body = response.text().await.unwrap();
    assert!(
        [StatusCode::BAD_REQUEST, StatusCode::UNPROCESSABLE_ENTITY].contains(&status),
        "{status} {body}"
    );
    assert!(
        !server
            .world()
            .db()
            .email_taken("u@example.com")
            .await
            .unwrap(),
        "nothing was stored"
    );

    assert_still_serves(&server, "Readable").await;
}

/// A urlencoded registration whose username fills the body up to `total` bytes.
fn padded_form(total: usize) -> String {
    let head = "user%5Buser_email%5D=big%40example.com&user%5Bpassword%5D=abcdefgh&check=0&user%5Busername%5D=";
    let mut body = head.to_owned();
    body.push_str(&"a".repeat(total - head.len()));
    assert_eq!(body.len(), total);
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn huge_usernames_are_4xx_not_5xx() {
    let server = TestServer::start().await;

    // Just under (and exactly at) the body limit: read, then refused by the rules.
    for total in [MAX_BODY - 1, MAX_BODY] {
        let (status, body) = post_users(&server, URLENCODED, padded_form(total)).await;
        let errors = form_errors(status, &body);
        assert_eq!(fields(&errors), ["username"], "{total}");
        assert!(says(&errors, "username", "2 to 15"), "{errors:?}");
    }
    // The same through multipart (what the client sends).
    let url = format!("{}/users", server.base);
    let response = server
        .http
        .post(&url)
        .multipart(multipart(
            &"b".repeat(MAX_BODY - 1024),
            "big@example.com",
            PASSWORD,
            "0",
        ))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let errors = form_errors(status, &response.text().await.unwrap());
    assert_eq!(fields(&errors), ["username"]);
    // Long passwords and emails are refused too (not truncated into something valid).
    let long_password = format!("{PASSWORD}{}", "x".repeat(5000));
    let response = server
        .register("Long Pass", "lp@example.com", &long_password, false)
        .await;
    let status = response.status();
    assert_eq!(
        fields(&form_errors(status, &response.text().await.unwrap())),
        ["password"]
    );
    let long_email = format!("{}@example.com", "e".repeat(5000));
    let response = server
        .register("Long Mail", &long_email, PASSWORD, false)
        .await;
    let status = response.status();
    assert_eq!(
        fields(&form_errors(status, &response.text().await.unwrap())),
        ["user_email"]
    );

    assert_still_serves(&server, "Big Survivor").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_content_types_are_415() {
    let server = TestServer::start().await;
    // No content type at all.
    let (status, body) = post_users(
        &server,
        None,
        urlencoded("Typeless", "t@example.com", PASSWORD, "0"),
    )
    .await;
    plain_error(status, &body, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // JSON is not a form.
    let json = serde_json::json!({
        "user": {"username": "Jason", "user_email": "j@example.com", "password": PASSWORD},
        "check": 0,
    });
    let (status, body) = post_users(&server, Some("application/json"), json.to_string()).await;
    plain_error(status, &body, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, body) = post_users(
        &server,
        Some("text/plain"),
        urlencoded("Plain", "p@example.com", PASSWORD, "0"),
    )
    .await;
    plain_error(status, &body, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(login_code(&server, "Typeless", PASSWORD).await, -1);
    assert_eq!(login_code(&server, "Plain", PASSWORD).await, -1);
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_over_the_limit_are_413() {
    let server = TestServer::start().await;
    let form = [("content-type", "application/x-www-form-urlencoded")];
    for total in [MAX_BODY + 1, 2 * MAX_BODY] {
        for chunked in [false, true] {
            let (status, body) = raw_post(
                &server.base,
                "/users",
                &form,
                padded_form(total).into_bytes(),
                chunked,
            )
            .await;
            plain_error(status, &body, StatusCode::PAYLOAD_TOO_LARGE);
        }
    }
    // Through multipart too (what the client sends).
    let boundary = "PeaceTestBoundary";
    let mut multipart_body = Vec::new();
    for (name, value) in [
        ("user[user_email]", "big@example.com".to_owned()),
        ("user[password]", PASSWORD.to_owned()),
        ("check", "0".to_owned()),
        ("user[username]", "b".repeat(MAX_BODY + 1)),
    ] {
        multipart_body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    multipart_body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let content_type = format!("multipart/form-data; boundary={boundary}");
    for chunked in [false, true] {
        let (status, body) = raw_post(
            &server.base,
            "/users",
            &[("content-type", &content_type)],
            multipart_body.clone(),
            chunked,
        )
        .await;
        plain_error(status, &body, StatusCode::PAYLOAD_TOO_LARGE);
    }
    assert!(
        !server
            .world()
            .db()
            .email_taken("big@example.com")
            .await
            .unwrap()
    );

    assert_still_serves(&server, "Big Survivor").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn reserved_names_are_refused() {
    let server = TestServer::start().await;
    for name in [
        "Peace",
        "PEACE",
        "BanchoBot",
        "Admin",
        "system",
        "Moderator",
    ] {
        let response = server.register(name, "r@example.com", PASSWORD, true).await;
        let status = response.status();
        let errors = form_errors(status, &response.text().await.unwrap());
        assert_eq!(fields(&errors), ["username"], "{name}");
        assert!(says(&errors, "username", "reserved"), "{name}: {errors:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn accounts_per_address_are_limited_and_headers_cannot_dodge_it() {
    let server = TestServer::start_with(|c| c.limits.registrations_per_ip = 2).await;
    for name in ["First", "Second"] {
        let response = server
            .register(name, &format!("{name}@example.com"), PASSWORD, false)
            .await;
        assert_eq!(response.status(), 200, "{name}");
    }
    let form = |name: &str, check: &str| {
        [
            ("user[username]", name.to_owned()),
            (
                "user[user_email]",
                format!("{}@example.com", name.replace(' ', "_")),
            ),
            ("user[password]", PASSWORD.to_owned()),
            ("check", check.to_owned()),
        ]
    };
    let post = |name: &str, check: &str, header: Option<(&str, &str)>| {
        let mut request = server
            .http
            .post(format!("{}/users", server.base))
            .form(&form(name, check));
        if let Some((k, v)) = header {
            request = request.header(k, v);
        }
        request.send()
    };

    // The third is refused, shown under a field the client displays.
    let response = post("Third", "0", None).await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = response.json().await.unwrap();
    let message = body["form_error"]["user"]["username"][0].as_str().unwrap();
    assert!(message.contains("Too many"), "{body}");
    // Checking a form is not creating an account.
    let response = post("Third", "1", None).await.unwrap();
    assert_eq!(response.status(), 200);
    // Proxy headers are not trusted unless configured.
    for header in ["x-real-ip", "x-forwarded-for"] {
        let response = post("Third", "0", Some((header, "203.0.113.9")))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS, "{header}");
    }
    assert_eq!(login_code(&server, "Third", PASSWORD).await, -1);

    // Behind a trusted proxy the limit is per forwarded address.
    let server = TestServer::start_with(|c| {
        c.limits.registrations_per_ip = 1;
        c.http.trust_proxy_headers = true;
    })
    .await;
    let post = |name: &str, ip: &str| {
        server
            .http
            .post(format!("{}/users", server.base))
            .header("x-forwarded-for", format!("{ip}, 10.0.0.1"))
            .form(&form(name, "0"))
            .send()
    };
    assert_eq!(
        post("Proxied A", "198.51.100.1").await.unwrap().status(),
        200
    );
    assert_eq!(
        post("Proxied B", "198.51.100.1").await.unwrap().status(),
        429
    );
    assert_eq!(
        post("Proxied B", "198.51.100.2").await.unwrap().status(),
        200
    );
}
