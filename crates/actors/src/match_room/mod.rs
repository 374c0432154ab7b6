//! The match: one per multiplayer room, keyed `Match(match_id)`.
//!
//! It owns the slots and the game in progress. Players' sessions cast what their client
//! asked for (`MatchCast::Player`); the match checks who may do it, changes its state,
//! and tells everyone in the room (UPDATE_MATCH with the password) and the lobby (the
//! public view) once per change. A `#multiplayer` instance channel (`#mp_<id>`) belongs
//! to each match; referees drive the match through the bot's `!mp` commands there.

mod referee;
mod state;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use peace_bancho::server as s;
use peace_bancho::{ServerPacket, slot_status};
use peace_db::Privileges;
use peace_sharding::{AfterPanic, Entity, Me};

use crate::EntityKey;
use crate::channel::ChannelCast;
use crate::lobby::LobbyCast;
use crate::ports::{BeatmapLookup, GameRecords, Mail, Ports, Roster};
use crate::session_msg::{UserCast, packet_bytes};

pub use state::{Countdown, Game, MIN_SCORE_FRAME_LEN, MatchState};

/// Most matches open at once on a server.
pub const MAX_MATCHES: usize = 4096;

pub use crate::key::match_channel::{CHANNEL_DISPLAY_NAME, channel_name, match_of_channel};

pub use crate::kind_msg::{MatchCall, MatchCast, MatchReply, PlayerAction};

/// What a match may use beyond its own state.
#[derive(Debug, Clone)]
pub struct MatchPorts {
    pub outbox: Ports,
    /// Who is online (a referee's `!mp invite NAME`).
    pub roster: Arc<dyn Roster>,
    /// Where finished games are written.
    pub games: Arc<dyn GameRecords>,
    /// Maps by id (a referee's `!mp map`).
    pub maps: Arc<dyn BeatmapLookup>,
    /// The bot's name, which the match speaks as in its channel.
    pub bot_name: Arc<str>,
}

/// The match while it handles one message: its state, its ports and its host.
struct Room<'a> {
    state: &'a mut MatchState,
    ports: &'a MatchPorts,
    me: &'a Me<MatchState>,
}

impl Entity for MatchState {
    const KIND: &'static str = "match";
    type Key = i32;
    type Cast = MatchCast;
    type Call = MatchCall;
    type Reply = MatchReply;
    type Snapshot = MatchState;
    type Ctx = MatchPorts;

    fn key(&self) -> i32 {
        i32::from(self.data.match_id)
    }

    async fn started(&mut self, ports: &MatchPorts, me: &Me<Self>) {
        let room = Room {
            state: self,
            ports,
            me,
        };
        room.announce();
        // A match that moved here mid-countdown goes on counting.
        if room.state.countdown.is_some() {
            room.tick_in_a_second(room.state.countdown_generation);
        }
    }

    async fn cast(&mut self, msg: MatchCast, ports: &MatchPorts, me: &Me<Self>) {
        let mut room = Room {
            state: self,
            ports,
            me,
        };
        match msg {
            MatchCast::Player { user_id, action } => room.player(user_id, action),
            MatchCast::Leave { user_id } => room.leave(user_id),
            MatchCast::Invite {
                from_id,
                from_name,
                target_id,
                target_name,
            } => room.invite(from_id, from_name, target_id, target_name),
            MatchCast::Watch {
                user_id,
                session_id,
                watching,
            } => {
                if watching {
                    room.state.watchers.insert((user_id, session_id));
                    let update = ServerPacket::from(s::UpdateMatch {
                        data: room.state.public_view(),
                    });
                    let update = UserCast::Enqueue(update.to_bytes());
                    let _ = ports
                        .outbox
                        .send(Mail::Session(user_id, session_id, update));
                } else {
                    room.state.watchers.remove(&(user_id, session_id));
                }
            }
            MatchCast::Tick { generation } => room.tick(generation),
            MatchCast::Referee {
                user_id,
                name,
                privileges,
                args,
            } => {
                let text = room.referee(user_id, &name, privileges, &args).await;
                room.say(text);
            }
        }
    }

    async fn call(&mut self, msg: MatchCall, ports: &MatchPorts, me: &Me<Self>) -> MatchReply {
        let mut room = Room {
            state: self,
            ports,
            me,
        };
        match msg {
            MatchCall::Join {
                user_id,
                name,
                password,
                privileges,
            } => room.join(user_id, &name, &password, privileges),
            MatchCall::Info => MatchReply::Info(Box::new(room.state.public_view())),
        }
    }

    fn export(&mut self, _ports: &MatchPorts) -> MatchState {
        std::mem::take(self)
    }

