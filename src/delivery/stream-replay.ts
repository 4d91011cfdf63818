import { streamResetText } from '../sse/encoder.js';
import { formatEventId, type StreamPosition } from '../sse/event-id.js';
import { eventTextLength, singleChannelText } from '../sse/event-text.js';
import type { EventStore, HistoryPage, StoredEvent } from '../types.js';
import type { ChannelHub } from './hub.js';
import { HubFrame } from './hub-frame.js';
import { isLastPage, planReplay, readPage } from './replay-plan.js';

/** What a replay counts (StreamMetrics). */
interface ReplayCounts {
  eventsReplayed: number;
  streamResets: number;
}

/** What a replay needs of the direct stream it fills (a ResponseStream). */
export interface ReplayTarget {
  readonly channels: readonly string[];
  /** Where the client stands in each channel; the replay moves it on. */
  readonly positions: number[];
  readonly hubs: readonly ChannelHub[];
  readonly closed: boolean;
  /** Sends through the stream's Transform, as a hub frame would. */
  send(chunk: HubFrame | Buffer): void;
  /** Resolves once the client's socket has room again (or the stream closed). */
  drained(): Promise<void>;
  /** The replay is over: the live frames deferred meanwhile go out, and later ones directly. */
  goLive(): void;
  /** The replay cannot go on (the store went away): the client reconnects and resumes from what it got. */
  destroy(reason: 'error'): void;
}

/**
 * Sends a resuming client what it missed, channel by channel and page by
 * page, at the pace of its socket, then lets the stream go live. Resets go
 * first (see planReplay), so each id the client sees on the way names where
 * it really stands in all of its channels.
 */
export async function replayMissed(
  target: ReplayTarget,
  store: EventStore,
  maxBufferBytes: number,
  metrics: ReplayCounts,
  resume: StreamPosition,
): Promise<void> {
  const replays: Array<{ index: number; page: HistoryPage }> = [];
  try {
    const starts = await planReplay(store, target.channels, resume);
    const reset: string[] = [];
    starts.forEach((start, index) => {
      // A reset channel continues from where its hub stood when this client joined.
      if (start.kind === 'reset') {
        reset.push(target.channels[index]!);
      } else {
        target.positions[index] = start.after;
        replays.push({ index, page: start.page });
      }
    });
    if (target.closed) return;
    if (reset.length > 0) {
      metrics.streamResets++;
      target.send(Buffer.from(streamResetText(reset, formatEventId(target.channels, target.positions))));
    }
    for (const { index, page } of replays) await replayChannel(target, store, maxBufferBytes, metrics, index, page);
  } catch {
    target.destroy('error');
    return;
  }
  if (!target.closed) target.goLive();
}

/** One channel's missed events, in slices the socket can take. */
async function replayChannel(
  target: ReplayTarget,
  store: EventStore,
  maxBufferBytes: number,
  metrics: ReplayCounts,
  index: number,
  firstPage: HistoryPage,
): Promise<void> {
  const channel = target.channels[index]!;
  const singleChannel = target.channels.length === 1;
  const sliceBytes = Math.max(4096, maxBufferBytes >> 2);
  let page = firstPage;
  while (page.events.length > 0 && !target.closed) {
    const { events } = page;
    let start = 0;
    let bytes = 0;
    for (let i = 0; i < events.length && !target.closed; i++) {
      bytes += eventTextLength(channel, events[i]!);
      if (bytes >= sliceBytes || i === events.length - 1) {
        target.send(replayFrame(channel, events.slice(start, i + 1), singleChannel));
        metrics.eventsReplayed += i + 1 - start;
        start = i + 1;
        bytes = 0;
        await target.drained();
      }
    }
    if (isLastPage(page) || target.closed) return;
    page = await readPage(store, channel, target.positions[index]!);
    if (page.gap) {
      // Trimmed while this client was being replayed: it cannot catch up without a gap, so it starts over here.
      target.positions[index] = target.hubs[index]!.position;
      metrics.streamResets++;
      target.send(Buffer.from(streamResetText([channel], formatEventId(target.channels, target.positions))));
      return;
    }
  }
}

/** Stored events as a hub would have sent them; only single-channel streams send a frame's shared bytes. */
function replayFrame(channel: string, events: readonly StoredEvent[], singleChannel: boolean): HubFrame {
  const wire = singleChannel ? Buffer.from(singleChannelText(channel, events)) : EMPTY;
  return new HubFrame(channel, events, wire);
}

const EMPTY = Buffer.alloc(0);
