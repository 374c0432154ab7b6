# syntax=docker/dockerfile:1
# Peace in a container: `docker build -t peace .`, then see deploy/compose.yaml (a node
# with PostgreSQL) and docs/deploy.md.

# --- build -------------------------------------------------------------------------
FROM rust:1-slim-bookworm AS build
WORKDIR /src
# PostgreSQL and MySQL are spoken by pure-Rust drivers; SQLite is compiled in. No C
# client libraries are needed.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin peace \
    && install -m 0755 target/release/peace /usr/local/bin/peace

# --- run ---------------------------------------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 peace \
    && useradd --system --uid 10001 --gid peace --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin peace \
    && mkdir -p /data \
    && chown peace:peace /data
COPY --from=build /usr/local/bin/peace /usr/local/bin/peace
COPY deploy/docker/peace.toml /etc/peace/peace.toml

# Everything the server writes (the SQLite file when no other database is given,
# replays, .osu files) goes to /data.
VOLUME /data
WORKDIR /data
USER peace:peace

# 8080: HTTP (put a TLS proxy in front: deploy/caddy, deploy/nginx). 9001: the cluster
# listener, used only when the node is given `--cluster-addr 0.0.0.0:9001`; publish it to
# the other nodes only, never to the internet.
EXPOSE 8080 9001

# `/livez` answers while the process does; load balancers ask `/readyz` instead.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD curl -fsS -o /dev/null http://127.0.0.1:8080/livez || exit 1

# On SIGTERM a node of a cluster hands its players to the others first (at most
# `[cluster] drain_timeout_secs`, 60 s by default): give `docker stop` 90 s
# (`--time 90`, or `stop_grace_period` in compose).
STOPSIGNAL SIGTERM
ENTRYPOINT ["peace", "--config", "/etc/peace/peace.toml"]
CMD ["serve"]
