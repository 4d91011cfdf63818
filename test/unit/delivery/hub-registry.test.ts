import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { StreamMetrics } from '../../../src/common/metrics.js';
import type { HubFrame } from '../../../src/delivery/hub-frame.js';
import { HubRegistry } from '../../../src/delivery/hub-registry.js';
import { MemoryEventStore } from '../../../src/stores/memory-store.js';
import type { EventStore, HistoryPage, StoredEvent, StoreListener, StoreLossListener, StoreWatch } from '../../../src/types.js';
import { deferred } from '../../helpers/deferred.js';

/**
 * A store shared with other processes as far as the registry can tell: it
 * numbers events itself and delivers every append to its watchers, as the
 * Redis store does, and lets the test decide when a watch becomes live.
 */
class SharedTestStore implements EventStore {
  readonly shared = true;
  readonly watches: Array<{
    channel: string;
    listener: StoreListener;
    lost: StoreLossListener | undefined;
    closed: boolean;
    live: (position: number) => void;
    fail: (error: unknown) => void;
  }> = [];
  private readonly heads = new Map<string, number>();

  append(channel: string, bodies: readonly string[]): number {
    const first = (this.heads.get(channel) ?? 0) + 1;
    this.heads.set(channel, first + bodies.length - 1);
    const events: StoredEvent[] = bodies.map((body, i) => ({ seq: first + i, body }));
    for (const watch of this.watches) if (watch.channel === channel && !watch.closed) watch.listener(events);
    return first;
  }

  readSince(_channel: string, _after: number, _limit: number): HistoryPage {
    return { events: [], gap: false, head: 0 };
  }

  head(channel: string): number {
    return this.heads.get(channel) ?? 0;
  }

  watch(channel: string, listener: StoreListener, lost?: StoreLossListener): StoreWatch {
    const ready = deferred<number>();
    const entry = { channel, listener, lost, closed: false, live: ready.resolve, fail: ready.reject };
    this.watches.push(entry);
    return {
      ready: ready.promise,
      close: () => {
        entry.closed = true;
      },
    };
  }
}

test('registry: one hub per channel while referenced; the last release destroys it and the next retain makes a new one', () => {
  const registry = new HubRegistry(new MemoryEventStore(), new StreamMetrics());
  const a = registry.retain('room');
  const b = registry.retain('room');
  const other = registry.retain('other');
  assert.equal(a, b);
  assert.notEqual(a, other);
  assert.equal(a.refs, 2);
  assert.equal(registry.size, 2);

  registry.release(a);
  assert.equal(a.destroyed, false, 'still referenced once');
  assert.equal(registry.size, 2);
  registry.release(b);
  assert.equal(a.destroyed, true);
  assert.equal(registry.size, 1);

  const again = registry.retain('room');
  assert.notEqual(again, a);
  assert.equal(again.refs, 1);
  registry.destroyAll();
  assert.equal(registry.size, 0);
  assert.equal(again.destroyed, true);
  assert.equal(other.destroyed, true);
});

test('registry: releasing a hub that was already replaced does not drop its successor', () => {
  const registry = new HubRegistry(new MemoryEventStore(), new StreamMetrics());
  const first = registry.retain('room');
  registry.destroyAll();
  const second = registry.retain('room');
  first.refs = 1;
  registry.release(first);
  assert.equal(registry.size, 1);
  assert.equal(registry.retain('room'), second);
});

test('registry: a hub of a local store starts at the channel head', () => {
  const store = new MemoryEventStore();
  store.append('room', ['data: a\n', 'data: b\n', 'data: c\n']);
  const head = store.head('room');
  const registry = new HubRegistry(store, new StreamMetrics());
  const hub = registry.retain('room');
  assert.equal(hub.position, head);
  assert.equal(registry.watchStore(hub), hub.ready, 'a local store needs no watch');
  registry.destroyAll();
});

