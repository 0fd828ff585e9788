// knative/ as kubectl renders it: every object valid against its API schema,
// and the pieces that must agree with each other (certificate, webhook,
// Services, pods, RBAC) checked against each other.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { before, describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { evaluate } from '@marcbachmann/cel-js';
import * as admissionregistration from 'kubernetes-models/admissionregistration.k8s.io/v1';
import * as core from 'kubernetes-models/v1';
import * as policy from 'kubernetes-models/policy/v1';
import * as rbac from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import * as certManager from '@kubernetes-models/cert-manager/cert-manager.io/v1';
import * as serving from '@kubernetes-models/knative/serving.knative.dev/v1';
import { repoRoot } from '../support/fixtures.js';
import { startCommand } from '../support/start-command.js';

type Obj = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [k: string]: any;
};

const MODELS: Record<string, new (data: any) => { validate(): void }> = {
  'v1/Namespace': core.Namespace,
  'v1/ServiceAccount': core.ServiceAccount,
  'v1/Service': core.Service,
  'rbac.authorization.k8s.io/v1/ClusterRole': rbac.ClusterRole,
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': rbac.ClusterRoleBinding,
  'rbac.authorization.k8s.io/v1/Role': rbac.Role,
  'rbac.authorization.k8s.io/v1/RoleBinding': rbac.RoleBinding,
  'policy/v1/PodDisruptionBudget': policy.PodDisruptionBudget,
  'admissionregistration.k8s.io/v1/MutatingWebhookConfiguration': admissionregistration.MutatingWebhookConfiguration,
  'cert-manager.io/v1/Issuer': certManager.Issuer,
  'cert-manager.io/v1/Certificate': certManager.Certificate,
  'serving.knative.dev/v1/Service': serving.Service,
};

const KNATIVE_RESERVED_PORTS = [8012, 8013, 8022, 8112, 9090, 9091];

