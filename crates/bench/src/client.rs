//! What the bench knows of the protocol: account names, registration, login, polls and
//! reading replies. Replies are split into frames and only the packets a scenario looks
//! for are decoded, so the bench spends its share of the cores on sending load.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use bytes::Bytes;
use md5::{Digest, Md5};
use peace_bancho::{ClientPacket, Frames, ServerPacket, ServerPacketId, client as c};
use tokio::sync::Semaphore;

use crate::http::{Conn, Target};

/// The client build the bench claims to be.
const CLIENT_VERSION: &str = "b20240101.1";
/// Longest a scenario waits for the server to show an expected packet.
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(20);
/// Pause between polls while waiting for an expected packet.
const WAIT_POLL_INTERVAL: Duration = Duration::from_millis(20);

/// How the bench's accounts are named and what their password is.
#[derive(Debug, Clone)]
pub struct Accounts {
    pub prefix: String,
    pub password: String,
    password_md5: String,
    /// [`Accounts::ensure`] does nothing: the accounts exist already.
    pub no_register: bool,
}

impl Accounts {
    pub fn new(prefix: &str, password: &str) -> anyhow::Result<Self> {
        // Names are `<prefix><6 digits>` and osu! allows 15 characters.
        if prefix.is_empty()
            || prefix.len() > 9
            || !prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            bail!("--prefix must be 1 to 9 letters, digits or underscores");
        }
        Ok(Self {
            prefix: prefix.to_owned(),
            password: password.to_owned(),
            password_md5: hex::encode(Md5::digest(password.as_bytes())),
            no_register: false,
        })
    }

    /// The md5 (hex) of the password, as clients send it.
    pub fn password_md5(&self) -> &str {
        &self.password_md5
    }

    pub fn name(&self, index: usize) -> String {
        format!("{}{index:06}", self.prefix)
    }

    pub fn login_body(&self, index: usize) -> Bytes {
        Bytes::from(format!(
            "{}\n{}\n{CLIENT_VERSION}|0|0|{}:runningunderwine:{}:{}:{}:|0\n",
            self.name(index),
            self.password_md5,
            "0".repeat(32),
            "1".repeat(32),
            "2".repeat(32),
            "3".repeat(32),
        ))
    }

    /// Makes sure accounts `0..count` exist, registering the missing ones through
    /// `POST /users` with `concurrency` requests at a time. Returns how many were created.
    pub async fn ensure(
        &self,
        target: &Arc<Target>,
        count: usize,
        concurrency: usize,
    ) -> anyhow::Result<usize> {
        if self.no_register {
            return Ok(0);
        }
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..concurrency.clamp(1, count.max(1)) {
            let (target, accounts, next) = (Arc::clone(target), self.clone(), Arc::clone(&next));
            workers.spawn(async move {
                let mut conn = Conn::open(&target).await?;
                let mut created = 0;
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= count {
                        return Ok::<_, anyhow::Error>(created);
                    }
                    created += usize::from(accounts.register(&mut conn, i).await?);
                }
            });
        }
        let mut created = 0;
        while let Some(done) = workers.join_next().await {
            created += done??;
        }
        Ok(created)
    }

    /// Registers account `index`; false if it exists already.
    async fn register(&self, conn: &mut Conn, index: usize) -> anyhow::Result<bool> {
        let name = self.name(index);
        let form = format!(
            "user%5Busername%5D={name}&user%5Buser_email%5D={name}%40bench.invalid\
             &user%5Bpassword%5D={}&check=0",
            form_escape(&self.password)
        );
        let reply = conn.post_form("/users", form).await?;
        match reply.status {
            200 => Ok(true),
            400 if String::from_utf8_lossy(&reply.body).contains("taken") => Ok(false),
            429 => bail!(
                "the server refuses more registrations from this address; raise \
                 [limits] registrations_per_ip for the bench (docs/benchmarks.md)"
            ),
            status => bail!(
                "registering {name}: HTTP {status}: {}",
                String::from_utf8_lossy(&reply.body)
            ),
        }
    }

    /// Logs account `index` in.
    pub async fn login(&self, conn: &mut Conn, index: usize) -> anyhow::Result<Session> {
        let reply = conn.bancho(None, self.login_body(index)).await?;
        let user_id = find(&reply.body, ServerPacketId::UserId).and_then(|p| match p {
            ServerPacket::UserId(u) => Some(u.user_id),
            _ => None,
        });
        match (reply.token, user_id) {
            (Some(token), Some(user_id)) if user_id > 0 && token != "no" => Ok(Session {
                index,
                user_id,
                token: token.into(),
            }),
            (_, user_id) => bail!(
                "login of {} failed (HTTP {}, USER_ID {user_id:?}); do the accounts exist \
                 with this password?",
                self.name(index),
                reply.status
            ),
        }
    }

    /// Logs accounts `indices` in, `concurrency` at a time, each on its own connection.
    pub async fn login_all(
        &self,
        target: &Arc<Target>,
        indices: impl IntoIterator<Item = usize>,
        concurrency: usize,
    ) -> anyhow::Result<Vec<Session>> {
        let permits = Arc::new(Semaphore::new(concurrency.max(1)));
        let conns = Arc::new(std::sync::Mutex::new(Vec::<Conn>::new()));
        let mut tasks = tokio::task::JoinSet::new();
        for index in indices {
            let permit = Arc::clone(&permits).acquire_owned().await?;
            let (target, accounts, conns) = (Arc::clone(target), self.clone(), Arc::clone(&conns));
            tasks.spawn(async move {
                let _permit = permit;
                let spare = conns.lock().unwrap_or_else(|e| e.into_inner()).pop();
                let mut conn = match spare {
                    Some(conn) => conn,
                    None => Conn::open(&target).await?,
                };
                let session = accounts.login(&mut conn, index).await;
                conns.lock().unwrap_or_else(|e| e.into_inner()).push(conn);
                session
            });
        }
        let mut sessions = Vec::new();
        while let Some(done) = tasks.join_next().await {
            sessions.push(done??);
        }
        sessions.sort_by_key(|s| s.index);
        Ok(sessions)
    }
}

