import { HttpStreamFormat, Item } from '@fanoutio/grip';
import { singleChannelText } from '../channel/frame.js';
import { GripPublishError } from '../errors.js';
import type { StoredEvent } from '../history/store.js';
import type { GripProxy } from './config.js';

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
 */
export function groupItems(channel: string, events: readonly StoredEvent[]): ItemContent[] {
  const items: ItemContent[] = [];
  let start = 0;
  let bytes = 0;
  for (let i = 0; i < events.length; i++) {
    const size = events[i]!.body.length + channel.length + 24;
    if (i > start && bytes + size > MAX_ITEM_CONTENT_CHARS) {
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

async function postBody(proxy: GripProxy, publishUri: string, body: string, timeoutMs: number): Promise<void> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  const auth = proxy.client.getAuth?.();
  if (auth !== undefined) headers.authorization = await auth.buildHeader();
  let response: Response;
  try {
    response = await fetch(publishUri, {
      method: 'POST',
      headers,
      body,
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (cause) {
    const reason =
      cause instanceof Error && cause.name === 'TimeoutError'
        ? `no answer within ${timeoutMs} ms`
        : describeNetworkError(cause);
    throw new GripPublishError(proxy.label, -1, reason, { cause });
  }
  let text: string;
  try {
    text = await response.text();
  } catch (cause) {
    throw new GripPublishError(proxy.label, response.status, 'connection closed while reading the answer', { cause });
  }
  if (response.status < 200 || response.status >= 300) {
    throw new GripPublishError(proxy.label, response.status, text);
  }
}

function describeNetworkError(cause: unknown): string {
  if (!(cause instanceof Error)) return String(cause);
  const inner = (cause as Error & { cause?: unknown }).cause;
  const code = inner instanceof Error ? (inner as Error & { code?: string }).code : undefined;
  return code ? `${cause.message} (${code})` : cause.message;
}

/** Publishes a batch to one proxy: one request per body, in order. */
export async function publishToProxy(
  proxy: GripProxy,
  gripChannel: string,
  items: readonly ItemContent[],
  serialized: readonly string[],
  timeoutMs: number,
  reliable: boolean,
): Promise<void> {
  if (proxy.publishUri !== null) {
    for (const body of packBodies(serialized)) await postBody(proxy, proxy.publishUri, body, timeoutMs);
    return;
  }
  // A custom client only knows one item per call; keep the order by awaiting each.
  for (const item of items) {
    try {
      await proxy.client.publish(
        gripChannel,
        reliable
          ? new Item(new HttpStreamFormat(item.content), String(item.id), String(item.prevId))
          : new Item(new HttpStreamFormat(item.content)),
      );
    } catch (cause) {
      const context = (cause as { context?: { statusCode?: number; httpBody?: unknown } })?.context;
      const body = context?.httpBody ?? (cause as { message?: string })?.message ?? String(cause);
      throw new GripPublishError(proxy.label, context?.statusCode ?? -1, String(body), { cause });
    }
  }
}
