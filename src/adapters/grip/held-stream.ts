import { isLastPage, planReplay, readPage } from '../../delivery/replay-plan.js';
import { streamOpenText, streamResetText } from '../../sse/encoder.js';
import { formatEventId, type StreamPosition } from '../../sse/event-id.js';
import { singleChannelText } from '../../sse/event-text.js';
import type { EventStore } from '../../types.js';

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
 * the history kept get a `stream-reset` event instead of a silent gap (the
 * same decision a direct stream makes: planReplay).
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
    // The proxy following a link of a stream already open (no Grip-Last: no prev-id): nothing to add.
    if (recovering) return { body: '', positions };
    return { body: streamOpenText(formatEventId(channels, positions), clientRetry), positions };
  }
  let body = recovering ? '' : streamOpenText(null, clientRetry);
  const reset: string[] = [];
  const starts = await planReplay(store, channels, resume);
  for (let index = 0; index < channels.length; index++) {
    const channel = channels[index]!;
    const start = starts[index]!;
    if (start.kind === 'reset') {
      reset.push(channel);
      positions.push(start.page?.head ?? (await store.head(channel)));
      continue;
    }
    let { after, page } = start;
    while (page.events.length > 0 && body.length < maxBytes) {
      body += singleChannelText(channel, page.events);
      after = page.events[page.events.length - 1]!.seq;
      if (isLastPage(page)) break;
      page = await readPage(store, channel, after);
      // Trimmed meanwhile: stop here; the proxy's next recovery from this position gets the reset.
      if (page.gap) break;
    }
    // Whatever did not fit, the proxy recovers through the link once the next item shows the gap.
    positions.push(after);
  }
  if (reset.length > 0) body += streamResetText(reset, formatEventId(channels, positions));
  return { body, positions };
}
