#!/usr/bin/env python3
"""Golden vectors for peace-bancho, produced by the independent `chio` implementation.

    pip install chio==1.1.21
    python3 crates/bancho/tests/golden/generate.py           # rewrites vectors.json
    python3 crates/bancho/tests/golden/generate.py --check   # exits 1 if it is stale

Every case holds a packet as our Rust crate names it (`packet` is the variant of
`ServerPacket`/`ClientPacket`, `fields` its serde fields) and the framed bytes chio
produces for it (`hex`, header included). `tests/golden.rs` checks our encoder and
decoder against them. Packet ids always come from chio's `PacketType` table, never from
ours, so a wrong id or layout on our side shows up as a byte mismatch.

Server packets are written by chio's writer for the client build below. chio only reads
client packets, so client packets are built from chio's own primitive and composite
writers (the layouts are shared with the server direction) and then read back with
chio's reader for that packet, which must return exactly the value they were built from
and consume the whole payload.
"""

import argparse
import json
import re
import sys
from pathlib import Path

import chio
from chio import (
    BeatmapInfo,
    BeatmapInfoReply,
    BeatmapInfoRequest,
    ButtonState,
    Channel,
    Match,
    MatchJoin,
    MatchSlot,
    Message,
    Mods,
    PacketType as P,
    Permissions,
    PresenceFilter,
    QuitState,
    RankedStatus,
    ReplayAction,
    ReplayFrame,
    ReplayFrameBundle,
    ScoreFrame,
    SlotStatus,
    Status,
    TitleUpdate,
    UserInfo,
    UserPresence,
    UserQuit,
    UserStats,
    UserStatus,
)
from chio.io import (
    MemoryStream,
    read_boolean,
    read_u16,
    read_u32,
    write_boolean,
    write_list_s16,
    write_s32,
    write_string,
    write_u16,
    write_u32,
)

CHIO_VERSION = "1.1.21"
# The current stable client line (the 2025-03-06 build made pp unsigned); protocol 19.
CLIENT_BUILD = 20250306

HERE = Path(__file__).resolve().parent
VECTORS = HERE / "vectors.json"
SRC = HERE.parent.parent / "src"

IO = chio.select_client(CLIENT_BUILD)

# Packets of our tables that no case covers, and why. Anything else uncovered is an error.
NOT_COVERED = {
    ("client", "IrcOnly"): "chio has no id 84 in its table",
    ("server", "HandleIrcQuit"): "chio writes nothing for it since b1788 (not sent to stable)",
    ("server", "ToggleBlockNonFriendDms"): "id 34 is LobbyJoin in chio; written as nothing",
    ("server", "AllPlayersLoaded"): "chio has no server id 45",
    ("server", "Unauthorized"): "chio has no writer for it",
}


# --- chio values -> our serde fields -----------------------------------------------


def message_fields(m: Message) -> dict:
    return {"sender": m.sender, "text": m.content, "recipient": m.target, "sender_id": m.sender_id}


class HiddenPassword(str):
    """An empty password that is still *present*: chio's `write_string` then emits
    `0x0b 0x00` (how servers hide a set password) instead of `0x00` (no password)."""

    def __bool__(self) -> bool:
        return True


def match_fields(m: Match) -> dict:
    return {
        "match_id": m.id,
        "in_progress": m.in_progress,
        "match_type": int(m.type),
        "mods": int(m.mods),
        "name": m.name,
        "password": str(m.password) if m.password else None,
        "beatmap_name": m.beatmap_text,
        "beatmap_id": m.beatmap_id,
        "beatmap_md5": m.beatmap_checksum,
        "slots": [
            {
                "status": int(s.status),
                "team": int(s.team),
                # Not on the wire for an empty slot / a non-freemod match: decodes as 0.
                "user_id": s.user_id if s.has_player else 0,
                "mods": int(s.mods) if m.freemod else 0,
            }
            for s in m.slots
        ],
        "host_id": m.host_id,
        "mode": int(m.mode),
        "win_condition": int(m.scoring_type),
        "team_type": int(m.team_type),
        "freemod": m.freemod,
        "seed": m.seed,
    }


def make_match(match_id, name, password, players, *, freemod=False, **kw) -> Match:
    """`players` maps slot index -> (status, team, user_id, mods); other slots are open,
    except the last two, which are locked."""
    slots = []
    for i in range(IO.slot_size):
        if i in players:
            status, team, user_id, mods = players[i]
            slots.append(MatchSlot(user_id, SlotStatus(status), team, Mods(mods)))
        elif i >= IO.slot_size - 2:
            slots.append(MatchSlot(status=SlotStatus.Locked))
        else:
            slots.append(MatchSlot(status=SlotStatus.Open))
    return Match(id=match_id, name=name, password=password, slots=slots, freemod=freemod, **kw)


