#!/usr/bin/env bash
# Builds the real control plane the e2e suite runs nri against, from the Go module proxy, into a
# cache outside the repository (NRI_E2E_CACHE, default ~/.cache/nri-e2e). Nothing built is committed.
# Idempotent: each piece is built once; a finished build leaves a stamp naming its inputs.
#
#   kube-apiserver, kube-controller-manager, kube-scheduler  k8s.io/kubernetes v1.36.3
#   etcd                                                     go.etcd.io/etcd/server/v3 (kubernetes' own graph)
#   kwok                                                     sigs.k8s.io/kwok v0.8.0, with its "fast" stages
#   CRDs                                                     NAD client v1.7.7, Knative Serving, cert-manager
#   knative-validate, cainjector, cert-manager-controller    test/e2e/go/* (Knative's and cert-manager's own code)
#   Knative controller, webhook, autoscaler-hpa              knative.dev/serving v0.42.2 (release knative-v1.15)
#   Knative's config (CRDs, ConfigMaps)                      knative.dev/{serving,networking,caching}, as those modules ship it
#   promtool                                                 github.com/prometheus/prometheus (its own cmd/promtool)
# and, for the real node (test/e2e/real-node):
#   kubelet, kube-proxy                                      k8s.io/kubernetes v1.36.3
#   containerd, containerd-shim-runc-v2, ctr                 github.com/containerd/containerd/v2
#   bridge, host-local, loopback, macvlan, portmap           github.com/containernetworking/plugins
#   multus (thin CNI plugin)                                 gopkg.in/k8snetworkplumbingwg/multus-cni.v4
#   queue-proxy                                              knative.dev/serving/cmd/queue (the Knative build above)
#   registry                                                 github.com/distribution/distribution/v3
#   metrics-server                                           sigs.k8s.io/metrics-server (the HPA's CPU metrics)
#   device-plugin                                            test/e2e/go/device-plugin (k8s.io/kubelet's API)
set -euo pipefail

KUBERNETES_VERSION=v1.36.3
STAGING_VERSION=v0.36.3
KWOK_VERSION=v0.8.0
NAD_CLIENT_VERSION=v1.7.7
KNATIVE_SERVING_VERSION=v0.42.2
CERT_MANAGER_VERSION=v1.21.2
PROMETHEUS_VERSION=v0.316.0
CONTAINERD_VERSION=v2.4.2
CNI_PLUGINS_VERSION=v1.10.0
MULTUS_VERSION=v4.3.0
DISTRIBUTION_VERSION=v3.1.2
METRICS_SERVER_VERSION=v0.8.0

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
cache="${NRI_E2E_CACHE:-$HOME/.cache/nri-e2e}"
bin="$cache/bin"
mkdir -p "$bin" "$cache/crds" "$cache/kwok-stages" "$cache/src"
export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:--buildvcs=false} -trimpath"

command -v go >/dev/null || { echo "e2e build: Go is required (go.dev); it is not on PATH" >&2; exit 3; }

