// A bound on how long kube-apiserver keeps one HTTPS connection to a replica. It reuses kept-alive
// connections for as long as they stay open, and kube-proxy balances connections, not requests, so
// a replica added under load would get no review until connections are renewed (seen on the real
// node: a third replica, ready, answered none in minutes of a burst). Past its age (jittered ±25%,
// so that connections do not all renew together) a connection is closed by the answer's
// `Connection: close`, which kube-apiserver honours before sending again: no review fails for it.
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';

/** Whether the answer to `request` should close its connection; never when `maxAgeSeconds` is 0. */
export function connectionAgeLimit(
  maxAgeSeconds: number,
  random: () => number = Math.random,
  now: () => number = Date.now,
): (request: IncomingMessage) => boolean {
  if (maxAgeSeconds <= 0) return () => false;
  const deadlines = new WeakMap<Socket, number>();
  return (request) => {
    let deadline = deadlines.get(request.socket);
    if (deadline === undefined) {
      deadline = now() + maxAgeSeconds * 1000 * (0.75 + random() * 0.5);
      deadlines.set(request.socket, deadline);
    }
    return now() >= deadline;
  };
}
