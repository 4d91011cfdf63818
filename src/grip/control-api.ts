import { HttpStreamFormat, Item } from '@fanoutio/grip';
import { GripPublishError } from '../errors.js';
import type { EncodedEvent } from '../sse/encoder.js';
import type { GripProxy } from './config.js';

/** Pushpin refuses publish bodies of 1,000,000 bytes or more. */
export const MAX_PUBLISH_BODY_BYTES = 1_000_000;
/**
 * Pushpin queues at most 100 items per held stream (PUBLISH_QUEUE_MAX) and
 * silently drops the rest while still answering 200, so a request carries
 * fewer than that; requests for one channel are sent one after another.
 */
export const MAX_ITEMS_PER_REQUEST = 64;
const ENVELOPE_BYTES = '{"items":[]}'.length;

/** One `http-stream` item per event, serialized once and shared by every proxy. */
export function serializeItems(channel: string, events: readonly EncodedEvent[]): string[] {
  const prefix = `{"channel":${JSON.stringify(channel)},"formats":{"http-stream":{"content":`;
  return events.map((event) => `${prefix}${JSON.stringify(event.text)}}}}`);
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
  channel: string,
  events: readonly EncodedEvent[],
  items: readonly string[],
  timeoutMs: number,
): Promise<void> {
  if (proxy.publishUri !== null) {
    for (const body of packBodies(items)) await postBody(proxy, proxy.publishUri, body, timeoutMs);
    return;
  }
  // A custom client only knows one item per call; keep the order by awaiting each.
  for (const event of events) {
    try {
      await proxy.client.publish(channel, new Item(new HttpStreamFormat(event.text)));
    } catch (cause) {
      const context = (cause as { context?: { statusCode?: number; httpBody?: unknown } })?.context;
      const body = context?.httpBody ?? (cause as { message?: string })?.message ?? String(cause);
      throw new GripPublishError(proxy.label, context?.statusCode ?? -1, String(body), { cause });
    }
  }
}
