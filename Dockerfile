# syntax=docker/dockerfile:1
# mmm-host: the reference host (examples/host) as a container image.
#
#   docker build -t mmm-host:0.1.0 .
#   docker run -p 8080:8080 -v mmm-data:/var/lib/mmm mmm-host:0.1.0
#
# Two stages: the whole workspace is built with the Rust toolchain (cargo needs every
# member's manifest to resolve the workspace, and --locked holds it to Cargo.lock); the
# image is distroless `cc` (glibc and libgcc, which a Rust binary links, and nothing else:
# no shell, no package manager), running as its `nonroot` user (65532). It holds the binary
# and the bundled playbooks only. Validated by checkov's Dockerfile checks in
# scripts/test-deploy.sh (no Docker engine on the build machine; docs/operations.md).

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src
COPY . .
# The registry and target caches survive between builds (BuildKit cache mounts); the binary
# is copied out of the cached target directory, which is not part of the layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p mmm-host \
    && install -D -m 0755 target/release/mmm-host /out/app/mmm-host \
    && install -d -m 0700 /out/var/lib/mmm

FROM gcr.io/distroless/cc-debian12:nonroot
WORKDIR /app
COPY --from=builder /out/app/mmm-host /app/mmm-host
COPY playbooks /app/playbooks
# The data directory (SQLite, the local token and receipt keys when none is configured),
# owned by the user the host runs as; mount a volume here to keep it.
COPY --from=builder --chown=65532:65532 /out/var/lib/mmm /var/lib/mmm
USER 65532:65532
ENV MMM_LISTEN=0.0.0.0:8080 \
    MMM_DATA_DIR=/var/lib/mmm \
    MMM_SEED_PLAYBOOKS=/app/playbooks
EXPOSE 8080
# No HEALTHCHECK: the image has no shell or HTTP client to run one with; Kubernetes probes
# GET /v1/mmm/health and /v1/mmm/ready (deploy/k8s/deployment.yaml).
# checkov:skip=CKV_DOCKER_2: no shell or HTTP client in a distroless image to run a HEALTHCHECK; the orchestrator's HTTP probes check /v1/mmm/health and /v1/mmm/ready
ENTRYPOINT ["/app/mmm-host"]
CMD ["serve"]
