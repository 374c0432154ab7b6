//! Login: the first request of a session. Checks the credentials, starts the session
//! actor, and builds the reply in the order the client expects (DESIGN.md).

use std::net::IpAddr;

use crate::World;
use crate::channel::{ChannelCall, ChannelReply};
use crate::directory::OnlineUser;
use crate::spawn::{SpawnReply, SpawnRequest};
use crate::user::UserState;
use bytes::Bytes;
use peace_bancho::server as s;
use peace_bancho::{LoginFailure, LoginRequest, PROTOCOL_VERSION, ServerPacket};
use peace_db::{DbError, NewLogin, Privileges};

pub use crate::presence::LOGIN_FULL_PRESENCE_LIMIT;

/// What the gateway sends back for a login: the `cho-token` header (`None` means the
/// literal `no`) and the body.
#[derive(Debug, Clone)]
pub struct LoginReply {
    pub token: Option<String>,
    pub body: Bytes,
}

/// Why a login failed, each with the client's failure code and a message.
#[derive(Debug, thiserror::Error)]
enum LoginError {
    #[error("malformed login request: {0}")]
    Malformed(#[from] peace_bancho::LoginParseError),
    #[error("Incorrect username or password.")]
    BadCredentials,
    #[error("Your account is banned.")]
    Banned,
    #[error("Your osu! client is too old; please update it.")]
    OldClient,
    #[error("Too many tournament clients are logged in to this account.")]
    TooManySessions,
    #[error("Too many failed logins; please try again in {0} minute(s).")]
    RateLimited(u64),
    #[error("The server could not log you in right now; please try again shortly.")]
    Server(#[from] DbError),
    #[error("the session could not be started: {0}")]
    NoSession(String),
}

impl LoginError {
    fn code(&self) -> LoginFailure {
        match self {
            LoginError::Malformed(_)
            | LoginError::BadCredentials
            | LoginError::TooManySessions
            | LoginError::RateLimited(_) => LoginFailure::AuthenticationFailed,
            LoginError::Banned => LoginFailure::Banned,
            LoginError::OldClient => LoginFailure::OldClient,
            LoginError::Server(_) | LoginError::NoSession(_) => LoginFailure::ServerError,
        }
    }

    fn reply(&self) -> LoginReply {
        let mut body = Vec::new();
        ServerPacket::from(s::UserId {
            user_id: self.code() as i32,
        })
        .encode(&mut body);
        let text = match self {
            LoginError::Server(_) | LoginError::NoSession(_) => {
                "The server could not log you in right now; please try again shortly.".to_owned()
            }
            other => other.to_string(),
        };
        ServerPacket::from(s::Notification { text }).encode(&mut body);
        LoginReply {
            token: None,
            body: body.into(),
        }
    }
}

impl World {
    /// Logs a client in from the body of its first request.
    pub async fn login(&self, body: &[u8], ip: IpAddr) -> LoginReply {
        match self.try_login(body, ip).await {
            Ok(reply) => reply,
            Err(e) => {
                match &e {
                    LoginError::Server(db) => tracing::warn!(%ip, "login failed: database: {db}"),
                    LoginError::NoSession(why) => tracing::warn!(%ip, "login failed: {why}"),
                    other => tracing::info!(%ip, "login refused: {other}"),
                }
                e.reply()
            }
        }
    }

    async fn try_login(&self, body: &[u8], ip: IpAddr) -> Result<LoginReply, LoginError> {
        let req = LoginRequest::parse(body)?;
        let min = self.config().min_client_date;
        if min > 0 && req.version.date < min {
            return Err(LoginError::OldClient);
        }
        let safe_name = peace_db::safe_name(&req.username);
        if let Err(retry_after) = self.login_allowed(ip, &safe_name) {
            return Err(LoginError::RateLimited(
                retry_after.as_secs().div_ceil(60).max(1),
            ));
        }
        let db = self.db();
        let user = db.user_by_name(&req.username).await?;
        let verified = match &user {
            Some(user) if !user.privileges().contains(Privileges::BOT) => {
                self.passwords()
                    .verify(&req.password_md5, &user.password_bcrypt)
                    .await
            }
            _ => self.passwords().verify_absent(&req.password_md5).await,
        };
        let Some(user) = user.filter(|_| verified) else {
            self.login_failed(ip, &safe_name);
            return Err(LoginError::BadCredentials);
        };
        self.login_succeeded(&safe_name);
        if !user.privileges().contains(Privileges::NORMAL) {
            return Err(LoginError::Banned);
        }
        let stats = db.stats(user.id, 0).await?;
        let rank = db.global_rank(0, stats.pp).await?;
        let relationships = db.relationships(user.id).await?;
        let login = NewLogin {
            user_id: user.id,
            ip: ip.to_string(),
            client_version: req.version.raw.clone(),
            client_hashes: req.hashes.raw.clone(),
            created_at: peace_db::unix_now(),
        };
        // The login history is not worth a player's wait: written on its own task.
        let history = db.clone();
        tokio::spawn(async move {
            if let Err(e) = history.record_login(&login).await {
                tracing::warn!(user = login.user_id, "could not record login: {e}");
            }
        });

        let session_id = rand::random::<u64>();
        let mut state = UserState::new(&user, session_id, req.utc_offset, stats, rank);
        state.privileges =
            crate::user::session_privileges(state.privileges, self.config().supporter_for_everyone);
        state.friends = relationships.friends.iter().copied().collect();
        state.blocked = relationships.blocked.iter().copied().collect();
        state.block_non_friend_dms = req.block_nonfriend_dms;
        // The tournament client logs in once per watched player with the same account:
        // those logins add sessions instead of replacing the player's own.
        let privileges = user.privileges();
        state.extra_session = (privileges.contains(Privileges::TOURNAMENT)
            || privileges.is_staff())
            && req.version.stream.eq_ignore_ascii_case("tourney")
            && self.router().users().get(user.id).is_some();
        let extra = state.extra_session;
        let restricted = user.privileges().is_restricted();
        let presence = state.presence_packet();
        let stats = state.stats_packet();
        let reply_head = self.login_reply_head(&state).await;

        let entry = OnlineUser {
            id: user.id,
            name: user.name.as_str().into(),
            session_id,
            privileges: user.privileges(),
            presence: presence.clone(),
            stats: stats.clone(),
            login_time: peace_db::unix_now(),
            hidden: restricted,
            // Set by the node that starts the session.
            node: "".into(),
        };
        let me = user.id;
        // Written before the session starts (it then keeps the record up to date with
        // its channels) and before the client has its token (so no logout comes first).
        if !extra
            && let Err(e) = db
                .save_session_record(&crate::user::record::record_of(&state))
                .await
        {
            tracing::warn!(
                user = me,
                "session record not saved (no rebuild if its node dies): {e}"
            );
        }
        let request = SpawnRequest::Session {
            state: Box::new(state),
            entry: Box::new(entry),
        };
        match self.spawn(request).await {
            SpawnReply::Started => {}
            SpawnReply::TooManySessions => return Err(LoginError::TooManySessions),
            other => return Err(LoginError::NoSession(format!("{other:?}"))),
        }
        // Everyone learns of the login from the directory entry the session's node made
        // (through each node's presence feed).

        let mut body = reply_head;
        if restricted {
            ServerPacket::from(s::AccountRestricted {}).encode(&mut body);
            let text = "Your account is restricted: others cannot see you, and you cannot chat \
                        publicly or play multiplayer. Contact the staff if you think this is wrong.";
            ServerPacket::from(s::Notification { text: text.into() }).encode(&mut body);
        }
        body.extend_from_slice(&presence);
        body.extend_from_slice(&stats);
        self.append_others(&mut body, me);
        if !extra {
            self.append_mail(&mut body, &user.name, me).await;
        }
        tracing::info!(user = me, name = %user.name, %ip, version = %req.version.raw, "logged in");
        Ok(LoginReply {
            token: Some(self.tokens().sign(crate::auth::SessionToken {
                user_id: me,
                session_id,
            })),
            body: body.into(),
        })
    }

    /// The part of the login reply before the player's own presence.
    async fn login_reply_head(&self, state: &UserState) -> Vec<u8> {
        let mut body = Vec::with_capacity(1024);
        let mut put = |p: ServerPacket| p.encode(&mut body);
        put(s::ProtocolVersion {
            version: PROTOCOL_VERSION,
        }
        .into());
        put(s::UserId { user_id: state.id }.into());
        put(s::Privileges {
            privileges: i32::from(state.client_privileges()),
        }
        .into());
        put(s::Notification {
            text: self.config().welcome_message.clone(),
        }
        .into());
        for def in self.channel_definitions() {
            if !state.privileges.meets(Privileges(def.read_privileges)) {
                continue;
            }
            let members = match self
                .router()
                .channels()
                .call(&def.name, ChannelCall::Summary, self.config().call_timeout)
                .await
            {
                Ok(ChannelReply::Summary(s)) => s.members,
                _ => 0,
            };
            put(s::ChannelInfo {
                name: def.name.clone(),
                topic: def.topic.clone(),
                user_count: i16::try_from(members).unwrap_or(i16::MAX),
            }
            .into());
        }
        put(s::ChannelInfoEnd {}.into());
        if !self.config().menu_icon.is_empty() {
            put(s::MainMenuIcon {
                icon: self.config().menu_icon.clone(),
            }
            .into());
        }
        put(s::FriendsList {
            user_ids: state.friends.iter().copied().collect(),
        }
        .into());
        let silence_left = (state.silence_end - peace_db::unix_now()).max(0);
        put(s::SilenceEnd {
            seconds: i32::try_from(silence_left).unwrap_or(i32::MAX),
        }
        .into());
        body
    }

    /// Everyone else online: full presence and stats up to the limit, ids beyond it.
    fn append_others(&self, body: &mut Vec<u8>, me: i32) {
        let mut rest = Vec::new();
        let mut full = 0;
        // In place, not from a snapshot: copying every entry of a large directory for
        // each login made a login storm quadratic in copies (docs/benchmarks.md).
        self.router().users().for_each_visible(|other| {
            if other.id == me {
                return;
            }
            if full < LOGIN_FULL_PRESENCE_LIMIT {
                full += 1;
                body.extend_from_slice(&other.presence);
                body.extend_from_slice(&other.stats);
            } else {
                rest.push(other.id);
            }
        });
        for chunk in rest.chunks(usize::from(u16::MAX)) {
            ServerPacket::from(s::UserPresenceBundle {
                user_ids: chunk.to_vec(),
            })
            .encode(body);
        }
    }

    /// Private messages that arrived while the player was offline.
    async fn append_mail(&self, body: &mut Vec<u8>, name: &str, me: i32) {
        match self.db().take_mail(me).await {
            Ok(mail) => {
                for m in mail {
                    let message = peace_bancho::Message {
                        sender: m.from_name,
                        text: m.body,
                        recipient: name.to_owned(),
                        sender_id: m.from_id,
                    };
                    ServerPacket::from(s::SendMessage { message }).encode(body);
                }
            }
            Err(e) => tracing::warn!(user = me, "could not load offline messages: {e}"),
        }
    }
}
