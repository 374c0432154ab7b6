//! "Tried as a new user would", and as a hostile one: a battery of malformed logins,
//! forged and replayed tokens, broken packet streams, hostile registrations and raw
//! garbage on the socket, thrown at a running server while two real players chat.
//!
//! The server must never answer 5xx, never panic (a panic hook counts panics on every
//! thread, actors' included, which ractor would otherwise catch quietly), never hang
//! (every request has a generous deadline that only bounds a hang), and the real players'
//! messages must all arrive, in order.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::common;
use crate::common::{PASSWORD, TestClient, TestServer, login_body};
use peace_bancho::{ClientPacket, ClientPacketId, ServerPacket, client as c};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bounds a hang; a healthy server answers each request in milliseconds.
const DEADLINE: Duration = Duration::from_secs(20);
/// The address the hostile requests claim (through `X-Real-IP`, as behind a proxy), so
/// that their failed logins use up that address's limits and not the real players'.
const HOSTILE_IP: &str = "10.6.6.6";

/// What went wrong, collected so that one run reports every problem at once.
type Failures = Vec<String>;

fn check_status(failures: &mut Failures, what: &str, status: u16) {
    if status >= 500 {
        failures.push(format!("{what}: answered {status}"));
    }
}

/// Sends `request` over a fresh connection and reads until the server closes it; returns
/// the status of every response in what came back (none if the server just hung up).
async fn raw(addr: std::net::SocketAddr, request: Vec<u8>) -> Result<Vec<u16>, String> {
    let exchange = async {
        let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let (mut read, mut write) = stream.into_split();
        // The server may answer (413, 400) and hang up before all of it is written: a
        // failed write is not a failure, the answer tells what happened.
        let writer = tokio::spawn(async move {
            let _ = write.write_all(&request).await;
            let _ = write.shutdown().await;
        });
        let mut response = Vec::new();
        let _ = read.read_to_end(&mut response).await;
        writer.abort();
        Ok::<_, String>(response)
    };
    let response = tokio::time::timeout(DEADLINE, exchange)
        .await
        .map_err(|_| "no answer and no close before the deadline".to_owned())??;
    let text = String::from_utf8_lossy(&response);
    Ok(text
        .match_indices("HTTP/1.")
        .filter_map(|(at, _)| text[at..].split_whitespace().nth(1)?.parse().ok())
        .collect())
}

