// A request nri answers with a 4xx before any decision: the status, a stable
// reason for metrics and clients, and a message saying what was wrong.
export class BadRequest extends Error {
  constructor(
    readonly status: 400 | 413 | 415,
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

/**
 * The 415 for a body that is not declared JSON, as upstream answers it. kube-apiserver always
 * sends `application/json`; a bare `curl --data` sends a form type, and YAML is not read.
 * Parameters (`; charset=utf-8`) and case are accepted. Undefined when the type is JSON.
 */
export function notJson(contentType: string | undefined): BadRequest | undefined {
  const mediaType = (contentType ?? '').split(';', 1)[0]!.trim().toLowerCase();
  if (mediaType === 'application/json') return undefined;
  return new BadRequest(
    415,
    `send the AdmissionReview as JSON with the header Content-Type: application/json (this request's Content-Type is ${contentType ? JSON.stringify(contentType.slice(0, 100)) : 'missing'})`,
    'unsupported_media_type',
  );
}
