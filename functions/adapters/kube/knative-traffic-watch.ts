// Watches the Knative Service this replica belongs to (K_SERVICE, K_REVISION: Knative sets
// both) and turns core/knative-traffic.ts's answer into readiness. A replica is not ready until
// the first read (a restarted replica of a superseded revision must not rejoin the webhook
// Service for a moment). Where the Service cannot be read at all (no RBAC for it, no Knative
// CRD) this gives up and holds nothing back: it only ever takes superseded revisions out of the
// webhook Service, never the current one.
import { readKnativeTraffic, revisionStanding, type RevisionStanding } from '../../core/knative-traffic.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { KubeClient } from './kube-client.js';
import { namedObjectReflector, type Reflector } from './reflector.js';

export const KNATIVE_SERVICES_PATH = (namespace: string) =>
  `/apis/serving.knative.dev/v1/namespaces/${encodeURIComponent(namespace)}/services`;

export interface KnativeTrafficOptions {
  kube: KubeClient;
  namespace: string;
  service: string;
  revision: string;
  watchTimeoutSeconds: number;
  logger: Logger;
  metrics: Metrics;
}

export class KnativeTrafficWatch {
  private standing: RevisionStanding = { serves: true, reason: 'not read yet' };
  private known = false;
  private readonly reflector: Reflector;
  private gaveUp = false;

  constructor(private readonly options: KnativeTrafficOptions) {
    const { kube, namespace, service, metrics, logger } = options;
    this.reflector = namedObjectReflector({
      kube,
      collectionPath: KNATIVE_SERVICES_PATH(namespace),
      name: service,
      watchTimeoutSeconds: options.watchTimeoutSeconds,
      // No such Service (being deleted, or renamed under us): nothing to follow, nothing held back.
      onObject: (object) => {
        if (object !== undefined) this.update(object);
        else this.known = true;
      },
      onRestart: (cause, error) => {
        metrics.watchRestarts.inc({ resource: 'knative-services', cause });
        if (!error) return;
        metrics.apiErrors.inc({ operation: 'watch_knative_service', kind: error.kind });
        // Without read access (or without Knative) nothing here can ever be learned: stay ready.
        if (error.kind === 'forbidden' || error.kind === 'not_found') return this.giveUp(error.message);
        logger.warn(
          { cause, error: error.message },
          'Knative Service watch restarting; readiness keeps its last answer',
        );
      },
    });
  }

  private update(object: unknown): void {
    const { revision, service, logger, metrics } = this.options;
    const traffic = readKnativeTraffic(object);
    if (!traffic) return;
    const next = revisionStanding(traffic, revision, service);
    const changed = next.serves !== this.standing.serves;
    this.known = true;
    this.standing = next;
    metrics.revisionServing.set(next.serves ? 1 : 0);
    if (!changed) return;
    if (next.serves) logger.info({ revision }, `answering reviews again: ${next.reason}`);
    else
      logger.warn(
        { revision },
        `not ready from now on, so that the webhook Service sends reviews to the current revision only: ${next.reason}`,
      );
  }

  private giveUp(reason: string): void {
    if (this.gaveUp) return;
    this.gaveUp = true;
    this.known = true;
    const { namespace, service, logger } = this.options;
    logger.warn(
      { error: reason },
      `cannot watch Knative Service ${namespace}/${service}; readiness will not follow its traffic (grant get/list/watch on it, see knative/rbac.yaml)`,
    );
    void this.reflector.stop();
    if (!this.standing.serves) {
      this.standing = { serves: true, reason: 'Knative Service unreadable' };
      this.options.metrics.revisionServing.set(1);
    }
  }

  /** null while this revision should answer reviews, else why not */
  readiness(): string | null {
    if (!this.known) return `Knative Service ${this.options.namespace}/${this.options.service} not read yet`;
    return this.standing.serves ? null : this.standing.reason;
  }

  serves(): boolean {
    return this.standing.serves;
  }

  start(): void {
    this.reflector.start();
  }

  stop(): Promise<void> {
    return this.reflector.stop();
  }

  describe() {
    return {
      service: this.options.service,
      revision: this.options.revision,
      state: this.gaveUp ? 'not readable' : this.standing.reason,
    };
  }
}
