// The pod a document makes: a Pod itself, the pod of an AdmissionReview, or the
// pod template of a workload (Deployment, StatefulSet, DaemonSet, ReplicaSet,
// Job, CronJob), and how a pod nri patched goes back into that document.
// Pure: no I/O. `nri explain` reads documents through it.
import { isObject } from './json.js';
import { fail, ok, quote, type Result } from './result.js';

type Json = Record<string, unknown>;

export interface WorkloadPod {
  /** "Deployment default/app", "Pod default/p" */
  source: string;
  namespace: string;
  /** the pod as kube-apiserver would send it for review (unvalidated) */
  pod: unknown;
  /** the document with `patched` (the pod after nri's patch) put back where the pod came from */
  withPod(patched: Json): Json;
}

/** Where each kind keeps its pod template. */
const TEMPLATE_PATH: Record<string, string[]> = {
  Deployment: ['spec', 'template'],
  StatefulSet: ['spec', 'template'],
  DaemonSet: ['spec', 'template'],
  ReplicaSet: ['spec', 'template'],
  Job: ['spec', 'template'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template'],
};

export function workloadPod(document: unknown): Result<WorkloadPod> {
  if (!isObject(document))
    return fail('expected a Kubernetes object (a Pod, a workload with a pod template, or an AdmissionReview)');
  const kind = String(document.kind ?? '');
  const metadata = isObject(document.metadata) ? document.metadata : {};
  const namespace =
    typeof metadata.namespace === 'string' && metadata.namespace !== '' ? metadata.namespace : 'default';
  const name =
    typeof metadata.name === 'string'
      ? metadata.name
      : typeof metadata.generateName === 'string'
        ? `${metadata.generateName}*`
        : '(unnamed)';
  const source = `${kind} ${namespace}/${name}`;
  if (kind === 'AdmissionReview') {
    const request = isObject(document.request) ? document.request : {};
    const inner = workloadPod(request.object);
    if (!inner.ok) return fail(`the AdmissionReview's request.object: ${inner.error}`);
    const ns =
      typeof request.namespace === 'string' && request.namespace !== '' ? request.namespace : inner.value.namespace;
    return ok({
      ...inner.value,
      namespace: ns,
      withPod: (patched) => ({ ...document, request: { ...request, object: patched } }),
    });
  }
  if (kind === 'Pod') return ok({ source, namespace, pod: document, withPod: (patched) => patched });
  const path = TEMPLATE_PATH[kind];
  if (!path)
    return fail(
      `a ${quote(kind || '(no kind)')} has no pod: expected a Pod, ${Object.keys(TEMPLATE_PATH).join(', ')}, or an AdmissionReview`,
    );
  let template: unknown = document;
  for (const step of path) template = isObject(template) ? template[step] : undefined;
  if (!isObject(template)) return fail(`the ${kind} has no ${path.join('.')}`);
  const templateMeta = isObject(template.metadata) ? template.metadata : {};
  const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { ...templateMeta, namespace }, spec: template.spec };
  const withPod = (patched: Json): Json => {
    const copy = structuredClone(document);
    let at: Json = copy;
    for (const step of path.slice(0, -1)) at = at[step] as Json;
    const { namespace: _namespace, ...podMeta } = (patched.metadata ?? {}) as Json;
    const last = path.at(-1)!;
    at[last] = { ...(at[last] as Json), metadata: podMeta, spec: patched.spec };
    return copy;
  };
  return ok({ source, namespace, pod, withPod });
}