log() { printf '[e2e-build %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
stamp_ok() { [[ -f "$cache/stamps/$1" && "$(cat "$cache/stamps/$1")" == "$2" ]]; }
stamp_set() { mkdir -p "$cache/stamps"; printf '%s' "$2" >"$cache/stamps/$1"; }
module_dir() { go mod download -json "$1" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p'; }
# YAML files as one multi-document stream: a '---' before each, so no file's keys merge into another's.
concat_yaml() { local f; for f in "$@"; do printf -- '---\n'; cat "$f"; printf '\n'; done; }

build_kubernetes() {
  local key="kubernetes $KUBERNETES_VERSION staging $STAGING_VERSION"
  stamp_ok kubernetes "$key" && [[ -x "$bin/kube-apiserver" && -x "$bin/etcd" ]] && return
  log "building kube-apiserver, kube-controller-manager, kube-scheduler, etcd ($KUBERNETES_VERSION; ~5-8 min on 2 cores the first time)"
  local src="$cache/src/kubernetes"
  rm -rf "$src" && mkdir -p "$src" && cd "$src"
  local gomod
  gomod="$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p')"
  go mod init nri-e2e/kubernetes >/dev/null 2>&1
  # kubernetes replaces every staging module with ./staging/...; as a dependency those must be the
  # published staging versions instead. The list comes from its own go.mod, so it stays complete.
  local staging
  staging="$(sed -n 's#^\t\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$gomod")"
  [[ -n "$staging" ]] || { echo "e2e build: no staging replaces found in $gomod" >&2; exit 1; }
  local m
  for m in $staging; do go mod edit -replace "$m=$m@$STAGING_VERSION"; done
  # Every path pinned: an unversioned `go get -tool` would move kubernetes to its newest release.
  local etcd_version
  etcd_version="$(sed -n 's#^\tgo.etcd.io/etcd/server/v3 \(v[^ ]*\).*#\1#p' "$gomod")"
  go get -tool "k8s.io/kubernetes/cmd/kube-apiserver@$KUBERNETES_VERSION" \
    "k8s.io/kubernetes/cmd/kube-controller-manager@$KUBERNETES_VERSION" \
    "k8s.io/kubernetes/cmd/kube-scheduler@$KUBERNETES_VERSION" "go.etcd.io/etcd/server/v3@$etcd_version"
  grep -q "k8s.io/kubernetes $KUBERNETES_VERSION" go.mod || { echo "e2e build: kubernetes moved off $KUBERNETES_VERSION" >&2; exit 1; }
  local minor="${KUBERNETES_VERSION#v1.}"; minor="${minor%%.*}"
  local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION \
    -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor \
    -X k8s.io/component-base/version.gitTreeState=clean"
  go build -ldflags "$ldflags" -o "$bin/" k8s.io/kubernetes/cmd/kube-apiserver
  go build -ldflags "$ldflags" -o "$bin/" k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler
  go build -ldflags "-s -w" -o "$bin/etcd" go.etcd.io/etcd/server/v3
  stamp_set kubernetes "$key"
}

build_kwok() {
  local key="kwok $KWOK_VERSION"
  stamp_ok kwok "$key" && [[ -x "$bin/kwok" ]] && return
  log "building kwok $KWOK_VERSION"
  GOBIN="$bin" go install "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  local dir; dir="$(cd "$cache" && module_dir "sigs.k8s.io/kwok@$KWOK_VERSION")"
  # kwok's --config takes several documents in one file, each after a '---'.
  local out="$cache/kwok-stages/fast.yaml" f
  : >"$out"
  for f in "$dir"/kustomize/stage/node/fast/*.yaml "$dir"/kustomize/stage/pod/fast/*.yaml; do
    case "$(basename "$f")" in kustomization.yaml) continue ;; esac
    printf -- '---\n' >>"$out"; cat "$f" >>"$out"; printf '\n' >>"$out"
  done
  stamp_set kwok "$key"
}

copy_crds() {
  local key="nad $NAD_CLIENT_VERSION knative $KNATIVE_SERVING_VERSION cert-manager $CERT_MANAGER_VERSION, every document"
  stamp_ok crds "$key" && return
  log "collecting CRDs from their modules"
  rm -rf "$cache/crds" && mkdir -p "$cache/crds"
  local dir
  dir="$(cd "$cache" && module_dir "github.com/k8snetworkplumbingwg/network-attachment-definition-client@$NAD_CLIENT_VERSION")"
  cp "$dir"/artifacts/networks-crd.yaml "$cache/crds/nad.yaml"
  dir="$(cd "$cache" && module_dir "knative.dev/serving@$KNATIVE_SERVING_VERSION")"
  concat_yaml "$dir"/config/core/300-resources/*.yaml >"$cache/crds/knative-serving.yaml"
  dir="$(cd "$cache" && module_dir "github.com/cert-manager/cert-manager@$CERT_MANAGER_VERSION")"
  concat_yaml "$dir"/deploy/crds/*.yaml >"$cache/crds/cert-manager.yaml"
  chmod -R u+w "$cache/crds"
  stamp_set crds "$key"
}

build_helpers() {
  # Each module under test/e2e/go builds its main packages: the module's own, or one per sub-folder,
  # each named after its folder.
  local name
  for name in knative-validate cert-manager device-plugin pause; do
    local dir="$repo/test/e2e/go/$name"
    local key; key="$(cat "$dir"/go.mod "$dir"/go.sum $(find "$dir" -name '*.go' | sort) | sha256sum)"
    local mains=() main
    if [[ -f "$dir/main.go" ]]; then mains=(.); else for main in "$dir"/*/main.go; do mains+=("$(basename "$(dirname "$main")")"); done; fi
    local built=1
    for main in "${mains[@]}"; do [[ -x "$bin/$([[ $main == . ]] && echo "$name" || echo "$main")" ]] || built=0; done
    stamp_ok "$name" "$key" && [[ $built == 1 ]] && continue
    log "building ${mains[*]/#./$name} from test/e2e/go/$name"
    for main in "${mains[@]}"; do
      (cd "$dir" && go build -ldflags "-s -w" -o "$bin/$([[ $main == . ]] && echo "$name" || echo "$main")" "./$main")
    done
    stamp_set "$name" "$key"
  done
}

build_knative() {
  local key="knative serving $KNATIVE_SERVING_VERSION, config v4"
  stamp_ok knative "$key" && [[ -x "$bin/knative-controller" && -x "$bin/knative-webhook" && -x "$bin/knative-autoscaler-hpa" ]] && return
  log "building Knative Serving's controller, webhook and autoscaler-hpa ($KNATIVE_SERVING_VERSION; ~2-4 min the first time)"
  local src="$cache/src/knative"
  rm -rf "$src" && mkdir -p "$src" && cd "$src"
  go mod init nri-e2e/knative >/dev/null 2>&1
  go get -tool "knative.dev/serving/cmd/controller@$KNATIVE_SERVING_VERSION" \
    "knative.dev/serving/cmd/webhook@$KNATIVE_SERVING_VERSION" "knative.dev/serving/cmd/autoscaler-hpa@$KNATIVE_SERVING_VERSION"
  grep -q "knative.dev/serving $KNATIVE_SERVING_VERSION" go.mod || { echo "e2e build: serving moved off $KNATIVE_SERVING_VERSION" >&2; exit 1; }
  local cmd
  for cmd in controller webhook autoscaler-hpa; do
    go build -ldflags "-s -w" -o "$bin/knative-$cmd" "knative.dev/serving/cmd/$cmd"
  done
  # The configuration Serving's controllers need beyond its own CRDs (copy_crds), from the exact
  # versions this build resolved.
  local config="$cache/knative-config" dir
  rm -rf "$config" && mkdir -p "$config"
  dir="$(module_dir "knative.dev/serving@$KNATIVE_SERVING_VERSION")"
  cp "$dir"/config/core/configmaps/*.yaml "$config/"
  mkdir -p "$config/webhooks" && cp "$dir"/config/core/webhooks/*.yaml "$config/webhooks/"
  dir="$(module_dir "$(go list -m -f '{{.Path}}@{{.Version}}' knative.dev/networking)")"
  concat_yaml "$dir"/config/{certificate,ingress,serverlessservice,domain-claim}.yaml >"$config/networking-crds.yaml"
  cp "$dir"/config/config-network.yaml "$config/"
  dir="$(module_dir "$(go list -m -f '{{.Path}}@{{.Version}}' knative.dev/caching)")"
  cp "$dir"/config/image.yaml "$config/caching-crds.yaml"
  chmod -R u+w "$config"
  stamp_set knative "$key"
}

build_promtool() {
  local key="prometheus $PROMETHEUS_VERSION"
  stamp_ok promtool "$key" && [[ -x "$bin/promtool" ]] && return
  log "building promtool ($PROMETHEUS_VERSION; ~3 min the first time)"
  local src="$cache/src/promtool"
  rm -rf "$src" && mkdir -p "$src" && cd "$src"
  go mod init nri-e2e/promtool >/dev/null 2>&1
  go get -tool "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_VERSION"
  go build -ldflags "-s -w" -o "$bin/promtool" github.com/prometheus/prometheus/cmd/promtool
  stamp_set promtool "$key"
}

# Builds the main packages of Go modules into dest, from one throwaway module that pins each version.
# A failed build leaves no stamp, so the next run tries again.
build_tools() {
  local name="$1" dest="$2"; shift 2
  local src="$cache/src/$name"
  rm -rf "$src" && mkdir -p "$src" "$dest" && cd "$src"
  go mod init "nri-e2e/$name" >/dev/null 2>&1
  go get -tool "$@" >"$src/go-get.log" 2>&1 || { cat "$src/go-get.log" >&2; exit 1; }
  local pkg
  for pkg in "$@"; do go build -ldflags "-s -w" -o "$dest/" "${pkg%@*}"; done
}

build_node() {
  local key="kubernetes $KUBERNETES_VERSION kubelet kube-proxy"
  if ! stamp_ok node "$key" || [[ ! -x "$bin/kubelet" || ! -x "$bin/kube-proxy" ]]; then
    log "building kubelet and kube-proxy ($KUBERNETES_VERSION; ~3 min once the control plane is built)"
    cd "$cache/src/kubernetes"
    go get -tool "k8s.io/kubernetes/cmd/kubelet@$KUBERNETES_VERSION" "k8s.io/kubernetes/cmd/kube-proxy@$KUBERNETES_VERSION"
    grep -q "k8s.io/kubernetes $KUBERNETES_VERSION" go.mod || { echo "e2e build: kubernetes moved off $KUBERNETES_VERSION" >&2; exit 1; }
    local minor="${KUBERNETES_VERSION#v1.}"; minor="${minor%%.*}"
    go build -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION \
      -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor" \
      -o "$bin/" k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy
    stamp_set node "$key"
  fi
  key="containerd $CONTAINERD_VERSION"
  if ! stamp_ok containerd "$key" || [[ ! -x "$bin/containerd" ]]; then
    log "building containerd $CONTAINERD_VERSION (~2 min)"
    build_tools containerd "$bin" "github.com/containerd/containerd/v2/cmd/containerd@$CONTAINERD_VERSION" \
      "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION" \
      "github.com/containerd/containerd/v2/cmd/ctr@$CONTAINERD_VERSION"
    stamp_set containerd "$key"
  fi
  key="cni plugins $CNI_PLUGINS_VERSION multus $MULTUS_VERSION"
  if ! stamp_ok cni "$key" || [[ ! -x "$cache/cni/bin/multus" ]]; then
    log "building the CNI plugins ($CNI_PLUGINS_VERSION) and Multus ($MULTUS_VERSION)"
    local plugins=github.com/containernetworking/plugins
    build_tools cni "$cache/cni/bin" "$plugins/plugins/main/bridge@$CNI_PLUGINS_VERSION" \
      "$plugins/plugins/ipam/host-local@$CNI_PLUGINS_VERSION" "$plugins/plugins/main/loopback@$CNI_PLUGINS_VERSION" \
      "$plugins/plugins/main/macvlan@$CNI_PLUGINS_VERSION" "$plugins/plugins/meta/portmap@$CNI_PLUGINS_VERSION"
    build_tools multus "$cache/cni/bin" "gopkg.in/k8snetworkplumbingwg/multus-cni.v4/cmd/multus@$MULTUS_VERSION"
    stamp_set cni "$key"
  fi
  key="distribution $DISTRIBUTION_VERSION"
  if ! stamp_ok registry "$key" || [[ ! -x "$bin/registry" ]]; then
    log "building the image registry (distribution $DISTRIBUTION_VERSION)"
    build_tools registry "$bin" "github.com/distribution/distribution/v3/cmd/registry@$DISTRIBUTION_VERSION"
    stamp_set registry "$key"
  fi
  key="metrics-server $METRICS_SERVER_VERSION"
  if ! stamp_ok metrics-server "$key" || [[ ! -x "$bin/metrics-server" ]]; then
    log "building metrics-server ($METRICS_SERVER_VERSION)"
    build_tools metrics-server "$bin" "sigs.k8s.io/metrics-server/cmd/metrics-server@$METRICS_SERVER_VERSION"
    stamp_set metrics-server "$key"
  fi
  key="knative serving $KNATIVE_SERVING_VERSION queue"
  if ! stamp_ok queue "$key" || [[ ! -x "$bin/queue-proxy" ]]; then
    log "building Knative's queue-proxy ($KNATIVE_SERVING_VERSION)"
    build_tools queue "$cache/queue" "knative.dev/serving/cmd/queue@$KNATIVE_SERVING_VERSION"
    mv "$cache/queue/queue" "$bin/queue-proxy"
    stamp_set queue "$key"
  fi
}

start=$SECONDS
steps=("$@"); [[ ${#steps[@]} -gt 0 ]] || steps=(kubernetes kwok crds helpers knative promtool)
for step in "${steps[@]}"; do
  case "$step" in
    kubernetes) build_kubernetes ;; kwok) build_kwok ;; crds) copy_crds ;; helpers) build_helpers ;; knative) build_knative ;; promtool) build_promtool ;;
    node) build_node ;;
    *) echo "e2e build: unknown step $step (kubernetes, kwok, crds, helpers, knative, promtool, node)" >&2; exit 2 ;;
  esac
done
log "control plane ready in $cache ($((SECONDS - start)) s)"
