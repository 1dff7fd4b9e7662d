# syntax=docker/dockerfile:1
# The aiconform image: one static binary in an empty image, run as a non-root user. It is
# the node agent's image (`aiconform snapshot` runs `aiconform agent` from it) and the CLI's.
#
#   docker build --build-arg VERSION=0.1.0 -t ghcr.io/aiconform/aiconform:v0.1.0 .
#   docker buildx build --target prebuilt ...   # package dist/linux-<arch>/aiconform (release.yml)
#
# Where no base image can be pulled, ci/image/build.sh writes the same image (as the `image`
# stage below) from a binary built on the host, without a container engine.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
# Static glibc binary (NSS files/dns are part of libc since glibc 2.34). An explicit --target
# keeps build scripts and proc macros dynamic.
RUN triple="$(uname -m)-unknown-linux-gnu" \
 && RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --target "$triple" --bin aiconform \
 && install -D -m 0755 "target/$triple/release/aiconform" /out/aiconform

FROM scratch AS base
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="aiconform" \
      org.opencontainers.image.description="Make GPU Kubernetes clusters reproducible and prove it" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/aiconform/aiconform" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/usr/local/bin
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/aiconform"]

# A binary built elsewhere (release.yml builds one per architecture and signs/SBOMs it).
FROM base AS prebuilt
ARG TARGETARCH
COPY --chmod=0755 dist/linux-${TARGETARCH}/aiconform /usr/local/bin/aiconform

# Default: build from source.
FROM base AS image
COPY --from=build /out/aiconform /usr/local/bin/aiconform
