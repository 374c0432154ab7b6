#!/usr/bin/env bash
# Static checks of the deployment files (docs/deploy.md): the Caddyfile adapts, validates
# and is formatted, nginx accepts peace.conf, systemd accepts peace.service, the compose
# file parses, and every HTTP route of the gateway is either one players use or one the
# proxies refuse. A tool that is not installed is skipped with a note (CI installs caddy
# and nginx). Usage: deploy/test/check_configs.sh [path/to/peace]
set -euo pipefail
cd "$(dirname "$0")/../.."
peace_bin="${1:-}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
export HOME="$tmp" XDG_DATA_HOME="$tmp/data" XDG_CONFIG_HOME="$tmp/config"

ok() { echo "ok   $*"; }
skip() { echo "skip $*"; }

caddy="${CADDY:-caddy}"
if command -v "$caddy" >/dev/null; then
    "$caddy" adapt --config deploy/caddy/Caddyfile --adapter caddyfile >"$tmp/caddy.json"
    "$caddy" validate --config deploy/caddy/Caddyfile --adapter caddyfile >"$tmp/validate.log" 2>&1 \
        || { cat "$tmp/validate.log"; exit 1; }
    "$caddy" fmt deploy/caddy/Caddyfile 2>/dev/null | diff -u deploy/caddy/Caddyfile - \
        || { echo "deploy/caddy/Caddyfile is not formatted as 'caddy fmt' writes it" >&2; exit 1; }
    ok "caddy adapt, caddy validate, caddy fmt: deploy/caddy/Caddyfile ($("$caddy" version | cut -d" " -f1))"
else
    skip "caddy is not installed"
fi

if command -v nginx >/dev/null || [ -x /usr/sbin/nginx ]; then
    nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"
    # The distribution's main file, reduced to what a check in a temporary folder needs.
    cat >"$tmp/nginx.conf" <<CONF
pid $tmp/nginx.pid;
error_log $tmp/error.log;
events {}
http {
    access_log off;
    client_body_temp_path $tmp/client_body;
    proxy_temp_path $tmp/proxy;
    include $PWD/deploy/nginx/peace.conf;
}
CONF
    "$nginx_bin" -t -q -p "$tmp" -c "$tmp/nginx.conf"
    ok "nginx -t: deploy/nginx/peace.conf ($("$nginx_bin" -v 2>&1 | cut -d' ' -f3))"
else
    skip "nginx is not installed"
fi

if command -v systemd-analyze >/dev/null; then
    # verify wants ExecStart's program to exist: the built binary, or any program.
    sed "s#/usr/local/bin/peace#${peace_bin:-/bin/true}#" deploy/peace.service >"$tmp/peace.service"
    out="$(systemd-analyze verify "$tmp/peace.service" 2>&1 || true)"
    # A machine without systemd running cannot look up the units named in After=.
    if printf '%s\n' "$out" | grep -v -e "peace.service: Failed to .*No such file" \
        -e "^$" -e "Unit .* not found" | grep -q .; then
        printf '%s\n' "$out" >&2
        echo "systemd-analyze verify deploy/peace.service failed" >&2
        exit 1
    fi
    ok "systemd-analyze verify: deploy/peace.service"
    # systemd's own score of the sandbox (0 = locked down, 10 = none); 252+ can score a file.
    if exposure="$(systemd-analyze security --offline=yes "$tmp/peace.service" 2>/dev/null \
        | sed -n 's/.*Overall exposure level for peace.service: \([0-9.]*\).*/\1/p')" \
        && [ -n "$exposure" ]; then
        python3 -c "import sys; sys.exit(float('$exposure') > 2.5)" \
            || { echo "deploy/peace.service: systemd-analyze security exposure $exposure > 2.5" >&2; exit 1; }
        ok "systemd-analyze security: deploy/peace.service exposure $exposure (at most 2.5)"
    fi
else
    skip "systemd-analyze is not installed"
fi

if docker compose version >/dev/null 2>&1; then
    PEACE_DB_PASSWORD=check PEACE_SESSION_SECRET=check \
        docker compose -f deploy/compose.yaml config -q
    ok "docker compose config: deploy/compose.yaml"
else
    # No compose plugin: check the file's shape instead.
    python3 - <<'PY'
import yaml
d = yaml.safe_load(open("deploy/compose.yaml"))
s = d["services"]
assert s["peace"]["depends_on"]["db"]["condition"] == "service_healthy", "peace must wait for db"
assert "healthcheck" in s["db"], "db needs a healthcheck"
assert s["peace"]["build"]["dockerfile"] == "Dockerfile"
PY
    skip "docker compose is not installed; deploy/compose.yaml parses as YAML and has its healthcheck and depends_on"
fi
test -f Dockerfile && test -f .dockerignore

# Every route of the gateway: one that players use (and the proxies pass), or one the
# proxies refuse (deploy/test/lb_rolling_restart.py checks those through both). A new
# route must be put in one list or the other here, and in the configs if refused.
python3 - <<'PY'
import re
routes = set(re.findall(r'\.route\(\s*"([^"]+)"', open("crates/gateway/src/lib.rs").read()))
public = re.compile(r"^/$|^/\.well-known/acme-challenge/|^/users$|^/web/|^/api/v1/users/online$|^/api/v1/scores/\{id\}/replay$|^/\{file\}$|^/(a|ss)/\{file\}$|^/api/v1/me/avatar$|^/difficulty-rating$|^/d/\{file\}$|^/(thumb|preview)/\{file\}$")
refused = re.compile(r"^/(metrics|readyz|livez)$|^/api/v1/(health|cluster|entities|admin)(/|$)")
unknown = sorted(r for r in routes if not public.search(r) and not refused.search(r))
assert not unknown, f"routes neither public nor refused by the proxies: {unknown}"
caddy = open("deploy/caddy/Caddyfile").read()
nginx = open("deploy/nginx/peace.conf").read()
for word in ("metrics", "readyz", "livez", "health", "cluster", "entities", "admin"):
    assert word in caddy.split("@operator path", 1)[1].split("\n", 1)[0], f"Caddyfile does not refuse {word}"
    assert re.search(r"location ~\* .*" + word, nginx), f"peace.conf does not refuse {word}"
print(f"ok   {len(routes)} gateway routes: each is public or refused by both proxies")
PY
echo "deployment files checked"
