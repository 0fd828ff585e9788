// The Node.js line nri runs on (package.json engines, the image's base). An older Node fails in
// ways that do not name the cause (client-node 2.x crashes on load under Node 20, and a replica
// then never becomes ready), so every entry point checks first and says what to do.

/** package.json's engines.node, as a major version (a unit test holds the two together). */
export const MINIMUM_NODE_MAJOR = 26;

/** undefined when `version` (process.versions.node) is new enough, else what to tell the user. */
export function unsupportedNode(version: string, execPath: string): string | undefined {
  const major = Number(/^(\d+)\./.exec(version)?.[1] ?? NaN);
  if (major >= MINIMUM_NODE_MAJOR) return undefined;
  return (
    `nri runs on Node.js ${MINIMUM_NODE_MAJOR} or newer; this is Node.js ${version} (${execPath}). ` +
    `In a checkout, npm ci installs Node.js ${MINIMUM_NODE_MAJOR} as node_modules/.bin/node and npm start, npx nri and bin/ use it; ` +
    `after npm ci --ignore-scripts it is missing: run npm rebuild node, or put a Node.js ${MINIMUM_NODE_MAJOR} first on PATH.`
  );
}

/** Exits 2 with the reason when this process runs on a Node.js too old for nri. */
export function exitUnlessSupportedNode(name: string): void {
  const problem = unsupportedNode(process.versions.node, process.execPath);
  if (problem === undefined) return;
  process.stderr.write(`${name}: ${problem}\n`);
  process.exit(2);
}
