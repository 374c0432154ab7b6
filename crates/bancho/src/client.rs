//! Packets the osu! client sends (protocol 19), one row per packet.

use crate::macros::packets;
use crate::model::{BeatmapLookup, MatchData, Message};
use crate::wire::Raw;

packets! {
    /// A packet from the client.
    pub enum ClientPacket, ids ClientPacketId {
        /// The player's status changed (idle, playing a map, editing, ...).
        ChangeAction = 0 { action: u8, info_text: String, beatmap_md5: String, mods: u32, mode: u8, beatmap_id: i32 },
        SendPublicMessage = 1 { message: Message },
        /// The client's payload (an unused i32) is ignored.
        Logout = 2 {},
        /// Asks for the player's own stats.
        RequestStatusUpdate = 3 {},
        /// Sent by idle clients on every poll.
        Ping = 4 {},
        StartSpectating = 16 { target_id: i32 },
        StopSpectating = 17 {},
        /// Replay frames of a spectated host, relayed as they came.
        SpectateFrames = 18 { frames: Raw },
        ErrorReport = 20 { report: String },
        /// The spectator lacks the beatmap.
        CantSpectate = 21 {},
        SendPrivateMessage = 25 { message: Message },
        PartLobby = 29 {},
        JoinLobby = 30 {},
        CreateMatch = 31 { data: MatchData },
        JoinMatch = 32 { match_id: i32, password: String },
        PartMatch = 33 {},
        MatchChangeSlot = 38 { slot_id: i32 },
        MatchReady = 39 {},
        MatchLock = 40 { slot_id: i32 },
        MatchChangeSettings = 41 { data: MatchData },
        MatchStart = 44 {},
        /// A score frame; the server rewrites the slot id before relaying it.
        MatchScoreUpdate = 47 { frame: Raw },
        MatchComplete = 49 {},
        MatchChangeMods = 51 { mods: u32 },
        MatchLoadComplete = 52 {},
        MatchNoBeatmap = 54 {},
        MatchNotReady = 55 {},
        MatchFailed = 56 {},
        MatchHasBeatmap = 59 {},
        MatchSkipRequest = 60 {},
        ChannelJoin = 63 { name: String },
        BeatmapInfoRequest = 68 { lookup: BeatmapLookup },
        MatchTransferHost = 70 { slot_id: i32 },
        FriendAdd = 73 { user_id: i32 },
        FriendRemove = 74 { user_id: i32 },
        MatchChangeTeam = 77 {},
        ChannelPart = 78 { name: String },
        /// Which users' presence updates the client wants: 0 none, 1 all, 2 friends.
        ReceiveUpdates = 79 { filter: i32 },
        /// The away message is the message's text; empty clears it.
        SetAwayMessage = 82 { message: Message },
        IrcOnly = 84 {},
        UserStatsRequest = 85 { user_ids: Vec<i32> },
        MatchInvite = 87 { user_id: i32 },
        MatchChangePassword = 90 { data: MatchData },
        TournamentMatchInfoRequest = 93 { match_id: i32 },
        UserPresenceRequest = 97 { user_ids: Vec<i32> },
        UserPresenceRequestAll = 98 { ingame_time: i32 },
        ToggleBlockNonFriendDms = 99 { value: i32 },
        TournamentJoinMatchChannel = 108 { match_id: i32 },
        TournamentLeaveMatchChannel = 109 { match_id: i32 },
    }
}
