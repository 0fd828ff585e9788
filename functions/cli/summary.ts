// `nri explain`'s readable answer: what nri would do to a pod, in a few lines.
// Pure: a verdict and the pod before and after in, text out.
import type { Verdict } from '../core/decision.js';
import { nadKey, refLabel } from '../core/nad.js';
import { PODNETINFO_VOLUME, type Pod } from '../core/types.js';

const list = (items: string[]) => (items.length > 0 ? items.join(', ') : '—');

/** `switchesState`: where the switches came from, when not from the environment (the cluster's ConfigMap). */
export function explainSummary(
  source: string,
  verdict: Verdict,
  before: Pod,
  after: Pod,
  switchesState?: string,
): string {
  const { decision, facts } = verdict;
  const lines: Array<[string, string]> = [];
  const counted = new Map<string, number>();
  for (const ref of facts.networks) {
    const key = nadKey(ref.namespace, ref.name);
    counted.set(key, (counted.get(key) ?? 0) + 1);
  }
  lines.push(['Networks', list(facts.networks.map(refLabel))]);
  lines.push(['NADs', list([...counted].map(([key, count]) => (count > 1 ? `${key} (${count} references)` : key)))]);
  const resources = [...facts.injected].map(([resource, count]) => {
    const container = after.spec.containers.find(
      (c) => c.resources?.limits && Object.hasOwn(c.resources.limits, resource),
    );
    return `${resource}=${count}${container ? ` in container "${container.name}"` : ''}`;
  });
  lines.push(['Resources', list(resources)]);
  const selector = Object.entries(after.spec.nodeSelector ?? {}).filter(
    ([key]) => !Object.hasOwn(before.spec.nodeSelector ?? {}, key),
  );
  lines.push(['Node selector', list(selector.map(([key, value]) => (value === '' ? key : `${key}=${value}`)))]);
  const addedVolume =
    !(before.spec.volumes ?? []).some((v) => v.name === PODNETINFO_VOLUME) &&
    (after.spec.volumes ?? []).some((v) => v.name === PODNETINFO_VOLUME);
  const mounting = after.spec.containers
    .filter((c) => (c.volumeMounts ?? []).some((m) => m.name === PODNETINFO_VOLUME))
    .map((c) => `"${c.name}"`);
  lines.push([
    'Volumes',
    addedVolume ? `${PODNETINFO_VOLUME} (Downward API) mounted at /etc/podnetinfo in ${mounting.join(', ')}` : '—',
  ]);
  if (addedVolume) lines.push(['Files', `/etc/podnetinfo/: ${list(downwardPaths(after))}`]);
  lines.push(['Environment', list(addedEnv(before, after))]);
  if (switchesState) lines.push(['Switches', switchesState]);
  if (facts.warnings.length > 0) lines.push(['Warnings', facts.warnings.join('\n  ')]);
  const result =
    decision.type === 'patched'
      ? `patched (${decision.ops.length} JSONPatch operations)`
      : decision.type === 'allowed'
        ? `allowed unchanged (${decision.reason.replace(/_/g, ' ')})`
        : `DENIED: ${decision.message}`;
  lines.push(['Result', result]);
  const width = Math.max(...lines.map(([label]) => label.length)) + 2;
  const rows = lines.map(([label, text]) => `${label}:`.padEnd(width) + text);
  return [source, ...rows, ''].join('\n');
}

/** The files of the podnetinfo volume, as each container sees them under /etc/podnetinfo. */
function downwardPaths(pod: Pod): string[] {
  const volume = (pod.spec.volumes ?? []).find((v) => v.name === PODNETINFO_VOLUME) as
    | { downwardAPI?: { items?: Array<{ path: string }> } }
    | undefined;
  return (volume?.downwardAPI?.items ?? []).map((item) => item.path);
}

/** Variables nri added, each with the containers that got it: `CONTAINER_NAME in "app", "sidecar"`. */
function addedEnv(before: Pod, after: Pod): string[] {
  const byName = new Map<string, string[]>();
  after.spec.containers.forEach((container, index) => {
    const had = new Set((before.spec.containers[index]?.env ?? []).map((env) => env.name));
    for (const { name } of container.env ?? [])
      if (!had.has(name)) byName.set(name, [...(byName.get(name) ?? []), `"${container.name}"`]);
  });
  return [...byName].map(([name, containers]) => `${name} in ${containers.join(', ')}`);
}
