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
