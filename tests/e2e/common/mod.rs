//! A scenario harness: a real server on 127.0.0.1:0 with a real database (a SQLite file,
//! or with [`TestServer::start_on`] a fresh database on any backend), and test clients
//! that speak the osu! protocol over HTTP.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod cluster;
pub mod play;
pub mod proxy;
pub mod raw_http;
pub mod s3;

use std::sync::Mutex;
use std::thread::ThreadId;
use std::time::Duration;

use md5::{Digest, Md5};
use peace::{Config, Server};
use peace_bancho::{ClientPacket, ServerPacket, client};
use peace_db::Backend;
use peace_db::testing::ScratchDatabase;

pub const PASSWORD: &str = "correct horse battery";
/// The bot's name, as seeded by the first migration.
pub const BOT_NAME: &str = "Peace";

pub struct TestServer {
    pub server: Option<Server>,
    pub gateway: Gateway,
    /// What the server was started with, so that [`TestServer::restart`] can start the
    /// same server again on the same database.
    pub config: Config,
    /// Where the database lives; dropped (and on a server, dropped there) with the test.
    _storage: Storage,
    /// This server's place among the tests that share the process (see [`alone`]).
    _share: Share,
    /// The folder of replays and `.osu` files (`[storage] folder`).
    pub files: std::sync::Arc<tempfile::TempDir>,
}

/// One node's HTTP listener, as clients see it.
#[derive(Clone)]
pub struct Gateway {
    pub base: String,
    pub http: reqwest::Client,
}

impl std::ops::Deref for TestServer {
    type Target = Gateway;

    fn deref(&self) -> &Gateway {
        &self.gateway
    }
}

enum Storage {
    Dir(tempfile::TempDir),
    Scratch(ScratchDatabase),
}

pub fn md5_hex(s: &str) -> String {
    hex_encode(&Md5::digest(s.as_bytes()))
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn login_body(name: &str, password: &str, version: &str) -> String {
    format!(
        "{name}\n{}\n{version}|0|0|aa:runningunderwine:bb:cc:dd:|0\n",
        md5_hex(password)
    )
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        Self::start_prepared(tweak, |_| async {}).await
    }

    /// Like [`TestServer::start_with`], but `prepare` gets the migrated database before
    /// the actors start (to add channels, which are loaded at start).
    pub async fn start_prepared<F, Fut>(tweak: impl FnOnce(&mut Config), prepare: F) -> Self
    where
        F: FnOnce(peace_db::Database) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Self::test_config();
        config.database.url = format!("sqlite://{}/peace.db", dir.path().display());
        tweak(&mut config);
        prepare(peace::open_database(&config).await.unwrap()).await;
        Self::launch(config, Storage::Dir(dir)).await
    }

    /// A server on a fresh database of `backend` (created for this test, dropped after
    /// it), or `None` when this run does not cover that backend (see `peace_db::testing`).
    pub async fn start_on(backend: Backend) -> Option<Self> {
        Self::start_on_with(backend, |_| {}).await
    }

    pub async fn start_on_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Option<Self> {
        let scratch = ScratchDatabase::create(backend).await?;
        let mut config = Self::test_config();
        config.database.url = scratch.url().to_owned();
        tweak(&mut config);
        Some(Self::launch(config, Storage::Scratch(scratch)).await)
    }

    fn test_config() -> Config {
        let mut config = Config::default();
        config.http.addr = "127.0.0.1:0".into();
        config.login.bcrypt_cost = 4;
        config.sessions.secret = "test-secret".into();
        // Scenarios register many players from 127.0.0.1.
        config.limits.registrations_per_ip = 10_000;
        config
    }

    async fn launch(mut config: Config, storage: Storage) -> Self {
        let share = Share::take().await;
        let files = std::sync::Arc::new(tempfile::tempdir().unwrap());
        if config.storage.folder == peace::config::StorageSection::default().folder {
            config.storage.folder = files.path().display().to_string();
        }
        // The server's log goes to the test's output (shown when it fails): warnings and
        // errors, or whatever RUST_LOG asks for.
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
        let server = Server::start(&config).await.unwrap();
        let base = format!("http://{}", server.addr.expect("an HTTP listener"));
        Self {
            server: Some(server),
            gateway: Gateway::new(base),
            config,
            _storage: storage,
            _share: share,
            files,
        }
    }

    /// The scratch database under a server started by [`TestServer::start_on`].
    pub fn scratch(&self) -> Option<&ScratchDatabase> {
        match &self._storage {
            Storage::Scratch(scratch) => Some(scratch),
            Storage::Dir(_) => None,
        }
    }

    /// Shuts the server down (every session ends) and starts it again with the same
    /// configuration on the same database. The HTTP port changes; `base` follows it.
    pub async fn restart(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        let server = Server::start(&self.config).await.unwrap();
        self.gateway.base = format!("http://{}", server.addr.expect("an HTTP listener"));
        self.server = Some(server);
    }

    pub fn world(&self) -> &peace_actors::World {
        &self.server.as_ref().unwrap().world
    }

    /// Registers `name`, gives the account `privileges` in the database, and logs it in
    /// (so the session starts with them, as after a promotion and a fresh login).
    pub async fn player_with(&self, name: &str, privileges: peace_db::Privileges) -> TestClient {
        let email = format!("{}@example.com", name.to_lowercase());
        let response = self.register(name, &email, PASSWORD, false).await;
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
        let db = self.world().db();
        let user = db.user_by_name(name).await.unwrap().unwrap();
        db.set_privileges(user.id, privileges).await.unwrap();
        self.login(name, PASSWORD).await
    }
}

