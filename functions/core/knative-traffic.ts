// Whether this replica's Knative revision should still answer reviews. The webhook Service
// selects every pod of the Knative Service, and Knative keeps superseded revisions running
// (the HPA class never scales one below 1) until its garbage collector removes them, hours
// later. Without this rule reviews would be spread over old and new code after an upgrade.
//
// A revision answers when Knative routes traffic to it (status.traffic, percent > 0), or when
// it is the newest revision and either not yet Ready (it must become Ready to be routed at all)
// or the Service's traffic follows the latest revision (the moment between Knative marking it
// Ready and the Route pointing at it). Everything else is superseded: its replicas report not
// ready, so the webhook Service stops sending them reviews, while they keep running for
// Knative to scale down or roll back to.

export interface KnativeTraffic {
  latestCreated?: string;
  latestReady?: string;
  /** revisions the Route sends a share of traffic to */
  routed: string[];
  /** whether spec.traffic gives the latest ready revision a share (the default when it names none) */
  followsLatest: boolean;
}

export interface RevisionStanding {
  serves: boolean;
  /** for the log and for /readyz */
  reason: string;
}

const strings = (value: unknown): value is string => typeof value === 'string' && value !== '';
const percentOf = (target: { percent?: unknown }) => (typeof target.percent === 'number' ? target.percent : 0);

/** The parts of a serving.knative.dev/v1 Service this rule reads; undefined for anything else. */
export function readKnativeTraffic(object: unknown): KnativeTraffic | undefined {
  const service = object as {
    kind?: unknown;
    spec?: { traffic?: unknown };
    status?: { latestCreatedRevisionName?: unknown; latestReadyRevisionName?: unknown; traffic?: unknown };
  } | null;
  if (!service || typeof service !== 'object' || (service.kind !== undefined && service.kind !== 'Service'))
    return undefined;
  const status = service.status ?? {};
  const statusTraffic = Array.isArray(status.traffic)
    ? (status.traffic as Array<{ revisionName?: unknown; percent?: unknown }>)
    : [];
  const specTraffic = Array.isArray(service.spec?.traffic)
    ? (service.spec.traffic as Array<{ latestRevision?: unknown; percent?: unknown }>)
    : [];
  const traffic: KnativeTraffic = {
    routed: statusTraffic
      .filter((target) => strings(target?.revisionName) && percentOf(target) > 0)
      .map((target) => target.revisionName as string),
    followsLatest:
      specTraffic.length === 0 ||
      specTraffic.some((target) => target?.latestRevision === true && percentOf(target) > 0),
  };
  if (strings(status.latestCreatedRevisionName)) traffic.latestCreated = status.latestCreatedRevisionName;
  if (strings(status.latestReadyRevisionName)) traffic.latestReady = status.latestReadyRevisionName;
  return traffic;
}

export function revisionStanding(traffic: KnativeTraffic, revision: string, service: string): RevisionStanding {
  const routes =
    traffic.routed.length > 0
      ? `routes traffic to ${[...new Set(traffic.routed)].join(', ')}`
      : 'routes no traffic yet';
  if (traffic.routed.includes(revision)) return { serves: true, reason: `Knative Service ${service} ${routes}` };
  if (revision === traffic.latestCreated) {
    if (revision !== traffic.latestReady)
      return {
        serves: true,
        reason: `revision ${revision} is the newest of Knative Service ${service} and not yet Ready`,
      };
    if (traffic.followsLatest)
      return {
        serves: true,
        reason: `revision ${revision} is the latest Ready revision and Knative Service ${service} follows the latest`,
      };
  }
  return { serves: false, reason: `revision ${revision} is superseded: Knative Service ${service} ${routes}` };
}