describe('knative/ manifests', () => {
  let objects: Obj[] = [];
  const one = (apiVersion: string, kind: string, name?: string): Obj => {
    const found = objects.filter(
      (o) => o.apiVersion === apiVersion && o.kind === kind && (!name || o.metadata.name === name),
    );
    assert.equal(found.length, 1, `exactly one ${kind}${name ? ` ${name}` : ''}`);
    return found[0]!;
  };

  before(() => {
    const rendered = execFileSync('kubectl', ['kustomize', fileURLToPath(new URL('knative/', repoRoot))], {
      encoding: 'utf8',
    });
    objects = parseAllDocuments(rendered).map((document) => document.toJS() as Obj);
  });

  it('mounts the serving certificate so the non-root container can read it (kubelet files are root:root; Knative refuses fsGroup)', () => {
    const template = one('serving.knative.dev/v1', 'Service', 'nri').spec.template.spec;
    const container = template.containers[0];
    assert.notEqual(container.securityContext.runAsUser, 0);
    assert.equal(
      template.securityContext?.fsGroup,
      undefined,
      'Knative Serving refuses pod-level securityContext by default',
    );
    const mount = container.volumeMounts.find((m: any) => m.mountPath === '/etc/nri/tls');
    const volume = template.volumes.find((v: any) => v.name === mount.name);
    assert.equal(
      volume.secret.defaultMode & 0o004,
      0o004,
      `defaultMode ${volume.secret.defaultMode.toString(8)} gives "other" no read`,
    );
  });

  it('ships no Namespace in the base, and no namespace in the examples applied beside it', () => {
    assert.equal(
      objects.find((o) => o.kind === 'Namespace'),
      undefined,
      'the base never takes over or deletes a namespace',
    );
    for (const file of ['examples/control-switches.yaml', 'knative/monitoring/podmonitor.yaml']) {
      const object = parseAllDocuments(readFileSync(new URL(file, repoRoot), 'utf8'))[0]!.toJS();
      assert.equal(object.metadata.namespace, undefined, `${file} is applied with -n <nri's namespace>`);
    }
  });

  it('renders objects that all validate against their API schemas', () => {
    assert.ok(objects.length >= 13);
    for (const object of objects) {
      const Model = MODELS[`${object.apiVersion}/${object.kind}`];
      assert.ok(Model, `no schema known for ${object.apiVersion} ${object.kind}`);
      assert.doesNotThrow(() => new Model(object).validate(), `${object.kind} ${object.metadata.name}`);
      assert.equal(
        object.metadata.labels?.['app.kubernetes.io/part-of'],
        'nri',
        `${object.kind} ${object.metadata.name} is labelled`,
      );
    }
  });

  it('wires the webhook, its Service, the serving certificate and the pods together', () => {
    const hook = one('admissionregistration.k8s.io/v1', 'MutatingWebhookConfiguration');
    const webhook = hook.webhooks[0];
    const ref = webhook.clientConfig.service;
    const namespace = one('v1', 'ServiceAccount').metadata.namespace;
    assert.equal(ref.namespace, namespace);
    assert.deepEqual([ref.path, ref.port], ['/mutate', 443]);

    const [certNamespace, certName] = hook.metadata.annotations!['cert-manager.io/inject-ca-from']!.split('/');
    assert.equal(certNamespace, namespace);
    const cert = one('cert-manager.io/v1', 'Certificate', certName);
    assert.equal(cert.metadata.namespace, namespace);
    assert.deepEqual(
      [...cert.spec.dnsNames].sort(),
      [`${ref.name}.${namespace}.svc`, `${ref.name}.${namespace}.svc.cluster.local`].sort(),
    );
    assert.equal(cert.spec.privateKey.algorithm, 'ECDSA');
    const issuer = one('cert-manager.io/v1', 'Issuer', cert.spec.issuerRef.name);
    const ca = one(
      'cert-manager.io/v1',
      'Certificate',
      objects.find((o) => o.kind === 'Certificate' && o.spec.secretName === issuer.spec.ca.secretName)!.metadata.name,
    );
    assert.equal(ca.spec.isCA, true);
    assert.ok(one('cert-manager.io/v1', 'Issuer', ca.spec.issuerRef.name).spec.selfSigned);
    const hours = (text: string) => Number(/^(\d+)h$/.exec(text)![1]);
    assert.ok(hours(cert.spec.renewBefore) >= hours(cert.spec.duration) / 4, 'renewed well before expiry');

    const service = one('v1', 'Service', ref.name);
    assert.equal(service.spec.type, 'ClusterIP');
    const port = service.spec.ports.find((p: any) => p.port === 443);
    assert.equal(port.targetPort, 8443);

    const ksvc = one('serving.knative.dev/v1', 'Service');
    assert.deepEqual(service.spec.selector, { 'serving.knative.dev/service': ksvc.metadata.name });
    const template = ksvc.spec.template;
    const container = template.spec.containers[0];
    const env = Object.fromEntries(container.env.map((e: any) => [e.name, e.value]));
    assert.equal(env.NRI_TLS_PORT, '8443');
    assert.equal(container.ports.length, 1, 'Knative allows one declared port');
    assert.equal(container.ports[0].containerPort, 8080);
    for (const reserved of KNATIVE_RESERVED_PORTS) assert.notEqual(Number(env.NRI_TLS_PORT), reserved);

    const volume = template.spec.volumes.find((v: any) => v.secret?.secretName === cert.spec.secretName);
    assert.ok(volume, 'the serving certificate Secret is mounted');
    const mount = container.volumeMounts.find((m: any) => m.name === volume.name);
    assert.equal(mount.subPath, undefined, 'no subPath: it would never update');
    assert.ok(
      env.NRI_TLS_CERT_FILE.startsWith(`${mount.mountPath}/`) && env.NRI_TLS_KEY_FILE.startsWith(`${mount.mountPath}/`),
    );

    const pdb = one('policy/v1', 'PodDisruptionBudget');
    assert.deepEqual(pdb.spec.selector.matchLabels, service.spec.selector);
    assert.equal(pdb.spec.minAvailable, 1);
  });

  it('runs the ksvc hardened, probed, sized and autoscaled on CPU from two replicas', () => {
    const ksvc = one('serving.knative.dev/v1', 'Service');
    const annotations = ksvc.spec.template.metadata.annotations;
    assert.equal(annotations['autoscaling.knative.dev/class'], 'hpa.autoscaling.knative.dev');
    assert.equal(annotations['autoscaling.knative.dev/metric'], 'cpu');
    assert.ok(Number(annotations['autoscaling.knative.dev/min-scale']) >= 2);
    assert.equal(annotations['autoscaling.knative.dev/max-scale'], '10');
    assert.ok(Number(annotations['autoscaling.knative.dev/target']) > 0);
    assert.equal(annotations['prometheus.io/path'], '/metrics');
    const spec = ksvc.spec.template.spec;
    assert.equal(spec.serviceAccountName, one('v1', 'ServiceAccount').metadata.name);
    const container = spec.containers[0];
    assert.deepEqual(container.securityContext, {
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    assert.equal(container.readinessProbe.httpGet.path, '/readyz');
    assert.equal(container.livenessProbe.httpGet.path, '/healthz');
    assert.ok(container.resources.requests.cpu && container.resources.requests.memory);
    assert.ok(container.resources.limits.memory);
  });

  it("grants exactly: get/list/watch on NADs, list/watch on DeviceClasses, get on ResourceClaims and their templates, and get/list/watch on the one control-switch ConfigMap and nri's own Knative Service in its namespace", () => {
    const namespace = one('v1', 'ServiceAccount').metadata.namespace;
    const roles = objects.filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role');
    const rules = roles
      .flatMap((role) =>
        role.rules.map((rule: any) => ({ kind: role.kind, namespace: role.metadata.namespace, ...rule })),
      )
      .sort((a, b) => a.kind.localeCompare(b.kind));
    assert.deepEqual(rules, [
      {
        kind: 'ClusterRole',
        namespace: undefined,
        apiGroups: ['resource.k8s.io'],
        resources: ['deviceclasses'],
        verbs: ['list', 'watch'],
      },
      {
        kind: 'ClusterRole',
        namespace: undefined,
        apiGroups: ['resource.k8s.io'],
        resources: ['resourceclaims', 'resourceclaimtemplates'],
        verbs: ['get'],
      },
      {
        kind: 'ClusterRole',
        namespace: undefined,
        apiGroups: ['k8s.cni.cncf.io'],
        resources: ['network-attachment-definitions'],
        verbs: ['get', 'list', 'watch'],
      },
      {
        kind: 'Role',
        namespace,
        apiGroups: [''],
        resources: ['configmaps'],
        resourceNames: ['nri-control-switches'],
        verbs: ['get', 'list', 'watch'],
      },
      {
        kind: 'Role',
        namespace,
        apiGroups: ['serving.knative.dev'],
        resources: ['services'],
        resourceNames: ['nri'],
        verbs: ['get', 'list', 'watch'],
      },
    ]);
    const text = JSON.stringify(roles);
    for (const forbidden of ['secrets', 'pods', '"*"']) assert.ok(!text.includes(forbidden), `no ${forbidden}`);
    const account = one('v1', 'ServiceAccount');
    for (const binding of objects.filter((o) => o.kind.endsWith('RoleBinding'))) {
      assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: account.metadata.name, namespace }]);
      assert.ok(
        roles.some((role) => role.kind === binding.roleRef.kind && role.metadata.name === binding.roleRef.name),
      );
    }
  });

  it('registers a webhook that can neither block its own recovery nor see unrelated pods', () => {
    const webhook = one('admissionregistration.k8s.io/v1', 'MutatingWebhookConfiguration').webhooks[0];
    assert.equal(webhook.failurePolicy, 'Fail');
    assert.ok(webhook.timeoutSeconds <= 10);
    assert.equal(webhook.sideEffects, 'None');
    assert.deepEqual(webhook.admissionReviewVersions, ['v1']);
    assert.equal(webhook.reinvocationPolicy, 'Never');
    assert.deepEqual(webhook.rules, [
      { operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' },
    ]);
    const excluded = webhook.namespaceSelector.matchExpressions.find(
      (e: any) => e.key === 'kubernetes.io/metadata.name' && e.operator === 'NotIn',
    ).values;
    const namespace = one('v1', 'ServiceAccount').metadata.namespace;
    for (const ns of ['kube-system', namespace, 'knative-serving', 'cert-manager'])
      assert.ok(excluded.includes(ns), `${ns} excluded`);
    const ownLabel = webhook.objectSelector.matchExpressions[0];
    const podLabels = one('serving.knative.dev/v1', 'Service').spec.template.metadata.labels;
    assert.equal(ownLabel.operator, 'NotIn');
    assert.ok(ownLabel.values.includes(podLabels[ownLabel.key]), 'its own pods are excluded');
    const condition = webhook.matchConditions[0].expression as string;
    for (const key of ['k8s.v1.cni.cncf.io/networks', 'v1.multus-cni.io/default-network'])
      assert.ok(condition.includes(`'${key}'`));
  });

  it('sends the webhook exactly the pods that select networks or carry an injection label (CEL)', () => {
    const condition = one('admissionregistration.k8s.io/v1', 'MutatingWebhookConfiguration').webhooks[0]
      .matchConditions[0].expression as string;
    const sends = (metadata: Record<string, unknown>) => evaluate(condition, { object: { metadata } }) as boolean;
    assert.equal(sends({ annotations: { 'k8s.v1.cni.cncf.io/networks': 'sriov-net' } }), true);
    assert.equal(sends({ annotations: { 'v1.multus-cni.io/default-network': 'kube-system/primary' } }), true);
    assert.equal(sends({ labels: { 'feature.pod.kubernetes.io/sriov-network': 'true' } }), true);
    assert.equal(sends({ labels: { app: 'web' }, annotations: { 'prometheus.io/scrape': 'true' } }), false);
    assert.equal(sends({}), false, 'no annotations or labels at all: not sent, no error');
    // The example control switches only use labels the condition lets through.
    const example = parseAllDocuments(
      readFileSync(new URL('examples/control-switches.yaml', repoRoot), 'utf8'),
    )[0]!.toJS();
    for (const label of Object.keys(JSON.parse(example.data['config.json'])['user-defined-injections'])) {
      assert.equal(sends({ labels: { [label]: 'true' } }), true, label);
    }
  });

  it('builds a multi-stage, non-root image that runs the bundled function', () => {
    const dockerfile = readFileSync(new URL('knative/Dockerfile', repoRoot), 'utf8');
    const stages = dockerfile.split(/^FROM /m).slice(1);
    assert.equal(stages.length, 2);
    assert.match(stages[0]!, /^RUN npm ci/m);
    // The same bundling as `npm start`, run by the image's node so the code cache matches its V8.
    const scripts = JSON.parse(readFileSync(new URL('package.json', repoRoot), 'utf8')).scripts;
    const imageBundle = `RUN ${scripts.bundle} dist --for-image`;
    assert.ok(stages[0]!.split('\n').includes(imageBundle), `the build stage runs "${imageBundle}"`);
    // Both stages on the Node line package.json's engines and the tests' runtime name.
    const engine = /^>=(\d+)$/.exec(
      JSON.parse(readFileSync(new URL('package.json', repoRoot), 'utf8')).engines.node,
    )![1];
    for (const stage of stages) assert.match(stage, new RegExp(`^node:${engine}-\\S+-slim\\b`));
    assert.equal(stages[0]!.split(/\s/)[0], stages[1]!.split(/\s/)[0], 'one base image for both stages');
    for (const copied of [...stages[0]!.matchAll(/^COPY (\S+) /gm)].map((m) => m[1]!)) {
      assert.ok(existsSync(new URL(copied, repoRoot)), `${copied} exists`);
    }
    const final = stages[1]!;
    assert.match(final, /^USER 65532:65532$/m);
    assert.doesNotMatch(final, /npm (ci|install)/);
    assert.doesNotMatch(final, /node_modules/);
    // The container runs the process exactly as `npm start` (and `npm run bench`) does, heap flags included.
    const start = startCommand();
    assert.deepEqual(JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(final)![1]!), start);
    assert.ok(start.includes('dist/main.js') && start.some((word) => word.startsWith('--max-old-space-size=')));
  });
});

