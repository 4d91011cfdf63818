import type { StreamPosition } from '../sse/event-id.js';
import type { EventStore, HistoryPage, MaybePromise } from '../types.js';

/** Events read from the store per replay step; a step is sent before the next is read. */
export const REPLAY_PAGE_EVENTS = 500;

/**
 * Where a resuming stream starts in one channel: `replay` from `after`, the
 * first page of missed events in hand; or `reset`, because the client gave
 * no position for the channel, one from the future, or one older than the
 * history kept, and a silent gap would be a lie. `page` is null when there
 * was nothing to read.
 */
export type ReplayStart =
  | { readonly kind: 'replay'; readonly after: number; readonly page: HistoryPage }
  | { readonly kind: 'reset'; readonly page: HistoryPage | null };

/**
 * Decides, for each channel of a resuming stream, whether it is replayed or
 * reset; every channel is settled before anything is sent, so each id the
 * client sees on the way names where it really stands in all of them. The
 * direct stream (response-stream.ts) and the GRIP held stream
 * (adapters/grip/held-stream.ts) both start here.
 */
export async function planReplay(store: EventStore, channels: readonly string[], resume: StreamPosition): Promise<ReplayStart[]> {
  const starts: ReplayStart[] = [];
  for (const channel of channels) {
    const after = resume.get(channel);
    const page = after === undefined ? null : await readPage(store, channel, after);
    if (after === undefined || page === null || page.gap || after > page.head) starts.push({ kind: 'reset', page });
    else starts.push({ kind: 'replay', after, page });
  }
  return starts;
}

/** The next step of a replay: events after `after`, at most a page of them. */
export function readPage(store: EventStore, channel: string, after: number): MaybePromise<HistoryPage> {
  return store.readSince(channel, after, REPLAY_PAGE_EVENTS);
}

/** A page shorter than a full one was the end of the history. */
export function isLastPage(page: HistoryPage): boolean {
  return page.events.length < REPLAY_PAGE_EVENTS;
}
