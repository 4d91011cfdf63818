import { InvalidEventError } from '../errors.js';
import type { DataSerializer, ServerSentEvent } from '../types.js';

/**
 * An event validated and turned into its SSE fields, once per publish. The
 * body holds every field but `id:` (the channel's sequence, known once the
 * store has taken the event) and the blank line that ends the event.
 */
export class EncodedEvent {
  readonly body: string;
  constructor(body: string) {
    this.body = body;
  }
}

// A field value may not start a new field: CR, LF and NUL are refused, never escaped.
const FORBIDDEN_IN_FIELD = /[\r\n\0]/;
const LINE_BREAK = /\r\n|\r|\n/;

export const jsonSerializer: DataSerializer = (data) => JSON.stringify(data);

function checkField(name: 'event', value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') {
    throw new InvalidEventError(`event.${name} must be a string, got ${describe(value)}`);
  }
  if (FORBIDDEN_IN_FIELD.test(value)) {
    throw new InvalidEventError(`event.${name} must not contain CR, LF or NUL`);
  }
  return value;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value;
}

function serialize(data: unknown, serializeData: DataSerializer): string {
  if (data === undefined) {
    throw new InvalidEventError('event.data is undefined; publish null or a value to send');
  }
  let text: unknown;
  try {
    text = serializeData(data);
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    throw new InvalidEventError(`event.data cannot be serialized: ${reason}`, { cause });
  }
  if (typeof text !== 'string') {
    throw new InvalidEventError(
      `event.data serialized to ${describe(text)}, not a string (functions and symbols have no JSON form)`,
    );
  }
  return text;
}

/**
 * Validates and encodes one event. Throws InvalidEventError and sends nothing
 * when the event is bad, or when its encoded fields take more than
 * `maxEventBytes` bytes: such an event could never reach a client whose
 * buffer it overflows, and stored it would be replayed to every resuming
 * client only to drop it again.
 */
export function encodeEvent(
  event: unknown,
  serializeData: DataSerializer = jsonSerializer,
  maxEventBytes = Number.POSITIVE_INFINITY,
): EncodedEvent {
  if (event === null || typeof event !== 'object' || Array.isArray(event)) {
    throw new InvalidEventError(`an event must be an object like { event, data }, got ${describe(event)}`);
  }
  const { event: type, retry, data } = event as ServerSentEvent;
  if ((event as { id?: unknown }).id !== undefined) {
    throw new InvalidEventError(
      'event.id cannot be set: each channel numbers its events so clients can resume; put your own identifier in data',
    );
  }
  const eventName = checkField('event', type);
  if (retry !== undefined && !(Number.isSafeInteger(retry) && retry >= 0)) {
    throw new InvalidEventError('event.retry must be a non-negative integer number of milliseconds');
  }
  const payload = serialize(data, serializeData);

  let text = '';
  if (eventName) text += `event: ${eventName}\n`;
  if (retry !== undefined) text += `retry: ${retry}\n`;
  if (LINE_BREAK.test(payload)) {
    for (const line of payload.split(LINE_BREAK)) text += `data: ${line}\n`;
  } else {
    text += `data: ${payload}\n`;
  }
  checkSize(text, maxEventBytes);
  return new EncodedEvent(text);
}

function checkSize(text: string, maxEventBytes: number): void {
  // A UTF-16 code unit takes 1 to 3 UTF-8 bytes: most events are decided without counting.
  if (text.length * 3 <= maxEventBytes) return;
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes <= maxEventBytes) return;
  throw new InvalidEventError(
    `event is ${bytes} bytes encoded, more than maxEventBytes (${maxEventBytes}); ` +
      'raise the maxEventBytes option (and maxBufferBytes, which bounds it) to send larger events',
  );
}

/** An SSE comment block; clients ignore it, proxies and sockets see traffic. */
export function encodeComment(comment: string): string {
  if (FORBIDDEN_IN_FIELD.test(comment)) {
    throw new InvalidEventError('a comment must not contain CR, LF or NUL');
  }
  return comment === '' ? ':\n\n' : `: ${comment}\n\n`;
}

/**
 * The event a stream starts with, direct or through a GRIP proxy: clients and
 * proxies see the stream open at once, and its id gives the client a position
 * to resume from even before the first event arrives.
 */
export function streamOpenText(id: string | null, retry: number | null): string {
  let text = 'event: stream-open\ndata: \n';
  if (id !== null) text += `id: ${id}\n`;
  if (retry !== null) text += `retry: ${retry}\n`;
  return `${text}\n`;
}

/**
 * The whole body of a stream answered while the event history is out of
 * reach. An EventSource gives up for good on an error status, but reconnects
 * after a stream that ends: so the answer is a 200 that says when to retry.
 */
export function retryLaterText(retry: number, reason: string): string {
  return `retry: ${retry}\n: ${reason}; reconnect later\n\n`;
}

/**
 * Sent instead of the events a resuming client missed when they are no
 * longer kept: the client should reload its state for these channels.
 */
export function streamResetText(channels: readonly string[], id: string): string {
  return `event: stream-reset\ndata: ${JSON.stringify({ channels })}\nid: ${id}\n\n`;
}

/**
 * Tells the client why its stream ends now (`expired`: its access ran out;
 * `disconnected` or the app's reason: revoked). No id: the client resumes
 * from its last event when it reconnects, and meets authorization again.
 */
export function streamCloseText(reason: string): string {
  return `event: stream-close\ndata: ${JSON.stringify({ reason })}\n\n`;
}

export const KEEP_ALIVE_TEXT = encodeComment('keep-alive');
