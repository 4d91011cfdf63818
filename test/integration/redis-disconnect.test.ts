// disconnect() across processes sharing a real Redis: it resolves once every process ended its streams
// on the channel (each was told stream-close first); a process killed with SIGKILL does not hold it up;
// with Redis down it rejects with EventStoreError.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EventStream } from '../../src/index.js';
import { RedisEventStore } from '../../src/redis.js';
import { forkAppProcess } from '../helpers/app-process.js';
import { redisForFile, requireRedis, uniqueKeyPrefix } from '../helpers/redis.js';
import { cleanups } from '../helpers/requirements.js';
import { listen } from '../helpers/server.js';
import { openRaw, parseAll, until } from '../helpers/sse-client.js';

const SSE = { accept: 'text/event-stream' };
const sharedRedis = redisForFile();

function closes(text: string): unknown[] {
  return parseAll(text)
    .filter((event) => event.event === 'stream-close')
    .map((event) => JSON.parse(event.data));
}

async function localProcess(defer: (fn: () => unknown) => void, storeOptions: { url: string; keyPrefix: string }) {
  const store = new RedisEventStore(storeOptions);
  const eventStream = new EventStream({ store });
  const server = await listen((req, res) => void eventStream.run(req, res, (req.url ?? '/').slice('/events/'.length).split('+')));
  defer(async () => {
    await eventStream.close();
    await store.close();
    await server.close();
  });
  return { eventStream, store, url: server.url };
}

/** Process A (an EventStream here) and process B (a forked app process) on one fresh Redis key prefix. */
async function twoProcesses(defer: (fn: () => unknown) => void) {
  const storeOptions = { url: sharedRedis.url, keyPrefix: uniqueKeyPrefix('disconnect') };
  const a = await localProcess(defer, storeOptions);
  const b = await forkAppProcess();
  defer(() => b.close());
  await b.configure({ redisStore: storeOptions });
  return { a, b };
}

test('disconnect in one process ends the channel’s streams in every process sharing the Redis store, and resolves after', {
  timeout: 60_000,
}, async (t) => {
  if (!requireRedis(t)) return;
  const defer = cleanups(t);
  const { a, b } = await twoProcesses(defer);

  // A serves `/events/a+b` on channels a and b; B serves one channel per path.
  const onA = await openRaw(`${a.url}/events/user-7+news`, SSE);
  const onB = await openRaw(`${b.url}/events/user-7`, SSE);
  const againOnB = await openRaw(`${b.url}/events/user-7`, SSE);
  const newsOnB = await openRaw(`${b.url}/events/news`, SSE);
  defer(() => newsOnB.close());
  await until(() => [onA, onB, againOnB, newsOnB].every((stream) => stream.text().includes('stream-open')));
  assert.equal((await b.counts()).streams, 3);

  await a.eventStream.disconnect('user-7', { reason: 'revoked' });
  // Resolved: process B had already ended its two streams on the channel, and kept the other; A ended its
  // stream on user-7 and news, since a stream ends whole.
  assert.equal((await b.counts()).streams, 1);
  assert.equal(a.eventStream.stats().streams, 0);
  for (const stream of [onA, onB, againOnB]) {
    await until(() => stream.res.complete, 5000, 'the stream to end');
    assert.deepEqual(closes(stream.text()), [{ reason: 'revoked' }]);
  }
  await b.publish('news', { data: 'still here' });
  await until(() => newsOnB.text().includes('still here'));
  assert.deepEqual(closes(newsOnB.text()), []);
});

test('a process killed with SIGKILL does not hold a disconnect up: it no longer counts as a receiver', {
  timeout: 60_000,
}, async (t) => {
  if (!requireRedis(t)) return;
  const defer = cleanups(t);
  const { a, b } = await twoProcesses(defer);
  const onB = await openRaw(`${b.url}/events/gone`, SSE);
  await until(() => onB.text().includes('stream-open'));
  await b.kill('SIGKILL');
  await until(() => onB.res.destroyed || onB.res.complete, 5000, 'the killed process to drop its client');
  const started = Date.now();
  await a.eventStream.disconnect('gone');
  assert.ok(Date.now() - started < 3000, `resolved in ${Date.now() - started} ms`);
});

test('with Redis out of reach, disconnect rejects with EventStoreError instead of pretending', { timeout: 30_000 }, async (t) => {
  const defer = cleanups(t);
  const a = await localProcess(defer, { url: 'redis://127.0.0.1:1', keyPrefix: uniqueKeyPrefix('disconnect') });
  await assert.rejects(() => a.eventStream.disconnect('nowhere'), { code: 'ERR_EVENTSTREAM_STORE' });
});
