// Reads a request body into memory with a hard size cap, so neither transport
// ever buffers more than NRI_MAX_BODY_BYTES for one request.
import type { IncomingMessage } from 'node:http';
import { bodyTooLarge } from './bad-request.js';

/** The client hung up before the whole body arrived. */
export class ClientGone extends Error {}

export type BodyCallback = (error: Error | undefined, body?: Buffer) => void;

/** Calls back exactly once. A callback, not a promise: this runs for every review. */
export function readBody(request: IncomingMessage, maxBytes: number, done: BodyCallback): void {
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    // Not read here: the caller answers 413 and drains what keeps arriving.
    return done(bodyTooLarge(maxBytes, declared));
  }
  const chunks: Buffer[] = [];
  let size = 0;
  const finish = (error: Error | undefined, body?: Buffer) => {
    request.off('data', onData);
    request.off('end', onEnd);
    request.off('error', finish);
    request.off('aborted', onAborted);
    done(error, body);
  };
  const onData = (chunk: Buffer) => {
    size += chunk.length;
    if (size > maxBytes) {
      finish(bodyTooLarge(maxBytes));
      return;
    }
    chunks.push(chunk);
  };
  const onEnd = () => finish(undefined, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
  const onAborted = () => finish(new ClientGone('the client closed the connection before sending the whole body'));
  request.on('data', onData);
  request.on('end', onEnd);
  request.on('error', finish);
  request.on('aborted', onAborted);
}
