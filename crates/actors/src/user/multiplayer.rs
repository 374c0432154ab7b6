//! What a session does for multiplayer: the lobby, its match, tournament clients.

use peace_bancho::client::{self as c};
use peace_bancho::server::{DisposeMatch, MatchJoinFail, MatchJoinSuccess, UpdateMatch};
use peace_bancho::{ClientPacket, MatchData};
use peace_db::Privileges;

use super::Session;
use crate::lobby::LobbyCast;
use crate::match_room::{self, MatchCall, MatchCast, MatchReply, PlayerAction};

/// The lobby's chat channel.
const LOBBY_CHANNEL: &str = "#lobby";

impl Session {
    /// Handles the multiplayer packets; returns the packet back if it is not one.
    pub(super) async fn multiplayer_packet(
        &mut self,
        packet: ClientPacket,
    ) -> Option<ClientPacket> {
        // A tournament account's extra sessions only watch: they play in no match and
        // browse no lobby (those belong to the account's own session). Restricted
        // players do not play multiplayer at all.
        let playing_packet = matches!(
            packet,
            ClientPacket::JoinLobby(_) | ClientPacket::CreateMatch(_) | ClientPacket::JoinMatch(_)
        );
        if playing_packet && self.state.extra_session {
            tracing::debug!(
                user = self.state.id,
                "extra tournament session cannot play; ignored"
            );
            return None;
        }
        if playing_packet && self.state.privileges.is_restricted() {
            self.notify("Restricted accounts cannot play multiplayer.");
            if !matches!(packet, ClientPacket::JoinLobby(_)) {
                self.state.enqueue_packet(MatchJoinFail {});
            }
            return None;
        }
        let action = match packet {
            ClientPacket::JoinLobby(_) => {
                self.state.in_lobby = true;
                let _ = self.ports.router.cast_lobby(LobbyCast::Join {
                    user_id: self.state.id,
                });
                self.join_channel_as(LOBBY_CHANNEL.to_owned(), LOBBY_CHANNEL.to_owned())
                    .await;
                return None;
            }
            ClientPacket::PartLobby(_) => {
                self.state.in_lobby = false;
                let _ = self.ports.router.cast_lobby(LobbyCast::Leave {
                    user_id: self.state.id,
                });
                return None;
            }
            ClientPacket::CreateMatch(c::CreateMatch { data }) => {
                self.create_match(data).await;
                return None;
            }
            ClientPacket::JoinMatch(c::JoinMatch { match_id, password }) => {
                self.join_match(match_id, password).await;
                return None;
            }
            ClientPacket::PartMatch(_) => {
                self.leave_match().await;
                return None;
            }
            ClientPacket::MatchInvite(c::MatchInvite { user_id }) => {
                self.invite(user_id);
                return None;
            }
            ClientPacket::TournamentMatchInfoRequest(c::TournamentMatchInfoRequest {
                match_id,
            }) => {
                self.tournament_info(match_id).await;
                return None;
            }
            ClientPacket::TournamentJoinMatchChannel(c::TournamentJoinMatchChannel {
                match_id,
            }) => {
                self.tournament_watch(match_id, true).await;
                return None;
            }
            ClientPacket::TournamentLeaveMatchChannel(c::TournamentLeaveMatchChannel {
                match_id,
            }) => {
                self.tournament_watch(match_id, false).await;
                return None;
            }
            ClientPacket::MatchChangeSlot(c::MatchChangeSlot { slot_id }) => {
                PlayerAction::ChangeSlot(slot_id)
            }
            ClientPacket::MatchReady(_) => PlayerAction::Ready,
            ClientPacket::MatchNotReady(_) => PlayerAction::NotReady,
            ClientPacket::MatchHasBeatmap(_) => PlayerAction::HasBeatmap,
            ClientPacket::MatchNoBeatmap(_) => PlayerAction::NoBeatmap,
            ClientPacket::MatchLock(c::MatchLock { slot_id }) => PlayerAction::Lock(slot_id),
            ClientPacket::MatchChangeSettings(c::MatchChangeSettings { data }) => {
                PlayerAction::ChangeSettings(Box::new(data))
            }
            ClientPacket::MatchChangeMods(c::MatchChangeMods { mods }) => {
                PlayerAction::ChangeMods(mods)
            }
            ClientPacket::MatchStart(_) => PlayerAction::Start,
            ClientPacket::MatchLoadComplete(_) => PlayerAction::LoadComplete,
            ClientPacket::MatchScoreUpdate(c::MatchScoreUpdate { frame }) => {
                PlayerAction::ScoreFrame(frame.0)
            }
            ClientPacket::MatchFailed(_) => PlayerAction::Failed,
            ClientPacket::MatchSkipRequest(_) => PlayerAction::SkipRequest,
            ClientPacket::MatchComplete(_) => PlayerAction::Complete,
            ClientPacket::MatchTransferHost(c::MatchTransferHost { slot_id }) => {
                PlayerAction::TransferHost(slot_id)
            }
            ClientPacket::MatchChangeTeam(_) => PlayerAction::ChangeTeam,
            ClientPacket::MatchChangePassword(c::MatchChangePassword { data }) => {
                PlayerAction::ChangePassword(data.password.unwrap_or_default())
            }
            other => return Some(other),
        };
        match self.state.match_id {
            Some(id) => {
                let cast = MatchCast::Player {
                    user_id: self.state.id,
                    action,
                };
                let _ = self.ports.router.matches().cast(&id, cast);
            }
            None => tracing::debug!(user = self.state.id, "match packet outside a match ignored"),
        }
        None
    }

