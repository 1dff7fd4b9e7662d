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
# 65534, distroless nonroot 65532, ko's default base image 65532; empty: root, as KWOK's alpine
# image) |
# Go toolchain (GOTOOLCHAIN for every go command in that build module, for a release whose
# go.mod needs a newer Go than the machine's; fetched through the module proxy as
# golang.org/toolchain; empty: the machine's go)
# Prometheus keeps only Kubernetes service discovery (its own build tags: the operator's
# configurations use nothing else), which spares compiling the cloud SDKs.
# Karpenter's kwok provider (the main package of its kwok/ folder, a ko image named after
# that folder) creates nodes that KWOK's controller fakes as Ready and runs their pods.
components=(
  "prometheus|github.com/prometheus/prometheus|v0.316.0|cmd/prometheus|prometheus|quay.io/prometheus/prometheus|prometheus|remove_all_sd,enable_kubernetes_sd|65534"
  "prometheus-operator|github.com/prometheus-operator/prometheus-operator|v0.85.0|cmd/operator|operator|quay.io/prometheus-operator/prometheus-operator|prometheus||65534"
  "prometheus-operator|github.com/prometheus-operator/prometheus-operator|v0.85.0|cmd/prometheus-config-reloader|prometheus-config-reloader|quay.io/prometheus-operator/prometheus-config-reloader|prometheus||65534"
  "kueue|sigs.k8s.io/kueue|v0.17.0|cmd/kueue|manager|registry.k8s.io/kueue/kueue|kueue||65532"
  "jobset|sigs.k8s.io/jobset|v0.8.2|.|manager|registry.k8s.io/jobset/jobset|jobset||65532"
  "trainer|github.com/kubeflow/trainer/v2|v2.0.0|cmd/trainer-controller-manager|manager|ghcr.io/kubeflow/trainer/trainer-controller-manager|||65532"
  "karpenter|sigs.k8s.io/karpenter|v1.15.0|kwok|kwok|registry.k8s.io/karpenter/kwok|karpenter||65532|go1.27.3"
  "kwok|sigs.k8s.io/kwok|v0.8.0|cmd/kwok|kwok|registry.k8s.io/kwok/kwok|kwok||"
  "keda|github.com/kedacore/keda/v2|v2.20.2|cmd/operator|keda|ghcr.io/kedacore/keda|keda||65532"
  "keda|github.com/kedacore/keda/v2|v2.20.2|cmd/adapter|keda-adapter|ghcr.io/kedacore/keda-metrics-apiserver|keda||65532"
  "keda|github.com/kedacore/keda/v2|v2.20.2|cmd/webhooks|keda-admission-webhooks|ghcr.io/kedacore/keda-admission-webhooks|keda||65532"
  "traefik|github.com/traefik/traefik/v3|v3.6.12|cmd/traefik|traefik|docker.io/traefik|traefik||"
)
# What each component ships, in apply order: module paths (files or folders of YAML, a
# folder's kustomization.yaml left out) copied as they are, except that `--set-image
# NAME=NAME:TAG` flags retag the images named NAME, as a release's `kustomize edit set image`
# does; or `chart:<path>` rendered with helm (release = component, namespace
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
  "karpenter|sigs.k8s.io/karpenter|kwok/apis/crds"
  "karpenter|sigs.k8s.io/karpenter|chart:kwok/charts:kube-system|--set controller.image.repository=registry.k8s.io/karpenter/kwok --set controller.image.tag=v1.15.0 --set controller.image.digest= --set settings.preferencePolicy=Ignore --set settings.featureGates.staticCapacity=false --set settings.featureGates.capacityBuffer=false --set controller.resources.requests.cpu=100m --set controller.resources.requests.memory=256Mi --set controller.resources.limits.memory=1Gi --set-string controller.env[0].name=INSTANCE_TYPES_FILE_PATH --set-string controller.env[0].value=/etc/karpenter-kwok/instance-types.json --set extraVolumes[0].name=instance-types --set extraVolumes[0].configMap.name=karpenter-kwok-instance-types --set controller.extraVolumeMounts[0].name=instance-types --set controller.extraVolumeMounts[0].mountPath=/etc/karpenter-kwok --set controller.extraVolumeMounts[0].readOnly=true"
  "kwok|sigs.k8s.io/kwok|kustomize/crd/bases"
  "kwok|sigs.k8s.io/kwok|chart:charts/kwok:kube-system|--set image.repository=registry.k8s.io/kwok/kwok --set image.tag=v0.8.0 --set image.pullPolicy=IfNotPresent"
  "kwok|sigs.k8s.io/kwok|chart:charts/stage-fast:kube-system|"
  # KEDA's release (keda-X.yaml) is `kustomize build config/default`: these are its parts,
  # with the images its Makefile's release target sets (its version without a v).
  "keda|github.com/kedacore/keda/v2|config/general/namespace.yaml"
  "keda|github.com/kedacore/keda/v2|config/crd/bases"
  "keda|github.com/kedacore/keda/v2|config/service_account/service_account.yaml"
  "keda|github.com/kedacore/keda/v2|config/rbac"
  "keda|github.com/kedacore/keda/v2|config/manager|--set-image ghcr.io/kedacore/keda=ghcr.io/kedacore/keda:2.20.2"
  "keda|github.com/kedacore/keda/v2|config/metrics-server|--set-image ghcr.io/kedacore/keda-metrics-apiserver=ghcr.io/kedacore/keda-metrics-apiserver:2.20.2"
  "keda|github.com/kedacore/keda/v2|config/webhooks|--set-image ghcr.io/kedacore/keda-admission-webhooks=ghcr.io/kedacore/keda-admission-webhooks:2.20.2"
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
    karpenter)
      echo "-s -w -X sigs.k8s.io/karpenter/pkg/operator.Version=v${rel}" ;;
    kwok)
      echo "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=v${rel}" ;;
    keda)
      echo "-X github.com/kedacore/keda/v2/version.Version=${rel}" \
        "-X github.com/kedacore/keda/v2/version.GitCommit=${v}" ;;
  esac
}

