//! The match actor: one per multiplayer room, keyed `Match(match_id)`.
//!
//! It owns the slots and the game in progress. Players' sessions cast what their client
//! asked for (`MatchCast::Player`); the match checks who may do it, changes its state,
//! and tells everyone in the room (UPDATE_MATCH with the password) and the lobby (the
//! public view) once per change. A `#multiplayer` instance channel (`#mp_<id>`) belongs
//! to each match; referees drive the match through the bot's `!mp` commands there.

mod referee;
mod state;

use std::time::Duration;

use bytes::Bytes;
use peace_bancho::server as s;
use peace_bancho::{MatchData, ServerPacket, slot_status};
use peace_db::Privileges;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde::{Deserialize, Serialize};

use crate::World;
use crate::channel::ChannelCast;
use crate::lobby::LobbyCast;
use crate::message::EntityMsg;
use crate::user::{UserCast, packet_bytes};

pub use state::{Countdown, Game, MIN_SCORE_FRAME_LEN, MatchState};

/// Most matches open at once on a server.
pub const MAX_MATCHES: usize = 4096;

/// The key of a match's chat channel.
pub fn channel_name(match_id: i32) -> String {
    format!("#mp_{match_id}")
}

/// The match a channel key belongs to (`#mp_3` → 3).
pub fn match_of_channel(channel: &str) -> Option<i32> {
    channel.strip_prefix("#mp_")?.parse().ok()
}

/// What clients call every match channel.
pub const CHANNEL_DISPLAY_NAME: &str = "#multiplayer";

/// What a player's client asked the match to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum PlayerAction {
    ChangeSlot(i32),
    Ready,
    NotReady,
    HasBeatmap,
    NoBeatmap,
    Lock(i32),
    ChangeSettings(Box<MatchData>),
    ChangeMods(u32),
    Start,
    LoadComplete,
    ScoreFrame(Bytes),
    Failed,
    SkipRequest,
    Complete,
    TransferHost(i32),
    ChangeTeam,
    ChangePassword(String),
}

/// What a match can be told.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum MatchCast {
    Player {
        user_id: i32,
        action: PlayerAction,
    },
    Leave {
        user_id: i32,
    },
    Invite {
        from_id: i32,
        from_name: String,
        target_id: i32,
        target_name: String,
    },
    /// A tournament client's session starts (or stops) watching without a slot.
    Watch {
        user_id: i32,
        session_id: u64,
        watching: bool,
    },
    /// One second of a countdown passed.
    Tick {
        generation: u32,
    },
    /// A `!mp` command typed in the match channel; the answer is said there.
    Referee {
        user_id: i32,
        name: String,
        privileges: Privileges,
        args: Vec<String>,
    },
}

/// What a match can be asked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum MatchCall {
    Join {
        user_id: i32,
        name: String,
        password: String,
        privileges: Privileges,
    },
    /// The public view (tournament clients' match info request).
    Info,
}

/// A match's answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum MatchReply {
    Joined(Box<MatchData>),
    JoinFailed,
    Info(Box<MatchData>),
}

pub type MatchMsg = EntityMsg<MatchCast, MatchCall, MatchReply>;

/// The match actor.
#[derive(Debug)]
pub struct MatchActor;

#[derive(Debug)]
pub struct MatchRuntime {
    world: World,
    state: MatchState,
    myself: ActorRef<MatchMsg>,
    /// Exported to another node: it stops without being disposed of.
    moved: bool,
}