/// A POST with the hostile address; returns the status, the cho-token and the body.
async fn post(
    server: &TestServer,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<(u16, Option<String>, Vec<u8>), String> {
    let mut request = server
        .http
        .post(format!("{}{path}", server.base))
        .header("x-real-ip", HOSTILE_IP)
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let exchange = async {
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let token = response
            .headers()
            .get("cho-token")
            .and_then(|t| t.to_str().ok())
            .map(str::to_owned);
        let bytes = response.bytes().await.map_err(|e| e.to_string())?;
        Ok((status, token, bytes.to_vec()))
    };
    tokio::time::timeout(DEADLINE, exchange)
        .await
        .map_err(|_| format!("POST {path}: no answer before the deadline"))?
}

/// The reply must be packets the client can read, all of them.
fn check_packets(failures: &mut Failures, what: &str, body: &[u8]) -> Vec<ServerPacket> {
    let mut packets = Vec::new();
    for decoded in peace_bancho::decode_server_packets(body) {
        match decoded {
            Ok(p) => packets.push(p),
            Err(e) => {
                failures.push(format!("{what}: the reply has an unreadable packet: {e}"));
                break;
            }
        }
    }
    packets
}

fn login_code(packets: &[ServerPacket]) -> Option<i32> {
    packets.iter().find_map(|p| match p {
        ServerPacket::UserId(u) => Some(u.user_id),
        _ => None,
    })
}

async fn malformed_logins(server: &TestServer) -> Failures {
    let mut failures = Failures::new();
    let md5 = common::md5_hex(PASSWORD);
    // Never Alice's name with her password: a well-formed one would be a real login and
    // replace her session (case 8 is well-formed but for nobody).
    let mut bodies: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"\n\n\n".to_vec(),
        b"Nobody".to_vec(),
        format!("Nobody\n{md5}").into_bytes(),
        format!("Nobody\n{md5}\n").into_bytes(),
        format!("Nobody\n{md5}\n||||\n").into_bytes(),
        format!("Nobody\n{md5}\nb20240101|-128|0|a:b:c:d:e:|0\n").into_bytes(),
        format!("Nobody\n{md5}\nb99999999999999|0|0|a:b:c:d:e:|0\n").into_bytes(),
        format!("Nobody\n{md5}\nb20240101|0|0|::::|0\n").into_bytes(),
        format!("Nobody\n{}\nb20240101|0|0|a:b:c:d:e:|0\n", "z".repeat(32)).into_bytes(),
        format!("Nobody\x00\n{md5}\nb20240101|0|0|a:b:c:d:e:|0\n").into_bytes(),
        format!("{}\n{md5}\nb20240101|0|0|a:b:c:d:e:|0\n", "A".repeat(5000)).into_bytes(),
        format!("{}\n{md5}\nb20240101|0|0|a:b:c:d:e:|0\n", "A".repeat(33)).into_bytes(),
        format!("Nobody\n{md5}\nb20240101|0|0|{}|0\n", ":".repeat(3000)).into_bytes(),
        login_body("Alice", "wrong password", "b20240101").into_bytes(),
        login_body("' OR 1=1 --", PASSWORD, "b20240101").into_bytes(),
        login_body("Peace", "!", "b20240101").into_bytes(),
        login_body("Nobody", PASSWORD, "b20240101tourney").into_bytes(),
        login_body("Nobody", PASSWORD, "b20240101\u{202e}").into_bytes(),
        vec![0xff, 0xfe, b'\n', 0x80, b'\n'],
        "\r\n".repeat(2000).into_bytes(),
        vec![b'a'; peace_bancho::login::MAX_LOGIN_BODY + 1],
    ];
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..100 {
        let len = rng.random_range(0..600);
        bodies.push((0..len).map(|_| rng.random()).collect());
    }
    for (i, body) in bodies.into_iter().enumerate() {
        let what = format!("malformed login #{i}");
        match post(server, "/", &[], body).await {
            Ok((status, token, body)) => {
                check_status(&mut failures, &what, status);
                if status != 200 {
                    failures.push(format!("{what}: answered {status}, not a login reply"));
                    continue;
                }
                if token.as_deref() != Some("no") {
                    failures.push(format!("{what}: cho-token {token:?}, expected \"no\""));
                }
                let packets = check_packets(&mut failures, &what, &body);
                if login_code(&packets).is_none_or(|code| code >= 0) {
                    failures.push(format!("{what}: no failure code in {packets:?}"));
                }
            }
            Err(e) => failures.push(format!("{what}: {e}")),
        }
    }
    failures
}

