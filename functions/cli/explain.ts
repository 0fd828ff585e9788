// `nri explain -f FILE|- [--nads FILE|DIR] [-o summary|yaml|json|patch]`: what
// nri would do to a Pod, a workload's pod template or an AdmissionReview's pod,
// through the same core as a review, with NADs from files or from the cluster
// KUBECONFIG names. Exit 0 when allowed or patched, 1 when denied, 2 on bad input,
// 3 when it could not check (a NAD or the cluster could not be read).
import { readFileSync } from 'node:fs';
import jsonPatch from 'fast-json-patch';
import { parseAllDocuments, stringify } from 'yaml';
import { loadClusterConfig, ownNamespace } from '../app.js';
import { BadRequest } from '../adapters/http/bad-request.js';
import { decodeReview } from '../adapters/http/decode-review.js';
import { createKubeClient } from '../adapters/kube/kube-client.js';
import { fetchNad } from '../adapters/kube/nad-cache.js';
import { loadOfflineNads, OfflineNadSource } from '../adapters/offline-nads.js';
import { parseSettings, type Settings } from '../config/settings.js';
import { readControlSwitches, type ControlSwitchesConfigMap } from '../core/control-switches.js';
import { nadAnnotationsRead, nadKey } from '../core/nad.js';
import { decide, select } from '../core/review.js';
import type { NadLookupOutcome, NadRef, Pod, Switches } from '../core/types.js';
import { workloadPod } from '../core/workload.js';
import { eachFlag, HelpAsked, Usage } from './args.js';
import { explainSummary } from './summary.js';

export const EXPLAIN_USAGE = `Usage: nri explain -f FILE|- [--nads FILE|DIR] [-o summary|yaml|json|patch]

What nri would do to a Pod, to the pod template of a Deployment, StatefulSet,
DaemonSet, ReplicaSet, Job or CronJob, or to the pod of an AdmissionReview
(YAML or JSON; - reads standard input).

  -f, --filename FILE|-   the object to explain
  --nads FILE|DIR         NetworkAttachmentDefinitions from files; without it,
                          from the cluster KUBECONFIG names
  -o, --output FORMAT     summary (default): what nri would add, and why;
                          yaml, json: the object as it would be stored;
                          patch: the JSONPatch nri would answer
  -h, --help              this help
Settings come from the same environment variables as nri's (NRI_RESOURCE_NAME_KEYS, ...).
Exit status: 0 allowed or patched, 1 denied, 2 bad input, 3 could not check (a NAD
could not be read from the cluster: nri itself would refuse the pod until it can).
`;

/** Not a verdict on the pod: what it names could not be read. */
class CouldNotCheck extends Error {}

interface ExplainArgs {
  file: string;
  nads?: string;
  output: 'summary' | 'yaml' | 'json' | 'patch';
}

function parseArgs(argv: readonly string[]): ExplainArgs {
  const args: Partial<ExplainArgs> = { output: 'summary' };
  eachFlag(argv, (flag, value) => {
    if (flag === '-f' || flag === '--filename') args.file = value();
    else if (flag === '--nads') args.nads = value();
    else if (flag === '-o' || flag === '--output') {
      const output = value();
      if (!['summary', 'yaml', 'json', 'patch'].includes(output))
        throw new Usage(`-o ${output}: expected summary, yaml, json or patch`);
      args.output = output as ExplainArgs['output'];
    } else throw new Usage(`unknown argument ${flag}`);
  });
  if (!args.file) throw new Usage('-f FILE|- is required');
  return args as ExplainArgs;
}

function readDocument(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (error) {
    throw new Usage(`cannot read ${file}: ${(error as Error).message}`);
  }
  const documents = parseAllDocuments(text).filter((document) => document.contents !== null);
  const broken = documents.find((document) => document.errors.length > 0);
  if (broken) throw new Usage(`${file} is neither YAML nor JSON: ${broken.errors[0]!.message.split('\n')[0]}`);
  if (documents.length !== 1) throw new Usage(`${file} holds ${documents.length} objects; explain one at a time`);
  return documents[0]!.toJS();
}

/** Where explain reads from: each NAD the pod names, and the switches in force. */
interface Sources {
  resolve(refs: NadRef[]): Promise<Map<string, NadLookupOutcome>>;
  switches: Switches;
  /** where the switches came from, for the summary; undefined for the environment's */
  switchesState?: string;
}

/**
 * NADs from files with the environment's switches, or NADs and the control-switch ConfigMap
 * from the cluster, read once through the same reading the server's watch applies.
 */