impl Actor for MatchActor {
    type Msg = MatchMsg;
    type State = MatchRuntime;
    type Arguments = (World, MatchState);

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        (world, state): Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(MatchRuntime {
            world,
            state,
            myself,
            moved: false,
        })
    }

    async fn post_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        rt: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        rt.announce();
        // A match that moved here mid-countdown goes on counting.
        if rt.state.countdown.is_some() {
            let generation = rt.state.countdown_generation;
            rt.myself.send_after(Duration::from_secs(1), move || {
                peace_metrics::mailbox_sent("match");
                EntityMsg::Cast(MatchCast::Tick { generation })
            });
        }
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        rt: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        peace_metrics::mailbox_handled("match");
        match msg {
            EntityMsg::Call(
                MatchCall::Join {
                    user_id,
                    name,
                    password,
                    privileges,
                },
                reply,
            ) => {
                let _ = reply.send(rt.join(user_id, &name, &password, privileges));
            }
            EntityMsg::Call(MatchCall::Info, reply) => {
                let _ = reply.send(MatchReply::Info(Box::new(rt.state.public_view())));
            }
            EntityMsg::Cast(MatchCast::Player { user_id, action }) => rt.player(user_id, action),
            EntityMsg::Cast(MatchCast::Leave { user_id }) => rt.leave(user_id),
            EntityMsg::Cast(MatchCast::Invite {
                from_id,
                from_name,
                target_id,
                target_name,
            }) => {
                rt.invite(from_id, from_name, target_id, target_name);
            }
            EntityMsg::Cast(MatchCast::Watch {
                user_id,
                session_id,
                watching,
            }) => {
                if watching {
                    rt.state.watchers.insert((user_id, session_id));
                    let update = ServerPacket::from(s::UpdateMatch {
                        data: rt.state.public_view(),
                    });
                    let update = UserCast::Enqueue(update.to_bytes());
                    let _ = rt.world.router().cast_session(user_id, session_id, update);
                } else {
                    rt.state.watchers.remove(&(user_id, session_id));
                }
            }
            EntityMsg::Cast(MatchCast::Tick { generation }) => rt.tick(generation),
            EntityMsg::Export(reply) => {
                rt.moved = true;
                let state = Box::new(rt.state.clone());
                let _ = reply.send(crate::snapshot::Snapshot::Match(state));
                rt.myself.stop(Some("moved".into()));
            }
            EntityMsg::Cast(MatchCast::Referee {
                user_id,
                name,
                privileges,
                args,
            }) => {
                let text = rt.referee(user_id, &name, privileges, &args);
                rt.say(text);
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        myself: ActorRef<Self::Msg>,
        rt: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if !rt.moved {
            dispose(
                &rt.world,
                i32::from(rt.state.data.match_id),
                myself.get_id(),
            );
        }
        Ok(())
    }
}

/// Unregisters a match, closes its channel and removes it from the lobby (also used when
/// the match failed).
pub(crate) fn dispose(world: &World, match_id: i32, actor: ractor::ActorId) {
    world.router().matches().remove(&match_id, actor);
    let _ = world
        .router()
        .channels()
        .cast(&channel_name(match_id), ChannelCast::Close);
    let _ = world
        .router()
        .cast_lobby(LobbyCast::MatchDisposed { match_id });
}

impl MatchRuntime {
    fn id(&self) -> i32 {
        i32::from(self.state.data.match_id)
    }

    fn tell(&self, user_id: i32, bytes: Bytes) {
        let _ = self
            .world
            .router()
            .cast_user(user_id, UserCast::Enqueue(bytes));
    }

    /// Sends a packet to everyone in the room: players and tournament watchers (one
    /// envelope per node each).
    fn tell_all(&self, packet: impl Into<ServerPacket>) {
        let bytes = packet.into().to_bytes();
        let router = self.world.router();
        router.cast_users(self.state.players(), UserCast::Enqueue(bytes.clone()));
        router.cast_sessions(
            self.state.watchers.iter().copied(),
            UserCast::Enqueue(bytes),
        );
    }

    /// Sends a packet to this game's players (score updates: one envelope per node).
    fn tell_players(&self, packet: impl Into<ServerPacket>) {
        let players = self
            .state
            .game
            .iter()
            .flat_map(|g| g.players.iter().copied());
        let bytes = packet.into().to_bytes();
        self.world
            .router()
            .cast_users(players, UserCast::Enqueue(bytes));
    }