async fn forged_tokens(server: &TestServer, real: &str) -> Failures {
    let mut failures = Failures::new();
    let (claims, signature) = real.rsplit_once('.').unwrap();
    let mut tokens = vec![
        String::new(),
        "no".to_owned(),
        "1.1.1".to_owned(),
        format!("{claims}.{}", "0".repeat(signature.len())),
        format!("{claims}.{signature}.{signature}"),
        format!("-1.0.{signature}"),
        format!("{}.{signature}", "9".repeat(120)),
        "9".repeat(4000),
        "%00%ff".to_owned(),
        "1.2.3\t".to_owned(),
    ];
    let mut rng = StdRng::seed_from_u64(11);
    for _ in 0..30 {
        let mut t: Vec<u8> = real.bytes().collect();
        let at = rng.random_range(0..t.len());
        t[at] = rng.random_range(b'0'..=b'z');
        tokens.push(String::from_utf8(t).unwrap());
    }
    // Replays: the token of a session that logged out, many times over.
    let mut eve = server.player("Eve").await;
    // The client's LOGOUT in its first second is a startup quirk and ignored.
    eve.past_first_second().await;
    eve.send([c::Logout {}.into()]).await;
    tokens.extend(std::iter::repeat_n(eve.token.clone(), 20));
    for (i, token) in tokens.iter().enumerate() {
        if token == real {
            continue;
        }
        let what = format!("forged token #{i} {token:?}");
        let body = common::encode(&[c::Ping {}.into()]);
        match post(server, "/", &[("osu-token", token)], body).await {
            Ok((status, _, body)) => {
                check_status(&mut failures, &what, status);
                let packets = check_packets(&mut failures, &what, &body);
                if !packets
                    .iter()
                    .any(|p| matches!(p, ServerPacket::Restart(_)))
                {
                    failures.push(format!("{what}: not told to restart: {packets:?}"));
                }
            }
            Err(e) => failures.push(format!("{what}: {e}")),
        }
    }
    failures
}

/// A frame: a client packet id (or any id) and a payload of random bytes.
fn random_frame(rng: &mut StdRng) -> Vec<u8> {
    // LOGOUT would end the session the stream runs in; it is tried on its own.
    let ids: Vec<u16> = ClientPacketId::ALL
        .iter()
        .map(|&id| id as u16)
        .filter(|&id| id != ClientPacketId::Logout as u16)
        .collect();
    let id = if rng.random_bool(0.9) {
        ids[rng.random_range(0..ids.len())]
    } else {
        rng.random()
    };
    let len = rng.random_range(0..80);
    let payload: Vec<u8> = (0..len).map(|_| rng.random()).collect();
    let mut frame = id.to_le_bytes().to_vec();
    frame.push(0);
    frame.extend_from_slice(&(len as u32).to_le_bytes());
    frame.extend_from_slice(&payload);
    frame
}

/// Broken and random packet streams under a real (hostile) player's token; `seed` picks
/// the random ones.
async fn broken_streams(server: &TestServer, name: &str, seed: u64) -> Failures {
    let mut failures = Failures::new();
    let mallory = server.player(name).await;
    let mut token = mallory.token.clone();
    let message = |text: &str, to: &str| peace_bancho::Message {
        text: text.into(),
        recipient: to.into(),
        ..Default::default()
    };
    let valid = |packets: &[ClientPacket]| common::encode(packets);
    let mut bodies: Vec<Vec<u8>> = vec![
        vec![4, 0, 0],
        vec![4, 0, 0, 0xff, 0xff, 0xff, 0xff],
        vec![1, 0, 0, 0xff, 0xff, 0x0f, 0x00, 0x0b],
        vec![1, 0, 0, 3, 0, 0, 0, 0x0b, 0xff, 0xff],
        vec![85, 0, 0, 2, 0, 0, 0, 0xff, 0xff],
        vec![0xff, 0xff, 0, 0, 0, 0, 0],
        vec![0u8; 100_000],
        [4u8, 0, 0, 0, 0, 0, 0].repeat(2000),
        valid(&[c::SendPublicMessage {
            message: message(&"x".repeat(50_000), "#osu"),
        }
        .into()]),
        valid(&[c::SendPrivateMessage {
            message: message("hi", &"n".repeat(5000)),
        }
        .into()]),
        valid(&[c::ChannelJoin {
            name: "#".repeat(10_000),
        }
        .into()]),
        valid(&[c::ChannelPart {
            name: "#nowhere".into(),
        }
        .into()]),
        valid(&[c::StartSpectating { target_id: -1 }.into()]),
        valid(&[c::FriendAdd { user_id: i32::MAX }.into()]),
        valid(&[c::UserStatsRequest {
            user_ids: (0..30_000).collect(),
        }
        .into()]),
        valid(&[c::MatchChangeSettings {
            data: Default::default(),
        }
        .into()]),
        valid(&[c::JoinMatch {
            match_id: 9999,
            password: "x".into(),
        }
        .into()]),
        valid(&[c::SpectateFrames {
            frames: peace_bancho::wire::Raw(vec![0xaa; 200_000].into()),
        }
        .into()]),
    ];
    let mut rng = StdRng::seed_from_u64(seed);
    for _ in 0..400 {
        let frames = rng.random_range(1..6);
        let mut body: Vec<u8> = (0..frames).flat_map(|_| random_frame(&mut rng)).collect();
        if rng.random_bool(0.2) {
            body.truncate(rng.random_range(0..=body.len()));
        }
        bodies.push(body);
    }
    for (i, body) in bodies.into_iter().enumerate() {
        let what = format!("{name}'s broken stream #{i}");
        match post(server, "/", &[("osu-token", &token)], body).await {
            Ok((status, _, body)) => {
                check_status(&mut failures, &what, status);
                let packets = check_packets(&mut failures, &what, &body);
                // A random packet may legitimately end the session (a kick by the spam
                // limit is a silence, not a kick; but be ready): log in again and go on.
                if packets
                    .iter()
                    .any(|p| matches!(p, ServerPacket::Restart(_)))
                {
                    token = server.login(name, PASSWORD).await.token;
                }
            }
            Err(e) => failures.push(format!("{what}: {e}")),
        }
    }
    failures
}