def score_frame_bytes(frame: ScoreFrame) -> bytes:
    s = MemoryStream()
    IO.write_score_frame(s, frame)
    return s.data


def payload_of(gen) -> bytes:
    """The payload of the single packet a chio `write_*` generator yields."""
    items = list(gen)
    assert len(items) == 1, items
    return items[0][1]


# --- sample values ------------------------------------------------------------------

LONG_TEXT = "A long notification. " * 14 + "ok"  # 296 bytes: a two-byte ULEB128 length
assert 127 < len(LONG_TEXT.encode()) < 16384
UNICODE = "こんにちは, Ünïcödé ✓ 🎵"
MD5 = "d41d8cd98f00b204e9800998ecf8427e"

FRAME_V1 = ScoreFrame(
    time=123456, id=3, total_300=512, total_100=31, total_50=2, total_geki=101,
    total_katu=17, total_miss=4, total_score=7654321, max_combo=812, current_combo=640,
    perfect=False, hp=200, tag_byte=0,
)
FRAME_V2 = ScoreFrame(
    time=98765, id=15, total_300=1000, total_100=0, total_50=0, total_geki=300,
    total_katu=0, total_miss=0, total_score=1000000, max_combo=1500, current_combo=1500,
    perfect=True, hp=254, tag_byte=1, using_scorev2=True, combo_portion=0.75,
    bonus_portion=0.125,
)

BUNDLE_EMPTY = ReplayFrameBundle(ReplayAction.NewSong, [], None, 0, 0)
BUNDLE_FULL = ReplayFrameBundle(
    ReplayAction.Standard,
    [
        ReplayFrame(ButtonState.Left1, 0, 256.5, 192.25, 1000),
        ReplayFrame(ButtonState.Left1 | ButtonState.Smoke, 0, 100.0, -20.75, 1016),
        ReplayFrame(ButtonState.NoButton, 0, 511.875, 383.5, 1033),
    ],
    FRAME_V1,
    1234,
    77,
)

MATCH_PLAIN = make_match(
    1, "peace test lobby", "", {0: (SlotStatus.NotReady, 0, 3, 0)},
    beatmap_text="Artist - Title [Insane]", beatmap_id=75, beatmap_checksum=MD5, host_id=3,
    seed=0,
)
MATCH_PASSWORD_FREEMOD = make_match(
    65535, "Ünïcödé room ✓", "hunter2",
    {
        0: (SlotStatus.Ready, 1, 1000, Mods.Hidden | Mods.HardRock),
        3: (SlotStatus.NotReady, 2, 1001, Mods.NoMod),
        5: (SlotStatus.NoMap, 1, 2147483647, Mods.DoubleTime),
        7: (SlotStatus.Playing, 2, 42, Mods.Flashlight | Mods.Hidden),
    },
    freemod=True, in_progress=True, mods=Mods.NoFail, beatmap_text="", beatmap_id=-1,
    beatmap_checksum="", host_id=1001, mode=chio.Mode.OsuMania,
    scoring_type=chio.ScoringType.ScoreV2, team_type=chio.TeamType.TeamVs, seed=123456789,
)
MATCH_HIDDEN_PASSWORD = make_match(
    300, "locked room", HiddenPassword(""),
    {
        1: (SlotStatus.Complete, 0, 7, 0),
        2: (SlotStatus.Ready, 0, 8, 0),
        4: (SlotStatus.Playing, 0, 9, 0),
    },
    in_progress=True, type=chio.MatchType.Powerplay,
    mods=Mods.DoubleTime | Mods.Hidden, beatmap_text=LONG_TEXT, beatmap_id=2116202,
    beatmap_checksum=MD5, host_id=9, mode=chio.Mode.Taiko,
    scoring_type=chio.ScoringType.Accuracy, team_type=chio.TeamType.TagCoop, seed=42,
)
MATCH_HIDDEN_FREEMOD = make_match(
    2, "freemod, hidden password", HiddenPassword(""),
    {13: (SlotStatus.NotReady, 0, 55, Mods.Easy)},
    freemod=True, beatmap_checksum=MD5, beatmap_id=1, host_id=55,
    mode=chio.Mode.CatchTheBeat, seed=7,
)


def user(user_id, name="", *, utc=0, country=0, privileges=1, mode=0, lon=0.0, lat=0.0,
         rank=0, status=None, stats=None) -> UserInfo:
    return UserInfo(
        id=user_id,
        name=name,
        presence=UserPresence(timezone=utc, country_index=country,
                              permissions=Permissions(privileges), longitude=lon, latitude=lat),
        status=status or UserStatus(mode=mode),
        stats=stats or UserStats(rank=rank),
    )


# --- server packets: written by chio --------------------------------------------------


def split_frame(data: bytes):
    s = MemoryStream(data)
    packet_id = read_u16(s)
    assert read_boolean(s) is False
    length = read_u32(s)
    assert len(data) == IO.header_size + length, "chio wrote more than one packet"
    return packet_id, data[IO.header_size:]


