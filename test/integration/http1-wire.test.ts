import assert from 'node:assert/strict';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { type TestContext, test } from 'node:test';
import { EventStream, type EventStreamOptions } from '../../src/index.js';
import { complete, type ParsedResponse, parseResponse, RawConnection } from '../helpers/raw-http.js';
import { cleanups } from '../helpers/requirements.js';
import { listen } from '../helpers/server.js';
import { RecordingEventSource, until } from '../helpers/sse-client.js';
import { forkStreamServer, untilAsync } from '../helpers/stream-server.js';

/**
 * HTTP/1 on the wire, read byte by byte from a plain socket: a stream's body
 * is framed as HTTP/1.1 chunks written straight to the socket (each frame's
 * framing built once for all clients), so these tests check what no HTTP
 * client would show: exact chunk sizes, the last chunk, the connection
 * after the stream, and the cases that must go through `res.write()`.
 */

function expectedEvents(channel: string, firstSeq: number, values: readonly number[]): string {
  return values.map((value, i) => `event: n\ndata: ${value}\nid: ${channel}:${firstSeq + i}\n\n`).join('');
}

/** The sequence number in the stream-open event's id, where the stream starts. */
function openSeq(body: string, channel: string): number {
  const match = new RegExp(`^event: stream-open\\ndata: \\nid: ${channel}:(\\d+)\\n\\n`).exec(body);
  assert.ok(match, `the body starts with stream-open: ${JSON.stringify(body.slice(0, 80))}`);
  return Number(match[1]);
}

/**
 * An EventStream serving `channel` on a real server, and a raw connection to
 * it. `/plain` answers at once and `/slow` after 300 ms, both with a short
 * fixed body; every other path is the stream. Everything is closed after the test.
 */
async function streamOnRawConnection(t: TestContext, channel: string, options: EventStreamOptions = {}) {
  const defer = cleanups(t);
  const eventStream = new EventStream({ keepAliveInterval: 0, ...options });
  defer(() => eventStream.close());
  const events = eventStream(channel);
  let lastStream: ServerResponse | null = null;
  const streamsAfterEnd: number[] = [];
  const server = await listen((req, res) => {
    if (req.url === '/plain') res.end('plain answer');
    else if (req.url === '/slow') setTimeout(() => res.end('slow answer'), 300);
    else if (req.url === '/ended') {
      // The application ends the stream as soon as it is open, then the channel gets an event.
      void events(req, res).then(() => {
        res.end();
        streamsAfterEnd.push(eventStream.stats().streams);
        void eventStream.publishEvent(channel, { data: SECRET });
      });
    } else {
      lastStream = res;
      void events(req, res);
    }
  });
  defer(() => server.close());
  const client = new RawConnection(server.port);
  defer(() => client.close());
  return { eventStream, client, lastStream: () => lastStream, streamsAfterEnd, port: server.port };
}

const SECRET = 'secret for channel subscribers';

/** Responses with their Date headers' values masked, so whole responses can be compared byte for byte. */
function masked(response: string): string {
  return response.replace(/\r\nDate: [^\r]*\r\n/g, '\r\nDate: *\r\n');
}

const PLAIN_RESPONSE =
  'HTTP/1.1 200 OK\r\nDate: *\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nContent-Length: 12\r\n\r\nplain answer';

/** The stream the application ended at once: its opening event, the last chunk, and not one byte more. */
function assertEndedStream(text: string): ParsedResponse {
  const stream = parseResponse(text);
  const opening = `event: stream-open\ndata: \nid: ended:${openSeq(stream.body, 'ended')}\n\n`;
  assert.equal(stream.body, opening);
  assert.deepEqual(stream.chunks, [opening.length, 0]);
  return stream;
}