    async fn ended(&mut self, ports: &MatchPorts, me: &Me<Self>) {
        dispose(&ports.outbox, self.key(), me.id());
    }

    /// A match that failed is disposed of: its players are told it is gone.
    fn after_panic(
        match_id: &i32,
        _: Option<MatchState>,
        ports: &MatchPorts,
        me: &Me<Self>,
    ) -> AfterPanic<Self> {
        dispose(&ports.outbox, *match_id, me.id());
        AfterPanic::Stop
    }
}

/// Unregisters a match, closes its channel and removes it from the lobby.
fn dispose(outbox: &Ports, match_id: i32, actor: ractor::ActorId) {
    outbox.forget(&EntityKey::Match(match_id), actor);
    let _ = outbox.send(Mail::Channel(channel_name(match_id), ChannelCast::Close));
    let _ = outbox.send(Mail::Lobby(LobbyCast::MatchDisposed { match_id }));
}

impl Room<'_> {
    fn id(&self) -> i32 {
        i32::from(self.state.data.match_id)
    }

    fn tell(&self, user_id: i32, bytes: Bytes) {
        let _ = self
            .ports
            .outbox
            .send(Mail::User(user_id, UserCast::Enqueue(bytes)));
    }

    /// Sends a packet to everyone in the room: players and tournament watchers (one
    /// envelope per node each).
    fn tell_all(&self, packet: impl Into<ServerPacket>) {
        let bytes = packet.into().to_bytes();
        let outbox = &self.ports.outbox;
        outbox.send_users(&mut self.state.players(), UserCast::Enqueue(bytes.clone()));
        outbox.send_sessions(
            &mut self.state.watchers.iter().copied(),
            UserCast::Enqueue(bytes),
        );
    }

    /// Sends a packet to this game's players (score updates: one envelope per node).
    fn tell_players(&self, packet: impl Into<ServerPacket>) {
        let mut players = self
            .state
            .game
            .iter()
            .flat_map(|g| g.players.iter().copied());
        let bytes = packet.into().to_bytes();
        self.ports
            .outbox
            .send_users(&mut players, UserCast::Enqueue(bytes));
    }

    /// Tells the room and the lobby about the match's new state.
    fn announce(&self) {
        self.tell_all(s::UpdateMatch {
            data: self.state.data.clone(),
        });
        let public = Box::new(self.state.public_view());
        let _ = self
            .ports
            .outbox
            .send(Mail::Lobby(LobbyCast::MatchUpdated(public)));
    }

    /// Says something in the match channel, as the bot.
    fn say(&self, text: String) {
        let msg = ChannelCast::Message {
            from_id: crate::BOT_ID,
            from_name: self.ports.bot_name.to_string(),
            privileges: Privileges::BOT,
            text,
        };
        let _ = self
            .ports
            .outbox
            .send(Mail::Channel(channel_name(self.id()), msg));
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
            self.me.stop();
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
            .ports
            .outbox
            .send(Mail::User(user_id, UserCast::RemovedFromMatch { match_id }));
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
        self.ports.games.record_game(row, scores);
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

    fn tick_in_a_second(&self, generation: u32) {
        self.me
            .cast_after(Duration::from_secs(1), MatchCast::Tick { generation });
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
        self.tick_in_a_second(generation);
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
        self.tick_in_a_second(generation);
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use peace_bancho::{MatchData, ServerPacket};

    use super::*;
    use crate::ports::testing::{OnlineAlone, Recorded, Sent, packets};

    const HOST: i32 = 10;
    const GUEST: i32 = 11;

    /// Keeps the games a match records.
    #[derive(Debug, Default)]
    struct Games(Mutex<Vec<(peace_db::NewMatchGame, Vec<peace_db::MatchScore>)>>);

    impl GameRecords for Games {
        fn record_game(&self, game: peace_db::NewMatchGame, scores: Vec<peace_db::MatchScore>) {
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((game, scores));
        }
    }

    /// One map the provider chain knows (#75, a taiko map), and a lookup that fails for
    /// #666.
    #[derive(Debug)]
    struct OneMap;

    impl BeatmapLookup for OneMap {
        fn beatmap_by_id(
            &self,
            id: i32,
        ) -> crate::ports::PortFuture<'_, Option<peace_db::BeatmapRow>> {
            let found = match id {
                75 => Ok(Some(peace_db::BeatmapRow {
                    md5: "0123456789abcdef0123456789abcdef".into(),
                    id: 75,
                    set_id: 7,
                    status: 1,
                    status_frozen: false,
                    mode: 1,
                    artist: "Artist".into(),
                    title: "Title".into(),
                    version: "Oni".into(),
                    creator: "mapper".into(),
                    file_name: "a.osu".into(),
                    total_length: 90,
                    max_combo: 500,
                    stars: 4.5,
                    plays: 0,
                    passes: 0,
                    source: 0,
                    approved_at: 0,
                    fetched_at: 0,
                })),
                666 => Err(peace_db::DbError::Timeout),
                _ => Ok(None),
            };
            Box::pin(std::future::ready(found))
        }
    }

    struct Harness {
        state: MatchState,
        ports: MatchPorts,
        sent: Arc<Recorded>,
        games: Arc<Games>,
        me: Me<MatchState>,
    }

    impl Harness {
        fn new(password: Option<&str>) -> Self {
            let (sent, outbox) = Recorded::ports();
            let games = Arc::new(Games::default());
            let requested = MatchData {
                name: "test match".into(),
                password: password.map(str::to_owned),
                ..MatchData::default()
            };
            Self {
                state: MatchState::create(1, &requested, HOST, "host"),
                ports: MatchPorts {
                    outbox,
                    roster: Arc::new(OnlineAlone(GUEST, "guest")),
                    games: games.clone(),
                    maps: Arc::new(OneMap),
                    bot_name: "Peace".into(),
                },
                sent,
                games,
                me: Me::detached(),
            }
        }

        async fn join(&mut self, user_id: i32, password: &str, privileges: Privileges) -> bool {
            let call = MatchCall::Join {
                user_id,
                name: format!("user {user_id}"),
                password: password.into(),
                privileges,
            };
            matches!(
                self.state.call(call, &self.ports, &self.me).await,
                MatchReply::Joined(_)
            )
        }

        async fn act(&mut self, user_id: i32, action: PlayerAction) {
            let cast = MatchCast::Player { user_id, action };
            self.state.cast(cast, &self.ports, &self.me).await;
        }

        /// The packets queued for `user_id` alone since the last look.
        fn packets_to(&self, user_id: i32) -> Vec<ServerPacket> {
            let mut out = Vec::new();
            for sent in self.sent.take() {
                let (to, bytes) = match sent {
                    Sent::Mail(Mail::User(to, UserCast::Enqueue(b))) => (vec![to], b),
                    Sent::Users(to, UserCast::Enqueue(b)) => (to, b),
                    _ => continue,
                };
                if to.contains(&user_id) {
                    out.extend(packets(&bytes));
                }
            }
            out
        }
    }

    #[tokio::test]
    async fn a_password_keeps_players_out_but_not_staff() {
        let mut m = Harness::new(Some("secret"));
        assert!(!m.join(GUEST, "wrong", Privileges::NORMAL).await);
        assert!(m.join(GUEST, "secret", Privileges::NORMAL).await);
        assert!(
            m.join(12, "", Privileges::NORMAL.union(Privileges::MODERATOR))
                .await
        );
        assert_eq!(m.state.player_count(), 3);
    }

    #[tokio::test]
    async fn only_the_host_starts_and_a_finished_game_is_recorded() {
        let mut m = Harness::new(None);
        assert!(m.join(GUEST, "", Privileges::NORMAL).await);
        m.act(GUEST, PlayerAction::Start).await;
        assert!(!m.state.data.in_progress, "a guest cannot start the match");

        m.sent.take();
        m.act(HOST, PlayerAction::Start).await;
        assert!(m.state.data.in_progress);
        assert!(
            m.packets_to(GUEST)
                .iter()
                .any(|p| matches!(p, ServerPacket::MatchStart(_)))
        );

        m.act(HOST, PlayerAction::Complete).await;
        assert!(m.state.data.in_progress, "one player is still playing");
        m.act(GUEST, PlayerAction::Complete).await;
        assert!(!m.state.data.in_progress);
        assert!(
            m.packets_to(GUEST)
                .iter()
                .any(|p| matches!(p, ServerPacket::MatchComplete(_)))
        );
        let games = m.games.0.lock().unwrap_or_else(|e| e.into_inner());
        let [(game, scores)] = &games[..] else {
            panic!("one game recorded, not {}", games.len());
        };
        assert!(!game.aborted);
        assert_eq!(scores.len(), 2);
    }

    #[tokio::test]
    async fn locking_an_occupied_slot_removes_its_player() {
        let mut m = Harness::new(None);
        assert!(m.join(GUEST, "", Privileges::NORMAL).await);
        let slot = m.state.slot_of(GUEST).expect("the guest has a slot") as i32;
        m.sent.take();
        m.act(GUEST, PlayerAction::Lock(0)).await;
        assert!(m.sent.take().is_empty(), "only the host locks slots");
        m.act(HOST, PlayerAction::Lock(slot)).await;
        assert!(m.sent.take().iter().any(|s| matches!(
            s,
            Sent::Mail(Mail::User(
                GUEST,
                UserCast::RemovedFromMatch { match_id: 1 }
            ))
        )));
    }

    #[tokio::test]
    async fn the_host_passes_on_when_it_leaves_and_the_last_one_out_ends_the_match() {
        let mut m = Harness::new(None);
        assert!(m.join(GUEST, "", Privileges::NORMAL).await);
        let leave = |user_id| MatchCast::Leave { user_id };
        m.state.cast(leave(HOST), &m.ports, &m.me).await;
        assert_eq!(m.state.data.host_id, GUEST);
        assert!(
            m.packets_to(GUEST)
                .iter()
                .any(|p| matches!(p, ServerPacket::MatchTransferHost(_)))
        );
        assert!(!m.me.stop_requested());
        m.state.cast(leave(GUEST), &m.ports, &m.me).await;
        assert!(m.me.stop_requested());

        m.state.ended(&m.ports, &m.me).await;
        let sent = m.sent.take();
        assert!(
            sent.iter()
                .any(|s| matches!(s, Sent::Forgot(EntityKey::Match(1))))
        );
        assert!(sent.iter().any(|s| matches!(
            s,
            Sent::Mail(Mail::Lobby(LobbyCast::MatchDisposed { match_id: 1 }))
        )));
    }

    #[tokio::test]
    async fn a_referee_invites_only_who_is_online() {
        let mut m = Harness::new(None);
        let referee = |args: &[&str]| MatchCast::Referee {
            user_id: HOST,
            name: "host".into(),
            privileges: Privileges::NORMAL,
            args: args.iter().map(|a| a.to_string()).collect(),
        };
        m.state
            .cast(referee(&["invite", "nobody"]), &m.ports, &m.me)
            .await;
        let said = |sent: &[Sent], what: &str| {
            sent.iter().any(|s| {
                matches!(
                    s,
                    Sent::Mail(Mail::Channel(name, ChannelCast::Message { text, .. }))
                        if name == "#mp_1" && text.contains(what)
                )
            })
        };
        assert!(said(&m.sent.take(), "nobody is not online"));
        m.state
            .cast(referee(&["invite", "guest"]), &m.ports, &m.me)
            .await;
        let sent = m.sent.take();
        assert!(said(&sent, "Invited guest"));
        assert!(
            sent.iter()
                .any(|s| matches!(s, Sent::Mail(Mail::User(GUEST, UserCast::Enqueue(_)))))
        );
    }

    #[tokio::test]
    async fn a_referee_picks_a_map_the_server_knows_with_its_checksum() {
        let mut m = Harness::new(None);
        let mp = |args: &[&str]| MatchCast::Referee {
            user_id: HOST,
            name: "host".into(),
            privileges: Privileges::NORMAL,
            args: args.iter().map(|a| a.to_string()).collect(),
        };
        let said = |sent: &[Sent], what: &str| {
            sent.iter().any(|s| {
                matches!(
                    s,
                    Sent::Mail(Mail::Channel(_, ChannelCast::Message { text, .. }))
                        if text.contains(what)
                )
            })
        };
        let before = m.state.data.clone();

        for (args, answer) in [
            (&["map", "404"][..], "No beatmap #404 is known"),
            (&["map", "666"][..], "could not be looked up"),
            (&["map", "x"][..], "Usage: !mp map"),
            (&["map", "75", "9"][..], "Usage: !mp map"),
        ] {
            m.state.cast(mp(args), &m.ports, &m.me).await;
            assert!(said(&m.sent.take(), answer), "{args:?}");
            assert_eq!(m.state.data, before, "{args:?} changed nothing");
        }

        // A taiko map brings its mode; the checksum is what the client finds it by.
        m.state.cast(mp(&["map", "75"]), &m.ports, &m.me).await;
        let d = &m.state.data;
        assert_eq!(d.beatmap_id, 75);
        assert_eq!(d.beatmap_md5, "0123456789abcdef0123456789abcdef");
        assert_eq!(d.beatmap_name, "Artist - Title [Oni]");
        assert_eq!(d.mode, 1);
        let sent = m.sent.take();
        assert!(said(&sent, "Changed the beatmap to Artist - Title [Oni]"));
        assert!(
            sent.iter().any(|s| matches!(s, Sent::Mail(Mail::Lobby(_)))),
            "the lobby hears of it"
        );

        // A mode given wins (mania, say, as the referee asks).
        m.state.cast(mp(&["map", "75", "3"]), &m.ports, &m.me).await;
        assert_eq!(m.state.data.mode, 3);
    }
}