def frame(packet: P, payload: bytes) -> bytes:
    """A packet header as chio writes it (id, no compression, length) plus `payload`."""
    s = MemoryStream()
    write_u16(s, IO.convert_output_packet(packet))
    write_boolean(s, False)
    write_u32(s, len(payload))
    s.write(payload)
    return s.data


def server_case(name, rust, packet: P, fields, *args, strip_tail=0):
    data = IO.write_packet_to_bytes(packet, *args)
    assert data, f"{name}: chio wrote nothing for {packet.name}"
    packet_id, payload = split_frame(data)
    assert packet_id == packet.value
    if strip_tail:
        data = frame(packet, payload[:-strip_tail])
    return {"name": f"server_{name}", "direction": "server", "packet": rust, "fields": fields,
            "hex": data.hex()}


def user_stats_case(name, info: UserInfo):
    st, sx = info.status, info.stats
    fields = {
        "user_id": info.id, "action": int(st.action), "info_text": st.text,
        "beatmap_md5": st.beatmap_checksum, "mods": int(st.mods), "mode": int(st.mode),
        "beatmap_id": st.beatmap_id, "ranked_score": sx.rscore, "accuracy": sx.accuracy,
        "playcount": sx.playcount, "total_score": sx.tscore, "rank": sx.rank, "pp": sx.pp,
    }
    return server_case(name, "UserStats", P.BanchoUserStats, fields, info)


def presence_case(name, info: UserInfo):
    fields = {"presence": {
        "user_id": info.id, "username": info.name, "utc_offset": info.presence.timezone,
        "country_code": info.presence.country_index,
        "privileges": int(info.presence.permissions), "mode": int(info.status.mode),
        "longitude": info.presence.longitude, "latitude": info.presence.latitude,
        "rank": info.stats.rank,
    }}
    # chio still appends the mode as a trailing byte (a leftover of b20120806's layout;
    # since b20121203 the mode travels in the top bits of the privileges byte). The
    # stable client stops reading after the rank and bancho.py does not send it, so the
    # vector drops that one byte; everything before it is chio's.
    data = IO.write_packet_to_bytes(P.BanchoUserPresence, info)
    assert split_frame(data)[1][-1] == info.status.mode
    return server_case(name, "UserPresence", P.BanchoUserPresence, fields, info, strip_tail=1)


def i32_case(name, rust, packet, field, value):
    return server_case(name, rust, packet, {field: value}, value)