test('HTTP/1.1: every chunk is framed exactly, the stream ends with the last chunk, and the connection then serves its next request', async (t) => {
  const { eventStream, client } = await streamOnRawConnection(t, 'wire');

  client.send('GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n');
  await client.waitFor('stream-open', (text) => text.includes('stream-open'));
  for (const value of [1, 22, 333]) await eventStream.publishEvent('wire', { event: 'n', data: value });
  await client.waitFor('three events', (text) => text.includes('data: 333'));
  await eventStream.close();
  await client.waitFor('the last chunk', complete);

  const response = parseResponse(client.text());
  assert.match(response.head, /^HTTP\/1\.1 200 OK\r\n/);
  const start = openSeq(response.body, 'wire');
  assert.equal(
    response.body,
    `event: stream-open\ndata: \nid: wire:${start}\n\n${expectedEvents('wire', start + 1, [1, 22, 333])}`,
  );
  // One chunk for the opening event, one for the three awaited events (published in one turn), then the last chunk.
  assert.equal(response.chunks!.length, 3);
  assert.equal(response.rest, '');

  client.send('GET /plain HTTP/1.1\r\nHost: x\r\n\r\n');
  await client.waitFor('the next response', (text) => text.endsWith('plain answer'));
  const next = parseResponse(parseResponse(client.text()).rest);
  assert.match(next.head, /^HTTP\/1\.1 200 OK\r\n/);
  assert.equal(next.body, 'plain answer');
  assert.equal(client.closed, false, 'the connection is still open');
});

test('events published in one turn leave as one chunk: one socket write per client, however they were published', async (t) => {
  const { eventStream, client } = await streamOnRawConnection(t, 'turn');

  client.send('GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n');
  await client.waitFor('stream-open', (text) => text.includes('stream-open'));
  // A writable's later writes wait for the first write's callback: they must still join its frame.
  const writable = eventStream.createChannelWritable('turn');
  for (const value of [1, 2, 3, 4, 5]) writable.write({ event: 'n', data: value });
  await new Promise<void>((resolve) => writable.end(resolve));
  await client.waitFor("the writable's events", (text) => text.includes('data: 5'));
  await Promise.all([6, 7, 8].map((value) => eventStream.publishEvent('turn', { event: 'n', data: value })));
  await client.waitFor('the published events', (text) => text.includes('data: 8'));
  await eventStream.close();
  await client.waitFor('the last chunk', complete);

  const response = parseResponse(client.text());
  const start = openSeq(response.body, 'turn');
  assert.equal(
    response.body,
    `event: stream-open\ndata: \nid: turn:${start}\n\n${expectedEvents('turn', start + 1, [1, 2, 3, 4, 5, 6, 7, 8])}`,
  );
  const opening = `event: stream-open\ndata: \nid: turn:${start}\n\n`.length;
  assert.deepEqual(response.chunks, [
    opening,
    expectedEvents('turn', start + 1, [1, 2, 3, 4, 5]).length,
    expectedEvents('turn', start + 6, [6, 7, 8]).length,
    0,
  ]);
});

test('HTTP/1.0: the body is plain SSE, not chunked, and ends when the connection closes', async (t) => {
  const { eventStream, client } = await streamOnRawConnection(t, 'old');

  client.send('GET /events HTTP/1.0\r\nAccept: text/event-stream\r\n\r\n');
  await client.waitFor('stream-open', (text) => text.includes('stream-open'));
  for (const value of [5, 6]) await eventStream.publishEvent('old', { event: 'n', data: value });
  await client.waitFor('two events', (text) => text.includes('data: 6'));
  await eventStream.close();
  await until(() => client.closed, 5000, 'the server to close the connection');

  const response = parseResponse(client.text(), { connectionClosed: true });
  assert.doesNotMatch(response.head, /transfer-encoding/i);
  const start = openSeq(response.body, 'old');
  assert.equal(response.body, `event: stream-open\ndata: \nid: old:${start}\n\n${expectedEvents('old', start + 1, [5, 6])}`);
});

test('a stream requested behind a pending response on the same connection starts after it, intact', async (t) => {
  const { eventStream, client } = await streamOnRawConnection(t, 'queued');

  // Pipelined: Node answers in order, so the stream's response waits for the slow one.
  client.send('GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n');
  await until(() => eventStream.stats().streams === 1, 5000, 'the stream to open');
  await eventStream.publishEvent('queued', { event: 'n', data: 1 });
  await client.waitFor('the stream after the slow answer', (text) => text.includes('data: 1'), 5000);
  await eventStream.publishEvent('queued', { event: 'n', data: 2 });
  await client.waitFor('the second event', (text) => text.includes('data: 2'));
  await eventStream.close();
  await client.waitFor('the last chunk of the stream', (text) => complete(text) && complete(parseResponse(text).rest));

  const first = parseResponse(client.text());
  assert.equal(first.body, 'slow answer');
  const stream = parseResponse(first.rest);
  const start = openSeq(stream.body, 'queued');
  assert.equal(stream.body, `event: stream-open\ndata: \nid: queued:${start}\n\n${expectedEvents('queued', start + 1, [1, 2])}`);
});

