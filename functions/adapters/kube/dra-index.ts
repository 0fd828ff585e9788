// DRA for the review path: every DeviceClass that maps an extended resource (list and watch,
// a handful of objects), and, for a pod that claims devices itself, its ResourceClaims and
// ResourceClaimTemplates read on demand. A pod without resourceClaims, or a cluster where no
// DeviceClass maps a resource, costs nothing. Never a reason to be unready: without the DRA API
// (Kubernetes before 1.34) or without RBAC for it, reviews go on as before, and that is logged once.
import {
  claimedResources,
  deviceClassResource,
  NO_CLAIMS,
  podClaimRefs,
  requestedDeviceClasses,
  type ClaimsFound,
  type PodClaimRef,
} from '../../core/dra.js';
import { isDnsLabel } from '../../core/names.js';
import type { Pod } from '../../core/types.js';
import type { ClaimSource } from '../claim-source.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { KubeApiError, KubeClient } from './kube-client.js';
import { Reflector } from './reflector.js';

export const DEVICE_CLASSES_PATH = '/apis/resource.k8s.io/v1/deviceclasses';
const claimPath = (namespace: string, ref: PodClaimRef) =>
  `/apis/resource.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/${
    ref.kind === 'ResourceClaim' ? 'resourceclaims' : 'resourceclaimtemplates'
  }/${encodeURIComponent(ref.object)}`;

export interface DraIndexOptions {
  kube: KubeClient;
  watchTimeoutSeconds: number;
  logger: Logger;
  metrics: Metrics;
}

export class DraIndex implements ClaimSource {
  /** DeviceClass name -> the extended resource it maps; only classes that map one */
  private resourceOfClass = new Map<string, string>();
  private readonly reflector: Reflector;
  private state: 'listing' | 'synced' | 'unavailable' = 'listing';

  constructor(private readonly options: DraIndexOptions) {
    const { kube, metrics, logger } = options;
    this.reflector = new Reflector({
      kube,
      list: (onPage, signal) => kube.listAll(DEVICE_CLASSES_PATH, onPage, signal),
      watchPath: DEVICE_CLASSES_PATH,
      watchTimeoutSeconds: options.watchTimeoutSeconds,
      beginReplace: () => {
        const next = new Map<string, string>();
        return {
          add: (items) => {
            for (const item of items) {
              const mapped = deviceClassResource(item);
              if (mapped) next.set(mapped.name, mapped.resource);
            }
          },
          commit: () => {
            this.resourceOfClass = next;
            this.state = 'synced';
          },
        };
      },
      apply: (type, object) => {
        const name = (object as { metadata?: { name?: unknown } } | null)?.metadata?.name;
        if (typeof name !== 'string') return;
        const mapped = type === 'DELETED' ? undefined : deviceClassResource(object);
        if (mapped) this.resourceOfClass.set(name, mapped.resource);
        else this.resourceOfClass.delete(name);
      },
      onRestart: (cause, error) => {
        metrics.watchRestarts.inc({ resource: 'deviceclasses', cause });
        if (!error) return;
        metrics.apiErrors.inc({ operation: 'watch_deviceclasses', kind: error.kind });
        if (error.kind === 'forbidden' || error.kind === 'not_found') return this.giveUp(error.message);
        logger.warn({ cause, error: error.message }, 'DeviceClass watch restarting');
      },
    });
  }

  private giveUp(reason: string): void {
    if (this.state === 'unavailable') return;
    this.state = 'unavailable';
    this.resourceOfClass = new Map();
    this.options.logger.info(
      { error: reason },
      'DeviceClasses cannot be read (no DRA API, or no RBAC for it: see knative/rbac.yaml): resources are added without looking at the pod’s ResourceClaims',
    );
    void this.reflector.stop();
  }

  fromMemory(pod: Pod): ClaimsFound | undefined {
    if (this.resourceOfClass.size === 0) return NO_CLAIMS;
    return podClaimRefs(pod).length === 0 ? NO_CLAIMS : undefined;
  }

  async read(pod: Pod, namespace: string): Promise<ClaimsFound> {
    return readPodClaims(this.options.kube, this.resourceOfClass, pod, namespace, (kind) =>
      this.options.metrics.apiErrors.inc({ operation: 'get_resource_claim', kind }),
    );
  }

  start(): void {
    this.reflector.start();
  }

  stop(): Promise<void> {
    return this.reflector.stop();
  }

  describe() {
    return { dra: this.state, deviceClassesMappingResources: this.resourceOfClass.size };
  }
}

/**
 * What a pod's own ResourceClaims and claim templates provide, given which DeviceClass maps which
 * resource: each is read from the API; one that cannot be read provides nothing, with a warning.
 */
export async function readPodClaims(
  kube: KubeClient,
  resourceOfClass: ReadonlyMap<string, string>,
  pod: Pod,
  namespace: string,
  onError: (kind: string) => void = () => undefined,
): Promise<ClaimsFound> {
  const refs = podClaimRefs(pod);
  if (resourceOfClass.size === 0 || refs.length === 0 || !isDnsLabel(namespace)) return NO_CLAIMS;
  const warnings: string[] = [];
  const claims = await Promise.all(
    refs.map(async (ref) => {
      try {
        const object = await kube.getObject(claimPath(namespace, ref));
        // A claim not there yet (made by a controller later) provides nothing we can see.
        return { ref, classes: object === undefined ? [] : requestedDeviceClasses(object) };
      } catch (error) {
        onError((error as KubeApiError).kind ?? 'error');
        warnings.push(
          `${ref.kind} ${namespace}/${ref.object} could not be read (${(error as Error).message}): resources added as if the pod claimed nothing`,
        );
        return { ref, classes: [] };
      }
    }),
  );
  return { provided: claimedResources(claims, resourceOfClass), warnings };
}