impl Gateway {
    pub fn new(base: String) -> Self {
        Self {
            base,
            http: reqwest::Client::new(),
        }
    }

    /// `GET path` (e.g. `/api/v1/users/online`), read as JSON.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let url = format!("{}{path}", self.base);
        let response = self.http.get(url).send().await.unwrap();
        response.json().await.unwrap()
    }

    pub async fn register(
        &self,
        name: &str,
        email: &str,
        password: &str,
        check: bool,
    ) -> reqwest::Response {
        let form = [
            ("user[username]", name),
            ("user[user_email]", email),
            ("user[password]", password),
            ("check", if check { "1" } else { "0" }),
        ];
        self.http
            .post(format!("{}/users", self.base))
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    /// Registers `name` through `POST /users` and logs it in.
    pub async fn player(&self, name: &str) -> TestClient {
        let email = format!("{}@example.com", name.to_lowercase());
        let response = self.register(name, &email, PASSWORD, false).await;
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
        self.login(name, PASSWORD).await
    }

    /// Sends a raw login body; returns the cho-token header and the packets.
    pub async fn login_raw(&self, body: impl Into<reqwest::Body>) -> (String, Vec<ServerPacket>) {
        let response = self.http.post(&self.base).body(body).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let token = response
            .headers()
            .get("cho-token")
            .expect("cho-token header")
            .to_str()
            .unwrap()
            .to_owned();
        let bytes = response.bytes().await.unwrap();
        (token, decode(&bytes))
    }

    pub async fn login(&self, name: &str, password: &str) -> TestClient {
        self.login_version(name, password, "b20240101.1").await
    }

    /// Logs in with a given client version (e.g. `b20240101tourney`).
    pub async fn login_version(&self, name: &str, password: &str, version: &str) -> TestClient {
        let (token, packets) = self.login_raw(login_body(name, password, version)).await;
        let logged_in_at = std::time::SystemTime::now();
        let user_id = match packets.iter().find_map(|p| match p {
            ServerPacket::UserId(u) => Some(u.user_id),
            _ => None,
        }) {
            Some(id) if id > 0 => id,
            other => panic!("login of {name} failed: {other:?} {packets:?}"),
        };
        assert_ne!(token, "no");
        TestClient {
            http: self.http.clone(),
            base: self.base.clone(),
            token,
            user_id,
            name: name.to_owned(),
            login_packets: packets,
            seen: Vec::new(),
            logged_in_at,
        }
    }
}

pub fn decode(bytes: &[u8]) -> Vec<ServerPacket> {
    peace_bancho::decode_server_packets(bytes)
        .into_iter()
        .map(|p| p.unwrap())
        .collect()
}

pub fn encode(packets: &[ClientPacket]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in packets {
        p.encode(&mut out);
    }
    out
}

pub struct TestClient {
    http: reqwest::Client,
    base: String,
    pub token: String,
    pub user_id: i32,
    pub name: String,
    pub login_packets: Vec<ServerPacket>,
    /// Everything received by polls so far, in order.
    pub seen: Vec<ServerPacket>,
    /// When the login was answered (the server's session started before).
    logged_in_at: std::time::SystemTime,
}

