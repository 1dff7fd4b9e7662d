#!/usr/bin/env bash
# Builds the aiconform container image (ghcr.io/aiconform/aiconform:v<crate version>) as an
# OCI archive in target/image/, without a container engine or base image: the binary is built
# on this machine and written into an empty (scratch) image by ci/testcluster's `ociimage`
# tool. The result equals the Dockerfile's `image` stage: one binary at
# /usr/local/bin/aiconform, user 65532:65532, OCI labels with version and source.
#
#   ci/image/build.sh                    # static release binary (glibc, +crt-static)
#   ci/image/build.sh --binary FILE      # package an existing binary (e.g. target/debug/aiconform;
#                                        # a dynamically linked one gets its shared libraries)
#   ci/image/build.sh --load             # also `docker load` it when a Docker engine answers
#
# Load it into a containerd: ctr -n k8s.io images import target/image/aiconform-v<version>.tar
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"

binary=""
load=0
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary="${2:?--binary needs a file}"; shift 2 ;;
    --load) load=1; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "ci/image/build.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)"
[ -n "$version" ] || { echo "ci/image/build.sh: no version in Cargo.toml" >&2; exit 1; }
ref="ghcr.io/aiconform/aiconform:v${version}"
source_url="https://github.com/aiconform/aiconform"
revision="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
out_dir="$repo/target/image"
out="$out_dir/aiconform-v${version}.tar"
mkdir -p "$out_dir"
t0=$SECONDS

case "$(uname -m)" in
  x86_64) triple=x86_64-unknown-linux-gnu; arch=amd64 ;;
  aarch64) triple=aarch64-unknown-linux-gnu; arch=arm64 ;;
  *) echo "ci/image/build.sh: unsupported machine $(uname -m)" >&2; exit 1 ;;
esac

if [ -z "$binary" ]; then
  # An explicit --target keeps build scripts and proc macros dynamically linked; only the
  # product binary is static. glibc's NSS (files, dns) is built into libc since 2.34.
  RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    cargo build --release --locked --target "$triple" --bin aiconform
  binary="target/$triple/release/aiconform"
fi
[ -f "$binary" ] || { echo "ci/image/build.sh: $binary does not exist" >&2; exit 1; }
# Debug info is not shipped (a debug build shrinks from hundreds of MB to tens).
stripped="$out_dir/aiconform.stripped"
strip -o "$stripped" "$binary"
binary="$stripped"

# The image writer (Go, standard library only).
tool="$repo/target/testcluster/ociimage"
(cd ci/testcluster && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -o "$tool" ./cmd/ociimage)

args=(--ref "$ref" --out "$out" --arch "$arch" --user 65532:65532
  --file "$binary:/usr/local/bin/aiconform:0755"
  --entrypoint /usr/local/bin/aiconform
  --env PATH=/usr/local/bin
  --label "org.opencontainers.image.title=aiconform"
  --label "org.opencontainers.image.description=Make GPU Kubernetes clusters reproducible and prove it"
  --label "org.opencontainers.image.version=${version}"
  --label "org.opencontainers.image.source=${source_url}"
  --label "org.opencontainers.image.revision=${revision}"
  --label "org.opencontainers.image.licenses=Apache-2.0")
# A dynamically linked binary carries its loader and libraries (a self-contained image).
if ldd "$binary" >/dev/null 2>&1; then
  while read -r lib; do
    args+=(--file "$(readlink -f "$lib"):$lib:0755")
  done < <(ldd "$binary" | grep -o '/[^ ]*' | sort -u)
fi
"$tool" "${args[@]}"
rm -f "$stripped"

if [ "$load" = 1 ]; then
  if docker info >/dev/null 2>&1; then
    docker load -i "$out"
  else
    echo "ci/image/build.sh: no Docker engine answers; skipped docker load" >&2
  fi
fi
echo "ci/image/build.sh: $ref -> $out ($(du -h "$out" | cut -f1), $((SECONDS - t0))s)" >&2
echo "$out"
