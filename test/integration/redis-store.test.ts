import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { type TestContext, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { EventStoreError } from '../../src/errors.js';
import { RedisEventStore, type RedisEventStoreOptions } from '../../src/redis.js';
import type { StoredEvent, StoreWatch } from '../../src/types.js';
import { redisForFile, requireRedis, startRedis, uniqueKeyPrefix } from '../helpers/redis.js';

/**
 * RedisEventStore against a real redis-server. Two store instances on one
 * Redis stand in for two processes.
 */

const sharedRedis = redisForFile();

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Stores on one Redis with one fresh prefix, closed after the test. */
function stores(t: TestContext, count: number, options: RedisEventStoreOptions & { url: string }): RedisEventStore[] {
  const keyPrefix = options.keyPrefix ?? uniqueKeyPrefix('redis-store');
  const list = Array.from({ length: count }, () => new RedisEventStore({ ...options, keyPrefix }));
  t.after(() => Promise.all(list.map((store) => store.close())));
  return list;
}

/** A raw client for what the store never does itself (appending without a PUBLISH, inspecting pub/sub). */
function rawClient(t: TestContext, url: string): Redis {
  const client = new Redis(url);
  t.after(() => client.quit());
  return client;
}

interface Recorded {
  readonly watch: StoreWatch;
  readonly events: StoredEvent[];
  /** How many listener calls delivered an empty batch (never allowed). */
  empty: number;
  waitFor(count: number, timeoutMs?: number): Promise<void>;
}

function record(store: RedisEventStore, channel: string): Recorded {
  const events: StoredEvent[] = [];
  const recorded: Recorded = {
    events,
    empty: 0,
    watch: store.watch(channel, (batch) => {
      if (batch.length === 0) recorded.empty++;
      events.push(...batch);
    }),
    async waitFor(count, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      while (events.length < count) {
        if (Date.now() > deadline) {
          assert.fail(`expected ${count} events, got ${events.length}: ${JSON.stringify(events.map((event) => event.seq))}`);
        }
        await sleep(10);
      }
    },
  };
  return recorded;
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

/**
 * Starts the prefix's numbering at 0 instead of at Redis's clock, so a test
 * can name seqs 1, 2, 3 (the store keeps whatever epoch it finds).
 */
async function pinEpoch(client: Redis, keyPrefix: string): Promise<void> {
  await client.set(`${keyPrefix}epoch`, '0');
}

/** Appends events the way the store does, but without announcing them: a stand-in for a lost pub/sub message. */
async function appendSilently(
  client: Redis,
  keyPrefix: string,
  channel: string,
  bodies: string[],
  maxLen?: number,
): Promise<number> {
  const seqKey = `${keyPrefix}{${channel}}:seq`;
  const logKey = `${keyPrefix}{${channel}}:log`;
  const last = await client.incrby(seqKey, bodies.length);
  const first = last - bodies.length + 1;
  for (const [i, body] of bodies.entries()) {
    const trim: string[] = maxLen === undefined ? [] : ['MAXLEN', String(maxLen)];
    await client.call('XADD', logKey, ...trim, `0-${first + i}`, 't', String(Date.now()), 'b', body);
  }
  return first;
}

test('a watch on one instance receives every event appended on either, in the same seq order as a watch on the other', async (t) => {
  if (!requireRedis(t)) return;
  const [a, b] = stores(t, 2, { url: sharedRedis.url });
  const onA = record(a!, 'ch');
  const onB = record(b!, 'ch');
  // A channel never published to: both instances start from the store's epoch.
  const base = await onA.watch.ready;
  assert.ok(Number.isSafeInteger(base) && base > 0, `epoch ${base}`);
  assert.equal(await onB.watch.ready, base);

  const appended = new Map<number, string>();
  await Promise.all(
    Array.from({ length: 40 }, async (_, i) => {
      const store = i % 2 === 0 ? a! : b!;
      const bodies = Array.from({ length: (i % 3) + 1 }, (_, j) => `data: ${store === a ? 'A' : 'B'} ${i}.${j}\n`);
      const first = await store.append('ch', bodies);
      for (const [j, body] of bodies.entries()) appended.set(first + j, body);
    }),
  );
  const total = appended.size;
  await onA.waitFor(total);
  await onB.waitFor(total);
  await sleep(100); // Anything delivered twice would show up by now.

  assert.deepEqual(
    onB.events.map((event) => event.seq),
    range(base + 1, base + total),
  );
  assert.deepEqual(onA.events, onB.events, 'both instances deliver the same events in the same order');
  for (const event of onB.events) assert.equal(event.body, appended.get(event.seq));
  assert.ok(onB.events.some((event) => event.body.includes('A')) && onB.events.some((event) => event.body.includes('B')));
  assert.equal(onA.empty + onB.empty, 0);
});

test('concurrent appends from two instances get distinct, consecutive seqs', async (t) => {
  if (!requireRedis(t)) return;
  const [a, b] = stores(t, 2, { url: sharedRedis.url });
  const base = await a!.head('ch');
  const sizes = Array.from({ length: 100 }, (_, i) => (i % 4) + 1);
  const firsts = await Promise.all(
    sizes.map((size, i) =>
      (i % 2 === 0 ? a! : b!).append(
        'ch',
        Array.from({ length: size }, () => 'data: x\n'),
      ),
    ),
  );
  const seqs = firsts.flatMap((first, i) => range(first, first + sizes[i]! - 1)).sort((x, y) => x - y);
  const total = sizes.reduce((sum, size) => sum + size, 0);
  assert.deepEqual(seqs, range(base + 1, base + total));
  assert.equal(await a!.head('ch'), base + total);
  assert.equal(await b!.head('ch'), base + total);
});

test('a watch starts at the head: events appended before it are not delivered, events after are', async (t) => {
  if (!requireRedis(t)) return;
  const [a, b] = stores(t, 2, { url: sharedRedis.url });
  const first = await a!.append('ch', ['data: before 1\n', 'data: before 2\n']);
  const watcher = record(b!, 'ch');
  assert.equal(await watcher.watch.ready, first + 1);
  await a!.append('ch', ['data: after\n']);
  await watcher.waitFor(1);
  await sleep(50);
  assert.deepEqual(watcher.events, [{ seq: first + 2, body: 'data: after\n' }]);
});

test('a missed pub/sub message is filled from the log: in order, none twice, no gap', async (t) => {
  if (!requireRedis(t)) return;
  const keyPrefix = uniqueKeyPrefix('redis-store');
  const [a, b] = stores(t, 2, { url: sharedRedis.url, keyPrefix });
  const raw = rawClient(t, sharedRedis.url);
  await pinEpoch(raw, keyPrefix);
  const watcher = record(b!, 'ch');
  await watcher.watch.ready;

  await a!.append('ch', ['data: 1\n']);
  await watcher.waitFor(1);
  // Two events whose message never comes, then an ordinary append.
  assert.equal(await appendSilently(raw, keyPrefix, 'ch', ['data: 2\n', 'data: 3\n']), 2);
  assert.equal(await a!.append('ch', ['data: 4\n']), 4);
  await watcher.waitFor(4);

  // A later message arriving first: 5 and 6 appended silently, 6 announced before 5.
  assert.equal(await appendSilently(raw, keyPrefix, 'ch', ['data: 5\n', 'data: 6\n']), 5);
  const feed = `${keyPrefix}{ch}:feed`;
  await raw.publish(feed, JSON.stringify([6, ['data: 6\n']]));
  await watcher.waitFor(6);
  await raw.publish(feed, JSON.stringify([5, ['data: 5\n']]));
  await raw.publish(feed, 'not a message of ours');
  assert.equal(await a!.append('ch', ['data: 7\n']), 7);
  await watcher.waitFor(7);
  // A message overlapping what was delivered: only its new part (8) is.
  assert.equal(await appendSilently(raw, keyPrefix, 'ch', ['data: 8\n']), 8);
  await raw.publish(feed, JSON.stringify([7, ['data: 7\n', 'data: 8\n']]));
  await watcher.waitFor(8);
  await sleep(100);

  assert.deepEqual(
    watcher.events,
    range(1, 8).map((seq) => ({ seq, body: `data: ${seq}\n` })),
  );
  assert.equal(watcher.empty, 0);
});

test('a gap that history no longer covers is skipped, and delivery carries on', async (t) => {
  if (!requireRedis(t)) return;
  const keyPrefix = uniqueKeyPrefix('redis-store');
  const [a, b] = stores(t, 2, { url: sharedRedis.url, keyPrefix, maxEvents: 3 });
  const raw = rawClient(t, sharedRedis.url);
  await pinEpoch(raw, keyPrefix);
  const watcher = record(b!, 'ch');
  await watcher.watch.ready;
  await a!.append('ch', ['data: 1\n']);
  await watcher.waitFor(1);
  // 2..11 never announced, and the log keeps only the last 3 of them.
  await appendSilently(
    raw,
    keyPrefix,
    'ch',
    range(2, 11).map((seq) => `data: ${seq}\n`),
    3,
  );
  await a!.append('ch', ['data: 12\n']);
  await watcher.waitFor(4);
  await a!.append('ch', ['data: 13\n']);
  await watcher.waitFor(5);
  await sleep(50);
  // The gap is filled as a resuming client would read it: with the head at 12, maxEvents 3 keeps 10, 11 and 12.
  assert.deepEqual(
    watcher.events.map((event) => event.seq),
    [1, 10, 11, 12, 13],
  );
  for (const event of watcher.events) assert.equal(event.body, `data: ${event.seq}\n`);
});

test('watches on one channel share a subscription; the last close unsubscribes and stops delivery', async (t) => {
  if (!requireRedis(t)) return;
  const keyPrefix = uniqueKeyPrefix('redis-store');
  const [a, b] = stores(t, 2, { url: sharedRedis.url, keyPrefix });
  const raw = rawClient(t, sharedRedis.url);
  await pinEpoch(raw, keyPrefix);
  const feed = `${keyPrefix}{ch}:feed`;
  const subscribers = async (): Promise<number> => Number(((await raw.pubsub('NUMSUB', feed)) as [string, number])[1]);

  const first = record(b!, 'ch');
  const second = record(b!, 'ch');
  await Promise.all([first.watch.ready, second.watch.ready]);
  assert.equal(await subscribers(), 1, 'one SUBSCRIBE for two watches of one instance');

  await a!.append('ch', ['data: 1\n']);
  await Promise.all([first.waitFor(1), second.waitFor(1)]);
  first.watch.close();
  await a!.append('ch', ['data: 2\n']);
  await second.waitFor(2);
  assert.equal(await subscribers(), 1);

  second.watch.close();
  // UNSUBSCRIBE is sent without waiting; PUBSUB answers from the server's view.
  for (let i = 0; i < 100 && (await subscribers()) > 0; i++) await sleep(10);
  assert.equal(await subscribers(), 0);
  await a!.append('ch', ['data: 3\n']);
  await sleep(100);
  assert.deepEqual(
    first.events.map((event) => event.seq),
    [1],
  );
  assert.deepEqual(
    second.events.map((event) => event.seq),
    [1, 2],
  );

  // A new watch after the last one left subscribes again.
  const third = record(b!, 'ch');
  assert.equal(await third.watch.ready, 3);
  await a!.append('ch', ['data: 4\n']);
  await third.waitFor(1);
  assert.deepEqual(
    third.events.map((event) => event.seq),
    [4],
  );
});

test('Redis restart: calls fail promptly while it is down, then appends work again and an existing watch misses nothing', async (t) => {
  if (!requireRedis(t)) return;
  const server = await startRedis({ appendOnly: true });
  t.after(() => server.stop());
  // Its own server, so the default prefix is fine, and a store created later shares it.
  const [a, b] = stores(t, 2, { url: server.url, keyPrefix: 'eventstream:' });
  await pinEpoch(rawClient(t, server.url), 'eventstream:');
  const watcher = record(b!, 'ch');
  await watcher.watch.ready;
  await a!.append('ch', ['data: 1\n', 'data: 2\n']);
  await watcher.waitFor(2);

  await server.restart(async () => {
    // Both stores notice the closed connections first.
    await sleep(100);
    const started = Date.now();
    await assert.rejects(a!.append('ch', ['data: lost\n']), (error: unknown) => {
      assert.ok(error instanceof EventStoreError, String(error));
      assert.match(error.message, /append failed: .*(not connected|ECONNREFUSED|closed)/);
      assert.ok(error.cause !== undefined);
      return true;
    });
    await assert.rejects(b!.readSince('ch', 0, 10), EventStoreError);
    await assert.rejects(b!.head('ch'), EventStoreError);
    const newWatch = b!.watch('other', () => {});
    await assert.rejects(newWatch.ready, EventStoreError);
    assert.ok(Date.now() - started < 2000, `rejected within 2 s (took ${Date.now() - started} ms)`);
  });

  // A process that connects right after the restart appends while B's subscriber still waits out its reconnect
  // backoff, so pub/sub cannot bring these: only B catching up from the log on reconnecting can.
  const [c] = stores(t, 1, { url: server.url, keyPrefix: 'eventstream:' });
  assert.equal(
    await c!.append('ch', ['data: 3\n']),
    3,
    'the counter survived the restart (AOF); the failed append stored nothing',
  );
  for (let seq = 4; seq <= 6; seq++) assert.equal(await c!.append('ch', [`data: ${seq}\n`]), seq);
  await watcher.waitFor(6, 10_000);

  // A reconnects by itself too (within its backoff cap of a second).
  let seven = -1;
  const deadline = Date.now() + 10_000;
  while (seven === -1) {
    try {
      seven = await a!.append('ch', ['data: 7\n']);
    } catch (error) {
      assert.ok(error instanceof EventStoreError);
      if (Date.now() > deadline) throw error;
      await sleep(50);
    }
  }
  assert.equal(seven, 7);
  await watcher.waitFor(7);
  await sleep(200);
  assert.deepEqual(
    watcher.events,
    range(1, 7).map((seq) => ({ seq, body: `data: ${seq}\n` })),
  );
  assert.equal(watcher.empty, 0);
});

test('close() releases everything: a process that used stores (one connected and watching, one never reaching Redis) exits by itself', async (t) => {
  if (!requireRedis(t)) return;
  const storeModule = fileURLToPath(new URL('../../src/redis.ts', import.meta.url));
  const script = `
    const { RedisEventStore } = await import(${JSON.stringify(storeModule)});
    const up = new RedisEventStore({ url: ${JSON.stringify(sharedRedis.url)}, keyPrefix: 'exit-test:' });
    const down = new RedisEventStore({ url: 'redis://127.0.0.1:1' });
    const received = [];
    const watch = up.watch('ch', (events) => received.push(...events));
    await watch.ready;
    await up.append('ch', ['data: x\\n']);
    while (received.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    await down.append('ch', ['data: x\\n']).catch(() => {});
    down.watch('ch', () => {}).ready.catch(() => {});
    await new Promise((resolve) => setTimeout(resolve, 300)); // both of down's connections are now retrying
    await Promise.all([up.close(), down.close()]);
    await up.append('ch', ['data: y\\n']).then(() => process.exit(3), () => {});
    console.log('closed ' + received.length);
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const started = Date.now();
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  clearTimeout(timer);
  assert.equal(code, 0, `the process did not exit by itself (code ${code}):\n${output}`);
  assert.match(output, /closed 1/);
  assert.ok(Date.now() - started < 10_000);
});

test("Redis loses its data: a watch reports the loss with the new generation's head, the next append follows it, and no seq is handed out twice", async (t) => {
  if (!requireRedis(t)) return;
  const server = await startRedis();
  t.after(() => server.stop());
  const [a, b] = stores(t, 2, { url: server.url });
  const losses: number[] = [];
  const events: StoredEvent[] = [];
  const watch = b!.watch(
    'ch',
    (batch) => events.push(...batch),
    (position) => losses.push(position),
  );
  await watch.ready;
  const first = await a!.append('ch', ['data: 1\n', 'data: 2\n']);
  while (events.length < 2) await sleep(10);
  assert.deepEqual(losses, []);

  await server.crash(() => sleep(100));
  // B's subscriber reconnects and catches up: the history it had not delivered (none) and the lost generation are behind it.
  const deadline = Date.now() + 10_000;
  while (losses.length === 0) {
    assert.ok(Date.now() < deadline, 'the loss was never reported');
    await sleep(20);
  }
  assert.equal(losses.length, 1);
  assert.ok(losses[0]! > first + 1, `the new head ${losses[0]} is above every seq of the lost generation`);
  let next = -1;
  while (next === -1) {
    next = await a!.append('ch', ['data: 3\n']).catch(() => -1);
    if (next === -1) await sleep(50);
  }
  assert.equal(next, losses[0]! + 1, 'the first event of the new generation follows the reported position');
  while (events.length < 3) await sleep(10);
  assert.deepEqual(
    events.map((event) => event.seq),
    [first, first + 1, next],
  );
  assert.equal(await b!.head('ch'), next);
});
