"""An osu! stable client, emulated over HTTP, with the independent `chio` package as codec.

Nothing here comes from Peace's Rust code: packet ids and layouts are chio's (the
b20250306 client build, protocol 19), HTTP is the standard library's `http.client`.

* `register()` posts the in-game sign-up form to `POST /users` (`check` = 1 validates,
  0 creates), as multipart/form-data like the client.
* `login()` posts `username\\npassword_md5\\nb20250306.1|0|0|hashes:...:|0\\n` to `POST /`
  and keeps the `cho-token` header; `poll()` posts queued client packets with `osu-token`.
* Client packets are built with chio's writers (`write_status_update`, `write_message`,
  the primitive writers) and read back with chio's reader for that packet before they
  are sent, so they are exactly what chio expects a client to send.
* chio only *writes* server packets, so every server packet received is decoded with
  chio's primitive and composite readers (`read_string`, `read_user_status`,
  `read_message`, ...) and then *re-encoded with chio's writer for that packet*: the bytes
  must come out identical, so any layout disagreement between the server and chio is
  reported (`ProtocolError`) with the packet's hex.
* Like the stock client, a reply is rejected as a whole when it contains a server packet
  id the b20250306 client does not know (it stops reading there).
* Spectating and multiplayer packets use chio's composite codecs too: SPECTATE_FRAMES is
  chio's ReplayFrameBundle writer (replay frames, action, optional score frame), CREATE_MATCH
  and MATCH_CHANGE_SETTINGS chio's `write_match`, MATCH_SCORE_UPDATE chio's
  `write_score_frame`. Two things chio cannot round-trip are bridged explicitly: it reads a
  bundle's `extra` as u32 but writes it as s32 (`spectate_payload`), and it reads a
  password sent as the empty string (0x0b 0x00, "there is a password" in the lobby's view)
  as "" but writes "" as 0x00 (`_match_frame`; the decoded Match gets `password_hidden`).

A client also behaves like the stock one where the server relies on it: it joins #osu
(and auto-join channels) when it sees their CHANNEL_INFO, asks for the presence of users
it only knows by id (USER_PRESENCE_BUNDLE / _SINGLE), and sends a bare PING when idle.
"""

from __future__ import annotations

import hashlib
import http.client
import inspect
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import urlencode

import chio
from chio import (
    Channel,
    Match,
    MatchJoin,
    Message,
    Mode,
    PacketType as P,
    Permissions,
    QuitState,
    ReplayFrameBundle,
    ScoreFrame,
    TitleUpdate,
    UserInfo,
    UserPresence,
    UserQuit,
    UserStats,
    UserStatus,
)
from chio.io import (
    MemoryStream,
    read_f32,
    read_list_s16,
    read_s16,
    read_s32,
    read_string,
    read_u8,
    read_u16,
    read_u32,
    read_u64,
    write_boolean,
    write_list_s16,
    write_s32,
    write_string,
    write_u16,
    write_u32,
)

CHIO_VERSION = "1.1.21"
CLIENT_BUILD = 20250306
CLIENT_VERSION = "b20250306.1"
PROTOCOL_VERSION = 19
IO = chio.select_client(CLIENT_BUILD)
HEADER_SIZE = 7  # u16 id, u8 compression flag, u32 length

USER_AGENT = "osu!"
HTTP_TIMEOUT = 10.0
VERBOSE = bool(os.environ.get("EMULATE_VERBOSE"))  # print every server packet received


class ProtocolError(Exception):
    """The server sent something the stock client (as chio describes it) would not read."""


