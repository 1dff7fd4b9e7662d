#!/usr/bin/env bash
# Builds the upstream controllers of the `--stack upstream` test cluster from their Go
# modules into ${AICONFORM_UPSTREAM_OUT:-<repo>/target/upstream}:
#   bin/<name>          one binary per image the stack runs (the process runtime maps the
#                       image repository to it: see images.txt)
#   images.txt          IMAGE_REPOSITORY=BINARY_NAME VERSION, one line each
#   manifests/<component>/  what `--stack upstream` applies, in file order: the component's
#                       own CRDs and RBAC (and its example Deployment where it ships one),
#                       copied from its module at build time, then this folder's
#                       <component>/manifests/*.yaml (the objects a provider writes)
# One Go module per component (ci/upstream/<component>/go.mod) so each builds with the
# dependency versions its release chose; GOMODCACHE/GOCACHE keep their Go defaults, shared
# with ci/testcluster and ci/tools. Idempotent: a stamp over go.mod/go.sum, this script and
# the Go version skips the build when nothing changed.
# Usage: ci/upstream/build.sh [COMPONENT...]   (default: every component)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="${AICONFORM_UPSTREAM_OUT:-$repo/target/upstream}"
export GOFLAGS=-mod=mod
if ! command -v go >/dev/null 2>&1; then
  echo "ci/upstream/build.sh: Go toolchain not found (need go >= 1.26)" >&2
  exit 1
fi

# component | module | version | package | binary | image repository | version ldflags | build tags
# Prometheus keeps only Kubernetes service discovery (its own build tags: the operator's
# configurations use nothing else), which spares compiling the cloud SDKs.
components=(
  "prometheus|github.com/prometheus/prometheus|v0.316.0|cmd/prometheus|prometheus|quay.io/prometheus/prometheus|common|remove_all_sd,enable_kubernetes_sd"
  "prometheus-operator|github.com/prometheus-operator/prometheus-operator|v0.85.0|cmd/operator|prometheus-operator|quay.io/prometheus-operator/prometheus-operator|common|"
  "prometheus-operator|github.com/prometheus-operator/prometheus-operator|v0.85.0|cmd/prometheus-config-reloader|prometheus-config-reloader|quay.io/prometheus-operator/prometheus-config-reloader|common|"
)
# What each component ships, as paths inside its module (files or folders of YAML), in the
# order they are applied.
shipped=(
  "prometheus-operator|example/prometheus-operator-crd"
  "prometheus-operator|example/rbac/prometheus-operator"
  "prometheus-operator|example/rbac/prometheus/prometheus-cluster-role.yaml"
  "prometheus-operator|example/rbac/prometheus/prometheus-cluster-role-binding.yaml"
  "prometheus-operator|example/rbac/prometheus/prometheus-service-account.yaml"
)

want=("$@")
wanted() { [ ${#want[@]} -eq 0 ] && return 0; local w; for w in "${want[@]}"; do [ "$w" = "$1" ] && return 0; done; return 1; }

# The release version a module version stands for: Prometheus tags v3.X.Y as v0.3XX.Y.
release_version() {
  local module="$1" v="$2"
  if [ "$module" = github.com/prometheus/prometheus ] && [[ "$v" =~ ^v0\.3([0-9][0-9])\.([0-9]+)$ ]]; then
    echo "3.$((10#${BASH_REMATCH[1]})).${BASH_REMATCH[2]}"
  else
    echo "${v#v}"
  fi
}

ldflags_for() {
  local kind="$1" module="$2" v="$3" rel
  rel="$(release_version "$module" "$v")"
  case "$kind" in
    common)
      echo "-s -w -X github.com/prometheus/common/version.Version=${rel}" \
        "-X github.com/prometheus/common/version.Revision=${v}" \
        "-X github.com/prometheus/common/version.Branch=release" \
        "-X github.com/prometheus/common/version.BuildUser=aiconform" \
        "-X github.com/prometheus/common/version.BuildDate=19700101-00:00:00" ;;
  esac
}

mkdir -p "$out/bin" "$out/manifests"
images_tmp="$out/images.txt.$$"
: > "$images_tmp"
for entry in "${components[@]}"; do
  IFS='|' read -r comp module version pkg bin image kind tags <<<"$entry"
  rel="$(release_version "$module" "$version")"
  echo "$image=$bin $rel" >> "$images_tmp"
  wanted "$comp" || continue
  ldflags="$(ldflags_for "$kind" "$module" "$version")"
  stampfile="$out/bin/.$bin.stamp"
  stamp="$(
    { go version; echo "$entry"; echo "$ldflags"; cat "$here/build.sh";
      cat "$here/$comp/go.mod" "$here/$comp/go.sum"; } | sha256sum | cut -d' ' -f1
  )"
  if [ -x "$out/bin/$bin" ] && [ -f "$stampfile" ] && [ "$(cat "$stampfile")" = "$stamp" ]; then
    continue
  fi
  echo "ci/upstream: building $bin ($module $version)" >&2
  (cd "$here/$comp" && go build -trimpath -tags "$tags" -ldflags "$ldflags" -o "$out/bin/$bin.tmp.$$" "$module/$pkg")
  mv -f "$out/bin/$bin.tmp.$$" "$out/bin/$bin"
  echo "$stamp" > "$stampfile"
done
declare -A seq=()
for comp in $(printf '%s\n' "${shipped[@]}" | cut -d'|' -f1 | uniq); do
  wanted "$comp" || continue
  rm -rf "$out/manifests/$comp" && mkdir -p "$out/manifests/$comp"
done
for entry in "${shipped[@]}"; do
  IFS='|' read -r comp path <<<"$entry"
  wanted "$comp" || continue
  module="$(printf '%s\n' "${components[@]}" | awk -F'|' -v c="$comp" '$1==c {print $2; exit}')"
  dir="$(cd "$here/$comp" && go list -m -f '{{.Dir}}' "$module")"
  n="${seq[$comp]:-0}"; seq[$comp]=$((n + 1))
  dest="$out/manifests/$comp/$(printf '%02d' "$n")-$(basename "$path" .yaml)"
  mkdir -p "$dest"
  if [ -d "$dir/$path" ]; then cp "$dir/$path"/*.yaml "$dest/"; else cp "$dir/$path" "$dest/"; fi
  chmod -R u+w "$dest"
done
for comp in $(printf '%s\n' "${shipped[@]}" | cut -d'|' -f1 | uniq); do
  wanted "$comp" || continue
  if [ -d "$here/$comp/manifests" ]; then
    mkdir -p "$out/manifests/$comp/90-aiconform"
    cp "$here/$comp/manifests"/*.yaml "$out/manifests/$comp/90-aiconform/"
  fi
done
mv -f "$images_tmp" "$out/images.txt"
echo "$out"
