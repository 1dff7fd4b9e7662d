#!/usr/bin/env bash
# Builds aiconform-testcluster, and for its real node the kubelet, a pause binary,
# its image (pause-image.tar) and the image writer ociimage, into
# ${AICONFORM_TESTCLUSTER_OUT:-<repo>/target/testcluster}. AICONFORM_SKIP_KUBELET=1 skips the kubelet.
# Idempotent; a no-op rebuild takes a few seconds thanks to Go's build cache.
# GOMODCACHE / GOCACHE keep their Go defaults unless already set.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="${AICONFORM_TESTCLUSTER_OUT:-$repo/target/testcluster}"

if ! command -v go >/dev/null 2>&1; then
  if [ -x /usr/local/go/bin/go ]; then
    export PATH="/usr/local/go/bin:$PATH"
  else
    echo "build.sh: Go toolchain not found (need go >= 1.24)" >&2
    exit 1
  fi
fi

export GOFLAGS=-mod=mod

# Must match the k8s.io/kubernetes version in go.mod (and cluster.KubernetesVersion).
kube_version="v1.34.4"
ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X ${pkg}.gitVersion=${kube_version}"
  ldflags+=" -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=34"
  ldflags+=" -X ${pkg}.gitTreeState=clean"
  ldflags+=" -X ${pkg}.gitCommit=aiconform-testcluster"
  ldflags+=" -X ${pkg}.buildDate=2025-01-01T00:00:00Z"
done

mkdir -p "$out"
cd "$here"

# build NAME STAMP-INPUT GO-BUILD-ARGS...: go build into $out/NAME unless the
# stamp (a hash of what goes into the binary) is unchanged.
build() {
  local name="$1" inputs="$2"
  shift 2
  local bin="$out/$name" stampfile="$out/.$name.stamp" stamp
  stamp="$(printf '%s\n' "$inputs" | sha256sum | cut -d' ' -f1)"
  if [ -x "$bin" ] && [ -f "$stampfile" ] && [ "$(cat "$stampfile")" = "$stamp" ]; then
    return 0
  fi
  rm -f "$stampfile"
  local t0=$SECONDS
  go build -o "$bin.tmp.$$" "$@"
  mv -f "$bin.tmp.$$" "$bin"
  echo "$stamp" > "$stampfile.$$" && mv -f "$stampfile.$$" "$stampfile"
  echo "build.sh: built $name in $((SECONDS - t0))s" >&2
}

# Skip the (slow, ~20 s) link steps when nothing that goes into a binary
# changed: sources, go.mod/go.sum (which pin every dependency), this script,
# the Go version and the flags.
sources="$(
  {
    go version
    echo "$ldflags"
    find . -type f \( -name '*.go' -o -name '*.yaml' -o -name go.mod -o -name go.sum -o -name build.sh \) \
      ! -name '*_test.go' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
  } | sha256sum | cut -d' ' -f1
)"
# The kubelet depends only on the module graph, the Go version and the flags.
modules="$(go version; echo "$ldflags"; sha256sum go.mod go.sum build.sh)"

build aiconform-testcluster "$sources" -ldflags "-s -w${ldflags}" ./cmd/aiconform-testcluster
# The real node (internal/realnode): upstream kubelet with the same version
# stamp, a static pause binary and its image, and the image writer.
if [ "${AICONFORM_SKIP_KUBELET:-0}" != 1 ]; then
  build kubelet "$modules" -ldflags "-s -w${ldflags}" k8s.io/kubernetes/cmd/kubelet
fi
CGO_ENABLED=0 build pause "$sources" -ldflags "-s -w" ./cmd/pause
CGO_ENABLED=0 build ociimage "$sources" -ldflags "-s -w" ./cmd/ociimage
pause_stamp="$(sha256sum "$out/pause" "$out/ociimage" | sha256sum | cut -d' ' -f1)"
if [ ! -f "$out/pause-image.tar" ] || [ "$(cat "$out/.pause-image.stamp" 2>/dev/null)" != "$pause_stamp" ]; then
  "$out/ociimage" --ref registry.k8s.io/pause:3.10 --out "$out/pause-image.tar" \
    --file "$out/pause:/pause:0755" --entrypoint /pause --user 65535:65535
  echo "$pause_stamp" > "$out/.pause-image.stamp"
fi
echo "$out/aiconform-testcluster"
