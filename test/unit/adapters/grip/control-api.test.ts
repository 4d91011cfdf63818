import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import {
  groupItems,
  MAX_ITEMS_PER_REQUEST,
  MAX_PUBLISH_BODY_BYTES,
  packBodies,
  publishToProxy,
  serializeItems,
} from '../../../../src/adapters/grip/control-api.js';
import { type GripProxy, resolveGripProxies } from '../../../../src/adapters/grip/proxy-config.js';
import { ProxyQueue } from '../../../../src/adapters/grip/proxy-queue.js';
import { StreamMetrics } from '../../../../src/common/metrics.js';
import { EventStreamClosedError, GripPublishError } from '../../../../src/errors.js';
import { singleChannelText } from '../../../../src/sse/event-text.js';
import type { StoredEvent } from '../../../../src/types.js';
import { deferred } from '../../../helpers/deferred.js';
import { type FakeControlApi, failWith, hold, startControlApi } from '../../../helpers/fake-control-api.js';
import { until } from '../../../helpers/sse-client.js';

function events(from: number, count: number, body = (seq: number) => `data: ${seq}\n`): StoredEvent[] {
  return Array.from({ length: count }, (_, i) => ({ seq: from + i, body: body(from + i) }));
}

async function controlApi(t: TestContext, behaviour = hold): Promise<{ api: FakeControlApi; proxy: GripProxy }> {
  const api = await startControlApi(behaviour);
  t.after(() => api.close());
  const [proxy] = resolveGripProxies({ control_uri: api.url, key: 'test-key' }) as [GripProxy];
  return { api, proxy };
}

const neverClosing = new AbortController().signal;

test('control API: consecutive events make one item whose content is their stream text; a gap in the numbering starts a new item', () => {
  const batch = [...events(5, 3), ...events(20, 2)];
  const items = groupItems('room', batch);
  assert.deepEqual(items, [
    { id: 7, prevId: 4, content: singleChannelText('room', events(5, 3)) },
    { id: 21, prevId: 19, content: singleChannelText('room', events(20, 2)) },
  ]);
  assert.deepEqual(groupItems('room', []), []);
});

test('control API: an item carries at most 128 Ki characters of events; a larger single event is an item alone', () => {
  const big = (seq: number): string => `data: ${'x'.repeat(50_000)}${seq}\n`;
  const items = groupItems('c', events(1, 5, big));
  assert.deepEqual(
    items.map((item) => [item.prevId, item.id]),
    [
      [0, 2],
      [2, 4],
      [4, 5],
    ],
  );
  const huge = groupItems('c', [{ seq: 1, body: `data: ${'y'.repeat(300_000)}\n` }]);
  assert.equal(huge.length, 1);
});

test('control API: items serialize as control-API JSON, with id and prev-id only in reliable mode', () => {
  const [item] = groupItems('room', events(3, 1));
  assert.deepEqual(serializeItems('pre-room', [item!], false), [
    '{"channel":"pre-room","formats":{"http-stream":{"content":"data: 3\\nid: room:3\\n\\n"}}}',
  ]);
  assert.deepEqual(serializeItems('pre-room', [item!], true), [
    '{"channel":"pre-room","id":"3","prev-id":"2","formats":{"http-stream":{"content":"data: 3\\nid: room:3\\n\\n"}}}',
  ]);
  for (const json of serializeItems('a"b', [item!], true)) assert.equal((JSON.parse(json) as { channel: string }).channel, 'a"b');
});

test('control API: bodies hold at most 64 items and stay under 1,000,000 bytes, in order', () => {
  const small = Array.from({ length: 150 }, (_, i) => `{"n":${i}}`);
  const bodies = packBodies(small);
  const parsed = bodies.map((body) => (JSON.parse(body) as { items: Array<{ n: number }> }).items.map((item) => item.n));
  assert.deepEqual(
    parsed.map((items) => items.length),
    [MAX_ITEMS_PER_REQUEST, MAX_ITEMS_PER_REQUEST, 150 - 2 * MAX_ITEMS_PER_REQUEST],
  );
  assert.deepEqual(
    parsed.flat(),
    small.map((_, i) => i),
  );

  const large = Array.from({ length: 5 }, (_, i) => `{"n":${i},"pad":"${'p'.repeat(300_000)}"}`);
  const largeBodies = packBodies(large);
  assert.deepEqual(
    largeBodies.map((body) => (JSON.parse(body) as { items: unknown[] }).items.length),
    [3, 2],
  );
  for (const body of largeBodies) assert.ok(Buffer.byteLength(body) < MAX_PUBLISH_BODY_BYTES);
  assert.deepEqual(packBodies([]), []);
});

test('control API: a publish of 150 items is three POSTs one after another, signed, each waiting for the answer before', async (t) => {
  const { api, proxy } = await controlApi(t);
  const items = Array.from({ length: 150 }, (_, i) => ({ id: i + 1, prevId: i, content: `data: ${i + 1}\n\n` }));
  let settled = false;
  const publish = publishToProxy(proxy, 'room', items, true, 5000, neverClosing).finally(() => {
    settled = true;
  });
  for (let request = 1; request <= 3; request++) {
    await until(() => api.requests.length === request, 5000, `request ${request} arrived`);
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(api.requests.length, request, 'the next request waits for this answer');
    assert.equal(api.held().length, 1);
    assert.equal(settled, false);
    api.requests[request - 1]!.answer(200);
  }
  await publish;
  assert.deepEqual(
    api.requests.map((request) => request.items.length),
    [64, 64, 22],
  );
  assert.deepEqual(
    api.requests.flatMap((request) => request.items.map((item) => [item.id, item.prevId])),
    items.map((item) => [String(item.id), String(item.prevId)]),
  );
  const request = api.requests[0]!.req;
  assert.equal(request.method, 'POST');
  assert.equal(request.url, '/publish/');
  assert.equal(request.headers['content-type'], 'application/json');
  assert.equal(request.headers.authorization, 'Bearer test-key');
});

