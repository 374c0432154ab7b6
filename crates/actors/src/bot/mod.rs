//! The bot: an always-online account (id [`crate::BOT_ID`]) that answers `!commands` in
//! channels and private messages. It speaks the user-session message protocol, so the
//! router addresses it like any other user; it simply has no client to queue bytes for.

mod commands;
mod map_status;
mod moderation;
mod now_playing;
mod plays;

use std::sync::Arc;

use peace_bancho::server::SendMessage;
use peace_db::Privileges;
use peace_sharding::{AfterPanic, Entity, Me};

use crate::channel::ChannelCast;
use crate::match_room::MatchCast;
use crate::ports::{AccountStore, Mail, Ports, Roster, ScoreDesk};
use crate::session_msg::{UserCall, UserCast, UserReply};
use crate::user::SessionSnapshot;

pub use commands::{Access, COMMANDS, Command, Invocation, MAX_COMMAND_LEN};
pub use moderation::{MAX_SILENCE, parse_duration};
pub use now_playing::{MAX_REMEMBERED as MAX_REMEMBERED_NOW_PLAYING, NowPlaying};

/// What the bot may use beyond its own (empty) state; its commands get the same.
#[derive(Debug, Clone)]
pub struct BotPorts {
    pub outbox: Ports,
    pub roster: Arc<dyn Roster>,
    pub accounts: Arc<dyn AccountStore>,
    /// The score pipeline: map statuses, plays, pp.
    pub desk: Arc<dyn ScoreDesk>,
    /// The bot's own name, which its answers are signed with.
    pub name: Arc<str>,
}

impl BotPorts {
    /// A private message from the bot to `to`, encoded.
    fn message_to(&self, to: &str, text: String) -> bytes::Bytes {
        crate::session_msg::packet_bytes(SendMessage {
            message: peace_bancho::Message {
                sender: self.name.to_string(),
                text,
                recipient: to.to_owned(),
                sender_id: crate::BOT_ID,
            },
        })
    }
}

/// The bot. It speaks the user-session message protocol (it is `User(BOT_ID)`), but
/// has no client: nothing is queued for it. It remembers each player's last `/np` (the
/// map its map and pp commands act on), and carries nothing when it moves: players send
/// `/np` again.
#[derive(Debug, Default)]
pub struct Bot {
    now_playing: now_playing::Remembered,
}

impl Entity for Bot {
    const KIND: &'static str = "user";
    type Key = i32;
    type Cast = UserCast;
    type Call = UserCall;
    type Reply = UserReply;
    type Snapshot = SessionSnapshot;
    type Ctx = BotPorts;

    fn key(&self) -> i32 {
        crate::BOT_ID
    }

    async fn cast(&mut self, msg: UserCast, ports: &BotPorts, _me: &Me<Self>) {
        match msg {
            UserCast::PrivateMessage {
                from_id,
                from_name,
                from_privileges,
                text,
            } => {
                let np = now_playing::parse(&text);
                if let Some(np) = np {
                    self.now_playing.remember(from_id, np);
                }
                let invocation = |args| Invocation {
                    ports: ports.clone(),
                    sender_id: from_id,
                    sender_name: from_name.clone(),
                    sender_privileges: from_privileges,
                    args,
                    now_playing: self.now_playing.of(from_id),
                };
                let reply = match np {
                    // A /np is answered with what the map is worth, as `!pp` would.
                    Some(_) => Some(plays::pp(invocation(Vec::new()))),
                    None => commands::parse(&text, invocation),
                };
                let ports = ports.clone();
                // Commands run on their own task: the bot stays responsive while one
                // waits for the database.
                tokio::spawn(async move {
                    let answer = match reply {
                        Some(reply) => reply.await,
                        None => "Hi! Type !help to see what I can do.".to_owned(),
                    };
                    let packet = ports.message_to(&from_name, answer);
                    let _ = ports
                        .outbox
                        .send(Mail::User(from_id, UserCast::Enqueue(packet)));
                });
            }
            UserCast::ChannelCommand {
                channel,
                from_id,
                from_name,
                privileges,
                text,
            } => {
                // `!mp` in a match channel goes to that match, which answers there itself.
                let mut words = text.split_whitespace();
                if words.next().is_some_and(|w| w.eq_ignore_ascii_case("!mp"))
                    && let Some(match_id) = crate::match_room::match_of_channel(&channel)
                {
                    let args = words.take(16).map(str::to_owned).collect();
                    let cast = MatchCast::Referee {
                        user_id: from_id,
                        name: from_name,
                        privileges,
                        args,
                    };
                    let _ = ports.outbox.send(Mail::Match(match_id, cast));
                    return;
                }
                let invocation = |args| Invocation {
                    ports: ports.clone(),
                    sender_id: from_id,
                    sender_name: from_name.clone(),
                    sender_privileges: privileges,
                    args,
                    now_playing: self.now_playing.of(from_id),
                };
                if let Some(reply) = commands::parse(&text, invocation) {
                    let ports = ports.clone();
                    tokio::spawn(async move {
                        let msg = ChannelCast::Message {
                            from_id: crate::BOT_ID,
                            from_name: ports.name.to_string(),
                            privileges: Privileges::BOT,
                            text: reply.await,
                        };
                        let _ = ports.outbox.send(Mail::Channel(channel, msg));
                    });
                }
            }
            // Nothing is queued for the bot and it never times out.
            _ => {}
        }
    }

