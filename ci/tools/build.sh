#!/usr/bin/env bash
# Builds the pinned tools aiconform's deploy and tests use into
# ${AICONFORM_TOOLS_OUT:-<repo>/target/tools}:
#   helm                 Helm v3.22.0 from its Go module (helm.sh/helm/v3/cmd/helm)
#   aiconform-registry   the go-containerregistry v0.22.1 registry (as `crane registry serve`)
#                        with optional basic auth and TLS, for the OCI tests
#   helmfile             helmfile v1.8.0 (module helmfile/, with the replace directives of
#                        helmfile's own go.mod), to check the helmfile deployer's output
#   aiconform-fluxcheck  decodes Flux objects strictly into the Flux API Go types (helm-,
#                        source- and kustomize-controller api modules), for the flux deployer
# A module of its own: Helm v3.22 needs k8s.io v0.37 and Go 1.26, the test cluster pins
# k8s.io v1.34.4. GOMODCACHE/GOCACHE keep their Go defaults, shared with ci/testcluster.
# Idempotent: a stamp over sources, go.mod/go.sum, this script and the Go version skips
# the build when nothing changed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="${AICONFORM_TOOLS_OUT:-$repo/target/tools}"

if ! command -v go >/dev/null 2>&1; then
  if [ -x /usr/local/go/bin/go ]; then
    export PATH="/usr/local/go/bin:$PATH"
  else
    echo "ci/tools/build.sh: Go toolchain not found (need go >= 1.26)" >&2
    exit 1
  fi
fi
export GOFLAGS=-mod=mod
cd "$here"

helm_version="v3.22.0"
# As Helm's Makefile: the version, and the Kubernetes version its client-go speaks.
k8s_minor="$(go list -m -f '{{.Version}}' k8s.io/client-go | cut -d. -f2)"
helm_ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=${helm_version}"
helm_ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
helm_ldflags+=" -X helm.sh/helm/v3/internal/version.gitCommit=aiconform-tools"
for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  helm_ldflags+=" -X ${pkg}.k8sVersionMajor=1 -X ${pkg}.k8sVersionMinor=${k8s_minor}"
done

mkdir -p "$out"
stampfile="$out/.tools.stamp"
stamp="$(
  {
    go version
    echo "$helm_ldflags"
    find . -type f \( -name '*.go' -o -name go.mod -o -name go.sum -o -name build.sh \) \
      ! -name '*_test.go' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
  } | sha256sum | cut -d' ' -f1
)"
if [ -x "$out/helm" ] && [ -x "$out/aiconform-registry" ] && [ -x "$out/aiconform-fluxcheck" ] &&
  [ -x "$out/helmfile" ] &&
  [ -f "$stampfile" ] &&
  [ "$(cat "$stampfile")" = "$stamp" ]; then
  echo "$out"
  exit 0
fi

rm -f "$stampfile"
go build -ldflags "$helm_ldflags" -o "$out/helm.tmp.$$" helm.sh/helm/v3/cmd/helm
mv -f "$out/helm.tmp.$$" "$out/helm"
go build -ldflags "-s -w" -o "$out/aiconform-registry.tmp.$$" ./cmd/aiconform-registry
mv -f "$out/aiconform-registry.tmp.$$" "$out/aiconform-registry"
go build -ldflags "-s -w" -o "$out/aiconform-fluxcheck.tmp.$$" ./cmd/aiconform-fluxcheck
mv -f "$out/aiconform-fluxcheck.tmp.$$" "$out/aiconform-fluxcheck"
(cd helmfile && go build -ldflags "-s -w" -o "$out/helmfile.tmp.$$" github.com/helmfile/helmfile)
mv -f "$out/helmfile.tmp.$$" "$out/helmfile"
echo "$stamp" > "$stampfile.$$" && mv -f "$stampfile.$$" "$stampfile"
echo "$out"
