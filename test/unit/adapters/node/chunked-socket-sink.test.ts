import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { OutgoingMessage } from 'node:http';
import { type TestContext, test } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { chunkFraming, responseSink } from '../../../../src/adapters/node/chunked-socket-sink.js';
import type { EventSink } from '../../../../src/delivery/event-sink.js';
import { deferred } from '../../../helpers/deferred.js';
import { RawConnection } from '../../../helpers/raw-http.js';
import { listen } from '../../../helpers/server.js';

/** Everything after the response head: the raw body bytes as the client got them. */
function afterHead(text: string): string {
  const end = text.indexOf('\r\n\r\n');
  assert.ok(end >= 0, `a response head arrived: ${JSON.stringify(text)}`);
  return text.slice(end + 4);
}

/**
 * A loopback server whose handler hands each response to `serve`, and a raw
 * socket client, so the test sees the exact bytes the sink wrote.
 */
async function serveRaw(t: TestContext, serve: (res: ServerResponse) => void | Promise<void>): Promise<RawConnection> {
  const server = await listen((_req, res) => void serve(res));
  const client = new RawConnection(server.port);
  t.after(async () => {
    client.close();
    await server.close();
  });
  return client;
}

function openChunked(res: ServerResponse): EventSink {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  res.flushHeaders();
  return responseSink(res);
}

