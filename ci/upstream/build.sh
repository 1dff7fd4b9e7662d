#!/usr/bin/env bash
# Builds the upstream controllers of the `--stack upstream` test cluster from their Go
# modules into ${AICONFORM_UPSTREAM_OUT:-<repo>/target/upstream}:
#   bin/<module>/<name> one binary per image the stack runs, named as the image's
#                       entrypoint (a container's `command` must name it)
#   images.txt          IMAGE_REPOSITORY=<module>/<name> VERSION UID, one line each: the
#                       process runtime runs that image as that binary, as the image's USER
#   manifests/<component>/  what `--stack upstream` applies, in path order: the component's
#                       own CRDs, RBAC and Deployment, taken from its module at build time
#                       (copied files, or its Helm chart rendered with `helm template`),
#                       then this folder's <component>/manifests/*.yaml (what a provider
#                       writes beside them)
# One Go module per component (ci/upstream/<component>/go.mod) so each builds with the
# dependency versions its release chose; GOMODCACHE/GOCACHE keep their Go defaults, shared
# with ci/testcluster and ci/tools. Idempotent: a stamp per binary over go.mod/go.sum, its
# flags and the Go version skips builds when nothing changed.
# Usage: ci/upstream/build.sh [NAME...]   (build modules and manifest sets; default: all)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="${AICONFORM_UPSTREAM_OUT:-$repo/target/upstream}"
export GOFLAGS=-mod=mod
if ! command -v go >/dev/null 2>&1; then
  echo "ci/upstream/build.sh: Go toolchain not found (need go >= 1.26)" >&2
  exit 1
fi

# build module (ci/upstream/<dir>) | module | version | package (. = the module's root) |
# binary | image repository |
# version ldflags | build tags | the image's USER (from the project's Dockerfile: nobody is
# 65534, distroless nonroot 65532)
# Prometheus keeps only Kubernetes service discovery (its own build tags: the operator's
# configurations use nothing else), which spares compiling the cloud SDKs.
components=(
  "prometheus|github.com/prometheus/prometheus|v0.316.0|cmd/prometheus|prometheus|quay.io/prometheus/prometheus|prometheus|remove_all_sd,enable_kubernetes_sd|65534"
  "prometheus-operator|github.com/prometheus-operator/prometheus-operator|v0.85.0|cmd/operator|operator|quay.io/prometheus-operator/prometheus-operator|prometheus||65534"
  "prometheus-operator|github.com/prometheus-operator/prometheus-operator|v0.85.0|cmd/prometheus-config-reloader|prometheus-config-reloader|quay.io/prometheus-operator/prometheus-config-reloader|prometheus||65534"
  "kueue|sigs.k8s.io/kueue|v0.17.0|cmd/kueue|manager|registry.k8s.io/kueue/kueue|kueue||65532"
  "jobset|sigs.k8s.io/jobset|v0.8.2|.|manager|registry.k8s.io/jobset/jobset|jobset||65532"
  "trainer|github.com/kubeflow/trainer/v2|v2.0.0|cmd/trainer-controller-manager|manager|ghcr.io/kubeflow/trainer/trainer-controller-manager|||65532"
  "traefik|github.com/traefik/traefik/v3|v3.6.12|cmd/traefik|traefik|docker.io/traefik|traefik||"
)
# What each component ships, in apply order: module paths (files or folders of YAML)
# copied as they are, or `chart:<path>` rendered with helm (release = component, namespace
# as given after a second colon, then --set flags; a third colon lists chart dependencies
# that cannot be fetched here, which the flags must disable: they render from a stub that
# fails when enabled).
shipped=(
  "prometheus-operator|github.com/prometheus-operator/prometheus-operator|example/prometheus-operator-crd"
  "prometheus-operator|github.com/prometheus-operator/prometheus-operator|example/rbac/prometheus-operator"
  "prometheus-operator|github.com/prometheus-operator/prometheus-operator|example/rbac/prometheus/prometheus-cluster-role.yaml"
  "prometheus-operator|github.com/prometheus-operator/prometheus-operator|example/rbac/prometheus/prometheus-cluster-role-binding.yaml"
  "prometheus-operator|github.com/prometheus-operator/prometheus-operator|example/rbac/prometheus/prometheus-service-account.yaml"
  "kueue|sigs.k8s.io/kueue|chart:charts/kueue:kueue-system|--set controllerManager.manager.image.repository=registry.k8s.io/kueue/kueue --set controllerManager.manager.image.tag=v0.17.0 --set controllerManager.manager.image.pullPolicy=IfNotPresent"
  "jobset|sigs.k8s.io/jobset|chart:charts/jobset:jobset-system|--set image.repository=registry.k8s.io/jobset/jobset --set image.tag=v0.8.2 --set image.pullPolicy=IfNotPresent"
  "trainer|github.com/kubeflow/trainer/v2|chart:charts/kubeflow-trainer:kubeflow-system:jobset|--set jobset.install=false --set fullnameOverride=kubeflow-trainer --set image.registry=ghcr.io --set image.repository=kubeflow/trainer/trainer-controller-manager --set image.tag=v2.0.0 --set image.pullPolicy=IfNotPresent"
  # Traefik's Gateway provider needs the standard-channel Gateway API CRDs of the version its
  # go.mod requires (gateway-api v1.4.0), then its own RBAC for that provider.
  "traefik|sigs.k8s.io/gateway-api|config/crd/standard"
  "traefik|github.com/traefik/traefik/v3|docs/content/reference/dynamic-configuration/kubernetes-gateway-rbac.yml"
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

# Version stamping as each project's release build does it.
ldflags_for() {
  local kind="$1" module="$2" v="$3" rel
  rel="$(release_version "$module" "$v")"
  case "$kind" in
    prometheus)
      echo "-s -w -X github.com/prometheus/common/version.Version=${rel}" \
        "-X github.com/prometheus/common/version.Revision=${v}" \
        "-X github.com/prometheus/common/version.Branch=release" \
        "-X github.com/prometheus/common/version.BuildUser=aiconform" \
        "-X github.com/prometheus/common/version.BuildDate=19700101-00:00:00" ;;
    kueue)
      echo "-s -w -X sigs.k8s.io/kueue/pkg/version.GitVersion=v${rel}" \
        "-X sigs.k8s.io/kueue/pkg/version.GitCommit=${v}" \
        "-X sigs.k8s.io/kueue/pkg/version.BuildDate=1970-01-01T00:00:00Z" ;;
    traefik)
      # As its release workflow (goreleaser: the tag without "v", codename of the 3.x line).
      echo "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=${rel}" \
        "-X github.com/traefik/traefik/v3/pkg/version.Codename=ramequin" \
        "-X github.com/traefik/traefik/v3/pkg/version.BuildDate=1970-01-01T00:00:00Z" ;;
    jobset)
      echo "-X sigs.k8s.io/jobset/pkg/version.GitVersion=v${rel}" \
        "-X sigs.k8s.io/jobset/pkg/version.GitCommit=${v}" ;;
  esac
}

