#!/usr/bin/env bash
# The real-node suite: up.sh, then test/e2e/real-node/*.test.ts inside the node's network
# namespace, then down.sh (also when a test fails). Run by test/e2e/run.sh after the kwok suite.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
netns="${NRI_NETNS:-nri-e2e}"
if [[ $EUID -ne 0 ]]; then
  if [[ "${CI:-}" == "true" ]]; then echo "real-node: root is required under CI=true" >&2; exit 1; fi
  echo "real-node suite skipped: it needs root (namespaces, mounts, cgroups)"; exit 0
fi
trap 'bash "$here/down.sh"' EXIT
bash "$here/down.sh" >/dev/null 2>&1 || true
bash "$here/up.sh"
cd "$repo"
nsenter --net="/run/netns/$netns" env PATH="$repo/node_modules/.bin:$PATH" \
  node --test --test-concurrency=1 --test-timeout=900000 \
  build/test/e2e/real-node/node.test.js build/test/e2e/real-node/disruption.test.js build/test/e2e/real-node/autoscale.test.js \
  build/test/e2e/real-node/memory.test.js
