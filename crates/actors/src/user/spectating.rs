//! What a session does for spectating: watching others, and being watched.

use peace_bancho::server::{ChannelKick, FellowSpectatorJoined, SpectateFrames};

use super::{Session, packet_bytes};
use crate::spectate::{self, SpectateCall, SpectateCast, SpectateReply};

impl Session {
    pub(super) async fn start_spectating(&mut self, host_id: i32) {
        let me = self.state.id;
        if host_id == me || self.state.spectating == Some(host_id) {
            return;
        }
        if self.state.privileges.is_restricted() {
            self.notify("Restricted accounts cannot spectate.");
            return;
        }
        if self.ports.router.users().visible(host_id).is_none() {
            tracing::debug!(
                user = me,
                host = host_id,
                "cannot spectate an offline player"
            );
            return;
        }
        self.stop_spectating().await;
        let room = host_id;
        if let Err(e) = self.ports.rooms.open_spectator_room(host_id).await {
            tracing::warn!(
                user = me,
                host = host_id,
                "could not open the spectator room: {e}"
            );
            return;
        }
        let timeout = self.ports.settings.call_timeout;
        match self
            .ports
            .router
            .spectate()
            .call(
                &room,
                SpectateCall::Join {
                    user_id: me,
                    session_id: self.state.session_id,
                },
                timeout,
            )
            .await
        {
            Ok(SpectateReply::Joined { fellows }) => {
                self.state.spectating = Some(host_id);
                for user_id in fellows {
                    self.state.enqueue_packet(FellowSpectatorJoined { user_id });
                }
                let channel = spectate::channel_name(host_id);
                self.join_channel_as(channel, spectate::CHANNEL_DISPLAY_NAME.to_owned())
                    .await;
            }
            Ok(SpectateReply::Full) => self.notify("Too many people are watching this player."),
            Ok(SpectateReply::Alive) => {}
            Err(e) => tracing::debug!(user = me, host = host_id, "spectating failed: {e}"),
        }
    }

    pub(super) async fn stop_spectating(&mut self) {
        let Some(host_id) = self.state.spectating.take() else {
            return;
        };
        let me = self.state.id;
        let _ = self.ports.router.spectate().cast(
            &host_id,
            SpectateCast::Leave {
                user_id: me,
                session_id: self.state.session_id,
            },
        );
        self.leave_channel_quietly(&spectate::channel_name(host_id))
            .await;
    }

    pub(super) fn cant_spectate(&mut self) {
        if let Some(host_id) = self.state.spectating {
            let cast = SpectateCast::CantSpectate {
                user_id: self.state.id,
                session_id: self.state.session_id,
            };
            let _ = self.ports.router.spectate().cast(&host_id, cast);
        }
    }

    /// Relays the host's frames to their room, encoded once for every spectator. (The
    /// client sends frames only while it has spectators, so a room exists; where it
    /// does not, the cast is dropped by the room's node.)
    pub(super) fn spectate_frames(&mut self, frames: peace_bancho::wire::Raw) {
        let me = self.state.id;
        let packet = packet_bytes(SpectateFrames { frames });
        let _ = self
            .ports
            .router
            .spectate()
            .cast(&me, SpectateCast::Frames(packet));
    }

    /// Leaves an instance channel the player is leaving with its room or match, and
    /// tells the client to close the tab.
    pub(super) async fn leave_channel_quietly(&mut self, key: &str) {
        if !self.state.channels.remove(key) {
            return;
        }
        let display = self.state.display_channel(key);
        self.state.channel_aliases.remove(&display);
        let call = crate::channel::ChannelCall::Part {
            user_id: self.state.id,
            session_id: self.state.session_id,
        };
        let timeout = self.ports.settings.call_timeout;
        if let Err(e) = self
            .ports
            .router
            .channels()
            .call(&key.to_owned(), call, timeout)
            .await
        {
            tracing::debug!(user = self.state.id, "leaving {key} failed: {e}");
        }
        self.state.enqueue_packet(ChannelKick { name: display });
    }
}