impl TestClient {
    /// From now on polls through `gateway` (another node's listener, as a load balancer
    /// would pick one).
    pub fn use_gateway(&mut self, gateway: &Gateway) {
        self.base = gateway.base.clone();
    }

    /// Sends raw bytes as a poll body; returns the reply packets.
    pub async fn send_raw(&mut self, body: Vec<u8>) -> Vec<ServerPacket> {
        let response = self
            .http
            .post(&self.base)
            .header("osu-token", &self.token)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let packets = decode(&response.bytes().await.unwrap());
        self.seen.extend(packets.iter().cloned());
        packets
    }

    pub async fn send(
        &mut self,
        packets: impl IntoIterator<Item = ClientPacket>,
    ) -> Vec<ServerPacket> {
        let packets: Vec<_> = packets.into_iter().collect();
        self.send_raw(encode(&packets)).await
    }

    pub async fn poll(&mut self) -> Vec<ServerPacket> {
        self.send([client::Ping {}.into()]).await
    }

    /// Polls until a packet matching `pred` arrives (searching what was already seen
    /// first) and returns it; fails after five seconds.
    pub async fn wait_for(
        &mut self,
        what: &str,
        pred: impl Fn(&ServerPacket) -> bool,
    ) -> ServerPacket {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(i) = self.seen.iter().position(&pred) {
                return self.seen.remove(i);
            }
            if tokio::time::Instant::now() >= deadline {
                let recent = &self.seen[self.seen.len().saturating_sub(20)..];
                panic!(
                    "{}: never got {what}; last packets seen: {recent:?}",
                    self.name
                );
            }
            self.poll().await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the server honours this client's LOGOUT. It ignores one in a
    /// session's first second (the client sends LOGOUT right after starting up), and it
    /// counts whole seconds of the wall clock, so that second is over once the next
    /// whole second after the login has begun: a wait of less than a second, and none
    /// when the login is older. The server's rule is on the wall clock and has no
    /// setting, so this must wait on the clock rather than on a condition.
    pub async fn past_first_second(&self) {
        let since_epoch = |t: std::time::SystemTime| {
            t.duration_since(std::time::UNIX_EPOCH)
                .expect("a clock after 1970")
        };
        let next_second = Duration::from_secs(since_epoch(self.logged_in_at).as_secs() + 1);
        loop {
            let now = since_epoch(std::time::SystemTime::now());
            let Some(left) = next_second.checked_sub(now).filter(|d| !d.is_zero()) else {
                return;
            };
            // Checked again after the sleep: the timer runs on the monotonic clock, the
            // server's rule on the wall clock, and the two may drift apart.
            tokio::time::sleep(left).await;
        }
    }

    /// Whether a matching packet has been seen (consuming it).
    pub fn take_seen(&mut self, pred: impl Fn(&ServerPacket) -> bool) -> Option<ServerPacket> {
        let i = self.seen.iter().position(pred)?;
        Some(self.seen.remove(i))
    }

    pub async fn say(&mut self, channel: &str, text: &str) {
        let message = peace_bancho::Message {
            text: text.into(),
            recipient: channel.into(),
            ..Default::default()
        };
        self.send([client::SendPublicMessage { message }.into()])
            .await;
    }

    pub async fn tell(&mut self, to: &str, text: &str) {
        let message = peace_bancho::Message {
            text: text.into(),
            recipient: to.into(),
            ..Default::default()
        };
        self.send([client::SendPrivateMessage { message }.into()])
            .await;
    }

    /// Waits until this client has joined `channel`.
    pub async fn joined(&mut self, channel: &str) {
        self.wait_for(
            &format!("joined {channel}"),
            |p| matches!(p, ServerPacket::ChannelJoinSuccess(j) if j.name == channel),
        )
        .await;
    }

    /// Sends `command` to the bot by private message and returns the bot's answer.
    pub async fn ask_bot(&mut self, command: &str) -> String {
        self.tell(BOT_NAME, command).await;
        let me = self.name.clone();
        match self
            .wait_for(&format!("the bot's answer to {command:?}"), |p| {
                matches!(p, ServerPacket::SendMessage(m)
                    if m.message.sender == BOT_NAME && m.message.recipient == me)
            })
            .await
        {
            ServerPacket::SendMessage(m) => m.message.text,
            _ => unreachable!(),
        }
    }

    /// Waits for a chat message with this text (from anyone) and returns it.
    pub async fn wait_message(&mut self, text: &str) -> peace_bancho::Message {
        match self
            .wait_for(
                &format!("message {text:?}"),
                |p| matches!(p, ServerPacket::SendMessage(m) if m.message.text == text),
            )
            .await
        {
            ServerPacket::SendMessage(m) => m.message,
            _ => unreachable!(),
        }
    }
}

/// Who may run a server in this process right now. Every test of the binary shares one
/// process, and with it the metrics recorder: a test that reads its counters must not
/// see another test's servers move them (a lower bound would then hold without the
/// server under test doing anything). Such a test takes [`alone`] first; every
/// [`TestServer`] holds a [`Share`] while it lives. [`alone`] waits until no other
/// test's server runs, and other tests' servers wait until the lone test is done.
///
/// Shares are counted by the thread that took them: a test's body runs on the test's
/// own thread (the runtime's `block_on`), so that names the test.
struct Sharing {
    /// The test that has the process to itself.
    alone: Option<ThreadId>,
    /// Tests waiting to have the process to themselves.
    waiting_alone: usize,
    /// Running servers, by the test that started them.
    servers: Vec<(ThreadId, usize)>,
}

static SHARING: Mutex<Sharing> = Mutex::new(Sharing {
    alone: None,
    waiting_alone: 0,
    servers: Vec::new(),
});

/// Woken whenever a server's share or the lone turn is given back: a test waiting for
/// its turn in [`SHARING`] looks again then, and only then.
static RELEASED: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Waits until `ready` (which looks at [`SHARING`] and takes what it waits for) succeeds.
async fn wait_for_turn<T>(mut ready: impl FnMut(&mut Sharing) -> Option<T>) -> T {
    loop {
        let released = RELEASED.notified();
        tokio::pin!(released);
        // Registered before looking, so that a release in between still wakes it.
        released.as_mut().enable();
        if let Some(turn) = ready(&mut sharing()) {
            return turn;
        }
        released.await;
    }
}

fn sharing() -> std::sync::MutexGuard<'static, Sharing> {
    // A test that panicked while holding the lock left the counts consistent (every
    // change is one statement), so a poisoned lock is still usable.
    SHARING.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running server's share of the process; see [`Sharing`].
struct Share {
    /// The test counted for it, or `None` when that test has the process alone (and
    /// then needs no share).
    test: Option<ThreadId>,
}

impl Share {
    async fn take() -> Share {
        let me = std::thread::current().id();
        wait_for_turn(|sharing| {
            if sharing.alone == Some(me) {
                return Some(Share { test: None });
            }
            let running = sharing.servers.iter().position(|(t, _)| *t == me);
            // A test that runs a server already may start another even while a lone
            // test waits: that one waits for this test's servers to stop, so holding
            // this one back would wait forever.
            if sharing.alone.is_none() && (sharing.waiting_alone == 0 || running.is_some()) {
                match running {
                    Some(i) => sharing.servers[i].1 += 1,
                    None => sharing.servers.push((me, 1)),
                }
                return Some(Share { test: Some(me) });
            }
            None
        })
        .await
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        let Some(test) = self.test else { return };
        let mut sharing = sharing();
        if let Some(i) = sharing.servers.iter().position(|(t, _)| *t == test) {
            sharing.servers[i].1 -= 1;
            if sharing.servers[i].1 == 0 {
                sharing.servers.swap_remove(i);
            }
        }
        drop(sharing);
        RELEASED.notify_waiters();
    }
}

/// The process to this test alone (as far as in-process servers go) until the guard is
/// dropped; see [`Sharing`]. Take it before starting any server.
pub async fn alone() -> Alone {
    let me = std::thread::current().id();
    sharing().waiting_alone += 1;
    wait_for_turn(|sharing| {
        if sharing.alone.is_none() && sharing.servers.is_empty() {
            sharing.alone = Some(me);
            sharing.waiting_alone -= 1;
            return Some(Alone);
        }
        None
    })
    .await
}

/// See [`alone`].
pub struct Alone;

impl Drop for Alone {
    fn drop(&mut self) {
        sharing().alone = None;
        RELEASED.notify_waiters();
    }
}