describe('an overlay that moves nri to another namespace (examples/overlays/webhooks)', () => {
  let objects: Obj[] = [];
  const of = (kind: string, name?: string) =>
    objects.find((o) => o.kind === kind && (!name || o.metadata.name === name))!;

  before(() => {
    const rendered = execFileSync(
      'kubectl',
      ['kustomize', fileURLToPath(new URL('examples/overlays/webhooks/', repoRoot))],
      { encoding: 'utf8' },
    );
    objects = parseAllDocuments(rendered).map((document) => document.toJS() as Obj);
  });

  it('puts every namespaced object in the new namespace', () => {
    assert.equal(
      of('Namespace'),
      undefined,
      'an existing namespace is neither relabelled nor, by `kubectl delete -k`, deleted',
    );
    for (const object of objects) {
      if (['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'MutatingWebhookConfiguration'].includes(object.kind))
        continue;
      assert.equal(object.metadata.namespace, 'webhooks', `${object.kind} ${object.metadata.name}`);
    }
  });

  it('binds RBAC to the ServiceAccount where it now lives', () => {
    for (const kind of ['RoleBinding', 'ClusterRoleBinding']) {
      assert.deepEqual(of(kind).subjects, [{ kind: 'ServiceAccount', name: 'nri', namespace: 'webhooks' }], kind);
    }
  });

  it('points the webhook, its CA injection, the certificate and both exclusions at the new namespace', () => {
    const webhook = of('MutatingWebhookConfiguration');
    assert.equal(webhook.webhooks[0].clientConfig.service.namespace, 'webhooks');
    assert.equal(webhook.metadata.annotations!['cert-manager.io/inject-ca-from'], 'webhooks/nri-webhook-serving');
    assert.deepEqual(of('Certificate', 'nri-webhook-serving').spec.dnsNames, [
      'nri-webhook.webhooks.svc',
      'nri-webhook.webhooks.svc.cluster.local',
    ]);
    const excluded = webhook.webhooks[0].namespaceSelector.matchExpressions[0].values;
    assert.ok(excluded.includes('webhooks') && !excluded.includes('nri'), String(excluded));
    const env = of('Service', 'nri').spec.template.spec.containers[0].env;
    assert.equal(env.find((e: any) => e.name === 'NRI_EXCLUDE_NAMESPACES').value, 'kube-system,webhooks');
  });

  it("leaves no reference to the old namespace anywhere, and uses the overlay's image", () => {
    const text = JSON.stringify(objects);
    assert.doesNotMatch(text, /"namespace":"nri"|nri-webhook\.nri\.|"nri\/|,nri"/);
    assert.equal(
      of('Service', 'nri').spec.template.spec.containers[0].image,
      'registry.example.com/platform/nri:0.1.0',
    );
  });
});