def md5_hex(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


# --- which server packets the b20250306 client knows ---------------------------------


def _writes_nothing(packet: P) -> bool:
    """chio marks server packets a build no longer reads with a writer that only returns
    [] (some writers return [] conditionally, e.g. for a slot id out of range: those
    packets are known)."""
    writer = getattr(IO, packet.handler_name, None)
    if writer is None:
        return True
    try:
        return "yield" not in inspect.getsource(writer)
    except (OSError, TypeError):
        return False


CLIENT_KNOWN_SERVER_IDS = frozenset(
    p.value for p in P if p.is_server_packet and IO.implements_packet(p) and not _writes_nothing(p)
)


# --- client packets (client -> server) ------------------------------------------------


def _frame(packet: P, payload: bytes) -> bytes:
    s = MemoryStream()
    write_u16(s, packet.value)
    write_boolean(s, False)
    write_u32(s, len(payload))
    s.write(payload)
    return s.data


def _written(*writes) -> bytes:
    s = MemoryStream()
    for write, value in writes:
        write(s, value)
    return s.data


def _payload_of(gen) -> bytes:
    items = list(gen)
    assert len(items) == 1, items
    return items[0][1]


_CHECK = object()


def client_packet(packet: P, payload: bytes, expected: Any = _CHECK) -> bytes:
    """Frames a client packet and checks that chio's reader for it reads `expected`."""
    assert packet.is_client_packet, packet
    data = _frame(packet, payload)
    read, value = IO.read_packet_from_bytes(data)
    if read is not packet:
        raise AssertionError(f"chio read {read} back for {packet}")
    if expected is not _CHECK and value != expected:
        raise AssertionError(f"chio read {value!r} back for {packet}, expected {expected!r}")
    return data


def ping() -> bytes:
    return client_packet(P.OsuPong, b"", None)


def change_action(status: UserStatus) -> bytes:
    return client_packet(P.OsuUserStatus, IO.write_status_update(status))


def public_message(channel: str, text: str) -> bytes:
    m = Message("", text, channel, 0)
    return client_packet(P.OsuMessage, _payload_of(IO.write_message(m)), m)


def private_message(target: str, text: str) -> bytes:
    m = Message("", text, target, 0)
    return client_packet(P.OsuPrivateMessage, _payload_of(IO.write_message(m)), m)


def logout() -> bytes:
    return client_packet(P.OsuExit, _written((write_s32, 0)), False)


def channel_join(name: str) -> bytes:
    return client_packet(P.OsuChannelJoin, _written((write_string, name)), name)


def channel_part(name: str) -> bytes:
    return client_packet(P.OsuChannelLeave, _written((write_string, name)), name)


def join_lobby() -> bytes:
    return client_packet(P.OsuLobbyJoin, b"", None)


def part_lobby() -> bytes:
    return client_packet(P.OsuLobbyPart, b"", None)


def user_stats_request(ids: List[int]) -> bytes:
    return client_packet(P.OsuUserStatsRequest, _written((write_list_s16, ids)), ids)


def presence_request(ids: List[int]) -> bytes:
    return client_packet(P.OsuPresenceRequest, _written((write_list_s16, ids)), ids)


def status_update_request() -> bytes:
    return client_packet(P.OsuStatusUpdateRequest, b"", None)


# spectating


def start_spectating(host_id: int) -> bytes:
    return client_packet(P.OsuStartSpectating, _written((write_s32, host_id)), host_id)


def stop_spectating() -> bytes:
    return client_packet(P.OsuStopSpectating, b"", None)


def spectate_frames(bundle: ReplayFrameBundle) -> bytes:
    """SPECTATE_FRAMES as the host's client sends it: the payload is chio's
    ReplayFrameBundle writer's (extra, frame count, replay frames, action, optional score
    frame, sequence), which is the same for the client and the relayed server packet."""
    payload = _payload_of(IO.write_spectate_frames(bundle))
    data = client_packet(P.OsuSpectateFrames, payload)
    _, back = IO.read_packet_from_bytes(data)
    if spectate_payload(back) != payload:
        raise AssertionError(f"chio reads {bundle!r} back as {back!r}, which it writes "
                             f"differently")
    return data


def spectate_payload(bundle: ReplayFrameBundle) -> bytes:
    """chio's bytes for a bundle. chio reads `extra` as u32 but writes it as s32: a read
    -1 comes back as 0xffffffff, so it is turned signed again before writing."""
    extra = bundle.extra - (1 << 32) if bundle.extra >= 1 << 31 else bundle.extra
    signed = ReplayFrameBundle(bundle.action, bundle.frames, bundle.frame, extra,
                               bundle.sequence)
    return _payload_of(IO.write_spectate_frames(signed))


# multiplayer


def create_match(match: Match) -> bytes:
    return client_packet(P.OsuMatchCreate, IO.write_match(match), match)


def join_match(match_id: int, password: str) -> bytes:
    return client_packet(P.OsuMatchJoin, _written((write_s32, match_id),
                                                  (write_string, password)),
                         MatchJoin(match_id, password))


def part_match() -> bytes:
    return client_packet(P.OsuMatchPart, b"", None)


def match_change_settings(match: Match) -> bytes:
    return client_packet(P.OsuMatchChangeSettings, IO.write_match(match), match)


def match_ready() -> bytes:
    return client_packet(P.OsuMatchReady, b"", None)


def match_start() -> bytes:
    return client_packet(P.OsuMatchStart, b"", None)


def match_load_complete() -> bytes:
    return client_packet(P.OsuMatchLoadComplete, b"", None)


def score_frame_bytes(frame: ScoreFrame) -> bytes:
    s = MemoryStream()
    IO.write_score_frame(s, frame)
    return s.data


def match_score_update(frame: ScoreFrame) -> bytes:
    return client_packet(P.OsuMatchScoreUpdate, score_frame_bytes(frame), frame)


def match_skip_request() -> bytes:
    return client_packet(P.OsuMatchSkipRequest, b"", None)


def match_complete() -> bytes:
    return client_packet(P.OsuMatchComplete, b"", None)


# --- server packets (server -> client) ------------------------------------------------


@dataclass
class ServerPacket:
    packet: P
    value: Any
    raw: bytes  # the whole frame, header included

    @property
    def name(self) -> str:
        return self.packet.name

    def __repr__(self) -> str:
        return f"{self.packet.name}({self.value!r})"


def _read_presence(s: MemoryStream) -> UserInfo:
    user_id = read_s32(s)
    name = read_string(s)
    timezone = read_u8(s) - 24
    country = read_u8(s)
    perms_mode = read_u8(s)
    longitude = read_f32(s)
    latitude = read_f32(s)
    rank = read_s32(s)
    return UserInfo(
        id=abs(user_id),
        name=name,
        presence=UserPresence(
            is_irc=user_id < 0, timezone=timezone, country_index=country,
            permissions=Permissions(perms_mode & 0x1F), longitude=longitude, latitude=latitude,
        ),
        status=UserStatus(mode=Mode(perms_mode >> 5)),
        stats=UserStats(rank=rank),
    )


def _read_stats(s: MemoryStream) -> UserInfo:
    user_id = read_s32(s)
    status = IO.read_user_status(s)
    stats = UserStats()
    stats.rscore = read_u64(s)
    stats.accuracy = read_f32(s)
    stats.playcount = read_u32(s)
    stats.tscore = read_u64(s)
    stats.rank = read_u32(s)
    stats.pp = read_u16(s)
    return UserInfo(id=user_id, status=status, stats=stats)


def _read_quit(s: MemoryStream) -> UserQuit:
    return UserQuit(UserInfo(id=read_s32(s)), QuitState(read_u8(s)))


def _read_channel(s: MemoryStream) -> Channel:
    return Channel(read_string(s), read_string(s), user_count=read_s16(s))


def _read_title(s: MemoryStream) -> TitleUpdate:
    image, _, redirect = read_string(s).partition("|")
    return TitleUpdate(image, redirect)


def _read_target(s: MemoryStream) -> str:
    return IO.read_message(s).target


def _empty(_s: MemoryStream) -> None:
    return None


def _raw(s: MemoryStream) -> bytes:
    return s.read()


def _one(value):
    return (value,)


def _read_match(s: MemoryStream) -> Match:
    """chio's match reader, noting whether the password was sent as an *empty string*
    (0x0b 0x00: "there is a password", the lobby's view) rather than as no string (0x00):
    chio reads both as "", so `password_hidden` keeps the difference."""
    start = s.position
    match = IO.read_match(s)
    at = start + 8 + len(_written((write_string, match.name)))  # u16 u8 u8 u32, name
    data = s.data
    match.password_hidden = match.password == "" and data[at:at + 2] == b"\x0b\x00"
    return match


def _match_frame(packet: P, match: Match) -> bytes:
    """What chio writes for a match packet, except that a hidden password is written as
    the empty string 0x0b 0x00, which chio's write_string cannot express (it writes ""
    as 0x00, i.e. "no password")."""
    payload = _payload_of(getattr(IO, packet.handler_name)(match))
    if getattr(match, "password_hidden", False):
        at = 8 + len(_written((write_string, match.name)))
        assert payload[at] == 0, payload.hex()
        payload = payload[:at] + b"\x0b\x00" + payload[at + 1:]
    return _frame(packet, payload)


# packet -> (reader, chio writer arguments for the value, or None: no re-encoding check)
_READERS: Dict[P, Tuple[Callable[[MemoryStream], Any], Optional[Callable[[Any], tuple]]]] = {
    P.BanchoLoginReply: (read_s32, _one),
    P.BanchoProtocolNegotiation: (read_s32, _one),
    P.BanchoLoginPermissions: (lambda s: Permissions(read_s32(s)), _one),
    P.BanchoAnnounce: (read_string, _one),
    P.BanchoChannelAvailable: (_read_channel, _one),
    P.BanchoChannelAvailableAutojoin: (_read_channel, _one),
    P.BanchoChannelInfoComplete: (_empty, lambda v: ()),
    P.BanchoChannelJoinSuccess: (read_string, _one),
    P.BanchoChannelRevoked: (read_string, _one),
    P.BanchoTitleUpdate: (_read_title, _one),
    P.BanchoFriendsList: (read_list_s16, _one),
    P.BanchoSilenceInfo: (read_s32, _one),
    P.BanchoUserPresence: (_read_presence, _one),
    P.BanchoUserStats: (_read_stats, _one),
    P.BanchoUserQuit: (_read_quit, _one),
    P.BanchoMessage: (IO.read_message, _one),
    P.BanchoInvite: (IO.read_message, _one),
    P.BanchoUserDmsBlocked: (_read_target, _one),
    P.BanchoTargetIsSilenced: (_read_target, _one),
    P.BanchoPing: (_empty, lambda v: ()),
    P.BanchoRestart: (read_u32, _one),
    P.BanchoUserPresenceSingle: (read_s32, lambda v: (UserInfo(id=v),)),
    P.BanchoUserPresenceBundle: (read_list_s16, lambda v: ([UserInfo(id=i) for i in v],)),
    P.BanchoIrcChangeUsername: (
        lambda s: tuple(read_string(s).split(">>>>", 1)), lambda v: tuple(v)),
    P.BanchoUserSilenced: (read_s32, _one),
    P.BanchoSpectatorJoined: (read_u32, _one),
    P.BanchoSpectatorLeft: (read_u32, _one),
    P.BanchoSpectatorCantSpectate: (read_u32, _one),
    P.BanchoFellowSpectatorJoined: (read_u32, _one),
    P.BanchoFellowSpectatorLeft: (read_u32, _one),
    P.BanchoMatchDisband: (read_u32, _one),
    P.BanchoMatchPlayerFailed: (read_u32, _one),
    P.BanchoMatchPlayerSkipped: (read_s32, _one),
    P.BanchoSwitchServer: (read_s32, _one),
    P.BanchoMatchChangePassword: (read_string, _one),
    P.BanchoRTX: (read_string, _one),
    P.BanchoSwitchTournamentServer: (read_string, _one),
    # Match packets: chio's match reader and writer (see _match_frame for the one thing
    # chio cannot write: a hidden password).
    P.BanchoMatchUpdate: (_read_match, _one),
    P.BanchoMatchNew: (_read_match, _one),
    P.BanchoMatchJoinSuccess: (_read_match, _one),
    P.BanchoMatchStart: (_read_match, _one),
    P.BanchoSpectateFrames: (IO.read_spectate_frames, _one),
    P.BanchoMatchScoreUpdate: (IO.read_score_frame, _one),
    P.BanchoBeatmapInfoReply: (_raw, None),
}
for _p in (P.BanchoVersionUpdate, P.BanchoGetAttention, P.BanchoMatchJoinFail,
           P.BanchoMatchTransferHost, P.BanchoMatchAllPlayersLoaded, P.BanchoMatchComplete,
           P.BanchoMatchSkip, P.BanchoMonitor, P.BanchoVersionUpdateForced,
           P.BanchoAccountRestricted, P.BanchoMatchAbort):
    _READERS[_p] = (_empty, lambda v: ())


_MATCH_PACKETS = frozenset((P.BanchoMatchUpdate, P.BanchoMatchNew, P.BanchoMatchJoinSuccess,
                            P.BanchoMatchStart))


def parse_server_packets(data: bytes) -> List[ServerPacket]:
    """Splits and decodes a reply body; raises ProtocolError on anything the b20250306
    client would not read, or on bytes that differ from what chio writes for the value."""
    out: List[ServerPacket] = []
    offset = 0
    while offset < len(data):
        where = f"at byte {offset} of a {len(data)}-byte reply"
        if len(data) - offset < HEADER_SIZE:
            raise ProtocolError(f"truncated packet header {where}: {data[offset:].hex()}")
        s = MemoryStream(data[offset:offset + HEADER_SIZE])
        packet_id = read_u16(s)
        compressed = read_u8(s)
        length = read_u32(s)
        end = offset + HEADER_SIZE + length
        if end > len(data):
            raise ProtocolError(
                f"packet id {packet_id} {where} claims {length} payload bytes, "
                f"only {len(data) - offset - HEADER_SIZE} follow")
        frame = data[offset:end]
        payload = data[offset + HEADER_SIZE:end]
        offset = end
        if packet_id not in CLIENT_KNOWN_SERVER_IDS:
            raise ProtocolError(
                f"server packet id {packet_id} {where} is unknown to the b{CLIENT_BUILD} "
                f"client (chio); the client would drop the rest of the reply. "
                f"frame: {frame.hex()}")
        if compressed != 0:
            raise ProtocolError(f"packet {packet_id} {where} has compression flag {compressed}")
        packet = P(packet_id)
        reader, args_of = _READERS.get(packet, (_raw, None))
        stream = MemoryStream(payload)
        try:
            value = reader(stream)
        except Exception as e:  # noqa: BLE001 - any decode error is a protocol error
            raise ProtocolError(
                f"{packet.name} {where} does not decode with chio's layout ({e!r}); "
                f"payload: {payload.hex()}") from e
        rest = stream.available()
        # chio still appends the mode as a trailing byte to USER_PRESENCE (a leftover of
        # b20120806's layout); the stable client stops reading after the rank.
        allowed_rest = 1 if packet is P.BanchoUserPresence else 0
        if rest > allowed_rest:
            raise ProtocolError(
                f"{packet.name} {where}: {rest} payload byte(s) left after chio's layout "
                f"({value!r}); payload: {payload.hex()}")
        if args_of is not None:
            if packet in _MATCH_PACKETS:
                expected = _match_frame(packet, value)
            elif packet is P.BanchoSpectateFrames:
                expected = _frame(packet, spectate_payload(value))
            else:
                expected = IO.write_packet_to_bytes(packet, *args_of(value))
            if packet is P.BanchoUserPresence and rest == 0:
                expected = _frame(packet, expected[HEADER_SIZE:-1])
            if expected != frame:
                raise ProtocolError(
                    f"{packet.name} {where} decodes as {value!r}, but chio writes that "
                    f"value as {expected.hex()}; the server sent {frame.hex()}")
        out.append(ServerPacket(packet, value, frame))
    return out


# --- HTTP -----------------------------------------------------------------------------


@dataclass
class HttpReply:
    status: int
    headers: Dict[str, str]
    body: bytes

    def header(self, name: str) -> Optional[str]:
        return self.headers.get(name.lower())


def http_request(port: int, method: str, path: str, *, host: str, body: bytes = b"",
                 headers: Optional[Dict[str, str]] = None,
                 timeout: float = HTTP_TIMEOUT) -> HttpReply:
    """One request to 127.0.0.1:port (never anywhere else), with `Host: host`."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host)
        conn.putheader("User-Agent", USER_AGENT)
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        if method != "GET" or body:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body if body else None)
        resp = conn.getresponse()
        data = resp.read()
        return HttpReply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
    finally:
        conn.close()


def multipart(fields: Dict[str, str]) -> Tuple[bytes, str]:
    boundary = "-------------------------" + uuid.uuid4().hex[:16]
    parts = []
    for name, value in fields.items():
        parts.append(
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n"
            f"{value}\r\n".encode())
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


# --- the client -----------------------------------------------------------------------


class StepFailed(Exception):
    pass


@dataclass
class LoginResult:
    http: HttpReply
    token: Optional[str]
    packets: List[ServerPacket]
    user_id: Optional[int]


@dataclass
class OsuClient:
    port: int
    username: str
    password: str
    domain: str = "peace.local"
    utc_offset: int = 0
    # state, as the client tracks it
    token: Optional[str] = None
    user_id: Optional[int] = None
    login_time: float = 0.0
    log: List[ServerPacket] = field(default_factory=list)
    presences: Dict[int, UserInfo] = field(default_factory=dict)
    stats: Dict[int, UserInfo] = field(default_factory=dict)
    channels: Dict[str, Channel] = field(default_factory=dict)
    joined: set = field(default_factory=set)
    outbox: List[bytes] = field(default_factory=list)
    match: Optional[Match] = None  # the match the client is in, as last told
    _join_sent: set = field(default_factory=set)
    _presence_asked: set = field(default_factory=set)

    # -- web ------------------------------------------------------------------------

    @property
    def web_host(self) -> str:
        return f"osu.{self.domain}"

    @property
    def bancho_host(self) -> str:
        return f"c.{self.domain}"

    @property
    def password_md5(self) -> str:
        return md5_hex(self.password)

    def register(self, email: str, *, check: bool) -> Tuple[int, Any]:
        """The sign-up form; returns (status, body as JSON when it is JSON, else text)."""
        body, content_type = multipart({
            "user[username]": self.username,
            "user[user_email]": email,
            "user[password]": self.password,
            "check": "1" if check else "0",
        })
        reply = http_request(self.port, "POST", "/users", host=self.web_host, body=body,
                             headers={"Content-Type": content_type})
        text = reply.body.decode(errors="replace")
        try:
            return reply.status, json.loads(text)
        except ValueError:
            return reply.status, text

    def bancho_connect(self) -> HttpReply:
        query = urlencode({"v": CLIENT_VERSION, "u": self.username, "h": self.password_md5,
                           "fx": "dotnet40", "ch": self._hashes(), "retry": "0"})
        return http_request(self.port, "GET", f"/web/bancho_connect.php?{query}",
                            host=self.web_host)

    # -- bancho ---------------------------------------------------------------------

    def _hashes(self) -> str:
        seed = self.username
        adapters = "00-15-5D-" + md5_hex(seed)[:6].upper() + "."
        return ":".join([md5_hex("C:\\osu!\\osu!.exe" + seed), adapters, md5_hex(adapters),
                         md5_hex("uninstall" + seed), md5_hex("disk" + seed)]) + ":"

    def login_body(self, password_md5: Optional[str] = None) -> bytes:
        info = f"{CLIENT_VERSION}|{self.utc_offset}|0|{self._hashes()}|0"
        return f"{self.username}\n{password_md5 or self.password_md5}\n{info}\n".encode()

    def login(self, password_md5: Optional[str] = None) -> LoginResult:
        reply = http_request(self.port, "POST", "/", host=self.bancho_host,
                             body=self.login_body(password_md5))
        token = reply.header("cho-token")
        packets = parse_server_packets(reply.body)
        ids = [p.value for p in packets if p.packet is P.BanchoLoginReply]
        user_id = ids[0] if ids else None
        if token and token != "no" and user_id is not None and user_id > 0:
            self.token = token
            self.user_id = user_id
            self.login_time = time.monotonic()
        self._absorb(packets)
        return LoginResult(reply, token, packets, user_id)

    def send(self, *packets: bytes) -> None:
        self.outbox.extend(packets)

    def poll(self, token: Optional[str] = None) -> List[ServerPacket]:
        """One request with everything queued (a bare PING when nothing is)."""
        token = token or self.token
        if not token:
            raise StepFailed(f"{self.username} has no session token")
        body = b"".join(self.outbox) or ping()
        self.outbox.clear()
        reply = http_request(self.port, "POST", "/", host=self.bancho_host, body=body,
                             headers={"osu-token": token})
        if reply.status != 200:
            raise StepFailed(f"{self.username}: poll answered HTTP {reply.status}: "
                             f"{reply.body[:200]!r}")
        packets = parse_server_packets(reply.body)
        self._absorb(packets)
        return packets

    def _absorb(self, packets: List[ServerPacket]) -> None:
        for p in packets:
            if VERBOSE:
                print(f"     [{self.username}] <- {p.name} {p.value!r} ({p.raw.hex()})")
            self.log.append(p)
            v = p.value
            if p.packet in (P.BanchoChannelAvailable, P.BanchoChannelAvailableAutojoin):
                self.channels[v.name] = v
                # The stock client joins #osu (and auto-join channels) on sight.
                wants = v.name == "#osu" or p.packet is P.BanchoChannelAvailableAutojoin
                if wants and v.name not in self.joined and v.name not in self._join_sent:
                    self._join_sent.add(v.name)
                    self.outbox.append(channel_join(v.name))
            elif p.packet is P.BanchoChannelJoinSuccess:
                self.joined.add(v)
            elif p.packet is P.BanchoChannelRevoked:
                self.joined.discard(v)
                self._join_sent.discard(v)
            elif p.packet is P.BanchoMatchJoinSuccess:
                self.match = v
            elif p.packet in (P.BanchoMatchUpdate, P.BanchoMatchStart):
                if self.match is not None and v.id == self.match.id:
                    self.match = v
            elif p.packet is P.BanchoMatchDisband:
                if self.match is not None and v == self.match.id:
                    self.match = None
            elif p.packet is P.BanchoUserPresence:
                self.presences[v.id] = v
            elif p.packet is P.BanchoUserStats:
                self.stats[v.id] = v
            elif p.packet is P.BanchoUserQuit:
                self.presences.pop(v.info.id, None)
                self.stats.pop(v.info.id, None)
            elif p.packet in (P.BanchoUserPresenceSingle, P.BanchoUserPresenceBundle):
                ids = [v] if isinstance(v, int) else list(v)
                unknown = [i for i in ids if i not in self.presences
                           and i not in self._presence_asked and i != self.user_id]
                if unknown:
                    self._presence_asked.update(unknown)
                    self.outbox.append(presence_request(unknown))

    # -- waiting --------------------------------------------------------------------

    def mark(self) -> int:
        return len(self.log)

    def since(self, mark: int, packet: Optional[P] = None) -> List[ServerPacket]:
        return [p for p in self.log[mark:] if packet is None or p.packet is packet]

    def wait_for(self, what: str, predicate: Callable[[], Any], timeout: float,
                 interval: float = 0.05, mark: Optional[int] = None) -> Any:
        """Polls until `predicate()` is truthy; StepFailed after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        start = self.mark() if mark is None else mark
        while True:
            self.poll()
            result = predicate()
            if result:
                return result
            if time.monotonic() >= deadline:
                seen = ", ".join(repr(p) for p in self.log[start:]) or "nothing"
                raise StepFailed(f"{self.username}: timed out after {timeout:.1f}s waiting "
                                 f"for {what}; received meanwhile: {seen[:1500]}")
            time.sleep(interval)

    def messages(self, mark: int = 0) -> List[Message]:
        return [p.value for p in self.since(mark, P.BanchoMessage)]