def server_cases():
    c = []
    # Login reply: a user id or a negative LoginError.
    c.append(i32_case("user_id_ok", "UserId", P.BanchoLoginReply, "user_id", 1000))
    for err in (chio.LoginError.InvalidLogin, chio.LoginError.InvalidVersion,
                chio.LoginError.UserBanned, chio.LoginError.ServerError,
                chio.LoginError.VerificationRequired):
        c.append(server_case(f"user_id_{snake(err.name)}", "UserId", P.BanchoLoginReply,
                             {"user_id": int(err)}, err))

    for tag, m in [
        ("public", Message("peppy", "hello #osu", "#osu", 2)),
        ("private_unicode", Message(UNICODE, UNICODE, "Ünïcödé", 1001)),
        ("long", Message("BanchoBot", LONG_TEXT, "#announce", 1)),
        ("empty", Message("", "", "", 0)),
    ]:
        c.append(server_case(f"send_message_{tag}", "SendMessage", P.BanchoMessage,
                             {"message": message_fields(m)}, m))

    c.append(server_case("pong", "Pong", P.BanchoPing, {}))
    c.append(server_case("irc_change_username", "HandleIrcChangeUsername",
                         P.BanchoIrcChangeUsername, {"text": "old_name>>>>new name"},
                         "old_name", "new name"))

    c.append(user_stats_case("user_stats_idle", user(3, stats=UserStats(
        rank=0, rscore=0, tscore=0, accuracy=0.0, playcount=0, pp=0))))
    c.append(user_stats_case("user_stats_playing", user(
        1000,
        status=UserStatus(Status.Playing, "Artist - Title [Insane] ✓", Mods.Hidden | Mods.DoubleTime,
                          chio.Mode.Osu, MD5, 2116202),
        stats=UserStats(rank=12345, rscore=9876543210, tscore=123456789012,
                        accuracy=0.96875, playcount=4242, pp=7654))))
    # Past i16::MAX: the 2025-03-06 client reads pp as unsigned.
    c.append(user_stats_case("user_stats_pp_over_i16", user(
        7562902,
        status=UserStatus(Status.Multiplaying, LONG_TEXT, Mods.HardRock, chio.Mode.OsuMania,
                          MD5, 75),
        stats=UserStats(rank=1, rscore=2**40, tscore=2**50, accuracy=1.0,
                        playcount=2**31 - 1, pp=40000))))

    c.append(server_case("user_logout", "UserLogout", P.BanchoUserQuit,
                         {"user_id": 1000, "reason": 0}, UserQuit(user(1000), QuitState.Gone)))
    c.append(server_case("user_logout_osu_remaining", "UserLogout", P.BanchoUserQuit,
                         {"user_id": 7, "reason": 1}, UserQuit(user(7), QuitState.OsuRemaining)))

    c.append(i32_case("spectator_joined", "SpectatorJoined", P.BanchoSpectatorJoined, "user_id", 1001))
    c.append(i32_case("spectator_left", "SpectatorLeft", P.BanchoSpectatorLeft, "user_id", 1001))
    for tag, bundle in [("empty", BUNDLE_EMPTY), ("full", BUNDLE_FULL)]:
        raw = payload_of(IO.write_spectate_frames(bundle))
        c.append(server_case(f"spectate_frames_{tag}", "SpectateFrames", P.BanchoSpectateFrames,
                             {"frames": list(raw)}, bundle))
    c.append(server_case("version_update", "VersionUpdate", P.BanchoVersionUpdate, {}))
    c.append(i32_case("spectator_cant_spectate", "SpectatorCantSpectate",
                      P.BanchoSpectatorCantSpectate, "user_id", 1002))
    c.append(server_case("get_attention", "GetAttention", P.BanchoGetAttention, {}))
    for tag, text in [("short", "Welcome to peace!"), ("unicode", UNICODE),
                      ("long", LONG_TEXT), ("empty", "")]:
        c.append(server_case(f"notification_{tag}", "Notification", P.BanchoAnnounce,
                             {"text": text}, text))

    matches = [("plain", MATCH_PLAIN), ("password_freemod", MATCH_PASSWORD_FREEMOD),
               ("hidden_password", MATCH_HIDDEN_PASSWORD),
               ("hidden_password_freemod", MATCH_HIDDEN_FREEMOD)]
    for rust, packet in [("UpdateMatch", P.BanchoMatchUpdate), ("NewMatch", P.BanchoMatchNew),
                         ("MatchJoinSuccess", P.BanchoMatchJoinSuccess),
                         ("MatchStart", P.BanchoMatchStart)]:
        for tag, m in matches:
            c.append(server_case(f"{snake(rust)}_{tag}", rust, packet,
                                 {"data": match_fields(m)}, m))

    c.append(i32_case("dispose_match", "DisposeMatch", P.BanchoMatchDisband, "match_id", 65535))
    c.append(server_case("match_join_fail", "MatchJoinFail", P.BanchoMatchJoinFail, {}))
    c.append(i32_case("fellow_spectator_joined", "FellowSpectatorJoined",
                      P.BanchoFellowSpectatorJoined, "user_id", 1003))
    c.append(i32_case("fellow_spectator_left", "FellowSpectatorLeft",
                      P.BanchoFellowSpectatorLeft, "user_id", 1003))
    for tag, f in [("v1", FRAME_V1), ("scorev2", FRAME_V2)]:
        c.append(server_case(f"match_score_update_{tag}", "MatchScoreUpdate",
                             P.BanchoMatchScoreUpdate, {"frame": list(score_frame_bytes(f))}, f))
    c.append(server_case("match_transfer_host", "MatchTransferHost", P.BanchoMatchTransferHost, {}))
    c.append(server_case("match_all_players_loaded", "MatchAllPlayersLoaded",
                         P.BanchoMatchAllPlayersLoaded, {}))
    c.append(i32_case("match_player_failed", "MatchPlayerFailed", P.BanchoMatchPlayerFailed,
                      "slot_id", 5))
    c.append(server_case("match_complete", "MatchComplete", P.BanchoMatchComplete, {}))
    c.append(server_case("match_skip", "MatchSkip", P.BanchoMatchSkip, {}))

    for tag, name in [("osu", "#osu"), ("unicode", "#日本語")]:
        c.append(server_case(f"channel_join_success_{tag}", "ChannelJoinSuccess",
                             P.BanchoChannelJoinSuccess, {"name": name}, name))
    for tag, ch in [("osu", Channel("#osu", "General discussion.", user_count=1234)),
                    ("empty_topic", Channel("#lobby", "", user_count=0)),
                    ("long_topic", Channel("#announce", LONG_TEXT, user_count=32767))]:
        fields = {"name": ch.name, "topic": ch.topic, "user_count": ch.user_count}
        c.append(server_case(f"channel_info_{tag}", "ChannelInfo", P.BanchoChannelAvailable,
                             fields, ch))
        c.append(server_case(f"channel_auto_join_{tag}", "ChannelAutoJoin",
                             P.BanchoChannelAvailableAutojoin, fields, ch))
    c.append(server_case("channel_kick", "ChannelKick", P.BanchoChannelRevoked,
                         {"name": "#multiplayer"}, "#multiplayer"))

    reply = BeatmapInfoReply([
        BeatmapInfo(0, 75, 1, 7, RankedStatus.Ranked, MD5, chio.Rank.A, chio.Rank.N,
                    chio.Rank.SH, chio.Rank.N),
        BeatmapInfo(1, 2116202, 1011011, 0, RankedStatus.Loved, MD5),
    ])
    c.append(server_case("beatmap_info_reply", "BeatmapInfoReply", P.BanchoBeatmapInfoReply,
                         {"data": list(payload_of(IO.write_beatmap_info_reply(reply)))}, reply))

    for tag, value in [("player", 1), ("supporter", 1 | 4), ("staff", 1 | 2 | 4 | 8 | 16)]:
        c.append(server_case(f"privileges_{tag}", "Privileges", P.BanchoLoginPermissions,
                             {"privileges": value}, Permissions(value)))
    for tag, ids in [("empty", []), ("several", [1, 3, 1000, 7562902, 2147483647])]:
        c.append(server_case(f"friends_list_{tag}", "FriendsList", P.BanchoFriendsList,
                             {"user_ids": ids}, ids))
    c.append(i32_case("protocol_version", "ProtocolVersion", P.BanchoProtocolNegotiation,
                      "version", 19))
    for tag, t in [("set", TitleUpdate("https://a.ppy.sh/menu-icon.png", "https://osu.ppy.sh/")),
                   ("empty", TitleUpdate("", ""))]:
        c.append(server_case(f"main_menu_icon_{tag}", "MainMenuIcon", P.BanchoTitleUpdate,
                             {"icon": f"{t.image_url}|{t.redirect_url}"}, t))
    c.append(server_case("monitor", "Monitor", P.BanchoMonitor, {}))
    c.append(i32_case("match_player_skipped", "MatchPlayerSkipped", P.BanchoMatchPlayerSkipped,
                      "slot_id", 3))

    # Presence: negative, zero and positive offsets, every mode, privileges up to 5 bits.
    c.append(presence_case("user_presence_osu_negative_utc", user(
        1000, "peppy", utc=-5, country=225, privileges=1 | 4, mode=0, lon=-73.9375,
        lat=40.6875, rank=1)))
    c.append(presence_case("user_presence_taiko_positive_utc", user(
        1001, "Ünïcödé ✓", utc=9, country=111, privileges=1, mode=1, lon=139.6875,
        lat=35.6875, rank=12345)))
    c.append(presence_case("user_presence_catch_min_utc", user(
        3, "BanchoBot", utc=-12, country=0, privileges=1 | 2 | 4 | 8 | 16, mode=2, lon=0.0,
        lat=0.0, rank=0)))
    c.append(presence_case("user_presence_mania_max_utc", user(
        2147483647, "x" * 15, utc=14, country=254, privileges=1 | 16, mode=3, lon=180.0,
        lat=-90.0, rank=2147483647)))

    c.append(i32_case("restart", "Restart", P.BanchoRestart, "delay_ms", 5000))
    invite = Message("host", "Come join my game: [osump://1/ peace test lobby].", "guest", 1000)
    c.append(server_case("match_invite", "MatchInvite", P.BanchoInvite,
                         {"message": message_fields(invite)}, invite))
    c.append(server_case("channel_info_end", "ChannelInfoEnd", P.BanchoChannelInfoComplete, {}))
    for tag, pw in [("set", "hunter2"), ("unicode", "пароль"), ("cleared", "")]:
        c.append(server_case(f"match_change_password_{tag}", "MatchChangePassword",
                             P.BanchoMatchChangePassword, {"password": pw}, pw))
    for tag, secs in [("none", 0), ("silenced", 3600)]:
        c.append(i32_case(f"silence_end_{tag}", "SilenceEnd", P.BanchoSilenceInfo, "seconds", secs))
    c.append(i32_case("user_silenced", "UserSilenced", P.BanchoUserSilenced, "user_id", 1004))
    c.append(server_case("user_presence_single", "UserPresenceSingle",
                         P.BanchoUserPresenceSingle, {"user_id": 1005}, user(1005)))
    for tag, ids in [("empty", []), ("several", [3, 1000, 1001, 7562902])]:
        c.append(server_case(f"user_presence_bundle_{tag}", "UserPresenceBundle",
                             P.BanchoUserPresenceBundle, {"user_ids": ids},
                             [user(i) for i in ids]))
    for rust, packet in [("UserDmBlocked", P.BanchoUserDmsBlocked),
                         ("TargetIsSilenced", P.BanchoTargetIsSilenced)]:
        for tag, target in [("ascii", "someone"), ("unicode", "Ünïcödé")]:
            fields = {"message": message_fields(Message("", "", target))}
            c.append(server_case(f"{snake(rust)}_{tag}", rust, packet, fields, target))
    c.append(server_case("version_update_forced", "VersionUpdateForced",
                         P.BanchoVersionUpdateForced, {}))
    for tag, delay in [("default", 3600), ("zero", 0)]:
        c.append(i32_case(f"switch_server_{tag}", "SwitchServer", P.BanchoSwitchServer, "delay", delay))
    c.append(server_case("account_restricted", "AccountRestricted", P.BanchoAccountRestricted, {}))
    for tag, text in [("default", "Zallius' eyes have awoken"), ("unicode", UNICODE)]:
        c.append(server_case(f"rtx_{tag}", "Rtx", P.BanchoRTX, {"text": text}, text))
    c.append(server_case("match_abort", "MatchAbort", P.BanchoMatchAbort, {}))
    c.append(server_case("switch_tournament_server", "SwitchTournamentServer",
                         P.BanchoSwitchTournamentServer, {"address": "127.0.0.1:13382"},
                         "127.0.0.1:13382"))
    return c


