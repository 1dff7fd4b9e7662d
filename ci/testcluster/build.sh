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
go build -ldflags "-s -w${ldflags}" -o "$out/aiconform-testcluster" ./cmd/aiconform-testcluster
echo "$out/aiconform-testcluster"