test('chunk sink: each write is one chunk, size in hex, CRLF, the bytes, CRLF; an empty write sends nothing; end sends the last chunk', async (t) => {
  const client = await serveRaw(t, (res) => {
    const sink = openChunked(res);
    assert.equal(sink.write(Buffer.from('data: a\n\n')), true);
    sink.write(Buffer.alloc(0));
    sink.write(Buffer.from('x'.repeat(300)));
    sink.write(Buffer.from('é\n', 'utf8'));
    sink.end();
  });
  client.send('GET / HTTP/1.1\r\nHost: test\r\n\r\n');
  await client.waitFor('the last chunk', (text) => text.endsWith('0\r\n\r\n'));
  const head = client.text().slice(0, client.text().indexOf('\r\n\r\n'));
  assert.match(head, /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(head, /\r\ntransfer-encoding: chunked/i);
  assert.equal(
    afterHead(client.text()),
    `9\r\ndata: a\n\n\r\n12c\r\n${'x'.repeat(300)}\r\n3\r\n${Buffer.from('é\n').toString('latin1')}\r\n0\r\n\r\n`,
  );
});

test('chunk sink: after res.end() not one byte more reaches the socket, which already serves the next response', async (t) => {
  let first: EventSink | null = null;
  let requests = 0;
  const client = await serveRaw(t, (res) => {
    if (++requests === 1) {
      first = openChunked(res);
      first.write(Buffer.from('one'));
      first.end();
      return;
    }
    assert.equal(first!.write(Buffer.from('LATE')), true, 'a late write is swallowed, not refused');
    res.writeHead(200, { 'content-length': '6' }).end('second');
  });
  client.send('GET /1 HTTP/1.1\r\nHost: test\r\n\r\nGET /2 HTTP/1.1\r\nHost: test\r\n\r\n');
  await client.waitFor('the second response', (text) => text.endsWith('second'));
  await nextTurn();
  assert.equal(requests, 2);
  assert.doesNotMatch(client.text(), /LATE/);
  assert.equal(client.text().split('HTTP/1.1 200').length, 3);
  assert.match(client.text(), /\r\n\r\n3\r\none\r\n0\r\n\r\nHTTP\/1\.1 200/);
});

test('chunk sink: a write once the socket is closed for writing tells the stream at once that it is over, and sends nothing', async (t) => {
  const seen = deferred<{ atOnce: number }>();
  const client = await serveRaw(t, async (res) => {
    const sink = openChunked(res);
    sink.write(Buffer.from('before'));
    await nextTurn();
    let closes = 0;
    sink.on('close', () => closes++);
    // The socket is closed for writing, and no event of the response has said so yet.
    res.socket!.end();
    sink.write(Buffer.from('AFTER1'));
    sink.write(Buffer.from('AFTER2'));
    await Promise.resolve();
    seen.resolve({ atOnce: closes });
  });
  client.send('GET / HTTP/1.1\r\nHost: test\r\n\r\n');
  const { atOnce } = await seen.promise;
  await client.closedPromise;
  assert.equal(atOnce, 1, 'told once, in a microtask, before any event of the response');
  assert.equal(afterHead(client.text()), '6\r\nbefore\r\n');
});

test('chunk sink: only a chunked HTTP/1.1 response with its headers out and Node’s own write() goes straight to the socket', async (t) => {
  const kinds: string[] = [];
  const client = await serveRaw(t, (res) => {
    // Headers not out yet: through res.write().
    kinds.push(responseSink(res).constructor.name);
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.flushHeaders();
    kinds.push(responseSink(res).constructor.name);
    // A middleware (compression, say) replaced write(): it must keep seeing every byte.
    const seen: string[] = [];
    const original = res.write.bind(res) as (chunk: Buffer) => boolean;
    res.write = ((chunk: Buffer) => {
      seen.push(chunk.toString());
      return original(chunk);
    }) as typeof res.write;
    const sink = responseSink(res);
    kinds.push(sink.constructor.name);
    sink.write(Buffer.from('via-write'));
    assert.deepEqual(seen, ['via-write']);
    res.write = OutgoingMessage.prototype.write as typeof res.write;
    sink.end();
  });
  client.send('GET / HTTP/1.1\r\nHost: test\r\n\r\n');
  await client.waitFor('the end', (text) => text.endsWith('0\r\n\r\n'));
  assert.deepEqual(kinds, ['ResponseWriteSink', 'ChunkedSocketSink', 'ResponseWriteSink']);
  assert.equal(afterHead(client.text()), '9\r\nvia-write\r\n0\r\n\r\n', 'Node frames what goes through res.write() alike');
});

test('chunk sink: an HTTP/1.0 response has no chunks: the bytes go through res.write() as they are', async (t) => {
  const client = await serveRaw(t, (res) => {
    const sink = openChunked(res);
    assert.equal(sink.constructor.name, 'ResponseWriteSink');
    sink.write(Buffer.from('data: a\n\n'));
    sink.end();
  });
  client.send('GET / HTTP/1.0\r\n\r\n');
  await client.closedPromise;
  assert.equal(afterHead(client.text()), 'data: a\n\n');
});

test('chunk sink: anything that is not a ServerResponse (HTTP/2, a web body sink) is its own sink', () => {
  const other = { write: () => true } as unknown as EventSink;
  assert.equal(responseSink(other), other);
});

test('chunk sink: write() returns false once the socket is backed up, and drain follows when the client reads', async (t) => {
  const result = deferred<{ writes: number; drained: boolean }>();
  const client = await serveRaw(t, (res) => {
    const sink = openChunked(res);
    let writes = 0;
    const block = Buffer.alloc(64 * 1024, 'x');
    while (sink.write(block)) {
      writes++;
      if (writes > 10_000) break;
    }
    assert.equal(sink.writableNeedDrain, true);
    sink.once('drain', () => {
      result.resolve({ writes, drained: true });
      sink.end();
    });
    client.socket.resume();
  });
  client.socket.pause();
  client.send('GET / HTTP/1.1\r\nHost: test\r\n\r\n');
  const { writes, drained } = await result.promise;
  assert.ok(writes < 10_000, `write() returned false after ${writes} writes`);
  assert.equal(drained, true);
});

test('chunk framing: the same buffer written to many sockets in one turn is framed once; the next turn frames afresh', async () => {
  const chunk = Buffer.from('data: shared\n\n');
  const framed = chunkFraming(chunk);
  assert.equal(framed.toString(), 'e\r\ndata: shared\n\n\r\n');
  assert.equal(chunkFraming(chunk), framed, 'the same Buffer object: no copy per client');
  const other = chunkFraming(Buffer.from('b'));
  assert.equal(other.toString(), '1\r\nb\r\n');
  await new Promise((resolve) => process.nextTick(resolve));
  const again = chunkFraming(chunk);
  assert.notEqual(again, framed, 'no module state keeps an old frame alive');
  assert.deepEqual(again, framed);
});
