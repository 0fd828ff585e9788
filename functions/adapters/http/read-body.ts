// Reads a request body into memory with a hard size cap, so neither transport
// ever buffers more than NRI_MAX_BODY_BYTES for one request.
import type { IncomingMessage } from 'node:http';
import { BadRequest } from './decode-review.js';

export function readBody(request: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    request.resume(); // drain quietly; the answer is already known
    return Promise.reject(new BadRequest(413, `the request body of ${declared} bytes exceeds the limit of ${maxBytes} bytes`, 'too_large'));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        cleanup();
        request.resume();
        reject(new BadRequest(413, `the request body exceeds the limit of ${maxBytes} bytes`, 'too_large'));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (error: Error) => {
      cleanup();
      reject(error);
    };
    const onAborted = () => {
      cleanup();
      reject(new Error('the client closed the connection before sending the whole body'));
    };
    const cleanup = () => {
      request.off('data', onData);
      request.off('end', onEnd);
      request.off('error', onError);
      request.off('aborted', onAborted);
    };
    request.on('data', onData);
    request.on('end', onEnd);
    request.on('error', onError);
    request.on('aborted', onAborted);
  });
}