    /// Tells the room and the lobby about the match's new state.
    fn announce(&self) {
        self.tell_all(s::UpdateMatch {
            data: self.state.data.clone(),
        });
        let public = Box::new(self.state.public_view());
        let _ = self
            .world
            .router()
            .cast_lobby(LobbyCast::MatchUpdated(public));
    }

    /// Says something in the match channel, as the bot.
    fn say(&self, text: String) {
        let msg = ChannelCast::Message {
            from_id: crate::BOT_ID,
            from_name: self.world.bot_name().to_owned(),
            privileges: Privileges::BOT,
            text,
        };
        let _ = self
            .world
            .router()
            .channels()
            .cast(&channel_name(self.id()), msg);
    }

    fn join(
        &mut self,
        user_id: i32,
        name: &str,
        password: &str,
        privileges: Privileges,
    ) -> MatchReply {
        let st = &mut self.state;
        let is_staff = privileges.is_staff();
        let wrong_password = st.data.password.as_deref().is_some_and(|p| p != password);
        if (wrong_password && !is_staff) || st.data.in_progress && st.slot_of(user_id).is_none() {
            return MatchReply::JoinFailed;
        }
        if st.seat(user_id, name).is_none() {
            return MatchReply::JoinFailed;
        }
        self.announce();
        MatchReply::Joined(Box::new(self.state.data.clone()))
    }

    fn is_referee(&self, user_id: i32, privileges: Privileges) -> bool {
        self.state.data.host_id == user_id
            || self.state.referees.contains(&user_id)
            || privileges.is_staff()
            || privileges.contains(Privileges::TOURNAMENT)
    }

    fn leave(&mut self, user_id: i32) {
        if self.state.slot_of(user_id).is_none() {
            return;
        }
        let new_host = self.state.unseat(user_id);
        if self.state.player_count() == 0 {
            self.end_game(true);
            self.myself.stop(Some("everyone left".into()));
            return;
        }
        if let Some(host) = new_host {
            self.tell(host, packet_bytes(s::MatchTransferHost {}));
        }
        self.check_game_progress();
        self.announce();
    }

    /// Removes a player the host or a referee pushed out (slot lock, `!mp close`).
    fn kick(&mut self, user_id: i32) {
        let match_id = self.id();
        let _ = self
            .world
            .router()
            .cast_user(user_id, UserCast::RemovedFromMatch { match_id });
    }

