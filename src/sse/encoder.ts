import { InvalidEventError } from '../errors.js';
import type { DataSerializer, ServerSentEvent } from './event.js';

/**
 * An event already turned into its wire bytes. Encoding happens once per
 * publish; every subscriber and every proxy receives these same bytes.
 */
export class EncodedEvent {
  readonly text: string;
  readonly bytes: Buffer;
  constructor(text: string) {
    this.text = text;
    this.bytes = Buffer.from(text, 'utf8');
  }
}

// A field value may not start a new field: CR, LF and NUL are refused, never escaped.
const FORBIDDEN_IN_FIELD = /[\r\n\0]/;
const LINE_BREAK = /\r\n|\r|\n/;

export const jsonSerializer: DataSerializer = (data) => JSON.stringify(data);

function checkField(name: 'event' | 'id', value: unknown): string | undefined {
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
    throw new InvalidEventError(`event.data serialized to ${describe(text)}, not a string (functions and symbols have no JSON form)`);
  }
  return text;
}

/** Validates and encodes one event. Throws InvalidEventError and sends nothing when the event is bad. */
export function encodeEvent(event: unknown, serializeData: DataSerializer = jsonSerializer): EncodedEvent {
  if (event === null || typeof event !== 'object' || Array.isArray(event)) {
    throw new InvalidEventError(`an event must be an object like { event, data }, got ${describe(event)}`);
  }
  const { event: type, id, retry, data } = event as ServerSentEvent;
  const eventName = checkField('event', type);
  const eventId = checkField('id', id);
  if (retry !== undefined && !(Number.isSafeInteger(retry) && retry >= 0)) {
    throw new InvalidEventError('event.retry must be a non-negative integer number of milliseconds');
  }
  const payload = serialize(data, serializeData);

  let text = '';
  if (eventName) text += `event: ${eventName}\n`;
  if (eventId !== undefined) text += `id: ${eventId}\n`;
  if (retry !== undefined) text += `retry: ${retry}\n`;
  if (LINE_BREAK.test(payload)) {
    for (const line of payload.split(LINE_BREAK)) text += `data: ${line}\n`;
  } else {
    text += `data: ${payload}\n`;
  }
  return new EncodedEvent(text + '\n');
}

/** An SSE comment block; clients ignore it, proxies and sockets see traffic. */
export function encodeComment(comment: string): string {
  if (FORBIDDEN_IN_FIELD.test(comment)) {
    throw new InvalidEventError('a comment must not contain CR, LF or NUL');
  }
  return comment === '' ? ':\n\n' : `: ${comment}\n\n`;
}

/** Bytes a stream starts with, direct or through a GRIP proxy: clients and proxies see the stream open at once. */
export const STREAM_OPEN_TEXT = 'event: stream-open\ndata: \n\n';
export const KEEP_ALIVE_TEXT = encodeComment('keep-alive');