test('registry: subscriberCounts lists only channels with subscribers, with their counts', () => {
  const registry = new HubRegistry(new MemoryEventStore(), new StreamMetrics());
  const room = registry.retain('room');
  registry.retain('writer-only');
  const lobby = registry.retain('lobby');
  const noop = (): void => {};
  room.subscribe(noop);
  room.subscribe(() => {});
  lobby.subscribe(noop);
  assert.deepEqual(registry.subscriberCounts(), { room: 2, lobby: 1 });
  lobby.unsubscribe(noop);
  assert.deepEqual(registry.subscriberCounts(), { room: 2 });
  registry.destroyAll();
  assert.deepEqual(registry.subscriberCounts(), {});
});

test('registry: flushAll hands every pending batch on now instead of at the end of the turn', async () => {
  const registry = new HubRegistry(new MemoryEventStore(), new StreamMetrics());
  const hubs = [registry.retain('a'), registry.retain('b')];
  await nextTurn();
  const frames: HubFrame[] = [];
  for (const hub of hubs) hub.subscribe((frame) => frames.push(frame));
  await nextTurn();
  hubs[0]!.write([{ seq: 1, body: 'data: a\n' }]);
  hubs[1]!.write([{ seq: 1, body: 'data: b\n' }]);
  assert.equal(frames.length, 0);
  registry.flushAll();
  assert.deepEqual(
    frames.map((frame) => frame.channel),
    ['a', 'b'],
  );
  registry.destroyAll();
});

test('registry: a shared store feeds the hub through one watch; its ready position becomes the hub position; release closes it', async () => {
  const store = new SharedTestStore();
  const registry = new HubRegistry(store, new StreamMetrics());
  const hub = registry.retain('room');
  assert.equal(store.watches.length, 0, 'a writer alone needs no watch');
  const ready = registry.watchStore(hub);
  assert.ok(ready instanceof Promise);
  assert.equal(registry.watchStore(registry.retain('room')), ready, 'a second subscriber shares the watch');
  assert.equal(store.watches.length, 1);

  const frames: HubFrame[] = [];
  hub.subscribe((frame) => frames.push(frame));
  store.watches[0]!.live(41);
  await ready;
  assert.equal(hub.position, 41);

  store.append('room', ['data: x\n']);
  await nextTurn();
  await nextTurn();
  assert.deepEqual(
    frames.flatMap((frame) => frame.events),
    [{ seq: 1, body: 'data: x\n' }],
  );

  registry.release(hub);
  assert.equal(store.watches[0]!.closed, false);
  registry.release(hub);
  assert.equal(store.watches[0]!.closed, true, 'the last release stops the delivery');
  assert.equal(hub.destroyed, true);
});

test('registry: a failed watch fails its waiters, and the next watchStore starts a new one', async () => {
  const store = new SharedTestStore();
  const registry = new HubRegistry(store, new StreamMetrics());
  const hub = registry.retain('room');
  const ready = registry.watchStore(hub)!;
  store.watches[0]!.fail(new Error('store down'));
  await assert.rejects(ready, /store down/);
  assert.equal(hub.unwatch, null);
  assert.equal(hub.ready, null);
  const retry = registry.watchStore(hub)!;
  assert.notEqual(retry, ready);
  assert.equal(store.watches.length, 2);
  store.watches[1]!.live(5);
  await retry;
  assert.equal(hub.position, 5);
  registry.destroyAll();
  assert.equal(store.watches[1]!.closed, true);
});

test('registry: history lost in the store moves the hub position forward behind the events still queued, never back', async () => {
  const store = new SharedTestStore();
  const registry = new HubRegistry(store, new StreamMetrics());
  const hub = registry.retain('room');
  const ready = registry.watchStore(hub)!;
  store.watches[0]!.live(10);
  await ready;
  store.watches[0]!.lost!(100);
  await nextTurn();
  assert.equal(hub.position, 100);
  store.watches[0]!.lost!(50);
  await nextTurn();
  assert.equal(hub.position, 100);
  registry.destroyAll();
});
