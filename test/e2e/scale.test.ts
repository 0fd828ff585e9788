// A large cluster on the real control plane: tens of thousands of NADs, as
// multi-tenant telco clusters hold them (one per tenant namespace per VLAN).
// nri runs with the container's command and heap flags; it must become ready,
// stay within the memory the ksvc requests through the first list and through
// a re-list after kube-apiserver restarts, and inject from its cache.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { metricValue } from '../support/metrics.js';
import { send, type RunningFunction } from '../support/function-process.js';
import { createTenantNads, memoryOf } from './support/bulk.js';
import { ControlPlane, missingControlPlane } from './support/control-plane.js';
import { deployWithCertificate, find, startNri, type Deployment } from './support/deploy.js';

const missing = missingControlPlane();
if (missing && process.env.CI === 'true')
  throw new Error(`e2e: the control plane is required under CI=true; ${missing}`);

/** Enough that nri before paginated lists ran out of heap on its first LIST (it died from ~35,000). */
const NADS = Number(process.env.NRI_E2E_SCALE_NADS ?? 40000);
const NAMESPACES = NADS / 100;
/** The ksvc's memory request, in MiB: what a replica must stay within. */
const mebibytes = (quantity: string) => Number(/^(\d+)Mi$/.exec(quantity)?.[1] ?? NaN);