    fn player(&mut self, user_id: i32, action: PlayerAction) {
        let Some(index) = self.state.slot_of(user_id) else {
            tracing::debug!(
                user = user_id,
                match_id = self.id(),
                "action from a non-member ignored"
            );
            return;
        };
        let is_host = self.state.data.host_id == user_id;
        let in_progress = self.state.data.in_progress;
        let changed = match action {
            PlayerAction::ChangeSlot(target) => {
                !in_progress
                    && !self.state.slots_locked
                    && usize::try_from(target).is_ok_and(|t| self.state.move_to(user_id, t))
            }
            PlayerAction::Ready => {
                self.set_status(index, slot_status::NOT_READY, slot_status::READY)
            }
            PlayerAction::NotReady => {
                self.set_status(index, slot_status::READY, slot_status::NOT_READY)
            }
            PlayerAction::NoBeatmap => {
                !in_progress
                    && self.set_status(
                        index,
                        slot_status::NOT_READY | slot_status::READY,
                        slot_status::NO_MAP,
                    )
            }
            PlayerAction::HasBeatmap => {
                self.set_status(index, slot_status::NO_MAP, slot_status::NOT_READY)
            }
            PlayerAction::Lock(slot) if is_host && !in_progress => match usize::try_from(slot) {
                Ok(slot) if slot < peace_bancho::model::MATCH_SLOTS => {
                    if let Some(kicked) = self.state.toggle_lock(slot) {
                        self.kick(kicked);
                    }
                    true
                }
                _ => false,
            },
            PlayerAction::ChangeSettings(data) if is_host && !in_progress => {
                self.state.apply_settings(&data);
                true
            }
            PlayerAction::ChangeMods(mods) if !in_progress => self.state.change_mods(user_id, mods),
            PlayerAction::Start if is_host => self.start(),
            PlayerAction::TransferHost(slot) if is_host => self.transfer_host(slot),
            PlayerAction::ChangeTeam if !in_progress && !self.state.slots_locked => {
                let slot = &mut self.state.data.slots[index];
                if peace_bancho::team_type::has_teams(self.state.data.team_type) {
                    slot.team = if slot.team == peace_bancho::team::RED {
                        peace_bancho::team::BLUE
                    } else {
                        peace_bancho::team::RED
                    };
                    true
                } else {
                    false
                }
            }
            PlayerAction::ChangePassword(password) if is_host => {
                let password: String = password.chars().take(state::MAX_PASSWORD_LEN).collect();
                self.state.data.password = Some(password.clone()).filter(|p| !p.is_empty());
                self.tell_all(s::MatchChangePassword { password });
                true
            }
            PlayerAction::LoadComplete => {
                self.game_event(user_id, |g| g.loaded.insert(user_id));
                false
            }
            PlayerAction::SkipRequest => {
                if self.game_event(user_id, |g| g.skipped.insert(user_id)) {
                    self.tell_all(s::MatchPlayerSkipped {
                        slot_id: index as i32,
                    });
                }
                false
            }
            PlayerAction::Failed => {
                if self.game_event(user_id, |g| g.failed.insert(user_id)) {
                    self.tell_all(s::MatchPlayerFailed {
                        slot_id: index as i32,
                    });
                }
                false
            }
            PlayerAction::ScoreFrame(frame) => {
                self.score_frame(user_id, index, frame);
                false
            }
            PlayerAction::Complete => {
                if self.game_event(user_id, |g| g.completed.insert(user_id)) {
                    self.state.data.slots[index].status = slot_status::COMPLETE;
                }
                false
            }
            other => {
                tracing::debug!(
                    user = user_id,
                    match_id = self.id(),
                    ?other,
                    "action not allowed"
                );
                false
            }
        };
        if changed {
            self.announce();
        }
        self.check_game_progress();
    }

    /// Moves a slot from one of the `from` statuses to `to`.
    fn set_status(&mut self, index: usize, from: u8, to: u8) -> bool {
        let slot = &mut self.state.data.slots[index];
        if slot.status & from != 0 && slot.status != to {
            slot.status = to;
            true
        } else {
            false
        }
    }

    /// Records a game event for a player of the running game; false if there is none or
    /// the event was already recorded.
    fn game_event(&mut self, user_id: i32, event: impl FnOnce(&mut Game) -> bool) -> bool {
        match &mut self.state.game {
            Some(game) if game.players.contains(&user_id) => event(game),
            _ => false,
        }
    }

    fn score_frame(&mut self, user_id: i32, index: usize, frame: Bytes) {
        if frame.len() < MIN_SCORE_FRAME_LEN {
            tracing::debug!(
                user = user_id,
                len = frame.len(),
                "short score frame ignored"
            );
            return;
        }
        let Some(game) = self
            .state
            .game
            .as_mut()
            .filter(|g| g.players.contains(&user_id))
        else {
            return;
        };
        // The client does not know its slot; the server writes it into byte 4.
        let mut frame = frame.to_vec();
        frame[4] = index as u8;
        let frame = Bytes::from(frame);
        game.frames.insert(user_id, frame.clone());
        self.tell_all(s::MatchScoreUpdate {
            frame: peace_bancho::wire::Raw(frame),
        });
    }

