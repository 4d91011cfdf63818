import { HttpStreamFormat, Item } from '@fanoutio/grip';
import { GripPublishError } from '../../errors.js';
import { eventTextLength, singleChannelText } from '../../sse/event-text.js';
import type { StoredEvent } from '../../types.js';
import type { GripProxy } from './proxy-config.js';

/** Pushpin refuses publish bodies of 1,000,000 bytes or more. */
export const MAX_PUBLISH_BODY_BYTES = 1_000_000;
/**
 * Pushpin queues at most 100 items per held stream (PUBLISH_QUEUE_MAX) and
 * silently drops the rest while still answering 200, so a request carries
 * fewer than that; requests for one channel are sent one after another.
 */
export const MAX_ITEMS_PER_REQUEST = 64;
/** Content one item carries at most: even fully escaped (6 bytes a character) it fits a request. */
const MAX_ITEM_CONTENT_CHARS = 128 * 1024;
const ENVELOPE_BYTES = '{"items":[]}'.length;

/** What one GRIP item carries: consecutive events of a channel, as the stream's bytes. */
export interface ItemContent {
  /** Sequence number of the last event: the item's id. */
  readonly id: number;
  /** Sequence number before the first event: the id the proxy must have seen last, or it recovers the gap. */
  readonly prevId: number;
  readonly content: string;
}

/**
 * Consecutive events become ONE item whose content is their SSE text, just
 * as a hub sends a same-tick burst as one write: the proxy's cost is per
 * item, so a burst costs it one item per 128 Ki characters instead of one per event.
 * An item never spans a gap in the sequence (events another process published
 * in between): its `prev-id` would claim the gap's events were sent.
 */
export function groupItems(channel: string, events: readonly StoredEvent[]): ItemContent[] {
  const items: ItemContent[] = [];
  let start = 0;
  let bytes = 0;
  for (let i = 0; i < events.length; i++) {
    const size = eventTextLength(channel, events[i]!);
    if (i > start && (bytes + size > MAX_ITEM_CONTENT_CHARS || events[i]!.seq !== events[i - 1]!.seq + 1)) {
      items.push(itemOf(channel, events, start, i));
      start = i;
      bytes = 0;
    }
    bytes += size;
  }
  if (events.length > start) items.push(itemOf(channel, events, start, events.length));
  return items;
}

function itemOf(channel: string, events: readonly StoredEvent[], start: number, end: number): ItemContent {
  return {
    id: events[end - 1]!.seq,
    prevId: events[start]!.seq - 1,
    content: singleChannelText(channel, events.slice(start, end)),
  };
}

/** The items of one channel as control-API JSON, serialized once and shared by every proxy. */
export function serializeItems(gripChannel: string, items: readonly ItemContent[], reliable: boolean): string[] {
  const channel = JSON.stringify(gripChannel);
  return items.map((item) => {
    const ids = reliable ? `"id":"${item.id}","prev-id":"${item.prevId}",` : '';
    return `{"channel":${channel},${ids}"formats":{"http-stream":{"content":${JSON.stringify(item.content)}}}}`;
  });
}

/** Splits items into request bodies under the proxy's size and item caps, keeping their order. */
export function packBodies(items: readonly string[]): string[] {
  const bodies: string[] = [];
  let current: string[] = [];
  let size = ENVELOPE_BYTES;
  for (const item of items) {
    const itemBytes = Buffer.byteLength(item) + 1;
    if (current.length > 0 && (size + itemBytes >= MAX_PUBLISH_BODY_BYTES || current.length === MAX_ITEMS_PER_REQUEST)) {
      bodies.push(`{"items":[${current.join(',')}]}`);
      current = [];
      size = ENVELOPE_BYTES;
    }
    current.push(item);
    size += itemBytes;
  }
  if (current.length > 0) bodies.push(`{"items":[${current.join(',')}]}`);
  return bodies;
}

/**
 * POSTs one body. The call fails after `timeoutMs`, and at once when
 * `closing` aborts (the EventStream closed): then it rejects with the
 * closing reason, an EventStreamClosedError, rather than a proxy failure.
 */