describe(`a cluster of ${NADS.toLocaleString('en')} NADs in ${NAMESPACES} namespaces`, {
  skip: missing ? `e2e skipped: ${missing}` : false,
}, () => {
  const cp = new ControlPlane();
  let deployment: Deployment;
  let nri: RunningFunction | undefined;
  let stopCainjector = () => {};
  let readyMs = -1;
  let startFailure = '';
  let requestMiB = NaN;

  const metrics = async () => (await send(`${nri!.url}/metrics`)).text;
  /** A pod that names the tenant's VLAN network, created through kube-apiserver (so through nri). */
  const createTenantPod = async (tenant: number, vlan: number, name: string) => {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: `tenant-${tenant}`, annotations: { 'k8s.v1.cni.cncf.io/networks': `vlan-${vlan}` } },
      spec: { containers: [{ name: 'cnf', image: 'registry.example.com/cnf:1' }] },
    };
    await cp.waitFor(
      `the default ServiceAccount in tenant-${tenant}`,
      async () => (await cp.kubectl(['get', 'serviceaccount', 'default', '-n', `tenant-${tenant}`])).code === 0,
      60000,
    );
    await cp.must(['create', '-f', '-'], JSON.stringify(pod));
    return cp.getJson(['pod', name, '-n', `tenant-${tenant}`]);
  };
  const assertInjected = (pod: any, vlan: number) => {
    assert.deepEqual(pod.spec.containers[0].resources.limits, { [`intel.com/sriov_pool${vlan % 10}`]: '1' });
    assert.equal(pod.spec.nodeSelector['feature.node.kubernetes.io/network-sriov.capable'], 'true');
  };

  before(async () => {
    await cp.start();
    let objects: Awaited<ReturnType<typeof deployWithCertificate>>['objects'];
    ({ objects, deployment, stopCainjector } = await deployWithCertificate(cp));
    requestMiB = mebibytes(find(objects, 'Service', 'nri').spec.template.spec.containers[0].resources.requests.memory);
    const created = await createTenantNads(cp, { to: NADS, namespaces: NAMESPACES });
    process.stderr.write(`# ${created.created} NADs created in ${(created.ms / 1000).toFixed(1)} s\n`);
    const started = Date.now();
    try {
      nri = await startNri(cp, deployment, { NRI_LOG_LEVEL: 'info' });
      await cp.waitFor(
        'nri ready, or gone',
        async () => nri!.child.exitCode !== null || (await send(`${nri!.url}/readyz`)).status === 200,
        120000,
      );
      if (nri.child.exitCode === null) readyMs = Date.now() - started;
    } catch (error) {
      startFailure = (error as Error).message; // the first test reports it
    }
  });

  after(async () => {
    stopCainjector();
    await nri?.stop();
    await cp.stop();
  });

  it('becomes ready within 60 s, having had the list streamed by kube-apiserver (WatchList), within the memory the ksvc requests', async () => {
    assert.ok(
      readyMs >= 0,
      `nri did not become ready: ${startFailure || `exit ${nri?.child.exitCode}: ${nri?.stderr.join('').slice(-600)}`}`,
    );
    assert.ok(readyMs < 60000, `ready after ${readyMs} ms`);
    const synced = JSON.parse(await nri!.waitForLog(/NAD watch cache synced/));
    assert.equal(synced.objects, NADS);
    assert.equal(synced.list, 'stream', "kube-apiserver 1.36 streams the list as the watch's initial events");
    const memory = memoryOf(nri!.child.pid!);
    process.stderr.write(
      `# ready in ${readyMs} ms (streamed list ${synced.durationMs} ms); peak resident ${memory.peakMiB.toFixed(1)} MiB of the ${requestMiB} MiB requested\n`,
    );
    assert.ok(
      memory.peakMiB <= requestMiB,
      `peak resident memory ${memory.peakMiB.toFixed(1)} MiB is above the ${requestMiB}Mi request`,
    );
  });

  it('injects from its cache: a tenant pod gets its pool and node selector with no read of the API', async () => {
    const reads = metricValue(await metrics(), 'nri_nad_api_reads_total');
    assertInjected(await createTenantPod(NAMESPACES - 1, 199, 'cnf-a'), 199);
    assertInjected(await createTenantPod(7, 100, 'cnf-b'), 100);
    assert.equal(metricValue(await metrics(), 'nri_nad_api_reads_total'), reads);
  });

  it('survives a re-list after kube-apiserver restarts, still within its memory request, and injects after it', async () => {
    const gone = (text: string) =>
      metricValue(text, 'nri_watch_restarts_total', 'resource="network-attachment-definitions",cause="gone"');
    const before = gone(await metrics());
    // A write nri does not watch moves etcd past the resourceVersion nri holds: the restarted
    // apiserver's watch cache starts after it, so nri's re-watch gets 410 and it lists again.
    await cp.must(['create', 'configmap', 'advance-resource-version', '-n', 'default']);
    await cp.stopProcess('kube-apiserver');
    await cp.startApiServer();
    const relisted = JSON.parse(await nri!.waitForLog(/NAD cache re-listed/, 120000));
    assert.equal(relisted.objects, NADS);
    assert.ok(gone(await metrics()) > before);
    const memory = memoryOf(nri!.child.pid!);
    process.stderr.write(
      `# re-listed in ${relisted.durationMs} ms; peak resident ${memory.peakMiB.toFixed(1)} MiB, now ${memory.rssMiB.toFixed(1)} MiB\n`,
    );
    assert.ok(
      memory.peakMiB <= requestMiB,
      `peak resident memory ${memory.peakMiB.toFixed(1)} MiB is above the ${requestMiB}Mi request`,
    );
    const reads = metricValue(await metrics(), 'nri_nad_api_reads_total');
    assertInjected(await createTenantPod(42, 150, 'cnf-c'), 150);
    assert.equal(metricValue(await metrics(), 'nri_nad_api_reads_total'), reads);
  });

  it('with NRI_STREAMING_LIST=false lists a page of 500 at a time, within the same memory, and injects', async () => {
    await nri!.stop();
    const started = Date.now();
    nri = await startNri(cp, deployment, { NRI_LOG_LEVEL: 'info', NRI_STREAMING_LIST: 'false' });
    const synced = JSON.parse(await nri.waitForLog(/NAD watch cache synced/, 120000));
    await cp.waitFor('nri ready', async () => (await send(`${nri!.url}/readyz`)).status === 200, 60000);
    assert.equal(synced.objects, NADS);
    assert.equal(synced.list, 'pages');
    assert.equal(synced.pages, Math.ceil(NADS / 500), 'kube-apiserver answered pages of 500');
    const memory = memoryOf(nri.child.pid!);
    process.stderr.write(
      `# paginated: ready in ${Date.now() - started} ms (list ${synced.durationMs} ms, ${synced.pages} pages); peak resident ${memory.peakMiB.toFixed(1)} MiB\n`,
    );
    assert.ok(
      memory.peakMiB <= requestMiB,
      `peak resident memory ${memory.peakMiB.toFixed(1)} MiB is above the ${requestMiB}Mi request`,
    );
    assertInjected(await createTenantPod(43, 151, 'cnf-d'), 151);
  });
});
