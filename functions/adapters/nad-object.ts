// A NetworkAttachmentDefinition object from the API or a file -> the core's Nad.
import type { Nad } from '../core/types.js';
import { validateNad } from '../validation/validators.js';

interface NadObject {
  metadata: { name: string; namespace?: string; annotations?: Record<string, string> };
}

/** The Nad, or undefined when the object is not shaped like one. */
export function toNad(object: unknown, fallbackNamespace = 'default', keep: (key: string) => boolean = () => true): Nad | undefined {
  if (!validateNad(object)) return undefined;
  const { metadata } = object as unknown as NadObject;
  // Keep only the annotations the core reads (not the CNI config, nor kubectl's
  // last-applied copy), so that a cache of thousands of NADs stays small.
  const annotations: Record<string, string> = {};
  for (const [key, value] of Object.entries(metadata.annotations ?? {})) {
    if (!keep(key)) continue;
    Object.defineProperty(annotations, key, { value, enumerable: true, writable: true, configurable: true });
  }
  return { namespace: metadata.namespace || fallbackNamespace, name: metadata.name, annotations };
}
