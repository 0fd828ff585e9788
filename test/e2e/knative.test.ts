// nri deployed by Knative Serving and cert-manager themselves: the README's install block applied
// to a control plane running Knative Serving v0.42.2's controller, webhook and HPA autoscaler
// (release knative-v1.15) and cert-manager v1.21.2's controllers and cainjector, all built from
// the Go module proxy. What stands in for missing pieces is listed in support/knative.ts
// (networking layer, cert-manager's entrypoint) and support/pod-runtime.ts (kubelet, kube-proxy).
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { metricValue } from '../support/metrics.js';
import { readmeCommand, writeInstallOverlay } from '../support/readme.js';
import { freePort, send } from '../support/function-process.js';
import { ControlPlane, missingControlPlane } from './support/control-plane.js';
import { containerOf, find, installCrds, render, SecretVolume, type KubeObject } from './support/deploy.js';
import {
  exposeOnLoopback,
  installKnativeCrds,
  simulateIngressLayer,
  startCertManager,
  startKnative,
} from './support/knative.js';
import { apiClient, KnativePodRuntime } from './support/pod-runtime.js';

const missing = missingControlPlane();
if (missing && process.env.CI === 'true')
  throw new Error(`e2e: the control plane is required under CI=true; ${missing}`);

const NODE = 'kwok-node-0';
const NAMESPACE = 'nri';