    fn transfer_host(&mut self, slot: i32) -> bool {
        let Some(target) = usize::try_from(slot)
            .ok()
            .and_then(|i| self.state.data.slots.get(i))
        else {
            return false;
        };
        if target.status & peace_bancho::model::SLOT_HAS_PLAYER == 0
            || target.user_id == self.state.data.host_id
        {
            return false;
        }
        let new_host = target.user_id;
        self.state.data.host_id = new_host;
        self.tell(new_host, packet_bytes(s::MatchTransferHost {}));
        true
    }

    /// Starts the game: everyone with the map plays.
    fn start(&mut self) -> bool {
        if self.state.data.in_progress {
            return false;
        }
        self.cancel_countdown();
        let mut game = Game {
            started_at: peace_db::unix_now(),
            ..Game::default()
        };
        for (index, slot) in self.state.data.slots.iter_mut().enumerate() {
            if slot.status & peace_bancho::model::SLOT_HAS_PLAYER != 0
                && slot.status != slot_status::NO_MAP
            {
                slot.status = slot_status::PLAYING;
                game.players.insert(slot.user_id);
                game.lineup
                    .insert(slot.user_id, (index as u8, slot.team, slot.mods));
            }
        }
        if game.players.is_empty() {
            return false;
        }
        self.state.data.in_progress = true;
        self.state.game = Some(game);
        self.tell_players(s::MatchStart {
            data: self.state.data.clone(),
        });
        true
    }

    /// After any game event: all loaded, all skipped, all done?
    fn check_game_progress(&mut self) {
        let Some(game) = &mut self.state.game else {
            return;
        };
        let everyone = |done: &std::collections::BTreeSet<i32>| game.players.is_subset(done);
        let (loaded, skipped, completed) = (
            everyone(&game.loaded),
            everyone(&game.skipped),
            everyone(&game.completed),
        );
        if game.players.is_empty() || completed {
            self.end_game(false);
            return;
        }
        if loaded && !game.all_loaded {
            game.all_loaded = true;
            self.tell_players(s::MatchAllPlayersLoaded {});
        }
        let Some(game) = &mut self.state.game else {
            return;
        };
        if skipped && !game.all_skipped {
            game.all_skipped = true;
            self.tell_players(s::MatchSkip {});
        }
    }

    /// Ends the running game (completed or aborted), records it and resets the slots.
    fn end_game(&mut self, aborted: bool) {
        let Some(game) = self.state.game.take() else {
            return;
        };
        self.state.data.in_progress = false;
        for slot in &mut self.state.data.slots {
            if slot.status == slot_status::PLAYING || slot.status == slot_status::COMPLETE {
                slot.status = slot_status::NOT_READY;
            }
        }
        let packet = if aborted {
            ServerPacket::from(s::MatchAbort {})
        } else {
            ServerPacket::from(s::MatchComplete {})
        };
        let bytes = packet.to_bytes();
        for &user in &game.players {
            self.tell(user, bytes.clone());
        }
        self.record(game, aborted);
        self.announce();
    }

    /// Writes the finished game to the database, off the actor's path.
    fn record(&self, game: Game, aborted: bool) {
        let d = &self.state.data;
        let row = peace_db::NewMatchGame {
            match_id: i32::from(d.match_id),
            match_name: d.name.clone(),
            beatmap_id: d.beatmap_id,
            beatmap_md5: d.beatmap_md5.clone(),
            beatmap_name: d.beatmap_name.clone(),
            mode: i16::from(d.mode),
            mods: d.mods as i32,
            win_condition: i16::from(d.win_condition),
            team_type: i16::from(d.team_type),
            freemod: d.freemod,
            aborted,
            started_at: game.started_at,
            ended_at: peace_db::unix_now(),
        };
        let scores: Vec<_> = game
            .lineup
            .iter()
            .map(|(&user_id, &(slot, team, mods))| {
                let frame = game.frames.get(&user_id).map_or(&[][..], |f| &f[..]);
                score_row(
                    user_id,
                    slot,
                    team,
                    mods,
                    frame,
                    !game.failed.contains(&user_id),
                )
            })
            .collect();
        let db = self.world.db().clone();
        tokio::spawn(async move {
            if let Err(e) = db.record_match_game(&row, &scores).await {
                tracing::warn!(match_id = row.match_id, "could not record the game: {e}");
            }
        });
    }

