// Parses the Multus network-selection annotations into validated references.
// Both forms of the NPWG spec are accepted: "[ns/]name[@ifname]" lists and a
// JSON list of selection objects. Anything odd is an error quoting the culprit.
import selectionSchema from '../../schemas/network-selection.json' with { type: 'json' };
import { describeFirstError, validateSelection } from '../validation/validators.js';
import { fail, ok, quote, type Result } from './result.js';
import type { NetworkRef, SelectionSource } from './types.js';

/** Upper bound on references per annotation; far beyond any real pod, it keeps work bounded. */
export const MAX_NETWORKS_PER_ANNOTATION = 1024;

/** The parts of a "[namespace/]name[@interface]" item, as the one who wrote it knows them. */
const LIST_ITEM_WORDS = {
  name: 'the network name',
  namespace: "the namespace (before '/')",
  interface: "the interface name (after '@')",
};
/** The keys of a JSON selection element, as written. */
const JSON_ELEMENT_WORDS = Object.fromEntries(
  Object.keys(selectionSchema.properties).map((key) => [key, `its "${key}"`]),
);

/** Multus treats the value as JSON as soon as it contains any of these. */
const JSON_MARKERS = /[[{"]/;

export function parseNetworkSelection(
  value: string,
  defaultNamespace: string,
  source: SelectionSource,
): Result<NetworkRef[]> {
  if (value.trim() === '') return ok([]);
  return JSON_MARKERS.test(value)
    ? parseJsonForm(value, defaultNamespace, source)
    : parseListForm(value, defaultNamespace, source);
}

function parseJsonForm(value: string, defaultNamespace: string, source: SelectionSource): Result<NetworkRef[]> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch (error) {
    return fail(`is not valid JSON (${(error as Error).message}): ${quote(value)}`);
  }
  if (!Array.isArray(parsed)) {
    return fail(`must be a JSON list of network selection objects, got ${quote(parsed)}`);
  }
  if (parsed.length > MAX_NETWORKS_PER_ANNOTATION) {
    return fail(`lists ${parsed.length} networks; at most ${MAX_NETWORKS_PER_ANNOTATION} are allowed`);
  }
  const refs: NetworkRef[] = [];
  for (const [index, element] of parsed.entries()) {
    const subject = () => `element ${index + 1} ${quote(element)}`;
    if (element === null || typeof element !== 'object' || Array.isArray(element)) {
      return fail(`${subject()} must be an object with a "name"`);
    }
    if (!validateSelection(element)) return fail(describeFirstError(validateSelection, subject(), JSON_ELEMENT_WORDS));
    const selection = element as { name: string; namespace?: string; interface?: string };
    refs.push(makeRef(selection.name, selection.namespace ?? defaultNamespace, selection.interface, source));
  }
  return ok(refs);
}

function parseListForm(value: string, defaultNamespace: string, source: SelectionSource): Result<NetworkRef[]> {
  const items = value.split(',');
  if (items.length > MAX_NETWORKS_PER_ANNOTATION) {
    return fail(`lists ${items.length} networks; at most ${MAX_NETWORKS_PER_ANNOTATION} are allowed`);
  }
  const refs: NetworkRef[] = [];
  for (const [index, rawItem] of items.entries()) {
    const item = rawItem.trim();
    const subject = () => `item ${index + 1} ${quote(item)}`;
    if (item === '') return fail(`item ${index + 1} is empty in ${quote(value)}`);
    const parsed = splitListItem(item);
    if (!parsed.ok) return fail(`${subject()} ${parsed.error}`);
    const selection = parsed.value;
    if (!validateSelection(selection)) return fail(describeFirstError(validateSelection, subject(), LIST_ITEM_WORDS));
    refs.push(makeRef(selection.name, selection.namespace ?? defaultNamespace, selection.interface, source));
  }
  return ok(refs);
}

type ListSelection = { name: string; namespace?: string; interface?: string };

/** "[ns/]name[@ifname]", spaces around '/' and '@' ignored, as Multus does. */
function splitListItem(item: string): Result<ListSelection> {
  const slashParts = item.split('/');
  if (slashParts.length > 2) return fail("has more than one '/' (expected [namespace/]name[@interface])");
  const nameAndInterface = slashParts[slashParts.length - 1]!.split('@');
  if (nameAndInterface.length > 2) return fail("has more than one '@' (expected [namespace/]name[@interface])");
  const selection: ListSelection = { name: nameAndInterface[0]!.trim() };
  if (slashParts.length === 2) selection.namespace = slashParts[0]!.trim();
  if (nameAndInterface.length === 2) selection.interface = nameAndInterface[1]!.trim();
  return ok(selection);
}

function makeRef(name: string, namespace: string, iface: string | undefined, source: SelectionSource): NetworkRef {
  return iface === undefined ? { namespace, name, source } : { namespace, name, interface: iface, source };
}
