import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { test } from 'node:test';
import { EventStream, type WebEventStreamHandler } from '../../../../src/index.js';
import { listen } from '../../../helpers/server.js';
import { get, RecordingEventSource, until } from '../../../helpers/sse-client.js';

/** What fetch-style servers (Next.js App Router, Hono's node adapter) do: Request in, Response out, abort on disconnect. */
function serveFetch(handler: (request: Request) => Promise<Response>) {
  return async (req: IncomingMessage, res: ServerResponse) => {
    const aborter = new AbortController();
    res.on('close', () => aborter.abort());
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
      if (typeof value === 'string') headers.set(name, value);
    }
    const response = await handler(new Request(`http://127.0.0.1${req.url}`, { headers, signal: aborter.signal }));
    res.writeHead(response.status, Object.fromEntries(response.headers));
    if (response.body === null) {
      res.end();
      return;
    }
    const reader = response.body.getReader();
    aborter.signal.addEventListener('abort', () => void reader.cancel().catch(() => {}));
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        res.write(value);
      }
      res.end();
    } catch {
      res.destroy();
    }
  };
}

test('fetchHandler: events reach a real EventSource; {id} comes from context.params, then the query', async () => {
  const eventStream = new EventStream();
  const byParams: WebEventStreamHandler = eventStream.fetchHandler('{id}');
  const byQuery = eventStream.fetchHandler('{room}');
  const server = await listen(
    serveFetch((request) => {
      const url = new URL(request.url);
      if (url.pathname.startsWith('/stream/')) {
        // Next.js 15+ passes params as a promise.
        return byParams(request, { params: Promise.resolve({ id: url.pathname.slice('/stream/'.length) }) });
      }
      return byQuery(request);
    }),
  );
  const routed = new RecordingEventSource(`${server.url}/stream/web-1`);
  const queried = new RecordingEventSource(`${server.url}/q?room=web-1`);
  await Promise.all([routed.opened, queried.opened]);
  await eventStream.publishEvent('web-1', { event: 'message', data: { n: 1 } });
  await eventStream.publishEvent('web-1', { event: 'message', data: { n: 2 } });
  await Promise.all([routed.waitFor(2), queried.waitFor(2)]);
  assert.deepEqual(
    routed.events.map((e) => JSON.parse(e.data).n),
    [1, 2],
  );
  assert.deepEqual(
    queried.events.map((e) => JSON.parse(e.data).n),
    [1, 2],
  );

  const bad = await get(`${server.url}/stream/a%2Cb`);
  assert.equal(bad.status, 400);
  assert.match(bad.body, /Invalid channel/);
  const missing = await get(`${server.url}/q`);
  assert.equal(missing.status, 400);
  const refused = await get(`${server.url}/stream/ok`, { accept: 'application/json' });
  assert.equal(refused.status, 406);

  routed.close();
  queried.close();
  // The client's disconnect aborts request.signal, which releases the stream, its hubs and listeners.
  await until(() => eventStream.stats().streams === 0, 5000, 'web streams released');
  assert.equal(eventStream.stats().hubs, 0);
  await server.close();
  await eventStream.close();
});

test('respond(): the Response has the SSE headers and a body fed by the hub; cancelling it releases the stream', async () => {
  const eventStream = new EventStream();
  const response = await eventStream.respond(new Request('http://x/'), ['web-a', 'web-b']);
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('content-type'), 'text/event-stream; charset=utf-8');
  assert.equal(response.headers.get('cache-control'), 'no-cache, no-transform');
  assert.equal(response.headers.get('connection'), null);
  assert.deepEqual(eventStream.stats().channels, { 'web-a': 1, 'web-b': 1 });

  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  const readUntil = async (needle: string, from = 0) => {
    while (!text.includes(needle, from)) {
      const { value, done } = await reader.read();
      if (done) throw new Error('body ended early');
      text += decoder.decode(value, { stream: true });
    }
  };
  await readUntil('event: stream-open\ndata: \n');
  eventStream.publishEvent('web-a', { event: 'a', data: 1 });
  eventStream.publishEvent('web-b', { event: 'b', data: 2 });
  await readUntil('data: 2\n');
  await readUntil('\n\n', text.indexOf('data: 2\n'));
  // A stream on two channels: each id names the position in both.
  const wire =
    /^event: stream-open\ndata: \nid: web-a:(\d+),web-b:(\d+)\n\nevent: a\ndata: 1\nid: web-a:(\d+),web-b:(\d+)\n\nevent: b\ndata: 2\nid: web-a:(\d+),web-b:(\d+)\n\n$/;
  const ids = wire.exec(text)?.slice(1).map(Number);
  assert.ok(ids, text);
  const [a0, b0, a1, b1, a2, b2] = ids;
  assert.deepEqual([a1, b1, a2, b2], [a0! + 1, b0, a0! + 1, b0! + 1]);

  await reader.cancel();
  assert.equal(eventStream.stats().streams, 0);
  assert.deepEqual(eventStream.stats().channels, {});
  await eventStream.close();
});

test('a web request that is already aborted, or bad, opens nothing', async () => {
  const eventStream = new EventStream();
  const aborter = new AbortController();
  aborter.abort();
  const response = await eventStream.respond(new Request('http://x/', { signal: aborter.signal }), 'gone');
  assert.equal(response.status, 200);
  await until(() => eventStream.stats().streams === 0);
  const bad = await eventStream.respond(new Request('http://x/'), 'bad channel');
  assert.equal(bad.status, 400);
  assert.equal(bad.headers.get('content-type'), 'text/plain; charset=utf-8');
  assert.match(await bad.text(), /Invalid channel/);
  await eventStream.close();
  const closed = await eventStream.respond(new Request('http://x/'), 'late');
  assert.equal(closed.status, 200);
  assert.equal(closed.headers.get('content-type'), 'text/event-stream; charset=utf-8');
  assert.equal(await closed.text(), 'retry: 2000\n: this server is shutting down; reconnect later\n\n');
});

