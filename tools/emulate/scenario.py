#!/usr/bin/env python3
"""Three new players against a real `peace serve`, through an emulated osu! client.

    pip install chio==1.1.21
    python3 tools/emulate/scenario.py [path/to/peace]     # or PEACE_BIN=...; default target/debug/peace

Starts the server in a temporary directory (SQLite, bcrypt cost 4, a free 127.0.0.1
port), registers three accounts through the in-game sign-up form, logs them in and
walks through presence, public and private chat, #lobby, a status change, a bot command
and a logout. Prints one line per checked step and then `N passed, M failed`; exits 1 at
the first failure. The whole run is bounded (about a minute at most) and the server is
always stopped.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable, List, Optional

sys.dont_write_bytecode = True  # keep tools/emulate free of __pycache__
sys.path.insert(0, str(Path(__file__).resolve().parent))

import chio  # noqa: E402

import client as osu  # noqa: E402
from client import P, OsuClient, ProtocolError, StepFailed  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
RUN_BUDGET = 55.0          # seconds for the whole scenario, server start included
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


class Server:
    def __init__(self, binary: Path):
        self.binary = binary
        self.dir = tempfile.TemporaryDirectory(prefix="peace-emulate-")
        self.port = free_port()
        self.proc: Optional[subprocess.Popen] = None
        self.log_path = Path(self.dir.name) / "server.log"

    def start(self) -> None:
        root = Path(self.dir.name)
        config = root / "peace.toml"
        config.write_text(
            "[node]\n"
            'name = "emulate"\n'
            "[http]\n"
            f'addr = "127.0.0.1:{self.port}"\n'
            'domain = "peace.local"\n'
            "[database]\n"
            f'url = "sqlite://{root / "peace.db"}"\n'
            "[login]\n"
            "bcrypt_cost = 4\n"
            "[sessions]\n"
            "idle_timeout_secs = 60\n"
        )
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "info")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [str(self.binary), "--config", str(config), "serve"],
            cwd=root, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
            env=env, start_new_session=True,
        )

    def wait_healthy(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Failed(f"the server exited with code {self.proc.returncode} during "
                             f"startup\n{self.log_tail()}")
            try:
                r = osu.http_request(self.port, "GET", "/api/v1/health",
                                     host=f"127.0.0.1:{self.port}", timeout=1.0)
                if r.status == 200:
                    return r.body.decode(errors="replace").strip()
                last = f"HTTP {r.status}: {r.body[:200]!r}"
            except OSError as e:
                last = repr(e)
            time.sleep(0.1)
        raise Failed(f"/api/v1/health did not answer 200 within {timeout:.0f}s "
                     f"(last: {last})\n{self.log_tail()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "--- server log (last lines) ---\n" + "\n".join(text[-lines:])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if getattr(self, "log", None):
            self.log.close()
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
        OsuClient(server.port, f"Emu Alice{tag}", "alice's password 1"),
        OsuClient(server.port, f"Emu Bob{tag}", "bob's password 22"),
        OsuClient(server.port, f"Emu Carol{tag}", "carol's password 333"),
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
        return f"127.0.0.1:{server.port}, health: {server.wait_healthy(run.budget(STARTUP_TIMEOUT))[:80]}"
    run.step("server starts and /api/v1/health answers 200", start)

    # -- registration --------------------------------------------------------------------
    for p in people:
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

    for p in people:
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

    server = Server(binary)
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