# --- client packets: built with chio's writers, verified with chio's readers ----------


def client_case(name, rust, packet: P, fields, payload: bytes, expected, *, lossy=False,
                tail_ignored_by_chio=False):
    """`expected` is what chio's reader for `packet` must return for `payload`.

    `lossy`: our struct drops a field the client sends, so only decoding is compared.
    `tail_ignored_by_chio`: chio's reader skips a field the client sends (and we read)."""
    assert packet.is_client_packet
    data = frame(packet, payload)

    read_packet, value = IO.read_packet_from_bytes(data)
    assert read_packet is packet, (name, read_packet)
    assert value == expected, f"{name}: chio read {value!r}, expected {expected!r}"
    stream = MemoryStream(payload)
    getattr(IO, packet.handler_name)(stream)
    assert tail_ignored_by_chio or stream.available() == 0, f"{name}: payload not consumed"

    case = {"name": f"client_{name}", "direction": "client", "packet": rust, "fields": fields,
            "hex": data.hex()}
    if lossy:
        case["lossy"] = True
    return case


def written(*writes) -> bytes:
    """Runs chio primitive writers (`(write_fn, value)` pairs) into one payload."""
    s = MemoryStream()
    for write, value in writes:
        write(s, value)
    return s.data


def client_i32_case(name, rust, packet, field, value, expected=None):
    return client_case(name, rust, packet, {field: value}, written((write_s32, value)),
                       value if expected is None else expected)


