import { singleChannelText } from '../../delivery/hub-frame.js';
import { formatEventId, type StreamPosition } from '../../admission/resume-position.js';
import type { EventStore } from '../../stores/event-store.js';
import { streamOpenText, streamResetText } from '../../sse/encoder.js';

const PAGE_EVENTS = 500;

export interface HeldStreamStart {
  /** What the proxy sends the client before holding the stream. */
  body: string;
  /** Per channel, the sequence number that body brings the client to. */
  positions: number[];
}

/**
 * The opening of a stream the proxy holds: for a new client, the opening
 * event with its position; for a resuming client (Last-Event-ID) or the proxy
 * recovering a gap (`Grip-Last`), the events missed since then, read from the
 * store, up to `maxBytes`. Channels whose position is unknown or older than
 * the history kept get a `stream-reset` event instead of a silent gap.
 *
 * Events carry single-channel ids here, as the items the proxy delivers later do.
 */
export async function startHeldStream(
  store: EventStore,
  channels: readonly string[],
  resume: StreamPosition | null,
  recovering: boolean,
  maxBytes: number,
  clientRetry: number | null,
): Promise<HeldStreamStart> {
  const positions: number[] = [];
  if (resume === null) {
    for (const channel of channels) positions.push(await store.head(channel));
    return { body: streamOpenText(formatEventId(channels, positions), clientRetry), positions };
  }
  let body = recovering ? '' : streamOpenText(null, clientRetry);
  const reset: string[] = [];
  for (const channel of channels) {
    let after = resume.get(channel);
    let page = after === undefined ? null : await store.readSince(channel, after, PAGE_EVENTS);
    if (after === undefined || page === null || page.gap || after > page.head) {
      reset.push(channel);
      positions.push(page?.head ?? (await store.head(channel)));
      continue;
    }
    while (page.events.length > 0 && body.length < maxBytes) {
      body += singleChannelText(channel, page.events);
      after = page.events[page.events.length - 1]!.seq;
      if (page.events.length < PAGE_EVENTS) break;
      page = await store.readSince(channel, after, PAGE_EVENTS);
      // Trimmed meanwhile: stop here; the proxy's next recovery from this position gets the reset.
      if (page.gap) break;
    }
    // Whatever did not fit, the proxy recovers through the link once the next item shows the gap.
    positions.push(after);
  }
  if (reset.length > 0) body += streamResetText(reset, formatEventId(channels, positions));
  return { body, positions };
}