test('control API: a refusal is a GripPublishError with the status and body; the rest of the bodies are not sent', async (t) => {
  const { api, proxy } = await controlApi(t, failWith(500, 'broken\n'));
  const items = Array.from({ length: 100 }, (_, i) => ({ id: i + 1, prevId: i, content: 'data: x\n\n' }));
  await assert.rejects(publishToProxy(proxy, 'room', items, false, 5000, neverClosing), (error: unknown) => {
    assert.ok(error instanceof GripPublishError);
    assert.equal(error.status, 500);
    assert.equal(error.body, 'broken\n');
    assert.equal(error.proxy, `${api.url}/publish/`);
    assert.match(error.message, /HTTP 500: broken/);
    return true;
  });
  assert.equal(api.requests.length, 1);
});

test('control API: no answer within the timeout is a GripPublishError with status -1; closing aborts with its own reason', async (t) => {
  const { api, proxy } = await controlApi(t);
  const item = [{ id: 1, prevId: 0, content: 'data: x\n\n' }];
  await assert.rejects(publishToProxy(proxy, 'room', item, false, 100, neverClosing), (error: unknown) => {
    assert.ok(error instanceof GripPublishError);
    assert.equal(error.status, -1);
    assert.match(error.message, /timed out: no answer within 100 ms/);
    return true;
  });

  const closing = new AbortController();
  const pending = publishToProxy(proxy, 'room', item, false, 60_000, closing.signal);
  await until(() => api.requests.length === 2, 5000, 'the second request arrived');
  const reason = new EventStreamClosedError();
  closing.abort(reason);
  await assert.rejects(pending, (error: unknown) => error === reason);
  await until(() => api.requests[1]!.aborted, 5000, 'the request in flight was abandoned');
  await assert.rejects(publishToProxy(proxy, 'room', item, false, 100, closing.signal), (error: unknown) => error === reason);
  assert.equal(api.requests.length, 2, 'nothing is sent once closed');
});

test('proxy queue: one exchange per channel in flight; batches that wait travel together in the next, and each learns its outcome', async (t) => {
  const { api, proxy } = await controlApi(t);
  const queue = new ProxyQueue(
    proxy,
    { gripChannel: (channel) => `p-${channel}`, reliable: true, timeoutMs: 5000, metrics: new StreamMetrics() },
    neverClosing,
  );
  const outcomes: Array<[string, Error | null]> = [];
  const done = (name: string) => (error: Error | null) => void outcomes.push([name, error]);

  queue.enqueue('room', events(1, 2), done('room 1-2'));
  queue.enqueue('other', events(1, 1), done('other 1'));
  await until(() => api.requests.length === 2, 5000, 'both channels have an exchange in flight');
  queue.enqueue('room', events(3, 1), done('room 3'));
  queue.enqueue('room', events(4, 2), done('room 4-5'));
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(api.requests.length, 2, 'room waits for its exchange in flight');

  const roomFirst = api.requests.find((request) => request.items[0]!.channel === 'p-room')!;
  roomFirst.answer(200);
  await until(() => api.requests.length === 3, 5000, "room's waiting batches went out");
  assert.deepEqual(api.requests[2]!.items, [{ channel: 'p-room', id: '5', prevId: '2', data: ['3', '4', '5'] }]);
  assert.deepEqual(outcomes, [['room 1-2', null]]);

  api.requests[2]!.answer(503, 'busy');
  await until(() => outcomes.length === 3, 5000, 'the carried batches settled');
  assert.equal(outcomes[1]![0], 'room 3');
  assert.equal(outcomes[2]![0], 'room 4-5');
  assert.equal(outcomes[1]![1], outcomes[2]![1], 'both learn the one exchange that carried them');
  assert.ok(outcomes[1]![1] instanceof GripPublishError && outcomes[1]![1].status === 503);

  api.release();
  await until(() => outcomes.length === 4, 5000, 'the other channel settled');
  assert.deepEqual(outcomes[3], ['other 1', null]);

  // Idle again: the next batch goes out at once.
  const next = deferred<Error | null>();
  queue.enqueue('room', events(6, 1), next.resolve);
  assert.equal(await next.promise, null);
  assert.equal(api.requests.length, 4);
});

test('proxy queue: a failure signing the request is still a GripPublishError of that proxy', async (t) => {
  const { api } = await controlApi(t);
  const [proxy] = resolveGripProxies({ control_uri: api.url }) as [GripProxy];
  const broken: GripProxy = {
    ...proxy,
    client: Object.assign(Object.create(Object.getPrototypeOf(proxy.client) as object) as GripProxy['client'], proxy.client, {
      getAuth: () => ({ buildHeader: () => Promise.reject(new Error('no key today')) }),
    }),
  };
  const queue = new ProxyQueue(
    broken,
    { gripChannel: (channel) => channel, reliable: false, timeoutMs: 5000, metrics: new StreamMetrics() },
    neverClosing,
  );
  const outcome = deferred<Error | null>();
  queue.enqueue('room', events(1, 1), outcome.resolve);
  const error = await outcome.promise;
  assert.ok(error instanceof GripPublishError);
  assert.equal(error.status, -1);
  assert.match(error.message, /no key today/);
  assert.equal(api.requests.length, 0);
});