    async fn create_match(&mut self, data: MatchData) {
        self.leave_match().await;
        let rooms = self.ports.rooms.clone();
        match rooms
            .create_match(self.state.id, &self.state.name, &data)
            .await
        {
            Ok((match_id, data)) => self.entered_match(match_id, data).await,
            Err(e) => {
                tracing::warn!(user = self.state.id, "could not create a match: {e}");
                self.state.enqueue_packet(MatchJoinFail {});
                self.notify("The match could not be created; please try again.");
            }
        }
    }

    async fn join_match(&mut self, match_id: i32, password: String) {
        if self.state.match_id == Some(match_id) {
            return;
        }
        self.leave_match().await;
        let call = MatchCall::Join {
            user_id: self.state.id,
            name: self.state.name.clone(),
            password,
            privileges: self.state.privileges,
        };
        let timeout = self.ports.settings.call_timeout;
        match self
            .ports
            .router
            .matches()
            .call(&match_id, call, timeout)
            .await
        {
            Ok(MatchReply::Joined(data)) => self.entered_match(match_id, *data).await,
            Ok(_) => self.state.enqueue_packet(MatchJoinFail {}),
            Err(e) => {
                tracing::debug!(user = self.state.id, match_id, "join failed: {e}");
                self.state.enqueue_packet(MatchJoinFail {});
            }
        }
    }

    async fn entered_match(&mut self, match_id: i32, data: MatchData) {
        self.state.match_id = Some(match_id);
        self.state.enqueue_packet(MatchJoinSuccess { data });
        let channel = match_room::channel_name(match_id);
        self.join_channel_as(channel, match_room::CHANNEL_DISPLAY_NAME.to_owned())
            .await;
    }

    pub(super) async fn leave_match(&mut self) {
        let Some(match_id) = self.state.match_id.take() else {
            return;
        };
        let _ = self.ports.router.matches().cast(
            &match_id,
            MatchCast::Leave {
                user_id: self.state.id,
            },
        );
        self.leave_channel_quietly(&match_room::channel_name(match_id))
            .await;
    }

    /// After a node was lost: the match this player sits in or watches may have lived
    /// there. If it no longer answers, it is gone: the player leaves it and is told why.
    pub(super) async fn check_rooms_after_loss(&mut self, node: &str) {
        let timeout = self.ports.settings.call_timeout;
        for match_id in [self.state.match_id, self.state.watching_match]
            .into_iter()
            .flatten()
        {
            let alive = self
                .ports
                .router
                .matches()
                .call(&match_id, MatchCall::Info, timeout)
                .await
                .is_ok();
            if alive {
                continue;
            }
            tracing::info!(user = self.state.id, match_id, %node, "match lost with its node");
            if self.state.match_id == Some(match_id) {
                self.removed_from_match(match_id).await;
            } else {
                self.state.watching_match = None;
                self.leave_channel_quietly(&match_room::channel_name(match_id))
                    .await;
            }
            self.notify("The match was closed: the server it ran on went down.");
        }
        if let Some(host_id) = self.state.spectating {
            let ping = crate::spectate::SpectateCall::Ping;
            let alive = self
                .ports
                .router
                .spectate()
                .call(&host_id, ping, timeout)
                .await
                .is_ok();
            if !alive {
                self.state.spectating = None;
                self.leave_channel_quietly(&crate::spectate::channel_name(host_id))
                    .await;
                self.notify("Spectating ended: the server it ran on went down.");
            }
        }
    }

    /// The host or a referee removed this player: back to the lobby.
    pub(super) async fn removed_from_match(&mut self, match_id: i32) {
        if self.state.match_id != Some(match_id) {
            return;
        }
        self.leave_match().await;
        self.state.enqueue_packet(DisposeMatch { match_id });
    }

    fn invite(&mut self, target_id: i32) {
        let (Some(match_id), Some(target)) = (
            self.state.match_id,
            self.ports.router.users().get(target_id),
        ) else {
            return;
        };
        let cast = MatchCast::Invite {
            from_id: self.state.id,
            from_name: self.state.name.clone(),
            target_id,
            target_name: target.name.to_string(),
        };
        let _ = self.ports.router.matches().cast(&match_id, cast);
    }

    fn is_tournament_client(&self) -> bool {
        self.state.privileges.contains(Privileges::TOURNAMENT) || self.state.privileges.is_staff()
    }

    async fn tournament_info(&mut self, match_id: i32) {
        if !self.is_tournament_client() {
            return;
        }
        let timeout = self.ports.settings.call_timeout;
        if let Ok(MatchReply::Info(data)) = self
            .ports
            .router
            .matches()
            .call(&match_id, MatchCall::Info, timeout)
            .await
        {
            self.state.enqueue_packet(UpdateMatch { data: *data });
        }
    }

    async fn tournament_watch(&mut self, match_id: i32, watching: bool) {
        if !self.is_tournament_client() {
            return;
        }
        let timeout = self.ports.settings.call_timeout;
        if watching
            && self
                .ports
                .router
                .matches()
                .call(&match_id, MatchCall::Info, timeout)
                .await
                .is_err()
        {
            return;
        }
        let cast = MatchCast::Watch {
            user_id: self.state.id,
            session_id: self.state.session_id,
            watching,
        };
        let _ = self.ports.router.matches().cast(&match_id, cast);
        let channel = match_room::channel_name(match_id);
        if watching {
            self.state.watching_match = Some(match_id);
            self.join_channel_as(channel, match_room::CHANNEL_DISPLAY_NAME.to_owned())
                .await;
        } else if self.state.watching_match == Some(match_id) {
            self.state.watching_match = None;
            self.leave_channel_quietly(&channel).await;
        }
    }
}
