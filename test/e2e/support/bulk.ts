// Many objects created fast through the real kube-apiserver: a pool of
// keep-alive HTTPS connections with the admin's client certificate, each
// sending its next POST as soon as the last is answered. One kubectl per object
// would take an hour for the 100,000 NADs a large cluster holds.
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import type { ControlPlane } from './control-plane.js';

/** A NetworkAttachmentDefinition shaped as an SR-IOV operator writes them: ~850 bytes as stored. */
export function tenantNad(namespace: string, name: string, vlan: number, pool: string): object {
  return {
    apiVersion: 'k8s.cni.cncf.io/v1',
    kind: 'NetworkAttachmentDefinition',
    metadata: {
      name,
      namespace,
      annotations: {
        'k8s.v1.cni.cncf.io/resourceName': pool,
        'k8s.v1.cni.cncf.io/nodeSelector': 'feature.node.kubernetes.io/network-sriov.capable=true',
      },
    },
    spec: {
      config: JSON.stringify({
        cniVersion: '1.0.0',
        name,
        type: 'sriov',
        vlan,
        spoofchk: 'on',
        trust: 'off',
        ipam: { type: 'whereabouts', range: `10.${vlan % 256}.${Math.floor(vlan / 256) % 256}.0/24` },
      }),
    },
  };
}

export interface BulkResult {
  created: number;
  /** already there (409): a re-run over the same etcd */
  existing: number;
  ms: number;
}

/** POSTs every body to its path with `concurrency` requests in flight; any answer but 201 or 409 fails it. */
export async function createMany(
  cp: ControlPlane,
  items: Array<{ path: string; body: object }>,
  concurrency = 32,
): Promise<BulkResult> {
  const agent = cp.adminAgent(concurrency);
  const started = performance.now();
  let next = 0;
  let created = 0;
  let existing = 0;
  const post = (path: string, body: object) =>
    new Promise<number>((resolve, reject) => {
      const text = JSON.stringify(body);
      const req = request(
        `${cp.server}${path}`,
        {
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () =>
            res.statusCode === 201 || res.statusCode === 409
              ? resolve(res.statusCode)
              : reject(new Error(`POST ${path}: ${res.statusCode} ${Buffer.concat(chunks).toString().slice(0, 300)}`)),
          );
        },
      );
      req.setTimeout(60000, () => req.destroy(new Error(`POST ${path}: no answer in 60 s`)));
      req.on('error', reject);
      req.end(text);
    });
  const worker = async () => {
    while (next < items.length) {
      const { path, body } = items[next++]!;
      if ((await post(path, body)) === 201) created++;
      else existing++;
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  } finally {
    agent.destroy();
  }
  return { created, existing, ms: performance.now() - started };
}

/**
 * NADs number `from` to `to - 1` of a cluster whose NADs are spread evenly over
 * `namespaces` tenant namespaces: NAD i is `vlan-<100 + i / namespaces>` in
 * `tenant-<i % namespaces>`, naming pool `intel.com/sriov_pool<vlan % pools>`.
 * Growing a cluster in steps (0 to 10,000, then to 50,000) keeps that layout.
 */
export async function createTenantNads(
  cp: ControlPlane,
  range: { from?: number; to: number; namespaces: number; pools?: number },
  concurrency = 32,
): Promise<BulkResult> {
  const { from = 0, to, namespaces, pools = 10 } = range;
  if (from === 0) {
    const names = Array.from({ length: namespaces }, (_, i) => `tenant-${i}`);
    await createMany(
      cp,
      names.map((name) => ({
        path: '/api/v1/namespaces',
        body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name } },
      })),
      concurrency,
    );
  }
  const items = Array.from({ length: to - from }, (_, k) => {
    const i = from + k;
    const namespace = `tenant-${i % namespaces}`;
    const vlan = 100 + Math.floor(i / namespaces);
    return {
      path: `/apis/k8s.cni.cncf.io/v1/namespaces/${namespace}/network-attachment-definitions`,
      body: tenantNad(namespace, `vlan-${vlan}`, vlan, `intel.com/sriov_pool${vlan % pools}`),
    };
  });
  return createMany(cp, items, concurrency);
}

/** Peak and current resident memory of a process, in MiB (Linux /proc). */
export function memoryOf(pid: number): { peakMiB: number; rssMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { peakMiB: kib('VmHWM') / 1024, rssMiB: kib('VmRSS') / 1024 };
}
