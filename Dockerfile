# syntax=docker/dockerfile:1
# edi-bridge in a container: built on Debian 12 with the Rust toolchain, run from a slim Debian 12
# image as a non-root user. `deploy/compose.yaml` runs it beside Odoo 18, PostgreSQL and an SFTP
# server; README "Deploying" has the steps.
#
#   docker build -t edi-bridge .
#   docker run -v ./edi-bridge.toml:/etc/edi-bridge/edi-bridge.toml:ro -v edi-state:/var/lib/edi-bridge \
#     -e ODOO_API_KEY -e EDI_BRIDGE_TOKEN -p 127.0.0.1:8480:8480 edi-bridge

ARG RUST_VERSION=1.88

# ---- build ------------------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-slim-bookworm AS build
# pkg-config + libxml2-dev + libclang-dev: the libxml crate (bindgen); libsqlite3-dev: the ledger.
# (The image already has gcc and libc6-dev, which ring needs.)
RUN apt-get update \
 && apt-get install -y --no-install-recommends pkg-config libxml2-dev libclang-dev libsqlite3-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# What the release binary is built from; Cargo.toml names the benches, so they come too.
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin edi-bridge \
 && install -m 0755 target/release/edi-bridge /usr/local/bin/edi-bridge

# ---- run --------------------------------------------------------------------------------------
FROM debian:bookworm-slim
# libxml2: XSD validation; libsqlite3-0: the ledger; ca-certificates: HTTPS to Odoo;
# tzdata: partner time zones (archive folders by date, cron schedules).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libxml2 libsqlite3-0 ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/edi-bridge \
      --shell /usr/sbin/nologin edi-bridge \
 && install -d -o edi-bridge -g edi-bridge -m 0750 /var/lib/edi-bridge \
 && install -d -m 0755 /etc/edi-bridge
COPY --from=build /usr/local/bin/edi-bridge /usr/local/bin/edi-bridge
# The canonical schemas, where deploy/edi-bridge.example.toml and the compose config look.
COPY xsd /usr/local/share/edi-bridge/xsd
COPY deploy/healthcheck.sh /usr/local/bin/edi-bridge-healthcheck
COPY deploy/edi-bridge.example.toml /etc/edi-bridge/edi-bridge.example.toml

USER edi-bridge
WORKDIR /var/lib/edi-bridge
# The ledger and the spool: keep them across container restarts.
VOLUME /var/lib/edi-bridge
ENV EDI_BRIDGE_CONFIG=/etc/edi-bridge/edi-bridge.toml \
    EDI_BRIDGE_HEALTH_PORT=8480
# [server] listen must be reachable from outside the container: listen = "0.0.0.0:8480".
EXPOSE 8480
# GET /healthz on [server] listen (set EDI_BRIDGE_HEALTH_PORT when it is not 8480): 200 while the
# scheduler runs, 503 when it is stuck.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/edi-bridge-healthcheck"]
# SIGTERM: stop taking files, finish the one in hand, exit 0 (give it time: docker stop -t 60).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/edi-bridge"]
CMD ["run"]
