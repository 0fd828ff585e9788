#!/usr/bin/env bash
# Assembles the real node's base images here, since none can be pulled, into a buildah store of
# the suite's own (NRI_E2E_CACHE/images), never the machine's:
#   docker.io/library/node:26-trixie-slim  Debian's libc, libstdc++ and busybox (for /bin/sh, which
#                                          RUN needs), Node from the npm registry (the version package-lock
#                                          pins) and npm. Named as knative/Dockerfile's FROM, so that the
#                                          Dockerfile and the README's build command run unchanged.
#   nri-e2e/busybox:1                      busybox alone: the test pods' image (sh, sleep, cat)
#   nri-e2e/pause:1                        the pod sandbox (test/e2e/go/pause)
#   nri-e2e/queue-proxy:v0.42.2            Knative's queue-proxy, built from knative.dev/serving
# Each is built once; a stamp records its inputs. Needs root and buildah (Debian's package).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
cache="${NRI_E2E_CACHE:-$HOME/.cache/nri-e2e}"
bin="$cache/bin"
NPM_VERSION=11.19.1
BASE_PACKAGES=(libc6 libgcc-s1 libstdc++6 libatomic1 busybox-static)

log() { printf '[e2e-images %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
stamp_ok() { [[ -f "$cache/stamps/$1" && "$(cat "$cache/stamps/$1")" == "$2" ]]; }
stamp_set() { mkdir -p "$cache/stamps"; printf '%s' "$2" >"$cache/stamps/$1"; }
# buildah with the suite's own store; vfs needs nothing from the kernel but a plain directory.
b() { buildah --root "$cache/images/storage" --runroot "$cache/images/run" --storage-driver vfs "$@"; }

# Commits a root filesystem directory as a one-layer image, with the given buildah config options.
commit_rootfs() {
  local rootfs="$1" name="$2"; shift 2
  local ctr; ctr="$(b from scratch)"
  b copy "$ctr" "$rootfs" / >/dev/null
  b config "$@" "$ctr"
  b commit --rm --quiet "$ctr" "$name" >/dev/null
}

node_version() { "$repo/node_modules/node/bin/node" --version; }

build_base() {
  local node; node="$(node_version)"
  local versions; versions="$(dpkg-query -W -f '${Package}=${Version} ' "${BASE_PACKAGES[@]}" 2>/dev/null || true)"
  local key="node $node npm $NPM_VERSION debian ${BASE_PACKAGES[*]} $versions"
  stamp_ok image-base "$key" && b inspect docker.io/library/node:26-trixie-slim >/dev/null 2>&1 && return
  log "assembling the Node base image (Node $node, npm $NPM_VERSION, ${BASE_PACKAGES[*]})"
  local work="$cache/images/work/base"; rm -rf "$work"; mkdir -p "$work/debs" "$work/rootfs"
  (cd "$work/debs" && apt-get download "${BASE_PACKAGES[@]}" >/dev/null)
  local deb; for deb in "$work"/debs/*.deb; do dpkg-deb -x "$deb" "$work/rootfs"; done
  local root="$work/rootfs"
  mkdir -p "$root/usr/bin" "$root/usr/sbin" "$root/sbin"
  chroot "$root" /bin/busybox --install -s
  mkdir -p "$root/usr/local/bin" "$root/usr/local/lib/node_modules" "$root/tmp" "$root/etc" "$root/root"
  chmod 1777 "$root/tmp"
  cp "$(readlink -f "$repo/node_modules/node/bin/node")" "$root/usr/local/bin/node"
  (cd "$work" && npm pack --silent "npm@$NPM_VERSION" >/dev/null && mkdir npm && tar -xzf npm-*.tgz -C npm)
  mv "$work/npm/package" "$root/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
  printf 'root:x:0:0:root:/root:/bin/sh\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"$root/etc/group"
  commit_rootfs "$root" docker.io/library/node:26-trixie-slim \
    --env PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd node
  rm -rf "$work"
  stamp_set image-base "$key"
}

build_small() {
  local key; key="busybox $(dpkg-query -W -f '${Version}' busybox-static 2>/dev/null || echo none) pause $(sha256sum <"$bin/pause") queue $(sha256sum <"$bin/queue-proxy")"
  stamp_ok image-small "$key" && b inspect nri-e2e/pause:1 >/dev/null 2>&1 && return
  log "assembling the busybox, pause and queue-proxy images"
  local work="$cache/images/work/small"; rm -rf "$work"; mkdir -p "$work/busybox/bin" "$work/pause" "$work/queue"
  (cd "$work" && apt-get download busybox-static >/dev/null && dpkg-deb -x busybox-static_*.deb deb)
  cp "$work/deb/bin/busybox" "$work/busybox/bin/busybox"
  chroot "$work/busybox" /bin/busybox --install -s /bin
  mkdir -p "$work/busybox/tmp" && chmod 1777 "$work/busybox/tmp"
  commit_rootfs "$work/busybox" nri-e2e/busybox:1 --cmd sh
  cp "$bin/pause" "$work/pause/pause"
  commit_rootfs "$work/pause" nri-e2e/pause:1 --entrypoint '["/pause"]' --user 65535:65535
  cp "$bin/queue-proxy" "$work/queue/queue-proxy"
  commit_rootfs "$work/queue" nri-e2e/queue-proxy:v0.42.2 --entrypoint '["/queue-proxy"]' --user 65532:65532
  rm -rf "$work"
  stamp_set image-small "$key"
}

command -v buildah >/dev/null || { echo "e2e images: buildah is required (apt-get install buildah)" >&2; exit 3; }
build_base
build_small
log "images ready in $cache/images"
