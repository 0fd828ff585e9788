// nri deployed into the e2e control plane the way knative/ says: the rendered
// kustomization is what gets applied, the container's command, user and
// environment are what runs, and its certificate reaches it the way the
// kubelet lays out a Secret volume.
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  existsSync,
} from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { issue } from '../../support/certs.js';
import { repoRoot } from '../../support/fixtures.js';
import { readmeCommand, writeInstallOverlay } from '../../support/readme.js';
import { freePort, startFunction, type RunningFunction } from '../../support/function-process.js';
import { cacheDir, type ControlPlane } from './control-plane.js';

/** Only root can run nri as the container's user and lay Secret files out as root's, as the kubelet does (CI runs as root). */
export const AS_ROOT = process.getuid?.() === 0;

export type KubeObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [k: string]: any };
  [k: string]: any;
};

/** `kubectl kustomize <dir>` (relative to the repository, or absolute), as objects; by default the README's install overlay. */
export function render(dir = join(writeInstallOverlay(), 'overlays', 'prod')): KubeObject[] {
  const text = execFileSync('kubectl', ['kustomize', isAbsolute(dir) ? dir : join(fileURLToPath(repoRoot), dir)], {
    encoding: 'utf8',
  });
  return parseAllDocuments(text)
    .map((document) => document.toJS() as KubeObject)
    .filter(Boolean);
}

export function find(objects: KubeObject[], kind: string, name?: string): KubeObject {
  const found = objects.find((object) => object.kind === kind && (name === undefined || object.metadata.name === name));
  if (!found) throw new Error(`the render has no ${kind}${name ? ` ${name}` : ''}`);
  return found;
}

export async function installCrds(cp: ControlPlane): Promise<void> {
  for (const file of ['nad.yaml', 'knative-serving.yaml', 'cert-manager.yaml']) {
    await cp.must(['apply', '--server-side', '-f', join(cacheDir(), 'crds', file)]);
  }
  await cp.must(['wait', '--for=condition=Established', '--timeout=60s', 'crd', '--all']);
}