describe('nri deployed by Knative Serving and cert-manager', {
  skip: missing ? `e2e skipped: ${missing}` : false,
}, () => {
  const cp = new ControlPlane();
  let objects: KubeObject[];
  let installDir: string;
  let runtime: KnativePodRuntime;
  let api: ReturnType<typeof apiClient>;
  let stopIngress = () => {};
  let installSeconds = 0;
  let podSerial = 0;

  const getJson = (args: string[]) => cp.getJson(args);
  const ksvc = () => getJson(['ksvc', 'nri', '-n', NAMESPACE]);
  const condition = (object: any, type: string) => object.status?.conditions?.find((c: any) => c.type === type)?.status;
  /** A pod on a network whose NAD names a device-plugin resource, created through kube-apiserver (and so through nri). */
  const createPod = async (prefix: string): Promise<{ ok: boolean; injected: boolean; message: string }> => {
    const name = `${prefix}-${++podSerial}`;
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: 'default', annotations: { 'k8s.v1.cni.cncf.io/networks': 'sriov-net' } },
      spec: { containers: [{ name: 'app', image: 'busybox' }] },
    };
    try {
      const stored = await api('POST', '/api/v1/namespaces/default/pods', pod);
      return {
        ok: true,
        injected: stored.spec.containers[0].resources?.requests?.['intel.com/sriov'] === '1',
        message: '',
      };
    } catch (error) {
      return { ok: false, injected: false, message: (error as Error).message };
    }
  };
  /** Reviews each replica has answered, by pod; a stopped replica keeps its last count. */
  const answered = new Map<string, { revision: string; reviews: number }>();
  const reviewsAnswered = async (revision: string) => {
    for (const pod of runtime.pods.values()) {
      const text = await send(`${pod.nri.url}/metrics`).then(
        (result) => result.text,
        () => undefined,
      );
      if (text === undefined) continue;
      const reviews = text
        .split('\n')
        .filter((line) => line.startsWith('nri_admission_reviews_total{'))
        .reduce((sum, line) => sum + Number(line.split(' ').pop()), 0);
      answered.set(pod.name, { revision: pod.revision, reviews });
    }
    return [...answered.values()].filter((pod) => pod.revision === revision).reduce((sum, pod) => sum + pod.reviews, 0);
  };
  const podsOf = (revision: string) =>
    [...runtime.pods.values()].filter((pod) => pod.revision === revision && !pod.terminating);
  const revisionReady = async (name: string) =>
    condition(await getJson(['revision', name, '-n', NAMESPACE]).catch(() => ({})), 'Ready') === 'True';

  before(async () => {
    await cp.start();
    api = apiClient(cp);
    await installCrds(cp);
    await installKnativeCrds(cp);
    await cp.must(
      ['apply', '--server-side', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Node',
        metadata: {
          name: NODE,
          annotations: { 'kwok.x-k8s.io/node': 'fake' },
          labels: { type: 'kwok', 'kubernetes.io/hostname': NODE },
        },
        spec: {},
      }),
    );
    await cp.waitFor(
      'the kwok node to be Ready',
      async () => condition(await getJson(['node', NODE]), 'Ready') === 'True',
      60000,
    );
    await cp.must(['taint', 'node', NODE, 'node.kubernetes.io/not-ready-']).catch(() => '');
    await startCertManager(cp);
    installDir = writeInstallOverlay();
    objects = render(join(installDir, 'overlays', 'prod'));
    const image = containerOf(objects).container.image as string;
    await startKnative(cp, [image.split('/')[0]!]);
    stopIngress = simulateIngressLayer(cp);

    // The node's part, from the render: the Secret volume and how the container runs.
    const { service, entrypoint, securityContext } = containerOf(objects);
    const secretVolume = service.spec.template.spec.volumes.find((volume: any) => volume.secret);
    const proxyPort = await freePort();
    runtime = new KnativePodRuntime(cp, {
      namespace: NAMESPACE,
      selector: 'serving.knative.dev/service=nri',
      endpointService: 'nri-webhook-backends',
      volume: new SecretVolume(join(cp.dir, 'kubelet', secretVolume.name), secretVolume.secret.defaultMode),
      secretName: secretVolume.secret.secretName,
      nodeFlags: entrypoint.slice(1, -1),
      securityContext,
      serviceAccount: containerOf(objects).serviceAccount,
    });
    await runtime.start(proxyPort);

    // The README's install block, as written (overlay, apply, wait for the ksvc).
    const started = Date.now();
    // Asynchronously: the ingress and node stand-ins run in this process meanwhile.
    await promisify(execFile)('bash', ['-e', '-o', 'pipefail', '-c', readmeCommand('install')], {
      cwd: installDir,
      env: { ...process.env, KUBECONFIG: cp.adminKubeconfig },
      timeout: 240000,
    });
    installSeconds = (Date.now() - started) / 1000;

    // kube-apiserver reaches nri-webhook.nri.svc on loopback: the Service becomes an ExternalName
    // for localhost on the stand-in kube-proxy's port, and its selector moves to a twin Service
    // whose EndpointSlices the real endpointslice controller keeps.
    const webhookService = structuredClone(find(objects, 'Service', 'nri-webhook'));
    webhookService.metadata.name = 'nri-webhook-backends';
    await cp.must(['apply', '--server-side', '-f', '-'], JSON.stringify(webhookService));
    await exposeOnLoopback(cp, NAMESPACE, 'nri-webhook', proxyPort);
    const webhookName = find(objects, 'MutatingWebhookConfiguration').metadata.name;
    await cp.must([
      'patch',
      'mutatingwebhookconfiguration',
      webhookName,
      '--type=json',
      '-p',
      JSON.stringify([{ op: 'replace', path: '/webhooks/0/clientConfig/service/port', value: proxyPort }]),
    ]);
    await new Promise((resolve) => setTimeout(resolve, 3000)); // the apiserver's webhook informer
    await cp.must(
      ['apply', '--server-side', '-f', '-'],
      `{"apiVersion":"k8s.cni.cncf.io/v1","kind":"NetworkAttachmentDefinition","metadata":{"name":"sriov-net","namespace":"default","annotations":{"k8s.v1.cni.cncf.io/resourceName":"intel.com/sriov"}},"spec":{"config":"{\\"cniVersion\\":\\"1.0.0\\",\\"name\\":\\"sriov-net\\",\\"type\\":\\"sriov\\"}"}}`,
    );
    process.stderr.write(`# Knative and cert-manager up; README install ready in ${installSeconds.toFixed(1)} s\n`);
  });

  after(async () => {
    stopIngress();
    await runtime?.stop();
    await cp.stop();
  });

  it("the README's install block runs as written: Knative's webhook admits the ksvc and the ksvc becomes Ready", async () => {
    const service = await ksvc();
    assert.equal(condition(service, 'Ready'), 'True');
    // Knative's defaulting webhook ran: it records who created the Service, and fills defaults.
    assert.equal(service.metadata.annotations['serving.knative.dev/creator'], 'e2e-admin');
    assert.equal(service.spec.template.spec.containerConcurrency, 0);
    assert.equal(service.status.latestReadyRevisionName, 'nri-00001');
    assert.deepEqual(
      service.status.traffic.map((t: any) => [t.revisionName, t.percent, t.latestRevision]),
      [['nri-00001', 100, true]],
    );
    assert.ok(installSeconds > 0 && installSeconds < 240);
  });

  it('Knative made the Revision, Deployment, PodAutoscaler and HPA nri depends on', async () => {
    const revision = await getJson(['revision', 'nri-00001', '-n', NAMESPACE]);
    assert.equal(condition(revision, 'Ready'), 'True');
    const deployment = await getJson(['deployment', 'nri-00001-deployment', '-n', NAMESPACE]);
    assert.equal(deployment.spec.replicas, 2);
    assert.equal(deployment.spec.strategy.rollingUpdate.maxUnavailable, 0);
    const template = deployment.spec.template;
    assert.equal(template.spec.serviceAccountName, 'nri');
    const nri = template.spec.containers.find((c: any) => c.name === 'nri');
    const queue = template.spec.containers.find((c: any) => c.name === 'queue-proxy');
    // The declared port becomes Knative's user port; PORT tells the process (main.ts listens on it).
    assert.deepEqual(nri.ports, [{ name: 'user-port', containerPort: 8080, protocol: 'TCP' }]);
    const env = Object.fromEntries(nri.env.map((e: any) => [e.name, e.value]));
    assert.equal(env.PORT, '8080');
    assert.equal(env.K_SERVICE, 'nri');
    assert.equal(env.K_REVISION, 'nri-00001');
    assert.equal(env.NRI_TLS_PORT, '8443');
    // Knative moves the readiness probe into queue-proxy, which runs it against nri on 127.0.0.1.
    assert.equal(nri.readinessProbe, undefined);
    const probe = JSON.parse(queue.env.find((e: any) => e.name === 'SERVING_READINESS_PROBE').value);
    assert.equal(probe.httpGet.path, '/readyz');
    assert.equal(probe.httpGet.port, 8080);
    assert.equal(queue.readinessProbe.periodSeconds, 5);
    assert.equal(queue.readinessProbe.failureThreshold, 3);
    assert.equal(nri.livenessProbe.httpGet.path, '/healthz');
    const volume = template.spec.volumes.find((v: any) => v.name === 'serving-certificate');
    assert.deepEqual(volume.secret, { secretName: 'nri-webhook-tls', defaultMode: 0o444 });
    assert.deepEqual(
      nri.volumeMounts.find((m: any) => m.name === 'serving-certificate'),
      { name: 'serving-certificate', mountPath: '/etc/nri/tls', readOnly: true },
    );
    assert.equal(nri.securityContext.runAsUser, 65532);
    assert.equal(nri.securityContext.readOnlyRootFilesystem, true);
    assert.deepEqual(nri.securityContext.capabilities, { drop: ['ALL'] });
    // What the webhook Service and the PodDisruptionBudget select on is on every pod.
    const selector = find(objects, 'Service', 'nri-webhook').spec.selector;
    const budget = find(objects, 'PodDisruptionBudget').spec.selector.matchLabels;
    for (const [key, value] of Object.entries({ ...selector, ...budget }))
      assert.equal(template.metadata.labels[key], value, key);
    assert.equal(template.metadata.labels['serving.knative.dev/revision'], 'nri-00001');

    const autoscaler = await getJson(['podautoscaler', 'nri-00001', '-n', NAMESPACE]);
    assert.equal(autoscaler.metadata.annotations['autoscaling.knative.dev/class'], 'hpa.autoscaling.knative.dev');
    assert.equal(autoscaler.metadata.annotations['autoscaling.knative.dev/metric'], 'cpu');
    const hpa = await getJson(['hpa', 'nri-00001', '-n', NAMESPACE]);
    assert.equal(hpa.spec.minReplicas, 2);
    assert.equal(hpa.spec.maxReplicas, 10);
    assert.equal(hpa.spec.scaleTargetRef.name, 'nri-00001-deployment');
    assert.equal(hpa.spec.metrics[0].resource.name, 'cpu');
    assert.equal(hpa.spec.metrics[0].resource.target.averageUtilization, 50);
  });

  it('cert-manager issued the self-signed -> CA -> serving chain, and cainjector put the CA in caBundle', async () => {
    for (const name of ['nri-ca', 'nri-webhook-serving'])
      assert.equal(condition(await getJson(['certificate', name, '-n', NAMESPACE]), 'Ready'), 'True', name);
    const secret = await getJson(['secret', 'nri-webhook-tls', '-n', NAMESPACE]);
    const leaf = new X509Certificate(Buffer.from(secret.data['tls.crt'], 'base64'));
    const ca = new X509Certificate(Buffer.from(secret.data['ca.crt'], 'base64'));
    assert.equal(leaf.subjectAltName, 'DNS:nri-webhook.nri.svc, DNS:nri-webhook.nri.svc.cluster.local');
    assert.equal(leaf.publicKey.asymmetricKeyType, 'ec');
    assert.equal(leaf.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    assert.ok(leaf.verify(ca.publicKey), 'the serving certificate is signed by the CA');
    assert.match(ca.subject, /CN=nri-webhook-ca/);
    const days = (Date.parse(leaf.validTo) - Date.parse(leaf.validFrom)) / 86400000;
    assert.ok(Math.abs(days - 90) < 1, `90 days, got ${days}`);
    const webhook = await getJson([
      'mutatingwebhookconfiguration',
      find(objects, 'MutatingWebhookConfiguration').metadata.name,
    ]);
    assert.equal(
      Buffer.from(webhook.webhooks[0].clientConfig.caBundle, 'base64').toString(),
      Buffer.from(secret.data['ca.crt'], 'base64').toString(),
    );
  });

  it("admits pods through nri-webhook.nri.svc with cert-manager's certificate, on both replicas", async () => {
    assert.equal(podsOf('nri-00001').filter((pod) => pod.ready).length, 2, runtime.errors.join('\n'));
    // Eight at once: kube-apiserver opens more than one connection, and kube-proxy spreads them.
    const results = await Promise.all(Array.from({ length: 8 }, () => createPod('through-knative')));
    assert.deepEqual(
      results.filter((result) => !result.ok || !result.injected),
      [],
      'every pod injected',
    );
    for (const pod of podsOf('nri-00001'))
      assert.ok(pod.connections > 0, `${pod.name} got connections: ${JSON.stringify(runtime.connectionsByRevision())}`);
  });

  it('a renewal by cert-manager is served live: new certificate on new connections, no restart, pods still admitted', async () => {
    const before = await getJson(['secret', 'nri-webhook-tls', '-n', NAMESPACE]);
    const serial = new X509Certificate(Buffer.from(before.data['tls.crt'], 'base64')).serialNumber;
    const pids = podsOf('nri-00001').map((pod) => pod.nri.child.pid);
    // What `cmctl renew` does: mark the Certificate as Issuing; cert-manager does the rest.
    const now = new Date().toISOString();
    await cp.must([
      'patch',
      'certificate',
      'nri-webhook-serving',
      '-n',
      NAMESPACE,
      '--subresource=status',
      '--type=json',
      '-p',
      JSON.stringify([
        {
          op: 'add',
          path: '/status/conditions/-',
          value: {
            type: 'Issuing',
            status: 'True',
            reason: 'ManuallyTriggered',
            message: 'Certificate re-issuance manually triggered',
            lastTransitionTime: now,
          },
        },
      ]),
    ]);
    let renewed = '';
    await cp.waitFor(
      'cert-manager to renew the certificate',
      async () => {
        const secret = await getJson(['secret', 'nri-webhook-tls', '-n', NAMESPACE]);
        renewed = new X509Certificate(Buffer.from(secret.data['tls.crt'], 'base64')).serialNumber;
        return renewed !== serial;
      },
      60000,
    );
    for (const pod of podsOf('nri-00001')) await pod.nri.waitForLog(/serving certificate reloaded/, 30000);
    for (const pod of podsOf('nri-00001')) {
      const presented = await new Promise<string>((resolve, reject) => {
        const socket = connect(
          { host: '127.0.0.1', port: pod.tlsPort, servername: 'nri-webhook.nri.svc', rejectUnauthorized: false },
          () => {
            resolve(socket.getPeerX509Certificate()!.serialNumber);
            socket.end();
          },
        );
        socket.on('error', reject);
      });
      assert.equal(presented, renewed, pod.name);
    }
    assert.deepEqual(
      podsOf('nri-00001').map((pod) => pod.nri.child.pid),
      pids,
      'no replica restarted',
    );
    const result = await createPod('after-renewal');
    assert.ok(result.ok && result.injected, result.message);
  });

  /** Pods created every 100 ms while `change` happens, until `settled`; every one must be admitted and injected. */
  async function createWhile(
    label: string,
    change: () => Promise<void>,
    settled: () => Promise<boolean>,
  ): Promise<number> {
    let done = false;
    const failures: string[] = [];
    let created = 0;
    const load = (async () => {
      while (!done) {
        const result = await createPod(label.replace(/[^a-z0-9-]+/g, '-').slice(0, 40));
        created++;
        if (!result.ok || !result.injected) failures.push(result.message || 'not injected');
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    try {
      await change();
      await cp.waitFor(`${label} to settle`, settled, 180000);
    } finally {
      done = true;
      await load;
    }
    assert.deepEqual(failures, [], `pod creations failed during ${label}`);
    return created;
  }

  const onlyServing = (revision: string) => async () => {
    const serving = [...runtime.pods.values()].filter((pod) => pod.ready && !pod.terminating);
    return serving.length > 0 && serving.every((pod) => pod.revision === revision);
  };

  /** After a switch: reviews reach `current` only, the other revisions' replicas keep running unready. */
  async function assertOnly(current: string, previous: string): Promise<void> {
    const before = { current: await reviewsAnswered(current), previous: await reviewsAnswered(previous) };
    for (let i = 0; i < 10; i++) {
      const result = await createPod(`after-${current}`);
      assert.ok(result.ok && result.injected, result.message);
    }
    assert.equal(await reviewsAnswered(previous), before.previous, `no review reached ${previous}`);
    assert.equal((await reviewsAnswered(current)) - before.current, 10, `every review reached ${current}`);
    const old = podsOf(previous);
    assert.ok(old.length >= 1, `${previous} keeps running (Knative keeps it for a roll back)`);
    for (const pod of old) {
      const ready = await send(`${pod.nri.url}/readyz`);
      assert.equal(ready.status, 503);
      assert.match(ready.text, /superseded/);
      assert.equal(metricValue((await send(`${pod.nri.url}/metrics`)).text, 'nri_knative_revision_serving'), 0);
    }
  }

  it('an upgrade: once the new revision is Ready, reviews reach it only, and no pod creation fails on the way', async (t) => {
    const started = Date.now();
    let routedAt = 0;
    let oldAtRouting = 0;
    const created = await createWhile(
      'upgrade',
      // A new image, as an upgrade brings.
      () =>
        cp
          .must([
            'patch',
            'ksvc',
            'nri',
            '-n',
            NAMESPACE,
            '--type=json',
            '-p',
            JSON.stringify([
              {
                op: 'replace',
                path: '/spec/template/spec/containers/0/image',
                value: 'registry.example.com/nri:0.1.1',
              },
            ]),
          ])
          .then(() => undefined),
      async () => {
        if (
          !routedAt &&
          (await revisionReady('nri-00002')) &&
          (await ksvc()).status.traffic?.[0]?.revisionName === 'nri-00002'
        ) {
          routedAt = Date.now();
          oldAtRouting = await reviewsAnswered('nri-00001');
        }
        return routedAt > 0 && (await onlyServing('nri-00002')());
      },
    );
    const lateReviews = (await reviewsAnswered('nri-00001')) - oldAtRouting;
    t.diagnostic(
      `new revision Ready and routed ${((routedAt - started) / 1000).toFixed(1)} s after the change; old revision out of the webhook Service ${((Date.now() - routedAt) / 1000).toFixed(1)} s later, having answered ${lateReviews} reviews meanwhile; ${created} pods created in all`,
    );
    assert.ok(created > 10, `pods were created throughout (${created})`);
    await assertOnly('nri-00002', 'nri-00001');
  });

  it('a roll back to the previous revision (traffic pinned to it): reviews move back, no pod creation fails', async () => {
    await createWhile(
      'rollback',
      // The README's roll back command, as written.
      () =>
        promisify(execFile)('bash', ['-e', '-o', 'pipefail', '-c', readmeCommand('rollback')], {
          env: { ...process.env, KUBECONFIG: cp.adminKubeconfig },
        }).then(() => undefined),
      async () =>
        (await ksvc()).status.traffic?.[0]?.revisionName === 'nri-00001' && (await onlyServing('nri-00001')()),
    );
    await assertOnly('nri-00001', 'nri-00002');
  });

  it('replicas deleted under load, one after the other (a node drain): each finishes what it was sent, no pod creation fails', async () => {
    for (const victim of podsOf('nri-00001')) {
      const others = new Set(podsOf('nri-00001').map((pod) => pod.name));
      await createWhile(
        `deleting ${victim.name}`,
        () => cp.must(['delete', 'pod', victim.name, '-n', NAMESPACE, '--wait=false']).then(() => undefined),
        // Gone (its preStop wait and SIGTERM done), and a replacement ready.
        async () =>
          !runtime.pods.has(victim.name) && podsOf('nri-00001').some((pod) => pod.ready && !others.has(pod.name)),
      );
    }
    assert.deepEqual(
      runtime.errors.filter((error) => /exited with/.test(error)),
      [],
    );
  });
});
