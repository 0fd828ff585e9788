// The injectors check of `nri check`: other mutating webhooks that add network resources to
// pods, such as the upstream network-resources-injector the SR-IOV Network Operator or
// KubeVirt's HCO deploy. Side by side with nri they count a resource once (both set, neither
// adds) as long as both are reinvoked; an older upstream adds a second podnetinfo volume, and
// each one's outage or settings then decide a pod's devices. Pure.
import { isObject } from '../json.js';
import { result, type CheckResult } from './report.js';

const INJECTOR_NAME = /resources?-injector|network-resources/i;

/** Whether a webhook's rules cover the CREATE of a Pod. */
function coversPodCreate(webhook: Record<string, unknown>): boolean {
  const rules = Array.isArray(webhook.rules) ? webhook.rules.filter(isObject) : [];
  const has = (list: unknown, value: string) => Array.isArray(list) && (list.includes(value) || list.includes('*'));
  return rules.some(
    (rule) =>
      has(rule.operations, 'CREATE') &&
      has(rule.apiGroups, '') &&
      (has(rule.resources, 'pods') || (Array.isArray(rule.resources) && rule.resources.includes('*/*'))),
  );
}

/** What a webhook calls, in a word or two. */
function callee(webhook: Record<string, unknown>): string {
  const clientConfig = isObject(webhook.clientConfig) ? webhook.clientConfig : {};
  if (isObject(clientConfig.service)) return `service ${clientConfig.service.namespace}/${clientConfig.service.name}`;
  return typeof clientConfig.url === 'string' ? clientConfig.url : 'nothing';
}

export function checkOtherInjectors(
  configurations: readonly unknown[],
  ours: { configurationName: string; reinvocationPolicy?: string },
): CheckResult {
  const found: string[] = [];
  let neverReinvoked = false;
  for (const configuration of configurations) {
    if (!isObject(configuration) || !isObject(configuration.metadata)) continue;
    const configurationName = String(configuration.metadata.name);
    if (configurationName === ours.configurationName) continue;
    for (const webhook of Array.isArray(configuration.webhooks) ? configuration.webhooks.filter(isObject) : []) {
      const name = String(webhook.name);
      const target = callee(webhook);
      if (!coversPodCreate(webhook) || !INJECTOR_NAME.test(`${configurationName} ${name} ${target}`)) continue;
      const reinvocation = typeof webhook.reinvocationPolicy === 'string' ? webhook.reinvocationPolicy : 'Never';
      if (reinvocation !== 'IfNeeded') neverReinvoked = true;
      found.push(
        `MutatingWebhookConfiguration ${configurationName}, webhook ${name} (calls ${target}; failurePolicy ${
          typeof webhook.failurePolicy === 'string' ? webhook.failurePolicy : 'Fail'
        }, reinvocationPolicy ${reinvocation}) ${
          configurationName < ours.configurationName ? 'runs before' : 'runs after'
        } nri`,
      );
    }
  }
  if (found.length === 0)
    return result('injectors', 'ok', 'no other network-resources injector is registered for pods');
  if ((ours.reinvocationPolicy ?? 'Never') !== 'IfNeeded') neverReinvoked = true;
  return result(
    'injectors',
    'warn',
    `${found.length} other webhook${found.length > 1 ? 's' : ''} also inject${found.length > 1 ? '' : 's'} network resources into the same pods: each one's NADs, settings and outages now decide a pod's devices${
      neverReinvoked
        ? ', and one is not reinvoked (reinvocationPolicy Never), so it may not see what the other added'
        : ''
    }`,
    found,
    'keep one injector (README, "Migrate": disable the other, e.g. the SR-IOV Network Operator’s with enableInjector: false); running both, set reinvocationPolicy: IfNeeded on both and keep the upstream injector at a release that adds podnetinfo once',
  );
}
