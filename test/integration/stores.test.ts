import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, describe, type TestContext, test } from 'node:test';
import { EventStoreError, InvalidOptionError } from '../../src/errors.js';
import { RedisEventStore } from '../../src/redis.js';
import { MemoryEventStore } from '../../src/stores/memory-store.js';
import type { EventStore, HistoryPage } from '../../src/types.js';
import { type RunningRedis, requireRedis, startRedis } from '../helpers/redis.js';

/**
 * The EventStore contract, run against every store: what the core relies on
 * must not depend on which store is configured.
 */

interface StoreOptions {
  maxEvents?: number;
  maxAge?: number;
}

interface Harness {
  name: string;
  /** Resolves false when the test was skipped. */
  available(t: TestContext): Promise<boolean>;
  /** A fresh, empty store, closed after the test. */
  make(t: TestContext, options?: StoreOptions): EventStore;
  /** Whether the store's constructor refuses these options. */
  construct(options: Record<string, unknown>): void;
}

const memory: Harness = {
  name: 'MemoryEventStore',
  available: async () => true,
  make: (_t, options) => new MemoryEventStore(options),
  construct: (options) => new MemoryEventStore(options),
};

let redisServer: RunningRedis | undefined;
let prefixes = 0;
after(async () => {
  await redisServer?.stop();
});

const redis: Harness = {
  name: 'RedisEventStore',
  async available(t) {
    if (!requireRedis(t)) return false;
    redisServer ??= await startRedis();
    return true;
  },
  make(t, options) {
    // The server is shared by the file's tests; a prefix of its own gives each test empty channels.
    const store = new RedisEventStore({ ...options, url: redisServer!.url, keyPrefix: `contract-${++prefixes}:` });
    t.after(() => store.close());
    return store;
  },
  construct: (options) => new RedisEventStore(options),
};