type Headers = Vec<(&'static str, &'static str)>;

async fn hostile_registrations(server: &TestServer) -> Failures {
    let mut failures = Failures::new();
    let form = |name: &str, email: &str, password: &str| {
        let enc = |s: &str| -> String {
            s.bytes()
                .map(|b| format!("%{b:02X}"))
                .collect::<Vec<_>>()
                .concat()
        };
        format!(
            "user%5Busername%5D={}&user%5Buser_email%5D={}&user%5Bpassword%5D={}&check=0",
            enc(name),
            enc(email),
            enc(password)
        )
        .into_bytes()
    };
    let urlencoded = ("content-type", "application/x-www-form-urlencoded");
    let mut cases: Vec<(Headers, Vec<u8>)> = vec![
        (
            vec![urlencoded],
            form("Robert'); DROP TABLE users;--", "a@b.c", PASSWORD),
        ),
        (vec![urlencoded], form("x", "x", "x")),
        (
            vec![urlencoded],
            form(&"a".repeat(100_000), "a@b.c", PASSWORD),
        ),
        (
            vec![urlencoded],
            form("Evil\u{0}Name", "evil@b.c", PASSWORD),
        ),
        (
            vec![urlencoded],
            form("Ünïcödé", "ü@ü.ü", "ü".repeat(40).as_str()),
        ),
        (vec![urlencoded], form("Peace", "bot@b.c", PASSWORD)),
        (vec![urlencoded], form("Alice", "other@b.c", PASSWORD)),
        (
            vec![urlencoded],
            form("Fresh", &format!("{}@a.bc", "İ".repeat(120)), PASSWORD),
        ),
        (vec![urlencoded], b"%%%%&&&===".to_vec()),
        (vec![urlencoded], vec![0xff; 3000]),
        (vec![urlencoded], Vec::new()),
        (
            vec![("content-type", "multipart/form-data")],
            b"no boundary".to_vec(),
        ),
        (
            vec![("content-type", "multipart/form-data; boundary=XX")],
            b"--XX\r\nContent-Disposition: form-data; name=\"user[username]\"\r\n\r\nab".to_vec(),
        ),
        (
            vec![("content-type", "application/json")],
            b"{\"user\":1}".to_vec(),
        ),
        (vec![("content-type", "text/plain")], b"hello".to_vec()),
    ];
    let mut rng = StdRng::seed_from_u64(5);
    for _ in 0..20 {
        let len = rng.random_range(0..400);
        cases.push((vec![urlencoded], (0..len).map(|_| rng.random()).collect()));
    }
    for (i, (headers, body)) in cases.into_iter().enumerate() {
        let what = format!("hostile registration #{i}");
        match post(server, "/users", &headers, body).await {
            Ok((status, _, _)) => check_status(&mut failures, &what, status),
            Err(e) => failures.push(format!("{what}: {e}")),
        }
    }
    // A body over the limit, raw: the server may answer 413 and hang up before all of it
    // is sent, which an ordinary client reports as a broken pipe.
    let mut oversized = format!(
        "POST /users HTTP/1.1\r\nHost: osu\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        (1 << 20) + 1
    )
    .into_bytes();
    oversized.resize(oversized.len() + (1 << 20) + 1, b'a');
    match raw(server.server.as_ref().unwrap().addr.unwrap(), oversized).await {
        Ok(statuses) => {
            for status in statuses {
                check_status(&mut failures, "oversized registration", status);
            }
        }
        Err(e) => failures.push(format!("oversized registration: {e}")),
    }
    // Nothing hostile became an account.
    let db = server.world().db();
    for name in ["Robert'); DROP TABLE users;--", "x", "Peace", "Fresh"] {
        if let Ok(Some(user)) = db.user_by_name(name).await
            && user.id != peace_actors::BOT_ID
        {
            failures.push(format!("hostile registration created {name:?}"));
        }
    }
    failures
}

