#!/usr/bin/env python3
"""Three new players against a real `peace serve`, through an emulated osu! client.

    pip install chio==1.1.21
    python3 tools/emulate/scenario.py [path/to/peace]     # or PEACE_BIN=...; default target/debug/peace

Starts the server in a temporary directory (SQLite, bcrypt cost 4, a free 127.0.0.1
port), registers three accounts through the in-game sign-up form, logs them in and
walks through presence, public and private chat, #lobby, a status change, a bot command
and a logout. A fourth account then joins for spectating (two spectators, replay frames
relayed byte for byte, #spectator chat, leaving, the room closing) and multiplayer (the
lobby, creating and joining a passworded match, settings, ready, start, load, score
frames, skip, completion, host transfer, disposal). Last, an administrator made with
`peace user add --admin` moderates through the bot (silence, unsilence, alerts, kick,
ban). Prints one line per checked step and then `N passed, M failed`; exits 1 at the
first failure. The whole run is bounded (80 s
at most; it normally takes about 5 s) and the server is always stopped.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Callable, List, Optional

sys.dont_write_bytecode = True  # keep tools/emulate free of __pycache__
sys.path.insert(0, str(Path(__file__).resolve().parent))

import chio  # noqa: E402

import client as osu  # noqa: E402
from client import P, OsuClient, ProtocolError, StepFailed  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
RUN_BUDGET = float(os.environ.get("EMULATE_BUDGET", "80"))  # seconds for the whole run
STARTUP_TIMEOUT = 20.0     # for /api/v1/health
WAIT = 5.0                 # for any one thing a client waits for
QUIET = 0.4                # how long a client listens for something that must NOT come


class Failed(Exception):
    pass


# --- the server ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


ADMIN_TOKEN = "emulate-admin-token"


class Node:
    """One `peace serve` process."""

    def __init__(self, binary: Path, root: Path, name: str, nodes: int):
        self.binary = binary
        self.root = root
        self.name = name
        self.nodes = nodes
        self.port = free_port()
        self.cluster_port = free_port()
        self.proc: Optional[subprocess.Popen] = None
        self.config_path = root / f"{name}.toml"
        self.log_path = root / f"{name}.log"
        self.log = None

    def write_config(self, seed_ports: List[int]) -> None:
        text = (
            "[node]\n"
            f'name = "{self.name}"\n'
            "[http]\n"
            f'addr = "127.0.0.1:{self.port}"\n'
            'domain = "peace.local"\n'
            "[database]\n"
            f'url = "sqlite://{self.root / "peace.db"}"\n'
            "[login]\n"
            "bcrypt_cost = 4\n"
            "[sessions]\n"
            "idle_timeout_secs = 60\n"
        )
        if self.nodes > 1:
            # A cluster: the nodes share the database (PEACE_DATABASE_URL overrides the
            # SQLite file for all of them), the session secret and the cookie.
            text += (
                'secret = "emulate-session-secret"\n'
                "[api]\n"
                f'admin_token = "{ADMIN_TOKEN}"\n'
                "[cluster]\n"
                f'listen = "127.0.0.1:{self.cluster_port}"\n'
                "seeds = [" + ", ".join(f'"127.0.0.1:{p}"' for p in seed_ports) + "]\n"
                'cookie = "emulate-cookie"\n'
                "heartbeat_ms = 250\n"
                "down_after_ms = 2000\n"
                "join_grace_ms = 1500\n"
                "drain_timeout_secs = 20\n"
                # The cluster phase chats fast, on purpose; that is not spam.
                "[limits]\n"
                "messages_per_window = 100000\n"
            )
        self.config_path.write_text(text)

    def start(self) -> None:
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "info")
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(self.binary), "--config", str(self.config_path), "serve"],
            cwd=self.root, stdin=subprocess.DEVNULL, stdout=self.log,
            stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def healthy(self) -> Optional[str]:
        r = osu.http_request(self.port, "GET", "/api/v1/health",
                             host=f"127.0.0.1:{self.port}", timeout=1.0)
        return r.body.decode(errors="replace").strip() if r.status == 200 else None

    def stop(self, timeout: float = 5) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.log:
            self.log.close()
            self.log = None

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return f"--- {self.name} log (last lines) ---\n" + "\n".join(text[-lines:])


class Server:
    """The server under test: one node, or with EMULATE_NODES=N a cluster of N nodes on
    127.0.0.1 (players are spread over their gateways)."""

    def __init__(self, binary: Path, nodes: int = 1):
        self.binary = binary
        self.dir = tempfile.TemporaryDirectory(prefix="peace-emulate-")
        root = Path(self.dir.name)
        self.nodes = [Node(binary, root, f"node-{i + 1}" if nodes > 1 else "emulate", nodes)
                      for i in range(nodes)]
        # Every node lists every node as a seed, so that any of them can restart and
        # find the others.
        seeds = [n.cluster_port for n in self.nodes]
        for n in self.nodes:
            n.write_config(seeds)

    @property
    def port(self) -> int:
        return self.nodes[0].port

    @property
    def config_path(self) -> Path:
        return self.nodes[0].config_path

    def port_for(self, i: int) -> int:
        """The gateway the i-th player uses: round robin over the nodes."""
        return self.nodes[i % len(self.nodes)].port

    def start(self) -> None:
        # The first node migrates the database; the others start once it serves.
        self.nodes[0].start()

    def wait_healthy(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        last = "no answer"
        started_rest = len(self.nodes) == 1
        while time.monotonic() < deadline:
            for n in self.nodes:
                if n.proc is not None and n.proc.poll() is not None:
                    raise Failed(f"{n.name} exited with code {n.proc.returncode} during "
                                 f"startup\n{self.log_tail()}")
            try:
                health = self.nodes[0].healthy()
                if health and not started_rest:
                    for n in self.nodes[1:]:
                        n.start()
                    started_rest = True
                if health and started_rest and self.formed():
                    return health
                last = health or "not healthy"
            except OSError as e:
                last = repr(e)
            time.sleep(0.1)
        raise Failed(f"the server did not come up within {timeout:.0f}s (last: {last})\n"
                     f"{self.log_tail()}")

    def cluster_view(self, node: int = 0) -> dict:
        r = osu.http_request(self.nodes[node].port, "GET", "/api/v1/cluster",
                             host="127.0.0.1", timeout=2.0)
        return json.loads(r.body) if r.status == 200 else {}

    def formed(self, members: Optional[List[int]] = None) -> bool:
        """Every node in `members` (all by default) is up, hosts shards, and they agree."""
        if len(self.nodes) == 1:
            return True
        members = members if members is not None else list(range(len(self.nodes)))
        want = sorted(self.nodes[i].name for i in members)
        epochs = set()
        for i in members:
            try:
                view = self.cluster_view(i)
            except OSError:
                return False
            up = [n for n in view.get("nodes", []) if n.get("status") == "up"]
            if sorted(n["name"] for n in up) != want:
                return False
            if sum(n.get("shards", 0) for n in up) != 256 or any(n.get("shards", 0) == 0 for n in up):
                return False
            epochs.add(view.get("table_epoch"))
        return len(epochs) == 1

    def node_status(self, name: str, via: int = 0) -> dict:
        for n in self.cluster_view(via).get("nodes", []):
            if n.get("name") == name:
                return n
        return {}

    def admin(self, path: str, via: int = 0) -> int:
        r = osu.http_request(self.nodes[via].port, "POST", path, host="127.0.0.1",
                             headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=5.0)
        return r.status

    def host_of(self, user_id: int) -> str:
        port = next(n.port for n in self.nodes if n.alive())
        r = osu.http_request(port, "GET", f"/api/v1/entities/user/{user_id}",
                             host="127.0.0.1", timeout=2.0)
        return json.loads(r.body).get("node", "") if r.status == 200 else ""

    def alive(self) -> bool:
        return all(n.alive() for n in self.nodes)

    def log_tail(self, lines: int = 25) -> str:
        return "\n".join(n.log_tail(lines) for n in self.nodes)

    def stop(self) -> None:
        for n in self.nodes:
            n.stop()
        self.dir.cleanup()


# --- steps --------------------------------------------------------------------------


class Runner:
    def __init__(self, server: Server):
        self.server = server
        self.passed = 0
        self.failed = 0
        self.deadline = time.monotonic() + RUN_BUDGET

    def budget(self, seconds: float) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise Failed(f"the run exceeded its {RUN_BUDGET:.0f}s budget")
        return min(seconds, left)

    def step(self, name: str, fn: Callable[[], Optional[str]]) -> None:
        try:
            self.budget(1)
            detail = fn()
        except Exception as e:  # noqa: BLE001 - every failure ends the run, named
            self.failed += 1
            if isinstance(e, ProtocolError):
                why = f"protocol error: {e}"
            elif isinstance(e, (Failed, StepFailed, AssertionError, OSError)):
                why = str(e) or repr(e)
            else:
                why = traceback.format_exc().rstrip().replace("\n", "\n     ")
            print(f"FAIL {name}\n     {why}", flush=True)
            if not self.server.alive() and "server log" not in why:
                print(f"     (the server is no longer running)\n{self.server.log_tail()}")
            raise Failed(name) from e
        self.passed += 1
        print(f"ok   {name}" + (f" ({detail})" if detail else ""), flush=True)


def check(cond, message: str) -> None:
    if not cond:
        raise Failed(message)


def scenario(run: Runner, server: Server) -> None:
    tag = f"{os.getpid() % 1000:03d}"
    people = [
        OsuClient(server.port_for(0), f"Emu Alice{tag}", "alice's password 1"),
        OsuClient(server.port_for(1), f"Emu Bob{tag}", "bob's password 22"),
        OsuClient(server.port_for(2), f"Emu Carol{tag}", "carol's password 333"),
    ]
    alice, bob, carol = people

    def others(me: OsuClient) -> List[OsuClient]:
        return [p for p in people if p is not me]

    def wait(c: OsuClient, what: str, pred, mark=None):
        return c.wait_for(what, pred, run.budget(WAIT), mark=mark)

    def stay_quiet(c: OsuClient, what: str, pred, mark: int) -> None:
        """Polls for QUIET seconds; fails if `pred(packets since mark)` finds anything."""
        end = time.monotonic() + QUIET
        while True:
            c.poll()
            bad = pred(c.since(mark))
            check(not bad, f"{c.username} received {what}: {bad!r}")
            if time.monotonic() >= end:
                return
            time.sleep(0.1)

    # -- start -------------------------------------------------------------------------
    def start():
        server.start()
        health = server.wait_healthy(run.budget(STARTUP_TIMEOUT))
        ports = ", ".join(f"127.0.0.1:{n.port}" for n in server.nodes)
        return f"{ports}, health: {health[:80]}"
    run.step("server starts and /api/v1/health answers 200"
             + (f" ({len(server.nodes)} nodes formed one cluster)" if len(server.nodes) > 1 else ""),
             start)

    # -- registration --------------------------------------------------------------------
    def signup_steps(p: OsuClient) -> None:
        email = f"{p.username.replace(' ', '.').lower()}@example.com"

        def validate(p=p, email=email):
            status, body = p.register(email, check=True)
            check(status == 200, f"POST /users check=1 for {p.username!r}: expected 200, "
                                 f"got {status}: {body!r}")

        def create(p=p, email=email):
            status, body = p.register(email, check=False)
            check(status == 200, f"POST /users check=0 for {p.username!r}: expected 200, "
                                 f"got {status}: {body!r}")

        run.step(f"sign-up form validates {p.username!r} (check=1)", validate)
        run.step(f"sign-up form creates {p.username!r} (check=0)", create)

    for p in people:
        signup_steps(p)

    def duplicate():
        status, body = alice.register("someone.else@example.com", check=True)
        check(status == 400, f"expected 400 for a taken name, got {status}: {body!r}")
        errors = body.get("form_error", {}).get("user", {}) if isinstance(body, dict) else {}
        check(errors.get("username"), f"expected form_error.user.username, got {body!r}")
        return f"username: {errors['username'][0]!r}"
    run.step("sign-up form refuses a taken name with form_error.user.username", duplicate)

    # -- login ---------------------------------------------------------------------------
    def bad_password():
        r = bob.login(osu.md5_hex("not the password"))
        check(r.token is not None, "a failed login reply has no cho-token header "
                                   "(the client would give up without retrying)")
        check(r.user_id is not None and r.user_id < 0,
              f"expected a negative USER_ID, got {r.user_id} in {r.packets!r}")
        check(bob.token is None, "a wrong password produced a session")
        return f"cho-token: {r.token!r}, USER_ID {r.user_id}"
    run.step("login with a wrong password is refused (negative USER_ID, cho-token set)",
             bad_password)

    def login_steps(p: OsuClient) -> None:
        def connect(p=p):
            r = p.bancho_connect()
            check(r.status == 200, f"GET /web/bancho_connect.php: HTTP {r.status}")
            check(b"verify" not in r.body, f"bancho_connect.php asks to verify: {r.body!r}")

        def login(p=p):
            r = p.login()
            check(r.http.status == 200, f"login answered HTTP {r.http.status}")
            check(r.token and r.token != "no", f"cho-token header: {r.token!r}")
            check(r.user_id is not None and r.user_id > 0,
                  f"expected a positive USER_ID, got {r.user_id}; packets: {r.packets!r}")
            names = [x.name for x in r.packets]
            proto = [x.value for x in r.packets if x.packet is P.BanchoProtocolNegotiation]
            check(proto == [osu.PROTOCOL_VERSION], f"PROTOCOL_VERSION {proto} in {names}")
            for needed in (P.BanchoLoginPermissions, P.BanchoChannelInfoComplete,
                           P.BanchoSilenceInfo):
                check(needed.name in names, f"no {needed.name} in the login reply: {names}")
            check(any(x.value.name == "#osu" for x in r.packets
                      if x.packet in (P.BanchoChannelAvailable,
                                      P.BanchoChannelAvailableAutojoin)),
                  f"no CHANNEL_INFO for #osu in the login reply: {names}")
            own = [x.value for x in r.packets
                   if x.packet is P.BanchoUserPresence and x.value.id == r.user_id]
            check(own and own[0].name == p.username,
                  f"own USER_PRESENCE missing or misnamed: {own!r}")
            check(any(x.packet is P.BanchoUserStats and x.value.id == r.user_id
                      for x in r.packets), "own USER_STATS missing from the login reply")
            first = names.index("BanchoLoginReply")
            check(first <= 1, f"USER_ID should open the login reply, order: {names}")
            return f"user id {r.user_id}, {len(r.packets)} packets"

        def join_osu(p=p):
            # The client answers CHANNEL_INFO #osu with CHANNEL_JOIN #osu on its next poll.
            check(any(b[:2] == P.OsuChannelJoin.value.to_bytes(2, "little")
                      for b in p.outbox) or "#osu" in p.joined,
                  "the login reply gave the client no reason to join #osu")
            wait(p, "CHANNEL_JOIN_SUCCESS #osu", lambda: "#osu" in p.joined)

        run.step(f"{p.username}: GET /web/bancho_connect.php is an empty-enough 200", connect)
        run.step(f"{p.username} logs in through POST / (cho-token, USER_ID > 0, reply layout)",
                 login)
        run.step(f"{p.username} joins #osu (CHANNEL_JOIN -> CHANNEL_JOIN_SUCCESS)", join_osu)

    for p in people:
        login_steps(p)

    # -- presence ------------------------------------------------------------------------
    for p in people:
        def sees(p=p):
            def ok():
                return all(o.user_id in p.presences and o.user_id in p.stats
                           and p.presences[o.user_id].name == o.username for o in others(p))
            wait(p, "USER_PRESENCE and USER_STATS of " +
                 " and ".join(o.username for o in others(p)), ok, mark=0)
            return ", ".join(f"{p.presences[o.user_id].name}=#{o.user_id}" for o in others(p))
        run.step(f"{p.username} sees the other two online (USER_PRESENCE + USER_STATS)", sees)

    # -- public chat ---------------------------------------------------------------------
    for p in people:
        def chat(p=p):
            text = f"hello from {p.username} at {time.monotonic():.3f} ✓"
            marks = {id(c): c.mark() for c in people}
            p.send(osu.public_message("#osu", text))
            p.poll()
            for o in others(p):
                def got(o=o):
                    return [m for m in o.messages(marks[id(o)]) if m.content == text]
                msgs = wait(o, f"{p.username}'s message in #osu", got, mark=marks[id(o)])
                m = msgs[0]
                check((m.sender, m.target, m.sender_id) == (p.username, "#osu", p.user_id),
                      f"{o.username} got {m!r}; expected sender {p.username!r}, target "
                      f"'#osu', sender_id {p.user_id}")
                check(len(msgs) == 1, f"{o.username} got the message {len(msgs)} times")
            stay_quiet(p, "its own message back", lambda pk: [
                x.value for x in pk if x.packet is P.BanchoMessage and x.value.content == text],
                marks[id(p)])
        run.step(f"{p.username} chats in #osu: both others get it, no echo", chat)

    # -- private chat --------------------------------------------------------------------
    for sender, target in ((alice, bob), (bob, alice)):
        def pm(sender=sender, target=target):
            bystander = next(c for c in people if c is not sender and c is not target)
            text = f"psst {target.username}, it's {sender.username} ({time.monotonic():.3f})"
            marks = {id(c): c.mark() for c in people}
            sender.send(osu.private_message(target.username, text))
            sender.poll()
            got = wait(target, f"a private message from {sender.username}",
                       lambda: [m for m in target.messages(marks[id(target)])
                                if m.content == text], mark=marks[id(target)])
            m = got[0]
            check((m.sender, m.target, m.sender_id) ==
                  (sender.username, target.username, sender.user_id),
                  f"got {m!r}; expected sender {sender.username!r}, target "
                  f"{target.username!r} (the recipient's own name), sender_id {sender.user_id}")
            leak = lambda pk: [x.value for x in pk  # noqa: E731
                               if x.packet is P.BanchoMessage and x.value.content == text]
            stay_quiet(bystander, "someone else's private message", leak, marks[id(bystander)])
            stay_quiet(sender, "its own private message back", leak, marks[id(sender)])
        run.step(f"{sender.username} -> {target.username} private message arrives, "
                 f"nobody else sees it", pm)

    # -- #lobby --------------------------------------------------------------------------
    def lobby_join():
        carol.send(osu.join_lobby(), osu.channel_join("#lobby"))
        wait(carol, "CHANNEL_JOIN_SUCCESS #lobby", lambda: "#lobby" in carol.joined)
    run.step(f"{carol.username} joins the lobby and #lobby (CHANNEL_JOIN_SUCCESS)", lobby_join)

    def lobby_part():
        mark = carol.mark()
        carol.send(osu.part_lobby(), osu.channel_part("#lobby"))
        wait(carol, "CHANNEL_KICK #lobby", lambda: [
            x for x in carol.since(mark, P.BanchoChannelRevoked) if x.value == "#lobby"],
            mark=mark)
        check("#osu" in carol.joined, "leaving #lobby also left #osu")
    run.step(f"{carol.username} leaves #lobby (CHANNEL_KICK #lobby)", lobby_part)

    # -- status --------------------------------------------------------------------------
    md5 = osu.md5_hex("emulated beatmap")
    status = chio.UserStatus(chio.Status.Playing, "Emulator - Steps [Insane]",
                             chio.Mods.Hidden | chio.Mods.HardRock, chio.Mode.Osu, md5, 75)

    def matches(info) -> bool:
        st = info.status
        return (st.action, st.text, st.beatmap_checksum, int(st.mods), st.mode,
                st.beatmap_id) == (status.action, status.text, status.beatmap_checksum,
                                   int(status.mods), status.mode, status.beatmap_id)

    def change_status():
        marks = {id(c): c.mark() for c in people}
        alice.send(osu.change_action(status))
        alice.poll()
        for o in others(alice):
            def got(o=o):
                return [x.value for x in o.since(marks[id(o)], P.BanchoUserStats)
                        if x.value.id == alice.user_id and matches(x.value)]
            wait(o, f"USER_STATS of {alice.username} with the new status", got,
                 mark=marks[id(o)])
        wait(alice, "its own USER_STATS with the new status", lambda: [
            x for x in alice.since(marks[id(alice)], P.BanchoUserStats)
            if x.value.id == alice.user_id and matches(x.value)], mark=marks[id(alice)])
        return "Playing, HD+HR, beatmap 75"
    run.step(f"{alice.username} changes status (CHANGE_ACTION): everyone gets the new "
             f"USER_STATS", change_status)

    def stats_request():
        mark = carol.mark()
        carol.send(osu.user_stats_request([alice.user_id]))
        wait(carol, f"USER_STATS of {alice.username} on request", lambda: [
            x for x in carol.since(mark, P.BanchoUserStats)
            if x.value.id == alice.user_id and matches(x.value)], mark=mark)
    run.step(f"{carol.username}'s USER_STATS_REQUEST is answered with the current status",
             stats_request)

    # -- the bot -------------------------------------------------------------------------
    def roll():
        marks = {id(c): c.mark() for c in people}
        bob.send(osu.public_message("#osu", "!roll"))
        bob.poll()
        player_ids = {c.user_id for c in people}
        answers = []
        for c in people:
            def got(c=c):
                return [m for m in c.messages(marks[id(c)])
                        if m.target == "#osu" and m.sender_id not in player_ids
                        and "roll" in m.content.lower() and re.search(r"\d", m.content)]
            m = wait(c, "the bot's answer to !roll in #osu", got, mark=marks[id(c)])[0]
            check(bob.username in m.content,
                  f"{c.username}: the roll answer does not name {bob.username}: {m!r}")
            answers.append(m)
        check(len({a.content for a in answers}) == 1,
              f"players saw different answers: {[a.content for a in answers]}")
        return f"{answers[0].sender}: {answers[0].content!r}"
    run.step(f"{bob.username} asks the bot !roll in #osu: all three see the answer", roll)

    # -- logout --------------------------------------------------------------------------
    old_token = carol.token

    def do_logout():
        # The server ignores a LOGOUT in the first second of a session.
        idle = 1.2 - (time.monotonic() - carol.login_time)
        if idle > 0:
            time.sleep(idle)
        marks = {id(c): c.mark() for c in people}
        carol.send(osu.logout())
        carol.poll()
        for o in others(carol):
            wait(o, f"USER_LOGOUT of {carol.username}", lambda o=o: [
                x for x in o.since(marks[id(o)], P.BanchoUserQuit)
                if x.value.info.id == carol.user_id], mark=marks[id(o)])
    run.step(f"{carol.username} logs out (LOGOUT): the others get USER_LOGOUT", do_logout)

    def old_token_refused():
        packets = carol.poll(old_token)
        check(any(x.packet is P.BanchoRestart for x in packets),
              f"a poll with the logged-out token got {packets!r}, expected RESTART")
        return "RESTART"
    run.step(f"{carol.username}'s old token is refused (RESTART)", old_token_refused)

    # -- a fourth player ---------------------------------------------------------------
    dan = OsuClient(server.port_for(3), f"Emu Dan{tag}", "dan's password 4444")
    online = [alice, bob, dan]
    signup_steps(dan)
    login_steps(dan)

    def dan_seen():
        for p in online:
            rest = [o for o in online if o is not p]
            wait(p, "USER_PRESENCE and USER_STATS of " + " and ".join(o.username for o in rest),
                 lambda p=p, rest=rest: all(
                     o.user_id in p.presences and o.user_id in p.stats
                     and p.presences[o.user_id].name == o.username for o in rest), mark=0)
    run.step(f"{dan.username}, {alice.username} and {bob.username} see each other online",
             dan_seen)

    def got(c: OsuClient, packet, mark: int, pred=lambda v: True) -> list:
        return [x for x in c.since(mark, packet) if pred(x.value)]

    def expect(c: OsuClient, what: str, packet, mark: int, pred=lambda v: True):
        """Waits until `c` has received `packet` (with `pred(value)`) since `mark`."""
        return wait(c, what, lambda: got(c, packet, mark, pred), mark=mark)

    def marks_of() -> dict:
        return {id(c): c.mark() for c in online}

    def joined(c: OsuClient, name: str, mark: int):
        return expect(c, f"CHANNEL_JOIN_SUCCESS {name}", P.BanchoChannelJoinSuccess, mark,
                      lambda v: v == name)

    def kicked(c: OsuClient, name: str, mark: int):
        return expect(c, f"CHANNEL_KICK {name}", P.BanchoChannelRevoked, mark,
                      lambda v: v == name)

    # -- spectating ----------------------------------------------------------------------
    host, first, second = alice, bob, dan

    def spectate_first():
        m = marks_of()
        first.send(osu.start_spectating(host.user_id))
        first.poll()
        expect(host, f"SPECTATOR_JOINED {first.user_id}", P.BanchoSpectatorJoined,
               m[id(host)], lambda v: v == first.user_id)
        joined(host, "#spectator", m[id(host)])
        joined(first, "#spectator", m[id(first)])
        fellows = got(first, P.BanchoFellowSpectatorJoined, m[id(first)])
        check(not fellows, f"the first spectator was told of fellows: {fellows!r}")
        return f"SPECTATOR_JOINED {first.user_id}; both in #spectator"
    run.step(f"{first.username} spectates {host.username} (START_SPECTATING): the host gets "
             f"SPECTATOR_JOINED, both join #spectator", spectate_first)

    def spectate_second():
        m = marks_of()
        second.send(osu.start_spectating(host.user_id))
        second.poll()
        expect(host, f"SPECTATOR_JOINED {second.user_id}", P.BanchoSpectatorJoined,
               m[id(host)], lambda v: v == second.user_id)
        expect(first, f"FELLOW_SPECTATOR_JOINED {second.user_id}",
               P.BanchoFellowSpectatorJoined, m[id(first)], lambda v: v == second.user_id)
        expect(second, f"FELLOW_SPECTATOR_JOINED {first.user_id} (the one already watching)",
               P.BanchoFellowSpectatorJoined, m[id(second)], lambda v: v == first.user_id)
        joined(second, "#spectator", m[id(second)])
        again = got(host, P.BanchoChannelJoinSuccess, m[id(host)])
        check(not again, f"the host was joined to a channel again: {again!r}")
        return "host: SPECTATOR_JOINED; each spectator: FELLOW_SPECTATOR_JOINED of the other"
    run.step(f"{second.username} spectates too: {first.username} and {second.username} get "
             f"FELLOW_SPECTATOR_JOINED of each other", spectate_second)

    def replay_bundles():
        score = chio.ScoreFrame(
            time=15_230, id=0, total_300=61, total_100=4, total_50=1, total_geki=12,
            total_katu=3, total_miss=0, total_score=123_456, max_combo=66, current_combo=66,
            perfect=True, hp=187, tag_byte=0)
        playing = chio.ReplayFrameBundle(
            action=chio.ReplayAction.Standard,
            frames=[chio.ReplayFrame(chio.ButtonState.Left1, 0, 256.5, 192.25, 15_180),
                    chio.ReplayFrame(chio.ButtonState.Left1 | chio.ButtonState.Left2, 0,
                                     261.75, 188.0, 15_197),
                    chio.ReplayFrame(chio.ButtonState.NoButton, 0, 270.125, 180.5, 15_213)],
            frame=score, extra=0, sequence=41)
        paused = chio.ReplayFrameBundle(
            action=chio.ReplayAction.Pause,
            frames=[chio.ReplayFrame(chio.ButtonState.NoButton, 0, 270.125, 180.5, 15_230)],
            frame=None, extra=0, sequence=42)
        return [playing, paused]

    def frames():
        bundles = replay_bundles()
        sent = [osu.spectate_frames(b) for b in bundles]
        m = marks_of()
        host.send(*sent)
        host.poll()
        want = [osu._frame(P.BanchoSpectateFrames, x[osu.HEADER_SIZE:]) for x in sent]
        for c in (first, second):
            relayed = wait(c, "the host's two SPECTATE_FRAMES", lambda c=c: (
                lambda r: r if len(r) >= 2 else None)(got(c, P.BanchoSpectateFrames,
                                                         m[id(c)])), mark=m[id(c)])
            raw = [x.raw for x in relayed]
            check(raw == want, f"{c.username} received SPECTATE_FRAMES {[r.hex() for r in raw]}"
                               f", expected exactly {[w.hex() for w in want]}")
            check(relayed[0].value.frame == bundles[0].frame,
                  f"{c.username}: score frame {relayed[0].value.frame!r}")
        stay_quiet(host, "its own frames back", lambda pk: [
            x for x in pk if x.packet is P.BanchoSpectateFrames], m[id(host)])
        return (f"{len(want)} bundles ({', '.join(str(len(w) - osu.HEADER_SIZE) for w in want)}"
                f" payload bytes) byte for byte to both")
    run.step(f"{host.username} sends SPECTATE_FRAMES (chio ReplayFrameBundles: frames, action, "
             f"score frame): both spectators get exactly those bytes", frames)

    def spectator_chat():
        text = f"{second.username} watching ({time.monotonic():.3f})"
        m = marks_of()
        second.send(osu.public_message("#spectator", text))
        second.poll()
        for o in (host, first):
            msgs = wait(o, f"{second.username}'s message in #spectator", lambda o=o: [
                x for x in o.messages(m[id(o)]) if x.content == text], mark=m[id(o)])
            check((msgs[0].sender, msgs[0].target, msgs[0].sender_id)
                  == (second.username, "#spectator", second.user_id),
                  f"{o.username} got {msgs[0]!r}")
        stay_quiet(second, "its own message back", lambda pk: [
            x for x in pk if x.packet is P.BanchoMessage and x.value.content == text],
            m[id(second)])
    run.step(f"{second.username} chats in #spectator: the host and {first.username} get it",
             spectator_chat)

    def stop_second():
        m = marks_of()
        second.send(osu.stop_spectating())
        second.poll()
        expect(host, f"SPECTATOR_LEFT {second.user_id}", P.BanchoSpectatorLeft, m[id(host)],
               lambda v: v == second.user_id)
        expect(first, f"FELLOW_SPECTATOR_LEFT {second.user_id}", P.BanchoFellowSpectatorLeft,
               m[id(first)], lambda v: v == second.user_id)
        kicked(second, "#spectator", m[id(second)])
        check("#spectator" in host.joined and "#spectator" in first.joined,
              "the room's channel closed while someone still watches")
    run.step(f"{second.username} stops (STOP_SPECTATING): SPECTATOR_LEFT to the host, "
             f"FELLOW_SPECTATOR_LEFT to {first.username}, CHANNEL_KICK #spectator", stop_second)

    def stop_first():
        m = marks_of()
        first.send(osu.stop_spectating())
        first.poll()
        expect(host, f"SPECTATOR_LEFT {first.user_id}", P.BanchoSpectatorLeft, m[id(host)],
               lambda v: v == first.user_id)
        kicked(host, "#spectator", m[id(host)])
        kicked(first, "#spectator", m[id(first)])
        check("#osu" in host.joined and "#osu" in first.joined, "closing the room left #osu")
    run.step(f"the last spectator stops: the room closes ({host.username} gets "
             f"CHANNEL_KICK #spectator)", stop_first)

    # -- multiplayer ---------------------------------------------------------------------
    lobby, mp_host, guest = bob, alice, dan
    password = f"emu secret {tag}"
    md5_first = osu.md5_hex("emulated match beatmap 1")
    md5_second = osu.md5_hex("emulated match beatmap 2")
    match_name = f"Emu match {tag}"
    state = {}

    def slot_of(match, user_id: int) -> Optional[int]:
        return next((i for i, s in enumerate(match.slots)
                     if s.has_player and s.user_id == user_id), None)

    def in_lobby():
        m = lobby.mark()
        lobby.send(osu.join_lobby(), osu.channel_join("#lobby"))
        joined(lobby, "#lobby", m)
    run.step(f"{lobby.username} joins the lobby (JOIN_LOBBY)", in_lobby)

    def create():
        requested = chio.Match(
            name=match_name, password=password,
            beatmap_text="Emulator - Steps [Insane]", beatmap_id=75,
            beatmap_checksum=md5_first, mode=chio.Mode.Osu,
            slots=[chio.MatchSlot(mp_host.user_id, chio.SlotStatus.NotReady)]
            + [chio.MatchSlot() for _ in range(15)],
            host_id=mp_host.user_id)
        m = marks_of()
        mp_host.send(osu.create_match(requested))
        mp_host.poll()
        made = expect(mp_host, "MATCH_JOIN_SUCCESS", P.BanchoMatchJoinSuccess,
                      m[id(mp_host)])[0].value
        joined(mp_host, "#multiplayer", m[id(mp_host)])
        check((made.name, made.password, made.beatmap_id, made.beatmap_checksum,
               made.beatmap_text, made.mode, made.host_id, made.in_progress)
              == (match_name, password, 75, md5_first, "Emulator - Steps [Insane]",
                  chio.Mode.Osu, mp_host.user_id, False),
              f"MATCH_JOIN_SUCCESS: {made!r}")
        check(len(made.slots) == 16 and slot_of(made, mp_host.user_id) == 0
              and made.slots[0].status == chio.SlotStatus.NotReady
              and all(s.status == chio.SlotStatus.Open for s in made.slots[1:]),
              f"slots: {made.slots!r}")
        state["id"] = made.id
        return f"match {made.id}"
    run.step(f"{mp_host.username} creates a match (CREATE_MATCH with a chio Match): "
             f"MATCH_JOIN_SUCCESS + #multiplayer", create)

    def lobby_sees():
        new = expect(lobby, f"NEW_MATCH {state['id']}", P.BanchoMatchNew, 0,
                     lambda v: v.id == state["id"])[0].value
        check(new.name == match_name and new.host_id == mp_host.user_id,
              f"NEW_MATCH: {new!r}")
        check(new.password == "" and new.password_hidden,
              f"NEW_MATCH should hide the password as an empty string (0x0b 0x00); "
              f"password {new.password!r}, hidden={new.password_hidden}")
        return "password sent as the empty string"
    run.step(f"{lobby.username} in the lobby gets NEW_MATCH with the password hidden",
             lobby_sees)

    def wrong_password():
        m = guest.mark()
        guest.send(osu.join_match(state["id"], "not the password"))
        expect(guest, "MATCH_JOIN_FAIL", P.BanchoMatchJoinFail, m)
        check(not got(guest, P.BanchoMatchJoinSuccess, m), "joined with a wrong password")
    run.step(f"{guest.username} is refused with a wrong password (MATCH_JOIN_FAIL)",
             wrong_password)

    def join():
        m = marks_of()
        guest.send(osu.join_match(state["id"], password))
        guest.poll()
        data = expect(guest, "MATCH_JOIN_SUCCESS", P.BanchoMatchJoinSuccess,
                      m[id(guest)])[0].value
        joined(guest, "#multiplayer", m[id(guest)])
        check(data.id == state["id"] and slot_of(data, guest.user_id) == 1
              and data.password == password, f"MATCH_JOIN_SUCCESS: {data!r}")
        expect(mp_host, f"UPDATE_MATCH with {guest.username} in slot 1", P.BanchoMatchUpdate,
               m[id(mp_host)], lambda v: slot_of(v, guest.user_id) == 1
               and v.password == password)
        expect(lobby, f"UPDATE_MATCH (lobby) with {guest.username} in slot 1",
               P.BanchoMatchUpdate, m[id(lobby)],
               lambda v: slot_of(v, guest.user_id) == 1 and v.password_hidden)
        return "slot 1"
    run.step(f"{guest.username} joins with the password (JOIN_MATCH): MATCH_JOIN_SUCCESS, "
             f"UPDATE_MATCH to the host and the lobby", join)

    def change_settings():
        current = mp_host.match
        check(current is not None and current.id == state["id"],
              f"the host's client has no match: {current!r}")
        settings = replace(current, beatmap_text="Emulator - Other Steps [Extra]",
                           beatmap_id=129_891, beatmap_checksum=md5_second,
                           slots=[replace(s) for s in current.slots])
        m = marks_of()
        mp_host.send(osu.match_change_settings(settings))
        mp_host.poll()

        def new_map(v) -> bool:
            return (v.beatmap_id, v.beatmap_checksum, v.beatmap_text) == (
                129_891, md5_second, "Emulator - Other Steps [Extra]")
        for c in (mp_host, guest):
            expect(c, "UPDATE_MATCH with the new beatmap", P.BanchoMatchUpdate, m[id(c)],
                   lambda v: new_map(v) and v.password == password and not v.in_progress)
        expect(lobby, "UPDATE_MATCH (lobby) with the new beatmap", P.BanchoMatchUpdate,
               m[id(lobby)], lambda v: new_map(v) and v.password_hidden)
        return "beatmap 129891"
    run.step(f"{mp_host.username} changes the beatmap (MATCH_CHANGE_SETTINGS): UPDATE_MATCH to "
             f"both players", change_settings)

    def ready():
        m = marks_of()
        guest.send(osu.match_ready())
        guest.poll()
        for c in (mp_host, guest):
            expect(c, f"UPDATE_MATCH with slot 1 ready", P.BanchoMatchUpdate, m[id(c)],
                   lambda v: v.slots[1].status == chio.SlotStatus.Ready)
    run.step(f"{guest.username} is ready (MATCH_READY): UPDATE_MATCH shows slot 1 Ready",
             ready)

    def start():
        m = marks_of()
        mp_host.send(osu.match_start())
        mp_host.poll()
        for c in (mp_host, guest):
            data = expect(c, "MATCH_START", P.BanchoMatchStart, m[id(c)])[0].value
            check(data.in_progress and data.beatmap_id == 129_891
                  and all(data.slots[i].status == chio.SlotStatus.Playing for i in (0, 1)),
                  f"{c.username}: MATCH_START {data!r}")
        return "both slots Playing"
    run.step(f"{mp_host.username} starts (MATCH_START): both players get MATCH_START", start)

    def loaded():
        m = marks_of()
        mp_host.send(osu.match_load_complete())
        mp_host.poll()
        guest.send(osu.match_load_complete())
        guest.poll()
        for c in (mp_host, guest):
            expect(c, "MATCH_ALL_PLAYERS_LOADED", P.BanchoMatchAllPlayersLoaded, m[id(c)])
    run.step("both load (MATCH_LOAD_COMPLETE): MATCH_ALL_PLAYERS_LOADED to both", loaded)

    def scores():
        frames = {
            id(mp_host): chio.ScoreFrame(
                time=20_000, id=0, total_300=120, total_100=6, total_50=2, total_geki=30,
                total_katu=4, total_miss=1, total_score=250_123, max_combo=98,
                current_combo=40, perfect=False, hp=160, tag_byte=0),
            id(guest): chio.ScoreFrame(
                time=20_016, id=0, total_300=101, total_100=20, total_50=5, total_geki=22,
                total_katu=9, total_miss=3, total_score=187_654, max_combo=77,
                current_combo=12, perfect=False, hp=120, tag_byte=0),
        }
        m = marks_of()
        for c in (mp_host, guest):
            c.send(osu.match_score_update(frames[id(c)]))
            c.poll()
        out = []
        for sender, receiver in ((mp_host, guest), (guest, mp_host)):
            slot = slot_of(receiver.match, sender.user_id)
            relayed = replace(frames[id(sender)], id=slot)
            want = osu.IO.write_packet_to_bytes(P.BanchoMatchScoreUpdate, relayed)
            got_it = expect(receiver, f"{sender.username}'s MATCH_SCORE_UPDATE",
                            P.BanchoMatchScoreUpdate, m[id(receiver)],
                            lambda v, t=frames[id(sender)].time: v.time == t)
            check(got_it[0].raw == want,
                  f"{receiver.username} got {sender.username}'s score frame as "
                  f"{got_it[0].raw.hex()}, expected {want.hex()} (slot id {slot} in byte 4)")
            out.append(f"{sender.username.split()[1]} -> slot {got_it[0].value.id}")
        return ", ".join(out)
    run.step("both send MATCH_SCORE_UPDATE (chio ScoreFrame): the other gets it with the "
             "sender's slot id", scores)

    def skip():
        m = marks_of()
        mp_host.send(osu.match_skip_request())
        mp_host.poll()
        expect(guest, "MATCH_PLAYER_SKIPPED 0", P.BanchoMatchPlayerSkipped, m[id(guest)],
               lambda v: v == 0)
        guest.send(osu.match_skip_request())
        guest.poll()
        expect(mp_host, "MATCH_PLAYER_SKIPPED 1", P.BanchoMatchPlayerSkipped,
               m[id(mp_host)], lambda v: v == 1)
        for c in (mp_host, guest):
            expect(c, "MATCH_SKIP", P.BanchoMatchSkip, m[id(c)])
        return "MATCH_PLAYER_SKIPPED 0 and 1, then MATCH_SKIP"
    run.step("both ask to skip (MATCH_SKIP_REQUEST): MATCH_SKIP to both", skip)

    def complete():
        m = marks_of()
        for c in (mp_host, guest):
            c.send(osu.match_complete())
            c.poll()
        for c in (mp_host, guest):
            expect(c, "MATCH_COMPLETE", P.BanchoMatchComplete, m[id(c)])
            expect(c, "UPDATE_MATCH, no longer in progress", P.BanchoMatchUpdate, m[id(c)],
                   lambda v: not v.in_progress
                   and all(v.slots[i].status == chio.SlotStatus.NotReady for i in (0, 1)))
    run.step("both finish (MATCH_COMPLETE): MATCH_COMPLETE to both, slots back to NotReady",
             complete)

    def host_leaves():
        m = marks_of()
        mp_host.send(osu.part_match())
        mp_host.poll()
        mp_host.match = None
        kicked(mp_host, "#multiplayer", m[id(mp_host)])
        expect(guest, "MATCH_TRANSFER_HOST", P.BanchoMatchTransferHost, m[id(guest)])
        expect(guest, f"UPDATE_MATCH with {guest.username} as host", P.BanchoMatchUpdate,
               m[id(guest)], lambda v: v.host_id == guest.user_id
               and v.slots[0].status == chio.SlotStatus.Open)
    run.step(f"{mp_host.username} leaves (PART_MATCH): {guest.username} gets "
             f"MATCH_TRANSFER_HOST", host_leaves)

    def last_leaves():
        m = marks_of()
        guest.send(osu.part_match())
        guest.poll()
        guest.match = None
        kicked(guest, "#multiplayer", m[id(guest)])
        expect(lobby, f"DISPOSE_MATCH {state['id']}", P.BanchoMatchDisband, m[id(lobby)],
               lambda v: v == state["id"])
    run.step(f"{guest.username} leaves too: {lobby.username} in the lobby gets DISPOSE_MATCH",
             last_leaves)

    # -- moderation through the bot ----------------------------------------------------
    staff = OsuClient(server.port_for(4), f"Emu Staff{tag}", "staff password 55555")
    online = [alice, bob, dan, staff]  # marks_of() sees the staff member too

    def safe(c: OsuClient) -> str:
        """How commands name a player: spaces written as underscores."""
        return c.username.replace(" ", "_")

    def make_staff():
        out = subprocess.run(
            [str(server.binary), "--config", str(server.config_path), "user", "add",
             staff.username, "--password", staff.password, "--admin"],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=run.budget(20))
        check(out.returncode == 0, f"peace user add --admin exited {out.returncode}: "
                                   f"{out.stderr.decode(errors='replace')[-500:]}")
        r = staff.login()
        check(r.user_id is not None and r.user_id > 0,
              f"the administrator's login failed: {r.packets!r}")
        return f"user id {staff.user_id}"
    run.step("an administrator made with `peace user add --admin` while the server runs "
             "logs in", make_staff)

    def ask_bot(command: str, answer: str) -> str:
        m = staff.mark()
        staff.send(osu.private_message("Peace", command))
        got = wait(staff, f"the bot's answer {answer!r} to {command!r}", lambda: [
            x for x in staff.messages(m) if x.sender == "Peace" and answer in x.content],
            mark=m)
        return got[0].content

    def notified(c: OsuClient, text: str, mark: int):
        return expect(c, f"NOTIFICATION {text!r}", P.BanchoAnnounce, mark,
                      lambda v: text in v)

    def silence():
        m = marks_of()
        answer = ask_bot(f"!silence {safe(bob)} 1m emulated", "Silenced")
        expect(bob, "SILENCE_END > 0", P.BanchoSilenceInfo, m[id(bob)], lambda v: v > 0)
        expect(alice, f"USER_SILENCED {bob.user_id}", P.BanchoUserSilenced, m[id(alice)],
               lambda v: v == bob.user_id)
        m = marks_of()
        bob.send(osu.public_message("#osu", "am I muted?"))
        notified(bob, "You are silenced", m[id(bob)])
        stay_quiet(alice, "a silenced player's message", lambda got: [
            x for x in got if x.packet is P.BanchoMessage
            and x.value.content == "am I muted?"], m[id(alice)])
        return answer
    run.step(f"!silence {safe(bob)}: SILENCE_END to him, USER_SILENCED to the others, his "
             f"chat is refused", silence)

    def unsilence():
        m = marks_of()
        answer = ask_bot(f"!unsilence {safe(bob)}", "may talk again")
        expect(bob, "SILENCE_END 0", P.BanchoSilenceInfo, m[id(bob)], lambda v: v == 0)
        bob.send(osu.public_message("#osu", "I am back"))
        bob.poll()
        wait(alice, "the unsilenced player's message", lambda: [
            x for x in alice.messages(m[id(alice)]) if x.content == "I am back"],
            mark=m[id(alice)])
        return answer
    run.step(f"!unsilence {safe(bob)}: SILENCE_END 0, and he is heard again", unsilence)

    def alerts():
        m = marks_of()
        ask_bot("!alert emulated maintenance", "Alert sent")
        for c in online:
            notified(c, "emulated maintenance", m[id(c)])
        m = marks_of()
        ask_bot(f"!alertuser {safe(dan)} only for you", f"Alerted {dan.username}")
        notified(dan, "only for you", m[id(dan)])
        stay_quiet(alice, "someone else's alert", lambda got: [
            x for x in got if x.packet is P.BanchoAnnounce and "only for you" in x.value],
            m[id(alice)])
        return "NOTIFICATION to all four; then to one"
    run.step("!alert reaches everyone online, !alertuser only its target", alerts)

    def kick():
        m = marks_of()
        old = dan.token
        ask_bot(f"!kick {safe(dan)} emulated kick", f"Kicked {dan.username}")
        notified(dan, "emulated kick", m[id(dan)])
        reply = expect(dan, "USER_ID -1", P.BanchoLoginReply, m[id(dan)], lambda v: v == -1)
        expect(alice, f"USER_LOGOUT of {dan.username}", P.BanchoUserQuit, m[id(alice)],
               lambda v: v.info.id == dan.user_id)
        after = dan.poll(old)
        check(any(x.packet is P.BanchoRestart for x in after),
              f"the kicked token still works: {after!r}")
        return f"NOTIFICATION, USER_ID {reply[0].value}, then RESTART"
    run.step(f"!kick {safe(dan)}: told why, USER_ID -1, the others get USER_LOGOUT, the "
             f"token is dead", kick)

    def ban():
        m = marks_of()
        ask_bot(f"!ban {safe(bob)} emulated ban", f"{bob.username} is banned")
        notified(bob, "emulated ban", m[id(bob)])
        expect(bob, "USER_ID -3", P.BanchoLoginReply, m[id(bob)], lambda v: v == -3)
        bob.token = None
        r = bob.login()
        check(r.token == "no" and r.user_id == -3,
              f"a banned login got cho-token {r.token!r}, USER_ID {r.user_id}")
        return "USER_ID -3 in the session, and at the next login"
    run.step(f"!ban {safe(bob)}: USER_ID -3 at once and at his next login", ban)

    if len(server.nodes) > 1:
        cluster_phase(run, server, tag)
    else:
        def restart():
            ids = {alice.username: alice.user_id, carol.username: carol.user_id}
            server.nodes[0].stop(timeout=30)
            server.nodes[0].start()
            server.wait_healthy(run.budget(30))
            for p in (alice, carol):
                p.token = None
                r = p.login()
                check(r.user_id == ids[p.username],
                      f"{p.username} logged in as {r.user_id} after the restart, "
                      f"not {ids[p.username]}")
            mark = carol.mark()
            alice.send(osu.public_message("#osu", "still here after the restart"))
            alice.poll()
            wait(carol, "alice's message after the restart", lambda: any(
                m.content == "still here after the restart" for m in carol.messages(mark)))
            return f"{alice.username} and {carol.username} are back with the same ids"
        run.step("the server restarts (SIGTERM, then start on the same database): the same "
                 "accounts log in again and chat", restart)


def cluster_phase(run: Runner, server: Server, tag: str) -> None:
    """With several nodes: players on every node chat without a break while node 2 is
    drained, restarted and rebalanced; every line arrives once, in order, and nobody is
    asked to log in again; the cluster API shows the drained node empty, then with work."""
    players = [OsuClient(server.port_for(i), f"Emu Move{i}{tag}", f"move password {i}{i}{i}")
               for i in range(len(server.nodes))]
    sent = {p.username: 0 for p in players}
    heard = {p.username: {q.username: [] for q in players if q is not p} for p in players}

    def listen() -> None:
        for p in players:
            mark = p.mark()
            p.poll()
            for m in p.messages(mark):
                if m.content.startswith("move ") and m.sender in heard[p.username]:
                    heard[p.username][m.sender].append(int(m.content.split()[1]))

    def say_and_listen(rounds: int = 1) -> None:
        for _ in range(rounds):
            for p in players:
                p.send(osu.public_message("#osu", f"move {sent[p.username]}"))
                sent[p.username] += 1
            listen()
            time.sleep(0.02)

    def join():
        for p in players:
            status, body = p.register(f"{p.username.replace(' ', '.').lower()}@example.com",
                                      check=False)
            check(status == 200, f"sign-up of {p.username}: {status} {body!r}")
            r = p.login()
            check(r.user_id is not None and r.user_id > 0, f"{p.username} did not log in")
        for p in players:
            p.wait_for("#osu", lambda p=p: "#osu" in p.joined, run.budget(WAIT))
        hosts = {p.username: server.host_of(p.user_id) for p in players}
        return ", ".join(f"{n} on {h}" for n, h in hosts.items())
    run.step(f"{len(players)} players log in through {len(players)} gateways", join)

    # The node to drain: the one holding the first player's session (whichever it is;
    # the coordinator included).
    host = server.host_of(players[0].user_id)
    drained = next(n for n in server.nodes if n.name == host)
    other = next(i for i, n in enumerate(server.nodes) if n is not drained)

    def until(what: str, cond, limit: float) -> None:
        deadline = time.monotonic() + run.budget(limit)
        while not cond():
            if time.monotonic() > deadline:
                raise Failed(f"timed out waiting for {what}\n{server.log_tail(15)}")
            say_and_listen()

    def drain():
        say_and_listen(5)
        check(server.admin(f"/api/v1/cluster/nodes/{drained.name}/drain") == 200,
              "the drain request was refused")
        until(f"{drained.name} to hold nothing", lambda: (
            lambda n: n.get("status") == "draining" and n.get("shards") == 0
            and all(v == 0 for v in n.get("entities", {}).values()))(
                server.node_status(drained.name, via=other)), 20)
        moved = server.host_of(players[0].user_id)
        check(moved != drained.name, f"{players[0].username} is still on {drained.name}")
        n = server.node_status(drained.name, via=other)
        return (f"{drained.name}: {n['status']}, {n['shards']} shards, entities "
                f"{n['entities']}; {players[0].username} now on {moved}")
    run.step("the node holding a player is drained (POST /api/v1/cluster/nodes/…/drain) "
             "while everyone chats: the API shows it draining with 0 shards and 0 entities",
             drain)

    def restart():
        # Its players poll through another gateway meanwhile (a load balancer would).
        for p in players:
            if p.port == drained.port:
                p.port = server.nodes[other].port
        drained.stop(timeout=30)
        say_and_listen(5)
        drained.start()
        until(f"{drained.name} to rejoin", server.formed, 30)
        return f"{drained.name} is up again"
    run.step("the drained node stops (SIGTERM) and starts again while the chat goes on; "
             "it rejoins the cluster", restart)

    def rebalance():
        check(server.admin("/api/v1/cluster/rebalance", via=other) == 200,
              "the rebalance request was refused")
        until(f"{drained.name} to get shards back",
              lambda: server.node_status(drained.name, via=other).get("shards", 0) > 0, 20)
        # New players land on it again.
        extra = []
        for i in range(40):
            c = OsuClient(server.port_for(i), f"Emu Late{i}{tag}", f"late password {i}")
            status, _ = c.register(f"late{i}.{tag}@example.com", check=False)
            check(status == 200, f"sign-up of {c.username}: {status}")
            r = c.login()
            check(r.user_id is not None and r.user_id > 0, f"{c.username} did not log in")
            extra.append(c)
            if server.host_of(c.user_id) == drained.name:
                break
        check(server.host_of(extra[-1].user_id) == drained.name,
              f"nobody landed on {drained.name} after the rebalance")
        # The API's view of a peer is as fresh as its last heartbeat.
        until(f"the API to count the players on {drained.name}", lambda: server.node_status(
            drained.name, via=other).get("entities", {}).get("user", 0) > 0, 10)
        n = server.node_status(drained.name, via=other)
        return f"{drained.name}: {n['shards']} shards, entities {n['entities']}"
    run.step("POST /api/v1/cluster/rebalance: the restarted node has shards and players "
             "again", rebalance)

    def everything_arrived():
        say_and_listen(10)
        # The last lines are on their way: listen until each has arrived (or the time is up).
        deadline = time.monotonic() + run.budget(WAIT)
        while time.monotonic() < deadline and any(
                len(heard[p.username][q.username]) < sent[q.username]
                for p in players for q in players if q is not p):
            time.sleep(0.05)
            listen()
        for p in players:
            for q in players:
                if q is p:
                    continue
                got = heard[p.username][q.username]
                want = list(range(sent[q.username]))
                check(got == want, f"{p.username} heard {q.username}'s lines {got[:10]}... "
                                   f"({len(got)} of {len(want)}; first gap at "
                                   f"{next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), len(got))})")
            restarts = [x for x in p.log if x.packet is P.BanchoRestart]
            check(not restarts, f"{p.username} was told to log in again")
        return f"{sum(sent.values())} lines, each heard once and in order by every other player"
    run.step("every chat line of the whole move arrived once, in order, and nobody had to "
             "log in again", everything_arrived)

    def kill_mid_chat():
        # The node of the second player dies (SIGKILL) while everyone chats. Its players
        # are rebuilt on a live node from their session records at their next poll; what
        # was in flight through the dead node may be lost, nothing arrives twice or out
        # of order, and the chat goes on.
        victim_name = server.host_of(players[1].user_id)
        victim = next(i for i, n in enumerate(server.nodes) if n.name == victim_name)
        survivor = next(i for i, n in enumerate(server.nodes) if i != victim)
        for p in players:
            if p.port == server.nodes[victim].port:
                p.port = server.nodes[survivor].port
        for lines in heard.values():
            for got in lines.values():
                got.clear()
        start = dict(sent)
        say_and_listen(5)
        server.nodes[victim].proc.kill()
        server.nodes[victim].proc.wait(timeout=5)
        live = [i for i in range(len(server.nodes)) if i != victim]
        until(f"the others to see {victim_name} gone", lambda: server.formed(live), 30)
        until(f"{players[1].username} to be rebuilt elsewhere",
              lambda: server.host_of(players[1].user_id) not in ("", victim_name), 20)
        say_and_listen(20)
        deadline = time.monotonic() + run.budget(WAIT)
        last = {q.username: sent[q.username] - 1 for q in players}
        while time.monotonic() < deadline and any(
                last[q.username] not in heard[p.username][q.username]
                for p in players for q in players if q is not p):
            time.sleep(0.05)
            listen()
        for p in players:
            for q in players:
                if q is p:
                    continue
                got = heard[p.username][q.username]
                check(all(a < b for a, b in zip(got, got[1:])),
                      f"{p.username} heard {q.username}'s lines doubled or reordered: {got}")
                check(got and got[-1] == last[q.username],
                      f"{p.username} stopped hearing {q.username} at {got[-1:]} "
                      f"(last sent {last[q.username]})")
            restarts = [x for x in p.log if x.packet is P.BanchoRestart]
            check(not restarts, f"{p.username} was told to log in again")
        total = sum(sent[n] - start[n] for n in sent)
        return (f"{victim_name} killed; {players[1].username} now on "
                f"{server.host_of(players[1].user_id)}; {total} lines sent, none doubled")
    run.step("a node is killed (SIGKILL) mid-chat: its players play on from their "
             "session records without logging in again, and the chat goes on", kill_mid_chat)


def main() -> int:
    if chio.__version__ != osu.CHIO_VERSION:
        print(f"warning: chio {chio.__version__} installed, written for {osu.CHIO_VERSION}",
              file=sys.stderr)
    arg = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PEACE_BIN", "target/debug/peace")
    binary = Path(arg)
    if not binary.exists() and not binary.is_absolute() and (REPO / arg).exists():
        binary = REPO / arg
    if not binary.exists():
        print(f"no peace binary at {arg} (build it with `cargo build`)", file=sys.stderr)
        print("0 passed, 1 failed")
        return 2
    binary = binary.resolve()

    nodes = int(os.environ.get("EMULATE_NODES", "1"))
    server = Server(binary, nodes)
    run = Runner(server)
    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        scenario(run, server)
    except Failed:
        pass
    except KeyboardInterrupt:
        print("interrupted")
        run.failed += 1
    except Exception:  # noqa: BLE001 - a bug in the scenario still stops the server
        traceback.print_exc()
        run.failed += 1
    finally:
        server.stop()
        signal.signal(signal.SIGTERM, previous)
    print(f"{run.passed} passed, {run.failed} failed")
    return 0 if run.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
