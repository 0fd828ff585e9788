// Shapes the pure core works on. Only the fields we read are typed; everything
// else in a Pod is passed through untouched by the JSONPatch we produce.

export type StringMap = Record<string, string>;

export interface ResourceList {
  [resource: string]: string;
}

export interface Container {
  name: string;
  resources?: { requests?: ResourceList; limits?: ResourceList; [k: string]: unknown };
  volumeMounts?: Array<{ name: string; mountPath: string; [k: string]: unknown }>;
  env?: Array<{ name: string; [k: string]: unknown }>;
  [k: string]: unknown;
}

export interface Pod {
  metadata?: {
    name?: string;
    generateName?: string;
    namespace?: string;
    labels?: StringMap;
    annotations?: StringMap;
    [k: string]: unknown;
  };
  spec: {
    containers: Container[];
    volumes?: Array<{ name: string; [k: string]: unknown }>;
    nodeSelector?: StringMap;
    [k: string]: unknown;
  };
  [k: string]: unknown;
}

/** Which pod annotation a network reference came from. */
export type SelectionSource = 'networks' | 'default-network';

/** One attachment the pod asks for, after parsing and namespace resolution. */
export interface NetworkRef {
  namespace: string;
  name: string;
  interface?: string;
  source: SelectionSource;
}

/** Which NetworkAttachmentDefinition: the key of every NAD lookup. */
export interface NadRef {
  namespace: string;
  name: string;
}

/** The parts of a NetworkAttachmentDefinition the injector uses (see nad.ts). */
export interface Nad extends NadRef {
  /** only the annotations nri reads (nadAnnotationsRead) */
  annotations: StringMap;
}

/** What a NAD source answered for one NadRef. */
export type NadLookupOutcome =
  | { status: 'found'; nad: Nad }
  | { status: 'missing' }
  | { status: 'error'; reason: string };

/** Behaviour the ConfigMap may switch at run time (falls back to env). */
export interface Switches {
  honorExistingResources: boolean;
  hugePageDownApi: boolean;
  /** label key -> annotations to add when the pod's label is "true" */
  userDefinedInjections: ReadonlyMap<string, StringMap>;
}

/** Static settings of the core, from the environment. */
export interface CoreSettings {
  resourceNameKeys: readonly string[];
  excludedNamespaces: ReadonlySet<string>;
  multusNamespace: string;
}

export const NETWORKS_ANNOTATION = 'k8s.v1.cni.cncf.io/networks';
export const DEFAULT_NETWORK_ANNOTATION = 'v1.multus-cni.io/default-network';
export const NODE_SELECTOR_ANNOTATION = 'k8s.v1.cni.cncf.io/nodeSelector';
/** Ours (not upstream's): names the container that receives network resources. */
export const TARGET_CONTAINER_ANNOTATION = 'nri.k8s.cni.cncf.io/resources-container';
/** On a pod: "false" leaves it untouched. On a NAD: "false" makes it contribute no resource (its devices come from DRA claims). */
export const INJECT_ANNOTATION = 'nri.k8s.cni.cncf.io/inject';
export const PODNETINFO_VOLUME = 'podnetinfo';
export const PODNETINFO_MOUNT_PATH = '/etc/podnetinfo';