# `helm install` puts a chart's namespaced objects that name no namespace into the release
# namespace ($1), `helm template` leaves them without one (JobSet's webhook Service): this
# adds it to the built-in namespaced kinds a chart renders (other kinds are left alone).
release_namespace() {
  awk -v ns="$1" '
    function flush(  i) {
      for (i = 1; i <= n; i++) {
        print buf[i]
        if (i == meta && !hasns && kind ~ /^(ConfigMap|Secret|Service|ServiceAccount|Deployment|StatefulSet|DaemonSet|Job|CronJob|Role|RoleBinding|PodDisruptionBudget|NetworkPolicy|Ingress|PersistentVolumeClaim|HorizontalPodAutoscaler|Lease)$/)
          print "  namespace: " ns
      }
      n = 0; kind = ""; meta = 0; hasns = 0; inmeta = 0
    }
    /^---/ { flush(); print; next }
    {
      buf[++n] = $0
      if ($0 ~ /^kind: /) kind = $2
      if ($0 ~ /^metadata:[ ]*$/) { meta = n; inmeta = 1; next }
      if (inmeta && $0 ~ /^[^ #]/) inmeta = 0
      if (inmeta && $0 ~ /^  namespace:/) hasns = 1
    }
    END { flush() }'
}

# helm from ci/tools (built when missing), for components that ship a chart.
helm_bin() {
  local tools="${AICONFORM_TOOLS_OUT:-$repo/target/tools}"
  if [ ! -x "$tools/helm" ]; then
    "$repo/ci/tools/build.sh" >/dev/null
  fi
  echo "$tools/helm"
}

mkdir -p "$out/bin/.stamps" "$out/manifests"
images_tmp="$out/images.txt.$$"
trap 'rm -f "$images_tmp"' EXIT
: > "$images_tmp"
for entry in "${components[@]}"; do
  IFS='|' read -r comp module version pkg bin image kind tags user <<<"$entry"
  echo "$image=$comp/$bin $(release_version "$module" "$version") $user" >> "$images_tmp"
  wanted "$comp" || continue
  ldflags="$(ldflags_for "$kind" "$module" "$version")"
  dest="$out/bin/$comp/$bin"
  stampfile="$out/bin/.stamps/$comp.$bin"
  stamp="$(
    { go version; echo "$entry"; echo "$ldflags"; cat "$here/$comp/go.mod" "$here/$comp/go.sum"; } |
      sha256sum | cut -d' ' -f1
  )"
  if [ -x "$dest" ] && [ -f "$stampfile" ] && [ "$(cat "$stampfile")" = "$stamp" ]; then
    continue
  fi
  echo "ci/upstream: building $comp/$bin ($module $version)" >&2
  mkdir -p "$(dirname "$dest")"
  target="$module/$pkg"; [ "$pkg" = . ] && target="$module"
  (cd "$here/$comp" && go build -trimpath -tags "$tags" -ldflags "$ldflags" -o "$dest.tmp.$$" "$target")
  mv -f "$dest.tmp.$$" "$dest"
  echo "$stamp" > "$stampfile"
done

# Manifests are assembled anew each run (cheap) into a temp dir, then swapped in, so a
# failed run never leaves a partial set behind.
declare -A seq=()
for entry in "${shipped[@]}"; do
  IFS='|' read -r comp module path flags <<<"$entry"
  wanted "$comp" || continue
  if [ -z "${seq[$comp]:-}" ]; then
    rm -rf "$out/manifests/.$comp.tmp" && mkdir -p "$out/manifests/.$comp.tmp"
    seq[$comp]=0
  fi
  dir="$(cd "$here/$comp" && go list -m -f '{{.Dir}}' "$module")"
  n="${seq[$comp]}"; seq[$comp]=$((n + 1))
  if [[ "$path" == chart:* ]]; then
    IFS=':' read -r _ chart ns unfetched <<<"$path"
    dest="$out/manifests/.$comp.tmp/$(printf '%02d' "$n")-$(basename "$chart")"
    mkdir -p "$dest"
    src="$dir/$chart"
    if [ -n "$unfetched" ]; then
      src="$out/manifests/.$comp.tmp/chart"
      rm -rf "$src" && cp -r "$dir/$chart" "$src" && chmod -R u+w "$src"
      for dep in ${unfetched//,/ }; do
        mkdir -p "$src/charts/$dep/templates"
        printf 'apiVersion: v2\nname: %s\nversion: 0.0.0\n' "$dep" > "$src/charts/$dep/Chart.yaml"
        printf '{{ fail "chart dependency %s is not fetched here: disable it" }}\n' "$dep" \
          > "$src/charts/$dep/templates/unfetched.yaml"
      done
    fi
    # shellcheck disable=SC2086 # flags are words by design
    "$(helm_bin)" template "$comp" "$src" --namespace "$ns" --include-crds $flags |
      release_namespace "$ns" > "$dest/$(basename "$chart").yaml"
    if [ -n "$unfetched" ]; then rm -rf "$src"; fi
  else
    name="$(basename "$path")"; name="${name%.yaml}"; name="${name%.yml}"
    dest="$out/manifests/.$comp.tmp/$(printf '%02d' "$n")-$name"
    mkdir -p "$dest"
    if [ -d "$dir/$path" ]; then cp "$dir/$path"/*.yaml "$dest/"; else cp "$dir/$path" "$dest/"; fi
  fi
  chmod -R u+w "$dest"
done
for comp in "${!seq[@]}"; do
  if [ -d "$here/$comp/manifests" ]; then
    mkdir -p "$out/manifests/.$comp.tmp/90-aiconform"
    cp "$here/$comp/manifests"/*.yaml "$out/manifests/.$comp.tmp/90-aiconform/"
  fi
  rm -rf "$out/manifests/$comp"
  mv "$out/manifests/.$comp.tmp" "$out/manifests/$comp"
done
mv -f "$images_tmp" "$out/images.txt"
trap - EXIT
echo "$out"