test('a middleware that replaces res.write (a byte counter, compression) still sees every byte', async (t) => {
  const defer = cleanups(t);
  const eventStream = new EventStream({ keepAliveInterval: 0 });
  const events = eventStream('counted');
  let written = '';
  const server = await listen((req: IncomingMessage, res: ServerResponse) => {
    const write = res.write;
    res.write = function (this: ServerResponse, chunk: unknown, ...rest: unknown[]): boolean {
      written += Buffer.isBuffer(chunk) ? chunk.toString('utf8') : String(chunk);
      return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
    } as ServerResponse['write'];
    void events(req, res);
  });
  defer(() => server.close());
  const source = new RecordingEventSource(`${server.url}/events`, ['n']);
  defer(() => source.close());
  await source.opened;
  for (const value of [7, 8]) await eventStream.publishEvent('counted', { event: 'n', data: value });
  await source.waitFor(2, 'n');
  assert.deepEqual(
    source.events.map((event) => event.data),
    ['7', '8'],
  );
  const start = openSeq(written, 'counted');
  assert.equal(written, `event: stream-open\ndata: \nid: counted:${start}\n\n${expectedEvents('counted', start + 1, [7, 8])}`);
});

test('HEAD gets the stream headers and no body, opens no stream, and the connection serves its next request', async (t) => {
  const { eventStream, client } = await streamOnRawConnection(t, 'heads');

  client.send('HEAD /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\nGET /plain HTTP/1.1\r\nHost: x\r\n\r\n');
  await client.waitFor('both answers', (text) => text.endsWith('plain answer'));
  const text = client.text();
  const headEnd = text.indexOf('\r\n\r\n');
  const head = text.slice(0, headEnd);
  assert.match(head, /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(head, /\r\ncontent-type: text\/event-stream; charset=utf-8/i);
  const next = parseResponse(text.slice(headEnd + 4));
  assert.equal(next.body, 'plain answer');
  assert.equal(eventStream.stats().streams, 0);
  assert.equal(eventStream.stats().hubs, 0);
});

test('HTTP/1.1: a burst and 1 MiB events arrive as exact chunks, through the socket backing up and draining', async (t) => {
  const { eventStream, client, lastStream } = await streamOnRawConnection(t, 'big', { maxBufferBytes: 128 * 1024 * 1024 });

  client.send('GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n');
  await client.waitFor('stream-open', (text) => text.includes('stream-open'));
  // The client stops reading, so the server's socket backs up once the kernel's buffers are full.
  client.socket.pause();
  const writable = eventStream.createChannelWritable('big');
  const write = (event: { event: string; data: unknown }): Promise<void> =>
    new Promise((resolve, reject) => writable.write(event, (error) => (error ? reject(error) : resolve())));
  const values = Array.from({ length: 300 }, (_, i) => i);
  for (const value of values) void write({ event: 'n', data: value });
  const large = 'z'.repeat(1024 * 1024);
  let larges = 0;
  while (lastStream()!.writableLength === 0) {
    assert.ok(larges < 100, 'the socket backs up within 100 MiB');
    await write({ event: 'n', data: large });
    larges++;
    await new Promise((resolve) => setImmediate(resolve));
  }
  client.socket.resume();
  await client.waitFor(`${larges} large events`, (text) => text.split(large).length - 1 === larges, 30_000);
  writable.end();
  await eventStream.close();
  await client.waitFor('the last chunk', complete);

  const response = parseResponse(client.text());
  const start = openSeq(response.body, 'big');
  let expected = `event: stream-open\ndata: \nid: big:${start}\n\n${expectedEvents('big', start + 1, values)}`;
  for (let i = 0; i < larges; i++) expected += `event: n\ndata: "${large}"\nid: big:${start + 301 + i}\n\n`;
  assert.equal(response.body.length, expected.length);
  assert.ok(response.body === expected, 'the body is exactly the events, in order');
  assert.ok(Math.max(...response.chunks!) > 1024 * 1024, 'a large event is one chunk');
  assert.equal(eventStream.stats().slowClientsDropped, 0);
});

test('a stream the application ends once run() resolves gets not one byte after its last chunk, and is released at once', async (t) => {
  const { eventStream, client, streamsAfterEnd } = await streamOnRawConnection(t, 'ended');

  client.send('GET /ended HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n');
  await client.waitFor('the ended stream', complete);
  // Each answer on the connection comes after whatever was written for the ended stream before it.
  for (let i = 1; i <= 2; i++) {
    client.send('GET /plain HTTP/1.1\r\nHost: x\r\n\r\n');
    await client.waitFor(`answer ${i}`, (text) => text.split('plain answer').length === i + 1);
  }

  const stream = assertEndedStream(client.text());
  assert.equal(masked(stream.rest).split(PLAIN_RESPONSE).join('|'), '||', 'then exactly two plain answers');
  assert.deepEqual(streamsAfterEnd, [0], 'res.end() released the stream before it returned');
  assert.equal(eventStream.stats().hubs, 0);
});

test('pipelined behind a stream the application ended, the next responses are exactly their own bytes', async (t) => {
  const { eventStream, client, streamsAfterEnd } = await streamOnRawConnection(t, 'ended');

  client.send(
    `GET /ended HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n${'GET /plain HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(2)}`,
  );
  await client.waitFor('both answers', (text) => text.split('plain answer').length === 3);
  // One more round trip: anything still written for the ended stream would arrive before this answer.
  client.send('GET /plain HTTP/1.1\r\nHost: x\r\n\r\n');
  await client.waitFor('the third answer', (text) => text.split('plain answer').length === 4);

  const stream = assertEndedStream(client.text());
  assert.equal(masked(stream.rest).split(PLAIN_RESPONSE).join('|'), '|||', 'then exactly three plain answers');
  assert.deepEqual(streamsAfterEnd, [0]);
  await eventStream.publishEvent('ended', { data: SECRET });
  assert.equal(eventStream.stats().streams, 0);
});

test('a keep-alive agent reuses the connection of a stream the application ended: its next requests read exactly their answers', async (t) => {
  const defer = cleanups(t);
  const { port, streamsAfterEnd } = await streamOnRawConnection(t, 'ended');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  defer(() => agent.destroy());
  const sockets = new Set<Socket>();
  let wire = '';
  const get = (path: string, headers: Record<string, string> = {}) =>
    new Promise<{ body: string; reused: boolean }>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path, agent, headers }, (res) => {
        let body = '';
        res.setEncoding('latin1');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ body, reused: req.reusedSocket }));
        res.on('error', reject);
      });
      req.on('socket', (socket: Socket) => {
        if (sockets.has(socket)) return;
        sockets.add(socket);
        socket.on('data', (chunk: Buffer) => (wire += chunk.toString('latin1')));
      });
      req.on('error', reject);
    });

  const stream = await get('/ended', { accept: 'text/event-stream' });
  assert.match(stream.body, /^event: stream-open\ndata: \nid: ended:\d+\n\n$/);
  for (let i = 0; i < 2; i++) {
    const next = await get('/plain');
    assert.deepEqual(next, { body: 'plain answer', reused: true });
  }
  assert.equal(sockets.size, 1, 'one connection carried all three');
  assert.equal(masked(assertEndedStream(wire).rest).split(PLAIN_RESPONSE).join('|'), '||');
  assert.deepEqual(streamsAfterEnd, [0]);
});

