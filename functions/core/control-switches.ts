// The nri-control-switches ConfigMap's config.json, parsed and checked. A known
// key with a bad value rejects the document whole, so that the environment's
// values stay in force; keys nri does not know are ignored (and named), as
// upstream ignores them, so a document written for upstream keeps working.
import switchesSchema from '../../schemas/control-switches.json' with { type: 'json' };
import { describeFirstError, validateSwitchesConfig } from '../validation/validators.js';
import { isQualifiedName } from './names.js';
import { fail, ok, quote, type Result } from './result.js';
import type { StringMap, Switches } from './types.js';

export const CONTROL_SWITCHES_KEY = 'config.json';

/** What the document says; a feature it does not mention falls back to the environment. */
export interface SwitchOverrides {
  hugePageDownApi?: boolean;
  honorExistingResources?: boolean;
  userDefinedInjections: Map<string, StringMap>;
  /** keys of the document nri does not know and ignored, e.g. "features.enableCustomizedInjection" */
  ignoredKeys: string[];
}

/** What nri knows is what the schema checks: a key added there is never taken for an ignored one. */
const KNOWN_KEYS = new Set(Object.keys(switchesSchema.properties));
const KNOWN_FEATURES = new Set(Object.keys(switchesSchema.properties.features.properties));

interface SwitchesDocument {
  features?: { enableHugePageDownApi?: boolean; enableHonorExistingResources?: boolean };
  'user-defined-injections'?: Record<string, { value: StringMap }>;
}

export function parseControlSwitches(text: string): Result<SwitchOverrides> {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    return fail(`${CONTROL_SWITCHES_KEY} is not valid JSON: ${(error as Error).message}`);
  }
  if (!validateSwitchesConfig(document)) return fail(describeFirstError(validateSwitchesConfig, CONTROL_SWITCHES_KEY));
  const { features = {}, 'user-defined-injections': injections = {} } = document as SwitchesDocument;
  const userDefinedInjections = new Map<string, StringMap>();
  for (const [label, injection] of Object.entries(injections)) {
    if (!isQualifiedName(label))
      return fail(`${CONTROL_SWITCHES_KEY} user-defined injection label ${quote(label)} is not a valid label key`);
    const bad = Object.keys(injection.value).find((key) => !isQualifiedName(key));
    if (bad !== undefined)
      return fail(
        `${CONTROL_SWITCHES_KEY} user-defined injection ${quote(label)} adds annotation ${quote(bad)}, which is not a valid annotation key`,
      );
    userDefinedInjections.set(label, injection.value);
  }
  const ignoredKeys = [
    ...Object.keys(document as object).filter((key) => !KNOWN_KEYS.has(key)),
    ...Object.keys(features)
      .filter((key) => !KNOWN_FEATURES.has(key))
      .map((key) => `features.${key}`),
  ];
  const overrides: SwitchOverrides = { userDefinedInjections, ignoredKeys };
  if (features.enableHugePageDownApi !== undefined) overrides.hugePageDownApi = features.enableHugePageDownApi;
  if (features.enableHonorExistingResources !== undefined)
    overrides.honorExistingResources = features.enableHonorExistingResources;
  return ok(overrides);
}

/** Environment defaults with the ConfigMap's word on top, while it has one. */
export function effectiveSwitches(defaults: Switches, overrides: SwitchOverrides | undefined): Switches {
  if (!overrides) return defaults;
  return {
    hugePageDownApi: overrides.hugePageDownApi ?? defaults.hugePageDownApi,
    honorExistingResources: overrides.honorExistingResources ?? defaults.honorExistingResources,
    userDefinedInjections: overrides.userDefinedInjections,
  };
}

/** The ConfigMap as read from the API: only what nri looks at. */
export interface ControlSwitchesConfigMap {
  metadata?: { resourceVersion?: string };
  data?: Record<string, unknown>;
}

export interface SwitchesReading {
  switches: Switches;
  /** in words, for the log and `nri explain`: whether the ConfigMap applied, and if not why */
  state: string;
  /** the ConfigMap's document is in force */
  applied: boolean;
  /** it has a document that was refused (malformed): worth a warning */
  refused: boolean;
}

/**
 * What the control-switch ConfigMap (undefined: there is none) makes of the environment's
 * switches. One reading for the running server's watch and for `nri explain`.
 */
export function readControlSwitches(
  defaults: Switches,
  configMap: ControlSwitchesConfigMap | undefined,
  where: string,
): SwitchesReading {
  const text = configMap?.data?.[CONTROL_SWITCHES_KEY];
  if (!configMap)
    return { switches: defaults, state: `${where} absent: environment values`, applied: false, refused: false };
  if (typeof text !== 'string')
    return {
      switches: defaults,
      state: `${where} has no ${CONTROL_SWITCHES_KEY}: environment values`,
      applied: false,
      refused: false,
    };
  const parsed = parseControlSwitches(text);
  if (!parsed.ok)
    return {
      switches: defaults,
      state: `${where} ignored, environment values in force: ${parsed.error}`,
      applied: false,
      refused: true,
    };
  const ignored =
    parsed.value.ignoredKeys.length > 0
      ? `; ignored keys nri does not know: ${parsed.value.ignoredKeys.join(', ')}`
      : '';
  return {
    switches: effectiveSwitches(defaults, parsed.value),
    state: `${where} applied (resourceVersion ${configMap.metadata?.resourceVersion ?? '?'})${ignored}`,
    applied: true,
    refused: false,
  };
}
