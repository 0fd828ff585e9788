#!/usr/bin/env bash
# Removes everything test/e2e/real-node/up.sh made: its processes and containers, the mounts,
# the pods' cgroups, the network namespace and the state directory. Safe to run twice.
set -uo pipefail
netns="${NRI_NETNS:-nri-e2e}"
state="${NRI_REAL_NODE_DIR:-/var/tmp/nri-real-node}"
# Containers first (their processes live in the pods' cgroups), then every process in the namespace.
kill_cgroup_procs() { find /sys/fs/cgroup/*/kubepods -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u | xargs -r kill -KILL 2>/dev/null; }
if ip netns list | grep -qw "$netns"; then
  ip netns pids "$netns" | xargs -r kill -TERM 2>/dev/null
  for _ in 1 2 3 4 5 6 7 8 9 10; do [[ -z "$(ip netns pids "$netns")" ]] && break; sleep 0.5; done
  ip netns pids "$netns" | xargs -r kill -KILL 2>/dev/null
fi
kill_cgroup_procs; sleep 0.5; kill_cgroup_procs
# The node's mount namespace goes with its last reference.
umount "$state/ns/mnt" 2>/dev/null; umount "$state/ns/machine-net" 2>/dev/null; umount "$state/ns" 2>/dev/null
# cgroups the kubelet and containerd made, leaves first.
for hierarchy in /sys/fs/cgroup/*/; do
  for top in kubepods k8s.io; do
    [[ -d "$hierarchy$top" ]] && find "$hierarchy$top" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
done
ip netns del "$netns" 2>/dev/null
[[ -f "$state/nr_hugepages.before" ]] && cat "$state/nr_hugepages.before" >/proc/sys/vm/nr_hugepages
rm -rf "$state"
leftover="$(find /sys/fs/cgroup/*/kubepods -maxdepth 0 2>/dev/null)"
[[ -z "$leftover" ]] || { echo "real-node down: cgroups left: $leftover" >&2; exit 1; }
echo "real-node: down" >&2