/** Runs Knative Serving's own SetDefaults + Validate on a Service; its complaint, or undefined. */
export function knativeRefusal(service: KubeObject): string | undefined {
  try {
    execFileSync(join(cacheDir(), 'bin', 'knative-validate'), {
      input: JSON.stringify(service),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    return undefined;
  } catch (error) {
    return String((error as { stderr?: Buffer }).stderr ?? error);
  }
}

/**
 * A Secret volume as the kubelet writes it: each key a file in a timestamped
 * directory, owned by root with the volume's defaultMode, reached through the
 * `..data` symlink, which an update swaps with one rename.
 */
export class SecretVolume {
  private generation = 0;

  constructor(
    readonly dir: string,
    private readonly mode: number,
  ) {
    mkdirSync(dir, { recursive: true });
    chmodSync(dir, 0o1777);
  }

  write(files: Record<string, Buffer>): void {
    const stamp = `..${new Date().toISOString().replace(/[-:.]/g, '_')}.${++this.generation}`;
    const target = join(this.dir, stamp);
    mkdirSync(target, { mode: 0o755 });
    for (const [name, content] of Object.entries(files)) {
      const file = join(target, name);
      writeFileSync(file, content);
      if (AS_ROOT) chownSync(file, 0, 0);
      chmodSync(file, this.mode);
    }
    const old = existsSync(join(this.dir, '..data'))
      ? readdirSync(this.dir).filter((entry) => entry.startsWith('..') && entry !== '..data' && entry !== stamp)
      : [];
    symlinkSync(stamp, join(this.dir, '..data_tmp'));
    renameSync(join(this.dir, '..data_tmp'), join(this.dir, '..data'));
    for (const name of Object.keys(files)) {
      if (!existsSync(join(this.dir, name))) symlinkSync(join('..data', name), join(this.dir, name));
    }
    for (const entry of old) rmSync(join(this.dir, entry), { recursive: true, force: true });
  }
}

export interface Deployment {
  objects: KubeObject[];
  namespace: string;
  nri?: RunningFunction;
  volume: SecretVolume;
  webhookUrl: string;
  tlsPort: number;
}

/** A serving certificate for the Certificate's dnsNames (and 127.0.0.1, where the test webhook listens), stored as cert-manager stores it. */
export async function issueServingSecret(
  cp: ControlPlane,
  objects: KubeObject[],
  serial: number,
  notAfter?: Date,
): Promise<void> {
  const certificate = find(objects, 'Certificate', 'nri-webhook-serving');
  const namespace = certificate.metadata.namespace!;
  const san = [...certificate.spec.dnsNames.map((name: string) => `DNS:${name}`), 'IP:127.0.0.1'].join(',');
  const dir = join(cp.dir, `serving-${serial}`);
  mkdirSync(dir, { recursive: true });
  const { cert, key } = issue(dir, 'serving', `/CN=${certificate.spec.dnsNames[0]}`, {
    ca: cp.pki.ca,
    san,
    ...(notAfter ? { notAfter } : {}),
  });
  const secret = {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'kubernetes.io/tls',
    metadata: {
      name: certificate.spec.secretName,
      namespace,
      annotations: {
        'cert-manager.io/certificate-name': certificate.metadata.name,
        'cert-manager.io/issuer-name': certificate.spec.issuerRef.name,
      },
    },
    data: {
      'ca.crt': Buffer.from(cp.pki.caPem).toString('base64'),
      'tls.crt': readFileSync(cert).toString('base64'),
      'tls.key': readFileSync(key).toString('base64'),
    },
  };
  await cp.must(['apply', '--server-side', '--force-conflicts', '-f', '-'], JSON.stringify(secret));
}

/** The Secret's files, read back from the API as the kubelet would. */
export async function syncVolume(cp: ControlPlane, deployment: Deployment): Promise<void> {
  const service = find(deployment.objects, 'Service', 'nri');
  const secretName = service.spec.template.spec.volumes[0].secret.secretName;
  const secret = await cp.getJson(['secret', secretName, '-n', deployment.namespace]);
  deployment.volume.write(
    Object.fromEntries(
      Object.entries(secret.data as Record<string, string>).map(([name, value]) => [
        name,
        Buffer.from(value, 'base64'),
      ]),
    ),
  );
}

/** Everything the render holds, accepted by the real apiserver; the webhook pointed at the local listener. */
export async function deploy(cp: ControlPlane, objects: KubeObject[], installDir?: string): Promise<Deployment> {
  const namespace = find(objects, 'Namespace').metadata.name;
  await cp.must(['apply', '--server-side', '-f', '-'], JSON.stringify(find(objects, 'Namespace')));
  // The whole kustomization, as the apiserver validates it (schemas, RBAC escalation, webhook config).
  await cp.must(
    ['apply', '--server-side', '--dry-run=server', '-f', '-'],
    JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }),
  );
  if (installDir) {
    // The README's install command as written, in the folder its block wrote the overlay in. (The
    // whole block, with its wait for the ksvc, runs under Knative's controllers in knative.test.ts.)
    const apply = readmeCommand('install')
      .split('\n')
      .find((line) => line.startsWith('kubectl apply -k'))!;
    execFileSync('bash', ['-e', '-o', 'pipefail', '-c', apply], {
      cwd: installDir,
      env: { ...process.env, KUBECONFIG: cp.adminKubeconfig },
      stdio: 'ignore',
    });
  }

  const tlsPort = await freePort();
  const webhook = structuredClone(find(objects, 'MutatingWebhookConfiguration'));
  const webhookUrl = `https://127.0.0.1:${tlsPort}${webhook.webhooks[0].clientConfig.service.path}`;
  for (const hook of webhook.webhooks) hook.clientConfig = { url: webhookUrl };
  const applied = objects.map((object) => (object.kind === 'MutatingWebhookConfiguration' ? webhook : object));
  await cp.must(
    ['apply', '--server-side', '--force-conflicts', '-f', '-'],
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'List',
      items: objects.filter((object) => object !== find(objects, 'MutatingWebhookConfiguration')),
    }),
  );
  // Over what the README applied, the webhook pointed at the local listener instead (replaced whole: a merge would keep its service).
  await cp.must([installDir ? 'replace' : 'create', '-f', '-'], JSON.stringify(webhook));

  const service = find(objects, 'Service', 'nri');
  const secretVolume = service.spec.template.spec.volumes.find((volume: any) => volume.secret);
  const volume = new SecretVolume(join(cp.dir, 'kubelet', secretVolume.name), secretVolume.secret.defaultMode ?? 0o644);
  return { objects: applied, namespace, volume, webhookUrl, tlsPort };
}

