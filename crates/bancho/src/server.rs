//! Packets the server sends (protocol 19), one row per packet. The table lists every
//! server id of the protocol so that test clients can decode anything; the server itself
//! sends only ids the stable client knows (it stops reading a reply at an unknown id).

use crate::macros::packets;
use crate::model::{MatchData, Message, Presence};
use crate::wire::Raw;

packets! {
    /// A packet from the server.
    pub enum ServerPacket, ids ServerPacketId {
        /// The login result: a positive user id, or a negative [`crate::LoginFailure`].
        UserId = 5 { user_id: i32 },
        SendMessage = 7 { message: Message },
        Pong = 8 {},
        HandleIrcChangeUsername = 9 { text: String },
        HandleIrcQuit = 10 { text: String },
        /// `pp` is unsigned since client b20250306 (it overflowed i16); older clients
        /// read the same two bytes as signed.
        UserStats = 11 {
            user_id: i32, action: u8, info_text: String, beatmap_md5: String, mods: u32,
            mode: u8, beatmap_id: i32, ranked_score: i64, accuracy: f32, playcount: i32,
            total_score: i64, rank: i32, pp: u16,
        },
        /// `reason` is always 0 in protocol 19.
        UserLogout = 12 { user_id: i32, reason: u8 },
        SpectatorJoined = 13 { user_id: i32 },
        SpectatorLeft = 14 { user_id: i32 },
        SpectateFrames = 15 { frames: Raw },
        VersionUpdate = 19 {},
        SpectatorCantSpectate = 22 { user_id: i32 },
        GetAttention = 23 {},
        Notification = 24 { text: String },
        UpdateMatch = 26 { data: MatchData },
        NewMatch = 27 { data: MatchData },
        DisposeMatch = 28 { match_id: i32 },
        ToggleBlockNonFriendDms = 34 {},
        MatchJoinSuccess = 36 { data: MatchData },
        MatchJoinFail = 37 {},
        FellowSpectatorJoined = 42 { user_id: i32 },
        FellowSpectatorLeft = 43 { user_id: i32 },
        AllPlayersLoaded = 45 {},
        MatchStart = 46 { data: MatchData },
        MatchScoreUpdate = 48 { frame: Raw },
        MatchTransferHost = 50 {},
        MatchAllPlayersLoaded = 53 {},
        MatchPlayerFailed = 57 { slot_id: i32 },
        MatchComplete = 58 {},
        MatchSkip = 61 {},
        Unauthorized = 62 {},
        ChannelJoinSuccess = 64 { name: String },
        ChannelInfo = 65 { name: String, topic: String, user_count: i16 },
        ChannelKick = 66 { name: String },
        ChannelAutoJoin = 67 { name: String, topic: String, user_count: i16 },
        BeatmapInfoReply = 69 { data: Raw },
        Privileges = 71 { privileges: i32 },
        FriendsList = 72 { user_ids: Vec<i32> },
        ProtocolVersion = 75 { version: i32 },
        /// `image_url|click_url`.
        MainMenuIcon = 76 { icon: String },
        Monitor = 80 {},
        /// The slot (not the user) that asked to skip, as chio and the stable client read it.
        MatchPlayerSkipped = 81 { slot_id: i32 },
        UserPresence = 83 { presence: Presence },
        /// Tells the client to log in again after `delay_ms`.
        Restart = 86 { delay_ms: i32 },
        MatchInvite = 88 { message: Message },
        ChannelInfoEnd = 89 {},
        MatchChangePassword = 91 { password: String },
        /// Seconds of silence left; 0 when not silenced.
        SilenceEnd = 92 { seconds: i32 },
        UserSilenced = 94 { user_id: i32 },
        UserPresenceSingle = 95 { user_id: i32 },
        UserPresenceBundle = 96 { user_ids: Vec<i32> },
        UserDmBlocked = 100 { message: Message },
        TargetIsSilenced = 101 { message: Message },
        VersionUpdateForced = 102 {},
        SwitchServer = 103 { delay: i32 },
        AccountRestricted = 104 {},
        Rtx = 105 { text: String },
        MatchAbort = 106 {},
        SwitchTournamentServer = 107 { address: String },
    }
}