def client_empty_case(name, rust, packet):
    return client_case(name, rust, packet, {}, b"", None)


def client_cases():
    c = []
    for tag, st in [
        ("idle", UserStatus(Status.Idle, "", Mods.NoMod, chio.Mode.Osu, "", 0)),
        ("playing", UserStatus(Status.Playing, "Artist - Title [Insane] ✓",
                               Mods.Hidden | Mods.HardRock | Mods.DoubleTime, chio.Mode.OsuMania,
                               MD5, 2116202)),
        ("afk_no_map", UserStatus(Status.Afk, LONG_TEXT, Mods.NoMod, chio.Mode.Taiko, "", -1)),
    ]:
        fields = {"action": int(st.action), "info_text": st.text,
                  "beatmap_md5": st.beatmap_checksum, "mods": int(st.mods), "mode": int(st.mode),
                  "beatmap_id": st.beatmap_id}
        c.append(client_case(f"change_action_{tag}", "ChangeAction", P.OsuUserStatus, fields,
                             IO.write_status_update(st), st))

    for tag, m in [("public", Message("", "hello", "#osu", 0)),
                   ("unicode_long", Message("me", UNICODE + LONG_TEXT, "#日本語", 1000))]:
        c.append(client_case(f"send_public_message_{tag}", "SendPublicMessage", P.OsuMessage,
                             {"message": message_fields(m)},
                             payload_of(IO.write_message(m)), m))
    # The client sends an unused i32; our Logout keeps no field for it.
    c.append(client_case("logout", "Logout", P.OsuExit, {}, written((write_s32, 0)), False,
                         lossy=True))
    c.append(client_empty_case("request_status_update", "RequestStatusUpdate",
                               P.OsuStatusUpdateRequest))
    c.append(client_empty_case("ping", "Ping", P.OsuPong))
    c.append(client_i32_case("start_spectating", "StartSpectating", P.OsuStartSpectating,
                             "target_id", 1001))
    c.append(client_empty_case("stop_spectating", "StopSpectating", P.OsuStopSpectating))
    for tag, bundle in [("empty", BUNDLE_EMPTY), ("full", BUNDLE_FULL)]:
        raw = payload_of(IO.write_spectate_frames(bundle))
        c.append(client_case(f"spectate_frames_{tag}", "SpectateFrames", P.OsuSpectateFrames,
                             {"frames": list(raw)}, raw, bundle))
    for tag, text in [("short", "System.NullReferenceException"), ("long", LONG_TEXT)]:
        c.append(client_case(f"error_report_{tag}", "ErrorReport", P.OsuErrorReport,
                             {"report": text}, written((write_string, text)), text))
    c.append(client_empty_case("cant_spectate", "CantSpectate", P.OsuCantSpectate))
    for tag, m in [("ascii", Message("", "hi there", "peppy", 0)),
                   ("unicode", Message("Ünïcödé", UNICODE, "Ünïcödé", 1001))]:
        c.append(client_case(f"send_private_message_{tag}", "SendPrivateMessage",
                             P.OsuPrivateMessage, {"message": message_fields(m)},
                             payload_of(IO.write_message(m)), m))
    c.append(client_empty_case("part_lobby", "PartLobby", P.OsuLobbyPart))
    c.append(client_empty_case("join_lobby", "JoinLobby", P.OsuLobbyJoin))

    # Match payloads from the client: a client never hides a password, so `""` is absent.
    create_plain = make_match(0, "my room", "", {0: (SlotStatus.NotReady, 0, 1000, 0)},
                              beatmap_text="Artist - Title [Easy]", beatmap_id=75,
                              beatmap_checksum=MD5, host_id=1000, seed=0)
    matches = [("plain", create_plain), ("password_freemod", MATCH_PASSWORD_FREEMOD)]
    for rust, packet in [("CreateMatch", P.OsuMatchCreate),
                         ("MatchChangeSettings", P.OsuMatchChangeSettings),
                         ("MatchChangePassword", P.OsuMatchChangePassword)]:
        for tag, m in matches:
            c.append(client_case(f"{snake(rust)}_{tag}", rust, packet,
                                 {"data": match_fields(m)}, IO.write_match(m), m))

    for tag, (mid, pw) in [("no_password", (1, "")), ("password", (65535, "hunter2 ✓"))]:
        c.append(client_case(f"join_match_{tag}", "JoinMatch", P.OsuMatchJoin,
                             {"match_id": mid, "password": pw},
                             written((write_s32, mid), (write_string, pw)), MatchJoin(mid, pw)))
    c.append(client_empty_case("part_match", "PartMatch", P.OsuMatchPart))
    c.append(client_i32_case("match_change_slot", "MatchChangeSlot", P.OsuMatchChangeSlot,
                             "slot_id", 7))
    c.append(client_empty_case("match_ready", "MatchReady", P.OsuMatchReady))
    c.append(client_i32_case("match_lock", "MatchLock", P.OsuMatchLock, "slot_id", 15))
    c.append(client_empty_case("match_start", "MatchStart", P.OsuMatchStart))
    for tag, f in [("v1", FRAME_V1), ("scorev2", FRAME_V2)]:
        raw = score_frame_bytes(f)
        c.append(client_case(f"match_score_update_{tag}", "MatchScoreUpdate",
                             P.OsuMatchScoreUpdate, {"frame": list(raw)}, raw, f))
    c.append(client_empty_case("match_complete", "MatchComplete", P.OsuMatchComplete))
    mods = Mods.Hidden | Mods.HardRock | Mods.Nightcore | Mods.DoubleTime
    c.append(client_case("match_change_mods", "MatchChangeMods", P.OsuMatchChangeMods,
                         {"mods": int(mods)}, written((write_u32, int(mods))), mods))
    c.append(client_empty_case("match_load_complete", "MatchLoadComplete", P.OsuMatchLoadComplete))
    c.append(client_empty_case("match_no_beatmap", "MatchNoBeatmap", P.OsuMatchNoBeatmap))
    c.append(client_empty_case("match_not_ready", "MatchNotReady", P.OsuMatchNotReady))
    c.append(client_empty_case("match_failed", "MatchFailed", P.OsuMatchFailed))
    c.append(client_empty_case("match_has_beatmap", "MatchHasBeatmap", P.OsuMatchHasBeatmap))
    c.append(client_empty_case("match_skip_request", "MatchSkipRequest", P.OsuMatchSkipRequest))
    for tag, name in [("osu", "#osu"), ("unicode", "#日本語")]:
        c.append(client_case(f"channel_join_{tag}", "ChannelJoin", P.OsuChannelJoin,
                             {"name": name}, written((write_string, name)), name))

    for tag, req in [
        ("empty", BeatmapInfoRequest([], [])),
        ("several", BeatmapInfoRequest(
            ["Artist - Title (Mapper) [Insane].osu", "Ünïcödé - ✓ (x) [y].osu", LONG_TEXT],
            [75, 2116202, -1])),
    ]:
        s = MemoryStream()  # chio only reads this packet; mirror read_beatmap_info_request
        write_u32(s, len(req.filenames))
        for f in req.filenames:
            write_string(s, f)
        write_u32(s, len(req.ids))
        for i in req.ids:
            write_s32(s, i)
        c.append(client_case(f"beatmap_info_request_{tag}", "BeatmapInfoRequest",
                             P.OsuBeatmapInfoRequest,
                             {"lookup": {"filenames": req.filenames, "ids": req.ids}}, s.data, req))

    c.append(client_i32_case("match_transfer_host", "MatchTransferHost", P.OsuMatchTransferHost,
                             "slot_id", 3))
    c.append(client_i32_case("friend_add", "FriendAdd", P.OsuFriendsAdd, "user_id", 1001))
    c.append(client_i32_case("friend_remove", "FriendRemove", P.OsuFriendsRemove, "user_id", 1001))
    c.append(client_empty_case("match_change_team", "MatchChangeTeam", P.OsuMatchChangeTeam))
    c.append(client_case("channel_part", "ChannelPart", P.OsuChannelLeave, {"name": "#lobby"},
                         written((write_string, "#lobby")), "#lobby"))
    for f in PresenceFilter:
        c.append(client_i32_case(f"receive_updates_{f.name.lower()}", "ReceiveUpdates",
                                 P.OsuReceiveUpdates, "filter", int(f), f))
    for tag, m in [("set", Message("", "brb ✓", "", 0)), ("clear", Message("", "", "", 0))]:
        c.append(client_case(f"set_away_message_{tag}", "SetAwayMessage",
                             P.OsuSetIrcAwayMessage, {"message": message_fields(m)},
                             payload_of(IO.write_message(m)), m))
    for rust, packet in [("UserStatsRequest", P.OsuUserStatsRequest),
                         ("UserPresenceRequest", P.OsuPresenceRequest)]:
        for tag, ids in [("empty", []), ("several", [3, 1000, 7562902])]:
            c.append(client_case(f"{snake(rust)}_{tag}", rust, packet, {"user_ids": ids},
                                 written((write_list_s16, ids)), ids))
    c.append(client_i32_case("match_invite", "MatchInvite", P.OsuInvite, "user_id", 1002))
    c.append(client_i32_case("tournament_match_info_request", "TournamentMatchInfoRequest",
                             P.OsuTournamentMatchInfo, "match_id", 65535))
    # The client sends its in-game time; chio's reader skips it, bancho.py reads an i32.
    c.append(client_case("user_presence_request_all", "UserPresenceRequestAll",
                         P.OsuPresenceRequestAll, {"ingame_time": 123456},
                         written((write_s32, 123456)), None, tail_ignored_by_chio=True))
    for tag, value in [("off", 0), ("on", 1)]:
        c.append(client_i32_case(f"toggle_block_non_friend_dms_{tag}", "ToggleBlockNonFriendDms",
                                 P.OsuChangeFriendOnlyDms, "value", value, value == 1))
    c.append(client_i32_case("tournament_join_match_channel", "TournamentJoinMatchChannel",
                             P.OsuTournamentJoinMatchChannel, "match_id", 12))
    c.append(client_i32_case("tournament_leave_match_channel", "TournamentLeaveMatchChannel",
                             P.OsuTournamentLeaveMatchChannel, "match_id", 12))
    return c