    /// A player's MATCH_INVITE: only someone in the match invites to it.
    fn invite(&self, from_id: i32, from_name: String, target_id: i32, target_name: String) {
        if self.state.slot_of(from_id).is_some() {
            self.send_invite(from_id, from_name, target_id, target_name);
        }
    }

    /// Sends `target` the invitation (a referee's `!mp invite` needs no seat).
    fn send_invite(&self, from_id: i32, from_name: String, target_id: i32, target_name: String) {
        let d = &self.state.data;
        let text = format!(
            "Come join my multiplayer match: [osump://{}/{} {}]",
            d.match_id,
            d.password.as_deref().unwrap_or(""),
            d.name
        );
        let message = peace_bancho::Message {
            sender: from_name,
            text,
            recipient: target_name,
            sender_id: from_id,
        };
        self.tell(target_id, packet_bytes(s::MatchInvite { message }));
    }

    fn cancel_countdown(&mut self) {
        self.state.countdown = None;
    }

    fn start_countdown(&mut self, seconds: u32, start: bool) {
        self.state.countdown_generation = self.state.countdown_generation.wrapping_add(1);
        let generation = self.state.countdown_generation;
        self.state.countdown = Some(Countdown {
            remaining: seconds,
            start,
            generation,
        });
        self.myself.send_after(Duration::from_secs(1), move || {
            // Runs when the timer fires, as the tick enters the mailbox.
            peace_metrics::mailbox_sent("match");
            EntityMsg::Cast(MatchCast::Tick { generation })
        });
    }

    fn tick(&mut self, generation: u32) {
        let Some(countdown) = self
            .state
            .countdown
            .as_mut()
            .filter(|c| c.generation == generation)
        else {
            return;
        };
        countdown.remaining = countdown.remaining.saturating_sub(1);
        let Countdown {
            remaining, start, ..
        } = *countdown;
        if remaining == 0 {
            self.state.countdown = None;
            if start {
                self.say("Good luck, have fun!".into());
                if self.start() {
                    self.announce();
                }
            } else {
                self.say("Countdown finished.".into());
            }
            return;
        }
        if remaining <= 5 || remaining % 10 == 0 {
            let what = if start {
                "Match starts"
            } else {
                "Countdown ends"
            };
            self.say(format!("{what} in {remaining} second(s)."));
        }
        self.myself.send_after(Duration::from_secs(1), move || {
            // Runs when the timer fires, as the tick enters the mailbox.
            peace_metrics::mailbox_sent("match");
            EntityMsg::Cast(MatchCast::Tick { generation })
        });
    }
}

/// A score row from a player's last score frame (layout in docs/protocol.md).
fn score_row(
    user_id: i32,
    slot: u8,
    team: u8,
    mods: u32,
    frame: &[u8],
    passed: bool,
) -> peace_db::MatchScore {
    let u16_at = |at: usize| {
        frame
            .get(at..at + 2)
            .map_or(0, |b| i32::from(u16::from_le_bytes([b[0], b[1]])))
    };
    let i32_at = |at: usize| {
        frame
            .get(at..at + 4)
            .map_or(0, |b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    peace_db::MatchScore {
        game_id: 0,
        user_id,
        slot: i16::from(slot),
        team: i16::from(team),
        mods: mods as i32,
        count_300: u16_at(5),
        count_100: u16_at(7),
        count_50: u16_at(9),
        count_geki: u16_at(11),
        count_katu: u16_at(13),
        count_miss: u16_at(15),
        score: i32_at(17),
        max_combo: u16_at(21),
        passed,
    }
}