async function sources(
  nadsPath: string | undefined,
  settings: Settings,
  err: (text: string) => void,
): Promise<Sources> {
  const annotationsRead = nadAnnotationsRead(settings.core);
  if (nadsPath) {
    let source: OfflineNadSource;
    try {
      source = new OfflineNadSource(await loadOfflineNads(nadsPath, annotationsRead), nadsPath);
    } catch (error) {
      throw new Usage((error as Error).message.replace(/^NRI_NADS/, '--nads'));
    }
    return { resolve: async (refs) => source.fromMemory(refs), switches: settings.envSwitches };
  }
  const cluster = await loadClusterConfig(process.env).catch((error: Error) => {
    throw new Usage(error.message);
  });
  if (!cluster) throw new Usage('name the NADs: --nads FILE|DIR, or a cluster with KUBECONFIG');
  const kube = createKubeClient(cluster.config, settings.apiTimeoutMs);
  const namespace = ownNamespace(settings, process.env);
  const where = `ConfigMap ${namespace}/${settings.controlSwitchesConfigMap}`;
  let reading: { switches: Switches; state: string };
  try {
    reading = readControlSwitches(
      settings.envSwitches,
      (await kube.getConfigMap(namespace, settings.controlSwitchesConfigMap)) as ControlSwitchesConfigMap | undefined,
      where,
    );
  } catch (error) {
    reading = {
      switches: settings.envSwitches,
      state: `${where} could not be read (${(error as Error).message}): environment values`,
    };
    err(`nri explain: warning: ${reading.state}\n`);
  }
  return {
    async resolve(refs) {
      const out = new Map<string, NadLookupOutcome>();
      for (const { namespace: ns, name } of refs)
        out.set(nadKey(ns, name), await fetchNad(kube, ns, name, annotationsRead));
      return out;
    },
    switches: reading.switches,
    switchesState: reading.state,
  };
}

/** Runs `nri explain`; returns the exit status. */
export async function explain(
  argv: readonly string[],
  out: (text: string) => void,
  err: (text: string) => void,
): Promise<number> {
  try {
    const args = parseArgs(argv);
    const parsed = parseSettings(process.env);
    if (!parsed.ok) throw new Usage(parsed.error);
    const settings = parsed.value;
    const found = workloadPod(readDocument(args.file));
    if (!found.ok) throw new Usage(found.error);
    const { source, namespace, pod, withPod } = found.value;
    let decoded: ReturnType<typeof decodeReview>;
    try {
      decoded = decodeReview({
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: {
          uid: 'nri-explain',
          kind: { group: '', version: 'v1', kind: 'Pod' },
          namespace,
          operation: 'CREATE',
          object: pod,
        },
      });
    } catch (error) {
      if (!(error instanceof BadRequest)) throw error;
      throw new Usage(`${source}: ${error.message.replace('AdmissionReview field "request.object.', 'field "')}`);
    }
    const from = await sources(args.nads, settings, err);
    const context = { settings: settings.core, switches: from.switches };
    const selected = select(decoded, context);
    let verdict: ReturnType<typeof decide>;
    if ('verdict' in selected) verdict = selected.verdict;
    else {
      const outcomes = await from.resolve(selected.pending.refs);
      const unread = [...outcomes].find(([, outcome]) => outcome.status === 'error');
      if (unread)
        throw new CouldNotCheck(
          `NetworkAttachmentDefinition ${unread[0]} could not be read: ${(unread[1] as { reason: string }).reason}`,
        );
      verdict = decide(selected.pending, outcomes, context);
    }
    const { decision } = verdict;
    const before = decoded.pod as Pod;
    const ops = decision.type === 'patched' ? decision.ops : [];
    const after = jsonPatch.applyPatch(structuredClone(before), structuredClone(ops), true, false).newDocument as Pod;
    if (args.output === 'summary')
      out(
        explainSummary(
          `${source}${source.startsWith('Pod ') ? '' : ' (its pod)'}`,
          verdict,
          before,
          after,
          from.switchesState,
        ),
      );
    else if (decision.type === 'denied') err(`denied: ${decision.message}\n`);
    else if (args.output === 'patch') out(`${JSON.stringify(ops, null, 2)}\n`);
    else if (args.output === 'json') out(`${JSON.stringify(withPod(after), null, 2)}\n`);
    else out(stringify(withPod(after)));
    return decision.type === 'denied' ? 1 : 0;
  } catch (error) {
    if (error instanceof HelpAsked) {
      out(EXPLAIN_USAGE);
      return 0;
    }
    if (error instanceof CouldNotCheck) {
      err(`nri explain: could not check: ${error.message}\n`);
      return 3;
    }
    if (!(error instanceof Usage)) throw error;
    err(`nri explain: ${error.message}\nRun "nri explain --help" for usage.\n`);
    return 2;
  }
}
