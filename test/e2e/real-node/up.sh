#!/usr/bin/env bash
# Brings up the real-node environment: builds what is missing (control-plane/build.sh, images.sh),
# makes a network namespace ($NRI_NETNS, default nri-e2e) with the node's address and a mount
# namespace for the node's daemons, then starts the control plane, the node and nri in them
# (up.ts), entered with nsenter --net: `ip netns exec` would give them a mount namespace that
# cannot enter the node's. Prints KUBECONFIG=, NETNS= and TEST_IMAGE= lines; run anything against it with
#   ip netns exec <NETNS> env KUBECONFIG=<path> kubectl get pods -A
# test/e2e/real-node/down.sh removes everything it made. Needs root, Go and buildah.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
netns="${NRI_NETNS:-nri-e2e}"
state="${NRI_REAL_NODE_DIR:-/var/tmp/nri-real-node}"
[[ $EUID -eq 0 ]] || { echo "real-node: run as root (it makes namespaces, mounts and cgroups)" >&2; exit 3; }
if ip netns list | grep -qw "$netns"; then echo "real-node: namespace $netns exists; run test/e2e/real-node/down.sh first" >&2; exit 3; fi

missing=(); for tool in buildah runc iptables nsenter; do command -v "$tool" >/dev/null || missing+=("$tool"); done
case " ${missing[*]} " in *" nsenter "*) missing=("${missing[@]/nsenter/util-linux}") ;; esac
if [[ ${#missing[@]} -gt 0 ]]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; fi
bash "$repo/test/e2e/control-plane/build.sh" kubernetes crds helpers knative node
bash "$here/images.sh"
[[ -f "$repo/build/test/e2e/real-node/up.js" ]] || (cd "$repo" && npm run --silent build)

start=$SECONDS
rm -rf "$state" && mkdir -p "$state/ns" "$state/var/lib" "$state/var/log"
chmod 711 "$state"
# The network: loopback, the node's address on a veth link inside the namespace (no dummy links here) (its default route: the kubelet and
# kube-proxy take the node IP from it), forwarding for the pod bridge.
ip netns add "$netns"
ip -n "$netns" link set lo up
ip -n "$netns" link add nri0 type veth peer name nri0-peer
ip -n "$netns" link set nri0-peer up
ip -n "$netns" addr add 10.77.0.1/24 dev nri0
ip -n "$netns" link set nri0 up
ip -n "$netns" route add default dev nri0
ip netns exec "$netns" sysctl -qw net.ipv4.ip_forward=1
# The node's mount namespace, kept by a bind mount of its file: whatever the kubelet and
# containerd mount stays there, and /var/lib, /var/log are the node's own directories.
mount --bind "$state/ns" "$state/ns"
mount --make-private "$state/ns"
touch "$state/ns/mnt"
unshare --mount="$state/ns/mnt" --propagation slave \
  sh -c "mount --bind '$state/var/lib' /var/lib && mount --bind '$state/var/log' /var/log"

# Hugepages for the walkthrough's hugepage files: 16 of 2 MiB (the kubelet reads them at start);
# down.sh puts the machine's own count back.
cat /proc/sys/vm/nr_hugepages >"$state/nr_hugepages.before"
echo 16 >/proc/sys/vm/nr_hugepages
# The machine's own network namespace, for the image build's npm (test/e2e/real-node/docker).
touch "$state/ns/machine-net" && mount --bind /proc/self/ns/net "$state/ns/machine-net"
PATH="$repo/node_modules/.bin:$PATH" NRI_REAL_NODE_DIR="$state" NRI_NETNS="$netns" NRI_MACHINE_NETNS="$state/ns/machine-net" \
  nsenter --net="/run/netns/$netns" node "$repo/build/test/e2e/real-node/up.js"
echo "# real node up in $((SECONDS - start)) s; logs in $state/*.log" >&2
