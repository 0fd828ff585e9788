// NADs from files (NRI_NADS, or examples/nads when no cluster is configured):
// the embedded default that lets the function run without a cluster.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { nadKey, toNad } from '../core/nad.js';
import type { Nad, NadLookupOutcome, NadRef } from '../core/types.js';
import type { NadSource } from './nad-source.js';
import type { Metrics } from './observability/metrics.js';

const NAD_FILE = /\.(ya?ml|json)$/i;

function filesAt(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path)
    .filter((name) => NAD_FILE.test(name))
    .sort()
    .map((name) => join(path, name));
}

async function documentsIn(file: string): Promise<unknown[]> {
  const text = readFileSync(file, 'utf8');
  if (extname(file).toLowerCase() === '.json') {
    const parsed = JSON.parse(text);
    return Array.isArray(parsed?.items) ? parsed.items : [parsed];
  }
  // Loaded only when there is YAML to read; CommonJS, so its exports may sit on `default`.
  const yaml = await import('yaml');
  const parseAllDocuments =
    yaml.parseAllDocuments ?? (yaml as unknown as { default: typeof yaml }).default.parseAllDocuments;
  const documents = parseAllDocuments(text);
  const broken = documents.find((document) => document.errors.length > 0);
  if (broken) throw new Error(broken.errors[0]!.message);
  return documents
    .map((document) => document.toJS() as unknown)
    .flatMap((doc) =>
      Array.isArray((doc as { items?: unknown[] })?.items) ? (doc as { items: unknown[] }).items : [doc],
    );
}

/** The NADs of a file or folder, normalised as cluster NADs are (core/nad.ts). */
export async function loadOfflineNads(path: string, annotationsRead: ReadonlySet<string>): Promise<Nad[]> {
  let files: string[];
  try {
    files = filesAt(path);
  } catch (error) {
    throw new Error(`NRI_NADS: cannot read ${path}: ${(error as Error).message}`);
  }
  const nads: Nad[] = [];
  for (const file of files) {
    let documents: unknown[];
    try {
      documents = await documentsIn(file);
    } catch (error) {
      throw new Error(`NRI_NADS: cannot read ${file}: ${(error as Error).message}`);
    }
    for (const [index, document] of documents.entries()) {
      if (document === null || (document as { kind?: unknown }).kind !== 'NetworkAttachmentDefinition') continue;
      const nad = toNad(document, 'default', annotationsRead);
      if (!nad)
        throw new Error(`NRI_NADS: document ${index + 1} of ${file} is not a valid NetworkAttachmentDefinition`);
      nads.push(nad);
    }
  }
  return nads;
}

export class OfflineNadSource implements NadSource {
  private readonly byKey: Map<string, Nad>;

  constructor(
    nads: Nad[],
    private readonly path: string,
    private readonly metrics?: Metrics,
  ) {
    this.byKey = new Map(nads.map((nad) => [nadKey(nad.namespace, nad.name), nad]));
  }

  /** Files are all in memory: every ref is answered, found or missing. */
  fromMemory(refs: readonly NadRef[]): Map<string, NadLookupOutcome> {
    const out = new Map<string, NadLookupOutcome>();
    for (const { namespace, name } of refs) {
      const key = nadKey(namespace, name);
      const nad = this.byKey.get(key);
      out.set(key, nad ? { status: 'found', nad } : { status: 'missing' });
    }
    // Every lookup is answered from memory, as a synced watch cache's are: all hits.
    this.metrics?.nadCacheHits.inc(refs.length);
    return out;
  }

  read(refs: readonly NadRef[]): Promise<Map<string, NadLookupOutcome>> {
    return Promise.resolve(this.fromMemory(refs));
  }

  readiness(): string | null {
    return null;
  }

  /** The NAD gauges describe the files: all of them are loaded, so the source is synced. */
  start(): void {
    this.metrics?.nadCacheSynced.set(1);
    this.metrics?.nadCacheObjects.set(this.byKey.size);
  }

  async stop(): Promise<void> {}

  describe() {
    return { source: 'files', path: this.path, objects: this.byKey.size, nads: [...this.byKey.keys()] };
  }
}