/** The container as the ksvc and the image define it: command, user, environment, mounts. */
export function containerOf(objects: KubeObject[]) {
  const service = find(objects, 'Service', 'nri');
  const container = service.spec.template.spec.containers[0];
  const dockerfile = readFileSync(new URL('knative/Dockerfile', repoRoot), 'utf8');
  const entrypoint = JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(dockerfile)![1]!) as string[];
  const env: Record<string, string> = Object.fromEntries(
    (container.env ?? []).map((item: { name: string; value: string }) => [item.name, item.value]),
  );
  return {
    service,
    container,
    entrypoint,
    env,
    securityContext: container.securityContext ?? {},
    serviceAccount: service.spec.template.spec.serviceAccountName as string,
  };
}

/** Env values under a volume's `mountPath` moved to `volumeDir`, where the test laid that volume out as the kubelet would. */
export function envWithVolumeAt(
  env: Record<string, string>,
  mountPath: string,
  volumeDir: string,
): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).map(([name, value]) => [
      name,
      value.startsWith(`${mountPath}/`) ? join(volumeDir, value.slice(mountPath.length + 1)) : value,
    ]),
  );
}

/** Starts nri as its container would run, with a TokenRequest token of its ServiceAccount. */
export async function startNri(
  cp: ControlPlane,
  deployment: Deployment,
  extraEnv: Record<string, string> = {},
  options: { serviceAccount?: string } = {},
): Promise<RunningFunction> {
  const { container, entrypoint, env, securityContext, serviceAccount: ownAccount } = containerOf(deployment.objects);
  const serviceAccount = options.serviceAccount ?? ownAccount;
  const token = (
    await cp.must(['create', 'token', serviceAccount, '-n', deployment.namespace, '--duration=2h'])
  ).trim();
  const kubeconfig = cp.writeKubeconfig(`nri-${serviceAccount}.kubeconfig`, { token });
  const mapped = envWithVolumeAt(env, container.volumeMounts[0].mountPath, deployment.volume.dir);
  const [, ...flags] = entrypoint;
  return startFunction(
    {
      ...mapped,
      NRI_TLS_PORT: String(deployment.tlsPort),
      KUBECONFIG: kubeconfig,
      // In a pod the namespace comes from the service account mount.
      NRI_NAMESPACE: deployment.namespace,
      ...extraEnv,
    },
    AS_ROOT
      ? { nodeFlags: flags.slice(0, -1), uid: securityContext.runAsUser, gid: securityContext.runAsGroup }
      : { nodeFlags: flags.slice(0, -1) },
  );
}

/**
 * The CRDs, the rendered kustomization deployed, the serving Secret issued as
 * cert-manager would, cainjector run until it has filled the webhook's
 * caBundle, and the Secret laid out as the kubelet does: all that nri needs
 * before it starts.
 */
export async function deployWithCertificate(
  cp: ControlPlane,
): Promise<{ objects: KubeObject[]; deployment: Deployment; webhookName: string; stopCainjector: () => void }> {
  await installCrds(cp);
  const installDir = writeInstallOverlay();
  const objects = render(join(installDir, 'overlays', 'prod'));
  const deployment = await deploy(cp, objects, installDir);
  await issueServingSecret(cp, objects, 1);
  const stopCainjector = startCainjector(cp);
  const webhookName = find(objects, 'MutatingWebhookConfiguration').metadata.name;
  await cp.waitFor(
    'cainjector to fill the caBundle',
    async () =>
      ((await cp.getJson(['mutatingwebhookconfiguration', webhookName])).webhooks[0].clientConfig.caBundle ?? '') !==
      '',
    60000,
  );
  await syncVolume(cp, deployment);
  return { objects, deployment, webhookName, stopCainjector };
}

/** cert-manager's cainjector (test/e2e/go/cert-manager/cainjector) against the control plane, until stopped (or the control plane is). */
export function startCainjector(cp: ControlPlane): () => void {
  cp.spawn('cainjector', join(cacheDir(), 'bin', 'cainjector'), ['--kubeconfig', cp.adminKubeconfig]);
  return () => void cp.stopProcess('cainjector');
}

/** Points the webhook at a URL and waits until kube-apiserver calls it there. */
export async function pointWebhookAt(cp: ControlPlane, name: string, url: string): Promise<void> {
  const webhook = await cp.getJson(['mutatingwebhookconfiguration', name]);
  webhook.webhooks[0].clientConfig.url = url;
  await cp.must(['replace', '-f', '-'], JSON.stringify(webhook));
  await new Promise((resolve) => setTimeout(resolve, 3000)); // the apiserver's webhook informer
}