async fn socket_garbage(server: &TestServer) -> Failures {
    let mut failures = Failures::new();
    let addr = server.server.as_ref().unwrap().addr.unwrap();
    let long_header = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Long: {}\r\n\r\n",
        "a".repeat(200_000)
    );
    let mut requests: Vec<Vec<u8>> = vec![
        b"\r\n\r\n".to_vec(),
        b"GARBAGE\r\n\r\n".to_vec(),
        b"GET / HTTP/9.9\r\n\r\n".to_vec(),
        b"POST / HTTP/1.1\r\nHost: c\r\nContent-Length: -1\r\n\r\n".to_vec(),
        b"POST / HTTP/1.1\r\nHost: c\r\nContent-Length: 99999999999999999999\r\n\r\n".to_vec(),
        b"POST / HTTP/1.1\r\nHost: c\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello".to_vec(),
        b"POST / HTTP/1.1\r\nHost: c\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n".to_vec(),
        b"POST / HTTP/1.1\r\nHost: c\r\nosu-token: \xff\xfe\x80\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
        b"POST / HTTP/1.1\r\nHost: c\r\nosu-token: a\r\nosu-token: b\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
        b"GET /web/osu-getfriends.php HTTP/1.1\r\nHost: osu\r\nConnection: close\r\n\r\n".to_vec(),
        b"GET /web/osu-getfriends.php?u=%ff&h=%00 HTTP/1.1\r\nHost: osu\r\nConnection: close\r\n\r\n".to_vec(),
        b"DELETE / HTTP/1.1\r\nHost: c\r\nConnection: close\r\n\r\n".to_vec(),
        b"GET /../../etc/passwd HTTP/1.1\r\nHost: c\r\nConnection: close\r\n\r\n".to_vec(),
        b"GET /api/v1/health HTTP/1.0\r\n\r\n".to_vec(),
        [b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n".as_slice(); 20]
            .concat()
            .into_iter()
            .chain(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".iter().copied())
            .collect(),
        long_header.into_bytes(),
        vec![0u8; 70_000],
    ];
    let mut rng = StdRng::seed_from_u64(13);
    for _ in 0..20 {
        let len = rng.random_range(1..2000);
        requests.push((0..len).map(|_| rng.random()).collect());
    }
    for (i, request) in requests.into_iter().enumerate() {
        match raw(addr, request).await {
            Ok(statuses) => {
                for status in statuses {
                    check_status(&mut failures, &format!("raw request #{i}"), status);
                }
            }
            Err(e) => failures.push(format!("raw request #{i}: {e}")),
        }
    }
    // Connections opened and dropped without a byte.
    for _ in 0..50 {
        drop(TcpStream::connect(addr).await);
    }
    failures
}

/// Two real players chat in #osu until `stop`; returns them and how many lines each said.
async fn chat(
    mut alice: TestClient,
    mut bob: TestClient,
    stop: Arc<AtomicBool>,
) -> (TestClient, TestClient, usize) {
    let mut lines = 0;
    while !stop.load(Ordering::Relaxed) || lines < 20 {
        alice.say("#osu", &format!("alice says {lines}")).await;
        bob.say("#osu", &format!("bob says {lines}")).await;
        lines += 1;
        // The pace of the chat, not a wait for anything.
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    (alice, bob, lines)
}

/// Panics anywhere in this process (the server runs in it): an actor's panic is caught
/// by ractor and would otherwise go unnoticed. The other tests of the binary run in
/// this process too, so one of them failing at the same time fails this one as well.
static PANICS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[tokio::test(flavor = "multi_thread")]
async fn a_battery_of_hostile_input_changes_nothing_for_real_players() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        report(info);
    }));
    let server = TestServer::start_with(|c| {
        // The hostile requests come "through a proxy" with their own address.
        c.http.trust_proxy_headers = true;
        // The real players chat fast to overlap the whole battery; the spam limit has
        // its own tests.
        c.limits.messages_per_window = 100_000;
    })
    .await;
    let mut alice = server.player("Alice").await;
    let mut bob = server.player("Bob").await;
    for client in [&mut alice, &mut bob] {
        client.joined("#osu").await;
    }
    let real_token = alice.token.clone();

    let stop = Arc::new(AtomicBool::new(false));
    let chatting = tokio::spawn(chat(alice, bob, Arc::clone(&stop)));
    let (logins, tokens, streams, more_streams, registrations, garbage) = tokio::join!(
        malformed_logins(&server),
        forged_tokens(&server, &real_token),
        broken_streams(&server, "Mallory", 3),
        broken_streams(&server, "Trudy", 4),
        hostile_registrations(&server),
        socket_garbage(&server),
    );
    stop.store(true, Ordering::Relaxed);
    let (mut alice, mut bob, lines) = chatting.await.unwrap();

    let mut failures: Failures = [
        logins,
        tokens,
        streams,
        more_streams,
        registrations,
        garbage,
    ]
    .concat();
    let panics = PANICS.load(Ordering::SeqCst);
    if panics > 0 {
        failures.push(format!(
            "{panics} panic(s) in the server (see the output above)"
        ));
    }
    assert!(
        failures.is_empty(),
        "{} problem(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Every line each player said reached the other, in order.
    for (reader, speaker) in [(&mut bob, "alice"), (&mut alice, "bob")] {
        let prefix = format!("{speaker} says ");
        let last = reader.wait_message(&format!("{prefix}{}", lines - 1)).await;
        let mut heard: Vec<String> = reader
            .seen
            .iter()
            .filter_map(|p| match p {
                ServerPacket::SendMessage(m) if m.message.text.starts_with(&prefix) => {
                    Some(m.message.text.clone())
                }
                _ => None,
            })
            .collect();
        heard.push(last.text);
        let said: Vec<String> = (0..lines).map(|i| format!("{prefix}{i}")).collect();
        assert_eq!(heard, said, "what {} heard from {speaker}", reader.name);
    }
    // The server still serves, and a new player from the real players' address gets in.
    let health = server
        .http
        .get(format!("{}/api/v1/health", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let mut carol = server.player("Carol").await;
    carol.joined("#osu").await;
    carol.say("#osu", "hello from a new player").await;
    alice.wait_message("hello from a new player").await;
}