/// Percent-escapes a form value.
fn form_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// One logged-in account.
#[derive(Debug, Clone)]
pub struct Session {
    pub index: usize,
    pub user_id: i32,
    pub token: Arc<str>,
}

/// The body of an idle client's poll: a bare PING.
pub fn ping() -> Bytes {
    encode(&[c::Ping {}.into()])
}

pub fn encode(packets: &[ClientPacket]) -> Bytes {
    let mut out = Vec::new();
    for p in packets {
        p.encode(&mut out);
    }
    out.into()
}

/// Polls with `body`; fails on anything but 200 or on a RESTART (the session is gone).
pub async fn poll(conn: &mut Conn, session: &Session, body: Bytes) -> anyhow::Result<Bytes> {
    let reply = conn.bancho(Some(&session.token), body).await?;
    if reply.status != 200 {
        bail!("poll answered HTTP {}", reply.status);
    }
    if frames(&reply.body).any(|(id, _)| id == ServerPacketId::Restart as u16) {
        bail!(
            "the server restarted session {} (expired?)",
            session.user_id
        );
    }
    Ok(reply.body)
}

/// Sends `body`, then polls until a packet matching `pred` arrives.
pub async fn send_and_wait(
    conn: &mut Conn,
    session: &Session,
    body: Bytes,
    what: &str,
    pred: impl Fn(&ServerPacket) -> bool,
) -> anyhow::Result<ServerPacket> {
    let deadline = Instant::now() + WAIT_TIMEOUT;
    let mut body = body;
    loop {
        let reply = poll(conn, session, std::mem::take(&mut body)).await?;
        if let Some(found) = decode_all(&reply).into_iter().find(|p| pred(p)) {
            return Ok(found);
        }
        if Instant::now() > deadline {
            bail!(
                "session {} saw no {what} within {WAIT_TIMEOUT:?}",
                session.user_id
            );
        }
        tokio::time::sleep(WAIT_POLL_INTERVAL).await;
    }
}

/// `(id, payload)` of every frame in a reply (the rest of a malformed reply is ignored).
pub fn frames(body: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    Frames::new(body)
        .map_while(Result::ok)
        .map(|f| (f.id, f.payload))
}

/// The first packet with `id`, decoded.
pub fn find(body: &[u8], id: ServerPacketId) -> Option<ServerPacket> {
    frames(body)
        .find(|(i, _)| *i == id as u16)
        .and_then(|(i, payload)| ServerPacket::decode(i, payload).ok())
}

/// Every packet the bench can decode.
pub fn decode_all(body: &[u8]) -> Vec<ServerPacket> {
    frames(body)
        .filter_map(|(i, payload)| ServerPacket::decode(i, payload).ok())
        .collect()
}