    async fn call(&mut self, msg: UserCall, _ports: &BotPorts, _me: &Me<Self>) -> UserReply {
        match msg {
            UserCall::Poll { .. } | UserCall::Retire { .. } => {
                UserReply::Packets(bytes::Bytes::new())
            }
        }
    }

    /// The bot carries nothing: the new node starts it afresh.
    fn export(&mut self, _ports: &BotPorts) -> SessionSnapshot {
        SessionSnapshot::Bot
    }

    /// The bot has no state to lose: it goes on.
    fn after_panic(
        _: &i32,
        _: Option<SessionSnapshot>,
        _: &BotPorts,
        _: &Me<Self>,
    ) -> AfterPanic<Self> {
        AfterPanic::Restart(Bot::default())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use peace_db::{DbError, User};

    use super::*;
    use crate::ports::PortFuture;
    use crate::ports::testing::{OnlineAlone, Recorded, Sent};

    const STAFF: i32 = 2;
    const PLAYER: i32 = 3;

    fn user(id: i32, name: &str, privileges: Privileges) -> User {
        User {
            id,
            name: name.into(),
            safe_name: name.to_lowercase(),
            email: String::new(),
            password_bcrypt: String::new(),
            privileges: privileges.0,
            country: "XX".into(),
            silence_end: 0,
            created_at: 0,
            last_seen: 0,
        }
    }

    /// Two accounts, a staff member and a player, and a log of what changed.
    #[derive(Debug)]
    struct Accounts {
        users: Mutex<Vec<User>>,
        log: Mutex<Vec<String>>,
    }

    impl Accounts {
        fn new() -> Self {
            let staff = Privileges::NORMAL.union(Privileges::MODERATOR);
            Self {
                users: Mutex::new(vec![
                    user(STAFF, "staff", staff),
                    user(PLAYER, "player", Privileges::NORMAL),
                ]),
                log: Mutex::default(),
            }
        }

        fn find(&self, f: impl Fn(&User) -> bool) -> Option<User> {
            let users = self.users.lock().unwrap_or_else(|e| e.into_inner());
            users.iter().find(|u| f(u)).cloned()
        }

        fn note(&self, line: String) {
            self.log
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(line);
        }

        fn log(&self) -> Vec<String> {
            self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
        }
    }

    impl AccountStore for Accounts {
        fn user_by_id(&self, id: i32) -> PortFuture<'_, Option<User>> {
            let found = self.find(|u| u.id == id);
            Box::pin(async move { Ok::<_, DbError>(found) })
        }

        fn user_by_name<'a>(&'a self, name: &'a str) -> PortFuture<'a, Option<User>> {
            let found = self.find(|u| u.safe_name == name.to_lowercase());
            Box::pin(async move { Ok::<_, DbError>(found) })
        }

        fn set_silence_end(&self, id: i32, until: i64) -> PortFuture<'_, ()> {
            self.note(format!("silence {id} {}", until > 0));
            Box::pin(async { Ok::<_, DbError>(()) })
        }

