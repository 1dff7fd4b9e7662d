#!/usr/bin/env bash
# Builds aiconform-testcluster into ${AICONFORM_TESTCLUSTER_OUT:-<repo>/target/testcluster}.
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
bin="$out/aiconform-testcluster"
stampfile="$out/.aiconform-testcluster.stamp"

# Skip the (slow, ~20 s) link step when nothing that goes into the binary
# changed: sources, go.mod/go.sum (which pin every dependency), this script,
# the Go version and the flags.
stamp="$(
  {
    go version
    echo "$ldflags"
    find . -type f \( -name '*.go' -o -name '*.yaml' -o -name go.mod -o -name go.sum -o -name build.sh \) \
      ! -name '*_test.go' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
  } | sha256sum | cut -d' ' -f1
)"
if [ -x "$bin" ] && [ -f "$stampfile" ] && [ "$(cat "$stampfile")" = "$stamp" ]; then
  echo "$bin"
  exit 0
fi

rm -f "$stampfile"
go build -ldflags "-s -w${ldflags}" -o "$bin.tmp.$$" ./cmd/aiconform-testcluster
mv -f "$bin.tmp.$$" "$bin"
echo "$stamp" > "$stampfile.$$" && mv -f "$stampfile.$$" "$stampfile"
echo "$bin"
