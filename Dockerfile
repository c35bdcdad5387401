# syntax=docker/dockerfile:1
# anya-image-api: a release build in a Rust image, run from a slim Debian image as a non-root
# user. Dependencies are compiled in their own layer, which stays cached until Cargo.toml or
# Cargo.lock change.

FROM rust:1-bookworm AS builder
WORKDIR /app

# The dependency layer: the workspace manifests and lock file, with stand-in sources for
# both members so that cargo can resolve and compile every dependency. The benchmarks come
# along because cargo refuses a manifest whose declared [[bench]] files are missing.
COPY Cargo.toml Cargo.lock ./
COPY sim/Cargo.toml sim/Cargo.toml
COPY benches benches
RUN mkdir -p src sim/src \
    && echo 'fn main() {}' | tee src/main.rs sim/src/main.rs \
    && touch src/lib.rs sim/src/lib.rs \
    && cargo build --release --locked -p anya-image-api \
    && rm -rf src sim/src

# The service itself. `touch` makes the real sources newer than the stand-ins' build
# records, whatever times COPY gave them, so cargo rebuilds them.
COPY config config
COPY src src
COPY sim/src sim/src
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked -p anya-image-api

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin anya
COPY --from=builder /app/target/release/anya-image-api /usr/local/bin/anya-image-api
USER anya
# Render sets PORT for the service; 8080 is the default elsewhere.
ENV PORT=8080
EXPOSE 8080
CMD ["anya-image-api"]