const seqs = (page: HistoryPage): number[] => page.events.map((event) => event.seq);
const bodies = (page: HistoryPage): string[] => page.events.map((event) => event.body);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// First in the file, before any test has loaded ioredis.
test('RedisEventStore: constructing neither loads ioredis nor connects; calls fail promptly while Redis is down', async () => {
  const ioredisLoaded = (): boolean =>
    Object.keys(createRequire(import.meta.url).cache).some((file) => file.includes(`${path.sep}ioredis${path.sep}`));
  assert.equal(ioredisLoaded(), false, 'no test loaded ioredis before this one');
  // Nothing listens on port 1.
  const store = new RedisEventStore({ url: 'redis://127.0.0.1:1' });
  assert.equal(store.shared, true);
  assert.equal(ioredisLoaded(), false, 'the constructor loads ioredis');
  const started = Date.now();
  await assert.rejects(store.append('ch', ['data: x\n']), (error: unknown) => {
    assert.ok(error instanceof EventStoreError, String(error));
    assert.match(error.message, /append failed: not connected to Redis \(connect ECONNREFUSED/);
    assert.ok(error.cause instanceof Error, 'the cause is attached');
    return true;
  });
  assert.equal(ioredisLoaded(), true, 'the first call loads ioredis');
  await assert.rejects(store.head('ch'), EventStoreError);
  await assert.rejects(store.readSince('ch', 0, 10), EventStoreError);
  assert.ok(Date.now() - started < 2000, `a down Redis makes calls fail promptly (took ${Date.now() - started} ms)`);
  await store.close();
  await assert.rejects(store.head('ch'), (error: unknown) => error instanceof EventStoreError && /closed/.test(error.message));
});

test('RedisEventStore: bad options are refused with InvalidOptionError', () => {
  for (const url of ['http://127.0.0.1:6379', 'not a url', 42]) {
    assert.throws(() => new RedisEventStore({ url: url as string }), InvalidOptionError, String(url));
  }
  assert.throws(() => new RedisEventStore({ keyPrefix: 'a{b}' }), InvalidOptionError);
  assert.throws(() => new RedisEventStore({ keyPrefix: 7 as unknown as string }), InvalidOptionError);
  new RedisEventStore({ url: 'rediss://user:secret@example.com:6380/2', keyPrefix: '' });
});

for (const harness of [memory, redis]) {
  describe(`EventStore contract: ${harness.name}`, () => {
    const setup = async (t: TestContext, options?: StoreOptions): Promise<EventStore | null> => {
      if (!(await harness.available(t))) return null;
      return harness.make(t, options);
    };

    test('the first append returns a positive safe integer; later appends continue consecutively', async (t) => {
      const store = await setup(t);
      if (store === null) return;
      const first = await store.append('ch', ['data: a\n']);
      assert.ok(Number.isSafeInteger(first) && first > 0, `first seq ${first}`);
      assert.equal(await store.append('ch', ['data: b\n', 'data: c\n', 'data: d\n']), first + 1);
      assert.equal(await store.append('ch', ['data: e\n']), first + 4);
      assert.equal(await store.head('ch'), first + 4);
    });

    test('readSince returns exactly the events after a position, in order, at most limit, with the head', async (t) => {
      const store = await setup(t);
      if (store === null) return;
      const texts = Array.from({ length: 8 }, (_, i) => `event: e${i}\ndata: ${i} with "quotes" / slashes \\ and ünïcode\n`);
      const first = await store.append('ch', texts.slice(0, 3));
      for (const text of texts.slice(3)) await store.append('ch', [text]);
      const head = first + 7;

      const all = await store.readSince('ch', first - 1, 100);
      assert.deepEqual(
        seqs(all),
        Array.from({ length: 8 }, (_, i) => first + i),
      );
      assert.deepEqual(bodies(all), texts);
      assert.equal(all.gap, false);
      assert.equal(all.head, head);

      const middle = await store.readSince('ch', first + 2, 3);
      assert.deepEqual(seqs(middle), [first + 3, first + 4, first + 5]);
      assert.deepEqual(bodies(middle), texts.slice(3, 6));
      assert.equal(middle.gap, false);
      assert.equal(middle.head, head);

      const last = await store.readSince('ch', head - 1, 10);
      assert.deepEqual(seqs(last), [head]);
      assert.equal(last.gap, false);
    });

    test('gap when history was trimmed by count (maxEvents)', async (t) => {
      const store = await setup(t, { maxEvents: 3 });
      if (store === null) return;
      const first = await store.append('ch', ['data: 0\n']);
      for (let i = 1; i < 5; i++) await store.append('ch', [`data: ${i}\n`]);
      await store.append(
        'ch',
        Array.from({ length: 5 }, (_, i) => `data: ${5 + i}\n`),
      );
      const head = first + 9;

      const fromStart = await store.readSince('ch', first - 1, 100);
      assert.deepEqual(seqs(fromStart), [head - 2, head - 1, head]);
      assert.deepEqual(bodies(fromStart), ['data: 7\n', 'data: 8\n', 'data: 9\n']);
      assert.equal(fromStart.gap, true);
      assert.equal(fromStart.head, head);

      assert.equal((await store.readSince('ch', head - 4, 100)).gap, true);
      const kept = await store.readSince('ch', head - 3, 100);
      assert.deepEqual(seqs(kept), [head - 2, head - 1, head]);
      assert.equal(kept.gap, false);
    });

    test('gap when history was trimmed by age (maxAge)', async (t) => {
      const store = await setup(t, { maxAge: 200 });
      if (store === null) return;
      const first = await store.append('ch', ['data: old 1\n', 'data: old 2\n']);
      await sleep(300);

      const expired = await store.readSince('ch', first - 1, 10);
      assert.deepEqual(expired.events, []);
      assert.equal(expired.gap, true);
      assert.equal(expired.head, first + 1);

      assert.equal(await store.append('ch', ['data: new\n']), first + 2);
      const acrossGap = await store.readSince('ch', first - 1, 10);
      assert.deepEqual(seqs(acrossGap), [first + 2]);
      assert.deepEqual(bodies(acrossGap), ['data: new\n']);
      assert.equal(acrossGap.gap, true);
      const noGap = await store.readSince('ch', first + 1, 10);
      assert.deepEqual(seqs(noGap), [first + 2]);
      assert.equal(noGap.gap, false);
    });

    test('after >= head: no events and no gap', async (t) => {
      const store = await setup(t);
      if (store === null) return;
      const first = await store.append('ch', ['data: a\n', 'data: b\n']);
      for (const position of [first + 1, first + 2, first + 1000]) {
        assert.deepEqual(await store.readSince('ch', position, 10), { events: [], gap: false, head: first + 1 });
      }
    });

    test('a channel never published to: reading from its head finds nothing, and its first event follows with no gap', async (t) => {
      const store = await setup(t);
      if (store === null) return;
      await store.append('known', ['data: x\n']);
      const head = await store.head('new');
      assert.ok(Number.isSafeInteger(head) && head >= 0, `head ${head}`);
      assert.ok(head > 0, 'a real point in the numbering, not 0: an id from before it is recognised as lost history');
      assert.equal(await store.head('another new'), head, 'every channel never published to stands at the same point');
      assert.deepEqual(await store.readSince('new', head, 10), { events: [], gap: false, head });
      assert.equal(await store.head('new'), head, 'looking does not move the head');
      const first = await store.append('new', ['data: first\n']);
      assert.equal(first, head + 1);
      assert.deepEqual(await store.readSince('new', head, 10), {
        events: [{ seq: first, body: 'data: first\n' }],
        gap: false,
        head: first,
      });
    });

    test('channels are independent', async (t) => {
      const store = await setup(t);
      if (store === null) return;
      const a1 = await store.append('a', ['data: a1\n']);
      const b1 = await store.append('b', ['data: b1\n', 'data: b2\n']);
      const a2 = await store.append('a', ['data: a2\n']);
      assert.equal(a2, a1 + 1, 'appends to b must not advance a');
      assert.equal(await store.head('a'), a1 + 1);
      assert.equal(await store.head('b'), b1 + 1);
      const pageA = await store.readSince('a', a1 - 1, 10);
      assert.deepEqual(bodies(pageA), ['data: a1\n', 'data: a2\n']);
      assert.equal(pageA.gap, false);
      const pageB = await store.readSince('b', b1 - 1, 10);
      assert.deepEqual(bodies(pageB), ['data: b1\n', 'data: b2\n']);
    });

    test('bad options are refused with InvalidOptionError', () => {
      for (const options of [{ maxEvents: -1 }, { maxEvents: 1.5 }, { maxAge: 0 }, { maxAge: '1000' }]) {
        assert.throws(() => harness.construct(options), InvalidOptionError, JSON.stringify(options));
      }
      harness.construct({ maxEvents: 0, maxAge: 1 });
    });
  });
}
