// Every NAD of a cluster in little memory: a cluster of 100,000 NADs must fit
// in a replica's heap next to a re-list being built. What nri reads of a NAD is
// its namespace, its name and a few annotations, and those annotations repeat
// from NAD to NAD (one resource pool per VLAN, per tenant namespace): each
// distinct set is kept once, frozen, and shared by every NAD that carries it.
import type { Nad, StringMap } from './types.js';

interface SharedAnnotations {
  annotations: Readonly<StringMap>;
  holders: number;
}

const NONE: Readonly<StringMap> = Object.freeze({});

/** The same text for the same annotations, whatever their order. */
const canonical = (annotations: Readonly<StringMap>): string =>
  JSON.stringify(
    Object.keys(annotations)
      .sort()
      .map((key) => [key, annotations[key]]),
  );

export class NadIndex {
  /** namespace -> name -> the NAD's annotations (a shared, frozen set) */
  private readonly namespaces = new Map<string, Map<string, Readonly<StringMap>>>();
  /** each distinct annotation set once, keyed by its canonical text, with how many NADs hold it */
  private readonly shared = new Map<string, SharedAnnotations>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Distinct annotation sets held (for tests and metrics: sharing at work). */
  get distinctAnnotationSets(): number {
    return this.shared.size;
  }

  get(namespace: string, name: string): Nad | undefined {
    const annotations = this.namespaces.get(namespace)?.get(name);
    return annotations === undefined ? undefined : { namespace, name, annotations };
  }

  set(nad: Nad): void {
    let names = this.namespaces.get(nad.namespace);
    if (!names) {
      names = new Map();
      this.namespaces.set(nad.namespace, names);
    }
    const previous = names.get(nad.name);
    const annotations = this.hold(nad.annotations);
    if (previous === undefined) this.count++;
    else this.release(previous);
    names.set(nad.name, annotations);
  }

  delete(namespace: string, name: string): void {
    const names = this.namespaces.get(namespace);
    const previous = names?.get(name);
    if (previous === undefined) return;
    names!.delete(name);
    if (names!.size === 0) this.namespaces.delete(namespace);
    this.release(previous);
    this.count--;
  }

  private hold(annotations: StringMap): Readonly<StringMap> {
    const keys = Object.keys(annotations);
    if (keys.length === 0) return NONE;
    const text = canonical(annotations);
    const entry = this.shared.get(text);
    if (entry) {
      entry.holders++;
      return entry.annotations;
    }
    // defined, not assigned: a "__proto__" key stays a key
    const copy: StringMap = {};
    for (const key of keys) Object.defineProperty(copy, key, { value: annotations[key], enumerable: true });
    this.shared.set(text, { annotations: Object.freeze(copy), holders: 1 });
    return copy;
  }

  private release(annotations: Readonly<StringMap>): void {
    if (annotations === NONE) return;
    // The canonical text is recomputed rather than stored per NAD: changes are rare, memory is not.
    const text = canonical(annotations);
    const entry = this.shared.get(text);
    if (entry && --entry.holders === 0) this.shared.delete(text);
  }
}