        fn replace_privileges(
            &self,
            id: i32,
            old: Privileges,
            new: Privileges,
        ) -> PortFuture<'_, bool> {
            let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
            let replaced = match users.iter_mut().find(|u| u.id == id) {
                Some(u) if u.privileges == old.0 => {
                    u.privileges = new.0;
                    true
                }
                _ => false,
            };
            drop(users);
            self.note(format!("privileges {id} {replaced}"));
            Box::pin(async move { Ok::<_, DbError>(replaced) })
        }

        fn audit<'a>(
            &'a self,
            actor: i32,
            target: Option<i32>,
            action: &'a str,
            reason: &'a str,
        ) -> PortFuture<'a, ()> {
            self.note(format!("audit {actor} {target:?} {action} {reason}"));
            Box::pin(async { Ok::<_, DbError>(()) })
        }
    }

    /// A score desk that answers with fixed figures and notes what it was asked.
    #[derive(Debug, Default)]
    struct Desk {
        asked: Mutex<Vec<String>>,
    }

    impl Desk {
        fn note(&self, line: String) {
            self.asked
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(line);
        }

        fn asked(&self) -> Vec<String> {
            self.asked.lock().unwrap_or_else(|e| e.into_inner()).clone()
        }
    }

    impl ScoreDesk for Desk {
        fn set_map_status<'a>(
            &'a self,
            actor: i32,
            beatmap_id: i32,
            scope: crate::ports::StatusScope,
            status: peace_scores::status::RankedStatus,
            reason: &'a str,
        ) -> crate::ports::DeskFuture<'a, crate::ports::StatusChange> {
            self.note(format!(
                "status {actor} {beatmap_id} {scope:?} {status:?} {reason}"
            ));
            Box::pin(async {
                Ok(crate::ports::StatusChange {
                    title: "A - B".into(),
                    changed: 2,
                })
            })
        }

        fn recent_play(
            &self,
            user_id: i32,
        ) -> crate::ports::DeskFuture<'_, Option<crate::ports::PlaySummary>> {
            self.note(format!("recent {user_id}"));
            Box::pin(async { Ok(None) })
        }

        fn top_plays(
            &self,
            user_id: i32,
            mode: u8,
            limit: usize,
        ) -> crate::ports::DeskFuture<'_, Vec<crate::ports::PlaySummary>> {
            self.note(format!("top {user_id} {mode} {limit}"));
            Box::pin(async { Ok(Vec::new()) })
        }

        fn pp_table<'a>(
            &'a self,
            beatmap_id: i32,
            mode: Option<u8>,
            mods: u32,
            accuracies: &'a [f64],
        ) -> crate::ports::DeskFuture<'a, crate::ports::PpTable> {
            self.note(format!("pp {beatmap_id} {mode:?} {mods}"));
            let pp = accuracies.iter().map(|a| (*a, *a)).collect();
            Box::pin(async move {
                Ok(crate::ports::PpTable {
                    map: "A - B [C]".into(),
                    mods,
                    stars: 5.0,
                    pp,
                })
            })
        }
    }

    fn ports() -> (BotPorts, Arc<Recorded>, Arc<Accounts>) {
        let (ports, sent, accounts, _) = ports_with_desk();
        (ports, sent, accounts)
    }

    fn ports_with_desk() -> (BotPorts, Arc<Recorded>, Arc<Accounts>, Arc<Desk>) {
        let (sent, outbox) = Recorded::ports();
        let accounts = Arc::new(Accounts::new());
        let desk = Arc::new(Desk::default());
        let ports = BotPorts {
            outbox,
            roster: Arc::new(OnlineAlone(PLAYER, "player")),
            accounts: accounts.clone(),
            desk: desk.clone(),
            name: "Peace".into(),
        };
        (ports, sent, accounts, desk)
    }

    /// Sends `text` to the bot as `sender` by private message; the bot's answer.
    async fn tell(
        bot: &mut Bot,
        ports: &BotPorts,
        sent: &Recorded,
        sender: i32,
        privileges: Privileges,
        text: &str,
    ) -> String {
        bot.cast(
            UserCast::PrivateMessage {
                from_id: sender,
                from_name: format!("user {sender}"),
                from_privileges: privileges,
                text: text.into(),
            },
            ports,
            &Me::detached(),
        )
        .await;
        // The answer comes from the command's own task.
        let answered = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            loop {
                let sent = sent.take();
                if !sent.is_empty() {
                    return sent;
                }
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("an answer");
        let [Sent::Mail(Mail::User(to, UserCast::Enqueue(bytes)))] = &answered[..] else {
            panic!("one private answer, got {answered:?}");
        };
        assert_eq!(*to, sender);
        match &crate::ports::testing::packets(bytes)[..] {
            [peace_bancho::ServerPacket::SendMessage(m)] => m.message.text.clone(),
            other => panic!("one message, got {other:?}"),
        }
    }

    const NP: &str = "\x01ACTION is listening to [https://osu.ppy.sh/b/4242 A - B [C]] +Hidden\x01";

    #[tokio::test]
    async fn map_and_pp_commands_act_on_the_senders_last_now_playing() {
        let (ports, sent, _, desk) = ports_with_desk();
        let mut bot = Bot::default();
        let staff = staff();
        let before = tell(&mut bot, &ports, &sent, STAFF, staff, "!map love set").await;
        assert!(before.contains("/np"), "{before}");
        // The /np is answered with what the map is worth with its mods.
        let np = tell(&mut bot, &ports, &sent, STAFF, staff, NP).await;
        assert!(np.starts_with("A - B [C] +HD (5.00*): 95%"), "{np}");
        let loved = tell(
            &mut bot,
            &ports,
            &sent,
            STAFF,
            staff,
            "!map love set old map",
        )
        .await;
        assert_eq!(
            loved,
            "Every difficulty of A - B is now loved (2 stored map(s) changed)."
        );
        let with = tell(&mut bot, &ports, &sent, STAFF, staff, "!with HDDT").await;
        assert!(with.starts_with("A - B [C] +HDDT"), "{with}");
        // A player is refused, and another player's /np is not theirs.
        let refused = tell(
            &mut bot,
            &ports,
            &sent,
            PLAYER,
            Privileges::NORMAL,
            "!map rank map",
        )
        .await;
        assert_eq!(refused, "!map is for the staff.");
        let none = tell(&mut bot, &ports, &sent, PLAYER, Privileges::NORMAL, "!pp").await;
        assert!(none.contains("/np"), "{none}");
        let bad = tell(&mut bot, &ports, &sent, STAFF, staff, "!with XYZ").await;
        assert!(bad.starts_with("Usage: !with"), "{bad}");
        assert_eq!(
            desk.asked(),
            [
                "pp 4242 Some(0) 8".to_owned(),
                format!("status {STAFF} 4242 Set Loved old map"),
                "pp 4242 Some(0) 72".to_owned(),
            ]
        );
    }

    /// Runs a command line as `sender` and returns the bot's answer.
    async fn run(ports: &BotPorts, sender: i32, privileges: Privileges, line: &str) -> String {
        let invocation = |args| Invocation {
            ports: ports.clone(),
            sender_id: sender,
            sender_name: format!("user {sender}"),
            sender_privileges: privileges,
            args,
            now_playing: None,
        };
        commands::parse(line, invocation)
            .expect("a command line")
            .await
    }

    fn staff() -> Privileges {
        Privileges::NORMAL.union(Privileges::MODERATOR)
    }

    #[tokio::test]
    async fn everyone_commands_answer_and_staff_ones_are_refused_to_players() {
        let (ports, _, accounts) = ports();
        let help = run(&ports, PLAYER, Privileges::NORMAL, "!help").await;
        assert!(help.contains("!roll") && !help.contains("!ban"));
        let help = run(&ports, STAFF, staff(), "!help").await;
        assert!(help.contains("!ban"));
        assert!(
            run(&ports, PLAYER, Privileges::NORMAL, "!roll 1")
                .await
                .contains("rolls")
        );
        assert_eq!(
            run(&ports, PLAYER, Privileges::NORMAL, "!online").await,
            "1 player(s) online."
        );
        assert!(
            run(&ports, PLAYER, Privileges::NORMAL, "!nope")
                .await
                .starts_with("Unknown command !nope")
        );
        let refused = run(&ports, PLAYER, Privileges::NORMAL, "!ban staff cheating").await;
        assert_eq!(refused, "!ban is for the staff.");
        assert!(accounts.log().is_empty());
        assert!(commands::parse("no command", |_| unreachable!()).is_none());
    }

    #[tokio::test]
    async fn a_silence_is_stored_applied_to_the_session_and_audited() {
        let (ports, sent, accounts) = ports();
        let answer = run(&ports, STAFF, staff(), "!silence player 10m spamming").await;
        assert_eq!(answer, "Silenced player for 600s.");
        assert_eq!(
            accounts.log(),
            [
                format!("silence {PLAYER} true"),
                format!("audit {STAFF} Some({PLAYER}) silence spamming")
            ]
        );
        assert!(sent.take().iter().any(|s| matches!(
            s,
            Sent::Mail(Mail::User(PLAYER, UserCast::Silence { reason, .. })) if reason == "spamming"
        )));
    }

    #[tokio::test]
    async fn staff_cannot_moderate_themselves_and_a_ban_ends_the_session() {
        let (ports, sent, accounts) = ports();
        let answer = run(&ports, STAFF, staff(), "!restrict staff testing").await;
        assert_eq!(answer, "You cannot restrict yourself.");
        assert!(accounts.log().is_empty());

        let answer = run(&ports, STAFF, staff(), "!ban player cheating").await;
        assert_eq!(answer, "player is banned.");
        let banned = accounts.find(|u| u.id == PLAYER).expect("the player");
        assert!(!banned.privileges().contains(Privileges::NORMAL));
        let sent = sent.take();
        assert!(
            sent.iter()
                .any(|s| matches!(s, Sent::Mail(Mail::User(PLAYER, UserCast::Kick { .. }))))
        );
        assert!(
            sent.iter().any(|s| matches!(s, Sent::BoardsRefreshed)),
            "the banned player's scores leave the boards at once"
        );
        // The same again changes nothing.
        let answer = run(&ports, STAFF, staff(), "!ban player cheating").await;
        assert_eq!(answer, "player is already banned.");
    }

    #[tokio::test]
    async fn an_alert_reaches_everyone() {
        let (ports, sent, accounts) = ports();
        assert_eq!(
            run(&ports, STAFF, staff(), "!alert restart soon").await,
            "Alert sent."
        );
        assert!(matches!(
            &sent.take()[..],
            [Sent::Broadcast(
                UserCast::Enqueue(_),
                crate::Audience::Everyone
            )]
        ));
        assert_eq!(
            accounts.log(),
            [format!("audit {STAFF} None alert restart soon")]
        );
    }

    #[tokio::test]
    async fn the_bot_answers_a_private_message_and_passes_mp_to_the_match() {
        let (ports, sent, _) = ports();
        let me = Me::detached();
        let mut bot = Bot::default();
        bot.cast(
            UserCast::PrivateMessage {
                from_id: PLAYER,
                from_name: "player".into(),
                from_privileges: Privileges::NORMAL,
                text: "!roll 1".into(),
            },
            &ports,
            &me,
        )
        .await;
        // The answer comes from the command's own task.
        let answered = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            loop {
                let sent = sent.take();
                if !sent.is_empty() {
                    return sent;
                }
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("an answer");
        assert!(matches!(
            &answered[..],
            [Sent::Mail(Mail::User(PLAYER, UserCast::Enqueue(_)))]
        ));

        bot.cast(
            UserCast::ChannelCommand {
                channel: "#mp_5".into(),
                from_id: PLAYER,
                from_name: "player".into(),
                privileges: Privileges::NORMAL,
                text: "!mp start".into(),
            },
            &ports,
            &me,
        )
        .await;
        assert!(matches!(
            &sent.take()[..],
            [Sent::Mail(Mail::Match(5, MatchCast::Referee { args, .. }))] if args == &["start"]
        ));
    }
}