# --- output -------------------------------------------------------------------------


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def table_names(file: str) -> set:
    """Variant names of one of our packet tables (names only; ids stay chio's)."""
    text = (SRC / file).read_text()
    return set(re.findall(r"^\s+([A-Z]\w*) = \d+ \{", text, re.M))


def build() -> str:
    if chio.__version__ != CHIO_VERSION:
        sys.exit(f"chio {chio.__version__} installed; vectors are made with {CHIO_VERSION}")
    assert IO.version == CLIENT_BUILD and IO.protocol_version == 19 and IO.slot_size == 16

    cases = server_cases() + client_cases()
    names = [c["name"] for c in cases]
    assert len(names) == len(set(names)), "duplicate case names"

    for direction, file in [("server", "server.rs"), ("client", "client.rs")]:
        ours = table_names(file)
        covered = {c["packet"] for c in cases if c["direction"] == direction}
        assert covered <= ours, f"unknown {direction} packets: {covered - ours}"
        skipped = {n for (d, n) in NOT_COVERED if d == direction}
        missing = ours - covered - skipped
        assert not missing, f"{direction} packets without a case: {sorted(missing)}"

    lines = [json.dumps(c, ensure_ascii=False) for c in cases]
    return "[\n" + ",\n".join(lines) + "\n]\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if vectors.json differs from what chio produces now")
    args = parser.parse_args()

    text = build()
    if args.check:
        current = VECTORS.read_text(encoding="utf-8") if VECTORS.exists() else ""
        if current != text:
            print(f"{VECTORS} is stale: run {Path(__file__).name} to regenerate", file=sys.stderr)
            sys.exit(1)
        print(f"{VECTORS.name} is up to date ({len(json.loads(text))} cases)")
        return
    VECTORS.write_text(text, encoding="utf-8")
    print(f"wrote {len(json.loads(text))} cases to {VECTORS}")


if __name__ == "__main__":
    main()
