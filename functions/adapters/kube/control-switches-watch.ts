// The nri-control-switches ConfigMap, watched (changes apply within seconds).
// Deleted ConfigMap, missing key or malformed JSON: the environment's values.
// Where RBAC allows a GET of it but no list/watch (the upstream injector's
// ClusterRole, under an operator that deploys nri in its place), it is read
// with a GET every NRI_CONTROL_SWITCHES_POLL_SECONDS instead, as upstream does.
import { readControlSwitches, type ControlSwitchesConfigMap } from '../../core/control-switches.js';
import type { Switches } from '../../core/types.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { KubeApiError, KubeClient } from './kube-client.js';
import { namedObjectReflector, type Reflector } from './reflector.js';

export interface SwitchSource {
  current(): Switches;
  start(): void;
  stop(): Promise<void>;
  describe(): Record<string, unknown>;
}

export class StaticSwitches implements SwitchSource {
  constructor(private readonly switches: Switches) {}
  current(): Switches {
    return this.switches;
  }
  start(): void {}
  async stop(): Promise<void> {}
  describe() {
    return { source: 'environment' };
  }
}

export class ControlSwitchesWatch implements SwitchSource {
  private switches: Switches;
  private readonly reflector: Reflector;
  private state = 'not yet read';
  private polling?: NodeJS.Timeout;
  private pollFailure = '';

  constructor(
    private readonly options: {
      kube: KubeClient;
      namespace: string;
      name: string;
      envSwitches: Switches;
      watchTimeoutSeconds: number;
      pollSeconds: number;
      logger: Logger;
      metrics: Metrics;
    },
  ) {
    this.switches = options.envSwitches;
    const { kube, namespace, name, metrics, logger } = options;
    this.reflector = namedObjectReflector({
      kube,
      collectionPath: `/api/v1/namespaces/${encodeURIComponent(namespace)}/configmaps`,
      name,
      watchTimeoutSeconds: options.watchTimeoutSeconds,
      onObject: (object) => this.update(object as ControlSwitchesConfigMap | undefined),
      onRestart: (cause, error) => {
        metrics.watchRestarts.inc({ resource: 'configmaps', cause });
        if (error?.kind === 'forbidden') return this.pollInstead(error.message);
        if (error) {
          metrics.apiErrors.inc({ operation: 'watch_control_switches', kind: error.kind });
          logger.warn(
            { cause, error: error.message },
            'control-switch watch restarting; current switches stay in force',
          );
        }
      },
    });
  }

  private update(configMap: ControlSwitchesConfigMap | undefined): void {
    const { envSwitches, logger, metrics, namespace, name } = this.options;
    const previous = this.state;
    const reading = readControlSwitches(envSwitches, configMap, `ConfigMap ${namespace}/${name}`);
    this.state = reading.state;
    this.switches = reading.switches;
    metrics.controlSwitchesApplied.set(reading.applied ? 1 : 0);
    if (this.state === previous) return; // a re-list that changed nothing is not news
    const summary = {
      hugePageDownApi: this.switches.hugePageDownApi,
      honorExistingResources: this.switches.honorExistingResources,
      userDefinedInjections: [...this.switches.userDefinedInjections.keys()],
    };
    if (reading.refused) logger.warn({ switches: summary }, this.state);
    else logger.info({ switches: summary }, this.state);
  }

  /** The watch is refused by RBAC: stop it, and read the ConfigMap with a GET from now on. */
  private pollInstead(reason: string): void {
    if (this.polling) return;
    const { kube, namespace, name, pollSeconds, logger, metrics } = this.options;
    logger.warn(
      { error: reason },
      `cannot list/watch ConfigMap ${namespace}/${name}; reading it with a GET every ${pollSeconds} s instead`,
    );
    void this.reflector.stop();
    const poll = () =>
      kube.getConfigMap(namespace, name).then(
        (configMap) => {
          this.pollFailure = '';
          this.update(configMap as ControlSwitchesConfigMap | undefined);
        },
        (error: KubeApiError) => {
          metrics.apiErrors.inc({ operation: 'get_control_switches', kind: error.kind });
          if (error.message !== this.pollFailure)
            logger.warn(
              { error: error.message },
              'cannot read the control-switch ConfigMap; current switches stay in force',
            );
          this.pollFailure = error.message;
        },
      );
    void poll();
    this.polling = setInterval(poll, pollSeconds * 1000);
    this.polling.unref();
  }

  current(): Switches {
    return this.switches;
  }

  start(): void {
    this.reflector.start();
  }

  stop(): Promise<void> {
    clearInterval(this.polling);
    return this.reflector.stop();
  }

  describe() {
    return { source: this.polling ? 'configmap (GET)' : 'configmap', state: this.state };
  }
}