test('no module state keeps a frame alive: after a 40 MB event, its client gone and the instance dropped, array buffers are back at baseline', async (t) => {
  const defer = cleanups(t);
  const server = await forkStreamServer({ keepAliveInterval: 0, maxBufferBytes: 128 * 1024 * 1024 });
  defer(() => server.close());
  const size = 40 * 1024 * 1024;

  // Warm up: one small event through the socket sink, so lazily built internals are in the baseline.
  const warmup = new RawConnection(server.port);
  defer(() => warmup.close());
  warmup.send('GET /events/big HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n');
  await warmup.waitFor('stream-open', (text) => text.includes('stream-open'));
  await server.publish('big', 'w');
  await warmup.waitFor('the small event', (text) => text.includes('data: "w"'));
  const baseline = (await server.snapshot()).arrayBuffers;

  const client = new RawConnection(server.port);
  defer(() => client.close());
  client.send('GET /events/big HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n');
  await client.waitFor('stream-open', (text) => text.includes('stream-open'));
  await server.publish('big', 'x', { repeat: size });
  await client.waitFor('the big event', (text) => text.length > size && text.endsWith('\n\n\r\n'), 30_000);
  client.close();
  warmup.close();
  await untilAsync(async () => (await server.snapshot()).stats!.streams === 0, 5000, 'both streams to close');
  await server.drop();

  const after = (await server.snapshot()).arrayBuffers;
  assert.ok(after - baseline < 4 * 1024 * 1024, `array buffers ${mb(after)} MB after, ${mb(baseline)} MB before`);
});

function mb(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}