test('a HEAD request gets the stream headers and no body, and subscribes nothing', async () => {
  const eventStream = new EventStream();
  const response = await eventStream.respond(new Request('http://x/', { method: 'HEAD' }), 'head-web');
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('content-type'), 'text/event-stream; charset=utf-8');
  assert.equal(response.body, null);
  assert.deepEqual(eventStream.stats().channels, {});
  assert.equal(eventStream.stats().streams, 0);
  await eventStream.close();
});

test('a slow web consumer is dropped at the byte bound like a Node response', async () => {
  const eventStream = new EventStream({ maxBufferBytes: 64 * 1024 });
  const response = await eventStream.respond(new Request('http://x/'), 'web-slow');
  // Nobody reads the body.
  const payload = 'y'.repeat(4096);
  for (let i = 0; i < 100; i++) await eventStream.publishEvent('web-slow', { data: payload });
  await until(() => eventStream.stats().slowClientsDropped === 1, 5000, 'slow web client dropped');
  assert.equal(eventStream.stats().streams, 0);
  await assert.rejects(response.body!.getReader().read());
  await eventStream.close();
});

test('behind GRIP a web request gets hold instructions and no body held open', async () => {
  const eventStream = new EventStream({ grip: { control_uri: 'http://127.0.0.1:9/' }, gripPrefix: 'web-' });
  const request = new Request('http://x/', { headers: { 'grip-sig': 'any-signature' } });
  const response = await eventStream.respond(request, ['room', 'lobby']);
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('grip-hold'), 'stream');
  assert.equal(response.headers.get('grip-channel'), 'web-room, web-lobby, web-room#close, web-lobby#close');
  // Not reliable, no closing time: the link is only for the proxy's checks on the stream (gripCheckInterval).
  assert.match(response.headers.get('grip-link') ?? '', /^<\/\?eventstream_link=[\w-]+\.[\w-]+>; rel=next; timeout=30$/);
  const quiet = new EventStream({ grip: { control_uri: 'http://127.0.0.1:9/' }, gripCheckInterval: 0 });
  const unchecked = await quiet.respond(new Request('http://x/', { headers: { 'grip-sig': 'any-signature' } }), 'room');
  assert.equal(unchecked.headers.get('grip-link'), null, 'no checks: no link');
  await quiet.close();
  assert.match(response.headers.get('grip-keep-alive') ?? '', /^: keep-alive\\n\\n; format=cstring; timeout=15$/);
  assert.match(await response.text(), /^event: stream-open\ndata: \nid: room:\d+,lobby:\d+\n\n$/);
  assert.equal(eventStream.stats().streams, 0);
  await eventStream.close();

  // Reliable mode: where the held stream stands in each channel, and where the proxy recovers a gap.
  const reliable = new EventStream({ grip: { control_uri: 'http://127.0.0.1:9/' }, gripPrefix: 'web-', gripReliable: true });
  const held = await reliable.respond(new Request('http://x/rooms?x=1', { headers: { 'grip-sig': 'any' } }), ['room', 'lobby']);
  const position = /^web-room; prev-id=(\d+), web-lobby; prev-id=(\d+), web-room#close, web-lobby#close$/.exec(
    held.headers.get('grip-channel') ?? '',
  );
  assert.ok(position, held.headers.get('grip-channel') ?? 'no grip-channel');
  // The link keeps the request's path and query and carries what the stream was allowed, signed.
  assert.match(held.headers.get('grip-link') ?? '', /^<\/rooms\?x=1&eventstream_link=[\w-]+\.[\w-]+>; rel=next; timeout=30$/);
  assert.equal(await held.text(), `event: stream-open\ndata: \nid: room:${position[1]},lobby:${position[2]}\n\n`);
  await reliable.close();
});

test('a web request resumes from Last-Event-ID or ?lastEventId= like a Node one; a malformed id is a 400', async () => {
  const eventStream = new EventStream();
  const first = await eventStream.respond(new Request('http://x/'), 'web-resume');
  const reader = first.body!.getReader();
  const opening = new TextDecoder().decode((await reader.read()).value);
  const id = /id: (web-resume:\d+)/.exec(opening)![1]!;
  await reader.cancel();
  for (let i = 0; i < 3; i++) await eventStream.publishEvent('web-resume', { data: i });

  for (const request of [
    new Request('http://x/', { headers: { 'last-event-id': id } }),
    new Request(`http://x/?lastEventId=${encodeURIComponent(id)}`),
  ]) {
    const resumed = await eventStream.respond(request, 'web-resume');
    const body = resumed.body!.getReader();
    let text = '';
    while ((text.match(/^data: /gm) ?? []).length < 4) text += new TextDecoder().decode((await body.read()).value);
    // The opening event (no id: the client keeps its own), then exactly the three it missed.
    assert.deepEqual(
      [...text.matchAll(/^data: (.*)$/gm)].map((match) => match[1]),
      ['', '0', '1', '2'],
    );
    assert.doesNotMatch(text.split('\n\n')[0]!, /^id:/m);
    await body.cancel();
  }
  const bad = await eventStream.respond(new Request('http://x/', { headers: { 'last-event-id': 'nope' } }), 'web-resume');
  assert.equal(bad.status, 400);
  assert.match(await bad.text(), /Last-Event-ID/);
  await eventStream.close();
});