# The Go toolchain a build module's rows name (empty: the machine's go).
toolchain_for() {
  local entry comp tc
  for entry in "${components[@]}"; do
    IFS='|' read -r comp _ _ _ _ _ _ _ _ tc <<<"$entry"
    if [ "$comp" = "$1" ] && [ -n "$tc" ]; then echo "$tc"; return; fi
  done
}

# go in build module $1 (ci/upstream/$1), with its toolchain.
go_in() {
  local comp="$1" tc
  shift
  tc="$(toolchain_for "$comp")"
  (cd "$here/$comp" && if [ -n "$tc" ]; then GOTOOLCHAIN="$tc" go "$@"; else go "$@"; fi)
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

# Retag images as `kustomize edit set image` does: every `image: NAME[:tag|@digest]` whose
# name is NAME becomes the new reference; $@ are `--set-image NAME=REF` flag pairs.
set_images() {
  local prog='' ref name
  while [ $# -gt 0 ]; do
    case "$1" in
      --set-image) ref="$2"; shift 2 ;;
      *) echo "ci/upstream/build.sh: unknown flag for copied manifests: $1" >&2; return 1 ;;
    esac
    name="${ref%%=*}"
    prog+="s#^([[:space:]-]*image:[[:space:]]*)${name//./\\.}([:@][^[:space:]]*)?[[:space:]]*\$#\\1${ref#*=}#;"
  done
  sed -E "$prog"
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
  IFS='|' read -r comp module version pkg bin image kind tags user _ <<<"$entry"
  echo "$image=$comp/$bin $(release_version "$module" "$version")${user:+ $user}" >> "$images_tmp"
  wanted "$comp" || continue
  ldflags="$(ldflags_for "$kind" "$module" "$version")"
  dest="$out/bin/$comp/$bin"
  stampfile="$out/bin/.stamps/$comp.$bin"
  stamp="$(
    { go_in "$comp" version; echo "$entry"; echo "$ldflags"; cat "$here/$comp/go.mod" "$here/$comp/go.sum"; } |
      sha256sum | cut -d' ' -f1
  )"
  if [ -x "$dest" ] && [ -f "$stampfile" ] && [ "$(cat "$stampfile")" = "$stamp" ]; then
    continue
  fi
  echo "ci/upstream: building $comp/$bin ($module $version)" >&2
  mkdir -p "$(dirname "$dest")"
  target="$module/$pkg"; [ "$pkg" = . ] && target="$module"
  go_in "$comp" build -trimpath -tags "$tags" -ldflags "$ldflags" -o "$dest.tmp.$$" "$target"
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
  dir="$(go_in "$comp" list -m -f '{{.Dir}}' "$module")"
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
    files=("$dir/$path")
    if [ -d "$dir/$path" ]; then
      files=()
      for f in "$dir/$path"/*.yaml; do [ "$(basename "$f")" = kustomization.yaml ] || files+=("$f"); done
    fi
    for f in "${files[@]}"; do
      copy="$dest/$(basename "$f")"
      # shellcheck disable=SC2086 # flags are words by design
      set_images $flags < "$f" > "$copy"
    done
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
