// A request nri answers with a 4xx before any decision: the status, a stable
// reason for metrics and clients, and a message saying what was wrong.
export class BadRequest extends Error {
  constructor(
    readonly status: 400 | 413,
    message: string,
    readonly reason = 'bad_request',
  ) {
    super(message);
  }
}

/** The 413 for a body over the cap, whether it is refused before reading (Content-Length, `size`) or while reading. */
export const bodyTooLarge = (maxBytes: number, size?: number): BadRequest =>
  new BadRequest(
    413,
    `the request body${size === undefined ? '' : ` of ${size} bytes`} exceeds the limit of ${maxBytes} bytes`,
    'too_large',
  );
