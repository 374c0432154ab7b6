//! What a session does with each packet its client sends.

use peace_bancho::client::{self as c};
use peace_bancho::server::{ChannelJoinSuccess, ChannelKick, Notification};
use peace_bancho::{ClientPacket, MAX_MODE, action};
use peace_db::Relationship;

use super::state::board_of;
use super::{Session, UserCast, packet_bytes};
use crate::channel::{ChannelCall, ChannelCast, ChannelReply};

/// Longest chat message relayed; longer ones are cut (osu! itself cuts at 2,000 bytes).
pub const MAX_MESSAGE_LEN: usize = 2000;
/// Longest away message kept.
pub const MAX_AWAY_MESSAGE_LEN: usize = 200;
/// Most user ids answered in one stats or presence request.
pub const MAX_REQUESTED_USERS: usize = 512;
/// Longest status text kept from CHANGE_ACTION.
const MAX_STATUS_TEXT_LEN: usize = 256;

/// Whether the session goes on after a packet.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Flow {
    Continue,
    Stop,
}

/// Cuts `text` to at most `max` bytes on a character boundary.
fn truncate(text: &mut String, max: usize) -> bool {
    if text.len() <= max {
        return false;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    true
}

impl Session {
    pub(super) async fn handle_packet(&mut self, packet: ClientPacket) -> Flow {
        let user = self.state.id;
        let Some(packet) = self.multiplayer_packet(packet).await else {
            return Flow::Continue;
        };
        match packet {
            ClientPacket::Ping(_) | ClientPacket::IrcOnly(_) => {}
            ClientPacket::Logout(_) => {
                // The client sends LOGOUT right after starting up when it still holds a
                // previous token; bancho ignores a logout in the first second.
                if peace_db::unix_now() - self.state.login_time >= 1 {
                    return Flow::Stop;
                }
            }
            ClientPacket::ChangeAction(p) => self.change_action(p).await,
            ClientPacket::RequestStatusUpdate(_) => {
                let stats = self.state.stats_packet();
                self.state.enqueue(&stats);
            }
            ClientPacket::ReceiveUpdates(c::ReceiveUpdates { filter }) => {
                self.state.presence_filter = filter.clamp(0, 2);
            }
            ClientPacket::UserStatsRequest(c::UserStatsRequest { user_ids }) => {
                self.send_others(&user_ids, |u| u.stats.clone());
            }
            ClientPacket::UserPresenceRequest(c::UserPresenceRequest { user_ids }) => {
                self.send_others(&user_ids, |u| u.presence.clone());
            }
            ClientPacket::UserPresenceRequestAll(_) => {
                for u in self.ports.router.users().visible_snapshot() {
                    if u.id != user {
                        self.state.enqueue(&u.presence);
                    }
                }
            }
            ClientPacket::SendPublicMessage(c::SendPublicMessage { message }) => {
                self.public_message(message.recipient, message.text);
            }
            ClientPacket::SendPrivateMessage(c::SendPrivateMessage { message }) => {
                self.private_message(message.recipient, message.text).await;
            }
            ClientPacket::SetAwayMessage(c::SetAwayMessage { mut message }) => {
                truncate(&mut message.text, MAX_AWAY_MESSAGE_LEN);
                self.state.away_notified.clear();
                self.state.away_message = Some(message.text).filter(|t| !t.is_empty());
            }
            ClientPacket::ToggleBlockNonFriendDms(c::ToggleBlockNonFriendDms { value }) => {
                self.state.block_non_friend_dms = value != 0;
            }
            ClientPacket::ChannelJoin(c::ChannelJoin { name }) => {
                if crate::key::is_instance_channel(&name) {
                    tracing::info!(user, channel = %name, "refused a join of a room's channel by its key");
                    self.state.enqueue_packet(ChannelKick { name });
                } else if !self.state.channel_aliases.contains_key(&name) {
                    self.join_channel_as(name.clone(), name).await;
                }
            }
            ClientPacket::ChannelPart(c::ChannelPart { name }) => self.part_channel(name).await,
            ClientPacket::FriendAdd(c::FriendAdd { user_id }) => {
                self.set_friend(user_id, true).await;
            }
            ClientPacket::FriendRemove(c::FriendRemove { user_id }) => {
                self.set_friend(user_id, false).await;
            }
            ClientPacket::StartSpectating(c::StartSpectating { target_id }) => {
                self.start_spectating(target_id).await;
            }
            ClientPacket::StopSpectating(_) => self.stop_spectating().await,
            ClientPacket::CantSpectate(_) => self.cant_spectate(),
            ClientPacket::SpectateFrames(c::SpectateFrames { frames }) => {
                self.spectate_frames(frames)
            }
            ClientPacket::ErrorReport(c::ErrorReport { report }) => {
                let report: String = report.chars().take(1000).collect();
                tracing::info!(user, %report, "client error report");
            }
            // Beatmap info requests are obsolete in current clients; the multiplayer
            // packets were handled above.
            other => {
                tracing::debug!(user, packet = other.id().name(), "packet not handled");
            }
        }
        Flow::Continue
    }

    fn send_others(
        &mut self,
        ids: &[i32],
        pick: impl Fn(&crate::directory::OnlineUser) -> bytes::Bytes,
    ) {
        let directory = self.ports.router.users().clone();
        for &id in ids.iter().take(MAX_REQUESTED_USERS) {
            if id == self.state.id {
                continue;
            }
            if let Some(u) = directory.visible(id) {
                self.state.enqueue(&pick(&u));
            }
        }
    }

    async fn change_action(&mut self, p: c::ChangeAction) {
        if p.action > action::MAX || p.mode > MAX_MODE {
            tracing::debug!(
                user = self.state.id,
                action = p.action,
                mode = p.mode,
                "invalid status ignored"
            );
            return;
        }
        let mut info_text = p.info_text;
        let mut beatmap_md5 = p.beatmap_md5;
        truncate(&mut info_text, MAX_STATUS_TEXT_LEN);
        truncate(&mut beatmap_md5, 32);
        let mode_changed = p.mode != self.state.status.mode
            || board_of(p.mode, p.mods) != board_of(self.state.status.mode, self.state.status.mods);
        self.state.status = super::Status {
            action: p.action,
            info_text,
            beatmap_md5,
            mods: p.mods,
            mode: p.mode,
            beatmap_id: p.beatmap_id,
        };
        if mode_changed {
            self.load_stats().await;
        }
        self.publish_presence(mode_changed);
    }

    /// Loads the statistics of the current mode and board (relax and autopilot plays
    /// count in rows of their own: mode + 4 · board); on a database error the old ones
    /// stay.
    pub(super) async fn load_stats(&mut self) {
        let mode = self.state.stats_mode();
        match self.ports.store.standing(self.state.id, mode).await {
            Ok((stats, rank)) => {
                self.state.rank = rank;
                self.state.stats = stats;
            }
            Err(e) => tracing::warn!(user = self.state.id, "could not load stats: {e}"),
        }
    }

    /// Tells everyone (and the player's own client) the new stats, and the new presence
    /// when it changed too.
    pub(crate) fn publish_presence(&mut self, presence_changed: bool) {
        let stats = self.state.stats_packet();
        let presence = presence_changed.then(|| self.state.presence_packet());
        self.ports
            .router
            .users()
            .update(self.state.id, presence.clone(), Some(stats.clone()));
        // Others pick the new packets up from the directory (through their node's
        // presence feed) when they poll; a restricted player's entry is hidden, so only
        // their own client hears of it.
        self.state.enqueue(&stats);
    }

    pub(super) fn notify(&mut self, text: impl Into<String>) {
        self.state
            .enqueue_packet(Notification { text: text.into() });
    }

    /// Whether the player may send a chat message now: not silenced, and not spamming
    /// (more than the limit within the window silences them, as osu! does).
    fn may_chat(&mut self) -> bool {
        if self.state.is_silenced(peace_db::unix_now()) {
            self.notify("You are silenced and cannot chat.");
            return false;
        }
        let limits = &self.ports.settings.limits;
        let now = crate::unix_millis();
        let window = limits.chat_window.as_millis() as i64;
        let recent = &mut self.state.recent_messages;
        while recent.front().is_some_and(|&t| now - t >= window) {
            recent.pop_front();
        }
        recent.push_back(now);
        if recent.len() <= limits.messages_per_window as usize {
            return true;
        }
        recent.clear();
        let until = peace_db::unix_now() + limits.spam_silence.as_secs() as i64;
        self.silence(until, "spamming");
        false
    }

    /// Silences the player until `until` (0 lifts it): stored, shown to them, and told to
    /// everyone so that clients hide the player's messages.
    pub(super) fn silence(&mut self, until: i64, reason: &str) {
        let me = self.state.id;
        self.state.silence_end = until;
        let db = self.ports.store.clone();
        tokio::spawn(async move {
            if let Err(e) = db.set_silence_end(me, until).await {
                tracing::warn!(user = me, "could not store the silence: {e}");
            }
        });
        let seconds = (until - peace_db::unix_now()).max(0);
        if seconds == 0 {
            self.notify("You are no longer silenced.");
        } else {
            self.notify(format!(
                "You have been silenced for {} minute(s) for {reason}.",
                (seconds + 59) / 60
            ));
            let silenced = packet_bytes(peace_bancho::server::UserSilenced { user_id: me });
            self.ports
                .router
                .broadcast_users(UserCast::Enqueue(silenced), crate::Audience::Everyone);
        }
        self.state.enqueue_packet(peace_bancho::server::SilenceEnd {
            seconds: i32::try_from(seconds).unwrap_or(i32::MAX),
        });
        tracing::info!(user = me, until, reason, "silence changed");
    }

    fn public_message(&mut self, channel: String, mut text: String) {
        let channel = self.state.resolve_channel(&channel);
        if self.state.privileges.is_restricted() {
            self.notify("Restricted accounts cannot chat publicly.");
            return;
        }
        if text.trim().is_empty() || !self.may_chat() {
            return;
        }
        if !self.state.channels.contains(&channel) {
            tracing::debug!(user = self.state.id, %channel, "message to a channel not joined");
            return;
        }
        if truncate(&mut text, MAX_MESSAGE_LEN) {
            self.notify(format!("Your message was cut to {MAX_MESSAGE_LEN} bytes."));
        }
        let msg = ChannelCast::Message {
            from_id: self.state.id,
            from_name: self.state.name.clone(),
            privileges: self.state.privileges,
            text,
        };
        if self.ports.router.channels().cast(&channel, msg).is_err() {
            self.state.channels.remove(&channel);
            self.state.enqueue_packet(ChannelKick { name: channel });
        }
    }

    async fn private_message(&mut self, target: String, mut text: String) {
        if text.trim().is_empty() || !self.may_chat() {
            return;
        }
        if truncate(&mut text, MAX_MESSAGE_LEN) {
            self.notify(format!("Your message was cut to {MAX_MESSAGE_LEN} bytes."));
        }
        let router = &self.ports.router;
        let target_user = router.users().by_name(&target);
        if self.state.privileges.is_restricted()
            && !target_user
                .as_ref()
                .is_some_and(|u| u.privileges.is_staff())
        {
            self.notify("Restricted accounts can only write to the staff.");
            return;
        }
        if let Some(online) = target_user {
            let cast = UserCast::PrivateMessage {
                from_id: self.state.id,
                from_name: self.state.name.clone(),
                from_privileges: self.state.privileges,
                text: text.clone(),
            };
            if router.cast_user(online.id, cast).is_ok() {
                return;
            }
        }
        // Offline (or went offline just now): keep it for their next login.
        match self.ports.store.user_by_name(&target).await {
            Ok(Some(user)) => self.leave_mail(user, &text).await,
            Ok(None) => self.notify(format!("There is no user named {target}.")),
            Err(e) => {
                tracing::warn!(user = self.state.id, "could not look up {target}: {e}");
                self.notify("Your message could not be delivered; please try again.");
            }
        }
    }

    /// Leaves `text` for `to`, who is offline; the sender hears what an online
    /// recipient's session would have told them.
    async fn leave_mail(&mut self, to: peace_db::User, text: &str) {
        use peace_db::MailOutcome;
        let from_target = peace_bancho::Message {
            sender: to.name.clone(),
            recipient: self.state.name.clone(),
            sender_id: to.id,
            ..Default::default()
        };
        match self
            .ports
            .store
            .store_mail(self.state.id, to.id, text)
            .await
        {
            Ok(MailOutcome::Stored) => {}
            Ok(MailOutcome::Silenced) => {
                self.state
                    .enqueue_packet(peace_bancho::server::TargetIsSilenced {
                        message: from_target,
                    })
            }
            // As online: a blocked sender is not told.
            Ok(MailOutcome::Blocked) => {
                tracing::debug!(
                    user = self.state.id,
                    to = to.id,
                    "offline message to a blocker dropped"
                );
            }
            Ok(MailOutcome::TooMany) => self.notify(format!(
                "{} has {} of your messages waiting already; this one was not kept.",
                to.name,
                peace_db::MAX_WAITING_MAIL_PER_SENDER
            )),
            Err(e) => {
                tracing::warn!(user = self.state.id, "could not store offline message: {e}");
                self.notify("Your message could not be delivered; please try again.");
            }
        }
    }

    /// Asks channel `name` to take this session as a member.
    async fn ask_to_join(&self, name: &str) -> Result<ChannelReply, crate::RouteError> {
        let call = ChannelCall::Join {
            user_id: self.state.id,
            session_id: self.state.session_id,
            privileges: self.state.privileges,
        };
        let timeout = self.ports.settings.call_timeout;
        let name = name.to_owned();
        self.ports
            .router
            .channels()
            .call(&name, call, timeout)
            .await
    }

    /// Joins channel `name`, which the client knows as `display` (they differ for the
    /// `#spectator` and `#multiplayer` instance channels). Joining twice does nothing.
    pub(super) async fn join_channel_as(&mut self, name: String, display: String) {
        if self.state.channels.contains(&name) {
            return;
        }
        match self.ask_to_join(&name).await {
            Ok(ChannelReply::Joined) => {
                if name != display {
                    self.state
                        .channel_aliases
                        .insert(display.clone(), name.clone());
                }
                self.state.channels.insert(name);
                self.state
                    .enqueue_packet(ChannelJoinSuccess { name: display });
            }
            Ok(_) => self.state.enqueue_packet(ChannelKick { name: display }),
            Err(e) => {
                tracing::warn!(user = self.state.id, "join {name:?} failed: {e}");
                self.state.enqueue_packet(ChannelKick { name: display });
            }
        }
    }

    /// Joins again a channel the client is in, after the channel restarted empty.
    pub(super) async fn rejoin_channel(&mut self, name: String) {
        if !self.state.channels.contains(&name) {
            return;
        }
        match self.ask_to_join(&name).await {
            Ok(ChannelReply::Joined) => {}
            other => {
                tracing::debug!(user = self.state.id, "rejoining {name:?} failed: {other:?}");
                self.state.channels.remove(&name);
                let display = self.state.display_channel(&name);
                self.state.enqueue_packet(ChannelKick { name: display });
            }
        }
    }

    /// Joins the auto-join channels the player may read; called once at login.
    pub(crate) async fn join_auto_channels(&mut self) {
        let mut channels = self.ports.settings.auto_join.clone();
        channels.sort();
        for name in channels {
            self.join_channel_as(name.clone(), name).await;
        }
    }

    async fn part_channel(&mut self, name: String) {
        let name = self.state.resolve_channel(&name);
        // Instance channels are left together with their room or match.
        if self.state.channel_aliases.values().any(|k| *k == name)
            || !self.state.channels.remove(&name)
        {
            return;
        }
        let call = ChannelCall::Part {
            user_id: self.state.id,
            session_id: self.state.session_id,
        };
        let timeout = self.ports.settings.call_timeout;
        if let Err(e) = self
            .ports
            .router
            .channels()
            .call(&name, call, timeout)
            .await
        {
            tracing::debug!(user = self.state.id, "part {name:?} failed: {e}");
        }
        self.state.enqueue_packet(ChannelKick { name });
    }

    async fn set_friend(&mut self, target: i32, add: bool) {
        if target == self.state.id || (add && self.state.friends.contains(&target)) {
            return;
        }
        let db = &self.ports.store;
        let result = if add {
            match db.user_by_id(target).await {
                Ok(Some(_)) => {
                    db.set_relationship(self.state.id, target, Relationship::Friend)
                        .await
                }
                Ok(None) => return,
                Err(e) => Err(e),
            }
        } else {
            db.remove_relationship(self.state.id, target, Relationship::Friend)
                .await
        };
        match result {
            Ok(()) if add => {
                self.state.blocked.remove(&target);
                self.state.friends.insert(target);
            }
            Ok(()) => {
                self.state.friends.remove(&target);
            }
            Err(e) => {
                tracing::warn!(user = self.state.id, "could not save friend {target}: {e}");
                self.notify("Your friend list could not be saved; please try again.");
            }
        }
    }
}