async function postBody(
  proxy: GripProxy,
  publishUri: string,
  body: string,
  timeoutMs: number,
  closing: AbortSignal,
): Promise<void> {
  closing.throwIfAborted();
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  const auth = proxy.client.getAuth?.();
  if (auth !== undefined) headers.authorization = await auth.buildHeader();
  closing.throwIfAborted();
  // One signal for the whole exchange, answer body included: a proxy that sends headers and then stalls times out too.
  const controller = new AbortController();
  const timeout = new DOMException(`no answer within ${timeoutMs} ms`, 'TimeoutError');
  const timer = setTimeout(() => controller.abort(timeout), timeoutMs);
  const onClosing = (): void => controller.abort(closing.reason);
  closing.addEventListener('abort', onClosing, { once: true });
  try {
    let response: Response;
    try {
      response = await fetch(publishUri, { method: 'POST', headers, body, signal: controller.signal });
    } catch (error) {
      closing.throwIfAborted();
      throw new GripPublishError(proxy.label, -1, describeFailure(error, timeout, timeoutMs), { cause: rootCause(error) });
    }
    let text: string;
    try {
      text = await response.text();
    } catch (error) {
      closing.throwIfAborted();
      const reason = `connection closed while reading the answer: ${describeFailure(error, timeout, timeoutMs)}`;
      throw new GripPublishError(proxy.label, response.status, reason, { cause: rootCause(error) });
    }
    if (response.status < 200 || response.status >= 300) {
      throw new GripPublishError(proxy.label, response.status, text);
    }
  } finally {
    clearTimeout(timer);
    closing.removeEventListener('abort', onClosing);
  }
}

/**
 * fetch wraps what went wrong ("fetch failed", "terminated") around the
 * error that says it (ECONNREFUSED, ECONNRESET, UND_ERR_SOCKET): the
 * innermost error with a code is the one worth keeping as the cause.
 */
function rootCause(error: unknown): unknown {
  let found = error;
  let current: unknown = error;
  for (let depth = 0; current instanceof Error && depth < 8; depth++) {
    if (typeof (current as Error & { code?: unknown }).code === 'string') found = current;
    current = (current as Error & { cause?: unknown }).cause;
  }
  return found;
}

function describeFailure(error: unknown, timeout: DOMException, timeoutMs: number): string {
  if (error === timeout) return `timed out: no answer within ${timeoutMs} ms`;
  const cause = rootCause(error);
  if (!(cause instanceof Error)) return String(cause);
  const code = (cause as Error & { code?: unknown }).code;
  return typeof code === 'string' && !cause.message.includes(code) ? `${cause.message} (${code})` : cause.message;
}

/**
 * Publishes items to one proxy, in order: one request per body for a
 * standard control API, one call per item for a custom client. `closing`
 * stops it at once (a custom client's call in flight cannot be cancelled,
 * but nothing waits for it).
 */
export async function publishToProxy(
  proxy: GripProxy,
  gripChannel: string,
  items: readonly ItemContent[],
  reliable: boolean,
  timeoutMs: number,
  closing: AbortSignal,
): Promise<void> {
  if (proxy.publishUri !== null) {
    const bodies = packBodies(serializeItems(gripChannel, items, reliable));
    for (const body of bodies) await postBody(proxy, proxy.publishUri, body, timeoutMs, closing);
    return;
  }
  // A custom client only knows one item per call; keep the order by awaiting each.
  for (const item of items) {
    await publishWithClient(
      proxy,
      gripChannel,
      reliable
        ? new Item(new HttpStreamFormat(item.content), String(item.id), String(item.prevId))
        : new Item(new HttpStreamFormat(item.content)),
      closing,
    );
  }
}

/** One item through a custom `Publisher` client, its failures as GripPublishErrors. */
async function publishWithClient(proxy: GripProxy, gripChannel: string, item: Item, closing: AbortSignal): Promise<void> {
  closing.throwIfAborted();
  try {
    await abortable(proxy.client.publish(gripChannel, item as never), closing);
  } catch (cause) {
    closing.throwIfAborted();
    const context = (cause as { context?: { statusCode?: number; httpBody?: unknown } })?.context;
    const body = context?.httpBody ?? (cause as { message?: string })?.message ?? String(cause);
    throw new GripPublishError(proxy.label, context?.statusCode ?? -1, String(body), { cause });
  }
}

/** Settles with `promise`, or rejects with the signal's reason as soon as it aborts. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/**
 * Ends every stream held on `gripChannel`: one call with two items, the
 * content first (the reason the client is told) and then the close, since
 * Pushpin ends a stream without delivering the content of an item that
 * carries both. Channels used this way are held without `prev-id`: on a
 * reliable channel a close without the matching `prev-id` would look like a
 * gap instead of a close.
 */
export async function closeHeldStreams(
  proxy: GripProxy,
  gripChannel: string,
  content: string,
  timeoutMs: number,
  closing: AbortSignal,
): Promise<void> {
  if (proxy.publishUri !== null) {
    const channel = JSON.stringify(gripChannel);
    const body = `{"items":[{"channel":${channel},"formats":{"http-stream":{"content":${JSON.stringify(content)}}}},{"channel":${channel},"formats":{"http-stream":{"action":"close"}}}]}`;
    await postBody(proxy, proxy.publishUri, body, timeoutMs, closing);
    return;
  }
  await publishWithClient(proxy, gripChannel, new Item(new HttpStreamFormat(content)), closing);
  await publishWithClient(proxy, gripChannel, new Item(new HttpStreamFormat(null, true)), closing);
}
