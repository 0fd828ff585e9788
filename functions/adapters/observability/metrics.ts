// Prometheus metrics. Every label value comes from a fixed set in code, never
// from a request, so the number of series stays bounded.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type ReviewOutcome = 'patched' | 'allowed_unchanged' | 'denied' | 'bad_request' | 'error';

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    reviews: new Counter({
      name: 'nri_admission_reviews_total',
      help: 'AdmissionReviews answered, by outcome and a bounded reason.',
      labelNames: ['outcome', 'reason'] as const,
      registers: [registry],
    }),
    reviewDuration: new Histogram({
      name: 'nri_admission_review_duration_seconds',
      help: 'Time from a complete request body to the answer, by transport.',
      labelNames: ['transport'] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    nadCacheObjects: new Gauge({
      name: 'nri_nad_cache_objects',
      help: 'NetworkAttachmentDefinitions held in the watch cache, or loaded from NRI_NADS files.',
      registers: [registry],
    }),
    nadCacheSynced: new Gauge({
      name: 'nri_nad_cache_synced',
      help: '1 once the NAD watch cache has listed (always 1 with NADs from files), else 0.',
      registers: [registry],
    }),
    nadCacheHits: new Counter({
      name: 'nri_nad_cache_hits_total',
      help: 'NAD lookups answered from the watch cache.',
      registers: [registry],
    }),
    nadCacheMisses: new Counter({
      name: 'nri_nad_cache_misses_total',
      help: 'NAD lookups that had to ask the API server.',
      registers: [registry],
    }),
    nadApiReads: new Counter({
      name: 'nri_nad_api_reads_total',
      help: 'Single NAD GET requests sent to the API server.',
      registers: [registry],
    }),
    watchRestarts: new Counter({
      name: 'nri_watch_restarts_total',
      help: 'List/watch restarts after an error, a closed stream or 410 Gone, by watched resource.',
      labelNames: ['resource', 'cause'] as const,
      registers: [registry],
    }),
    apiErrors: new Counter({
      name: 'nri_kubernetes_api_errors_total',
      help: 'Failed Kubernetes API calls, by operation and kind of failure.',
      labelNames: ['operation', 'kind'] as const,
      registers: [registry],
    }),
    controlSwitchesApplied: new Gauge({
      name: 'nri_control_switches_configmap_applied',
      help: '1 while a valid control-switch ConfigMap overrides the environment, else 0.',
      registers: [registry],
    }),
    certificateExpiry: new Gauge({
      name: 'nri_serving_certificate_expiry_timestamp_seconds',
      help: 'notAfter of the serving certificate in use, in seconds since the epoch.',
      registers: [registry],
    }),
    revisionServing: new Gauge({
      name: 'nri_knative_revision_serving',
      help: "0 while this replica's Knative revision is superseded (Knative routes traffic elsewhere) and so kept out of the webhook Service, else 1 (always 1 off Knative).",
      registers: [registry],
    }),
    inFlight: new Gauge({
      name: 'nri_admission_reviews_in_flight',
      help: 'Reviews waiting on a NAD read from the API server right now.',
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
