import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BodySink } from '../../../../src/adapters/web/body-sink.js';
import { EventStreamAbortedError } from '../../../../src/errors.js';

const bytes = (text: string): Buffer => Buffer.from(text);

test('body sink: what the consumer has not read counts as unsent; past the high-water mark write() says wait, and reading drains', async () => {
  const sink = new BodySink(10);
  let drains = 0;
  sink.on('drain', () => drains++);
  assert.equal(sink.writableLength, 0);
  assert.equal(sink.writableNeedDrain, false);
  assert.equal(sink.write(bytes('1234')), true);
  assert.equal(sink.writableLength, 4);
  assert.equal(sink.write(bytes('567890')), false, 'the queue reached the mark');
  assert.equal(sink.writableNeedDrain, true);
  assert.equal(sink.write(bytes('abc')), false);
  assert.equal(sink.writableLength, 13);

  const reader = sink.body.getReader();
  const drainsBefore = drains;
  const chunks: string[] = [];
  for (let i = 0; i < 3; i++) {
    const { value } = await reader.read();
    chunks.push(Buffer.from(value!).toString());
  }
  assert.deepEqual(chunks, ['1234', '567890', 'abc']);
  assert.equal(sink.writableLength, 0);
  assert.equal(sink.writableNeedDrain, false);
  assert.ok(drains > drainsBefore, 'the consumer pulling is the drain');
  sink.end();
  assert.deepEqual(await reader.read(), { done: true, value: undefined });
});

test('body sink: end() closes the body after what was queued, emits close once, and later writes are refused', async () => {
  const sink = new BodySink(1024);
  let closes = 0;
  sink.on('close', () => closes++);
  sink.write(bytes('data: a\n\n'));
  sink.end();
  sink.end();
  sink.destroy();
  assert.equal(closes, 1);
  assert.equal(sink.write(bytes('late')), false);
  assert.equal(await new Response(sink.body).text(), 'data: a\n\n');
});

test('body sink: the consumer cancelling the body closes the stream', async () => {
  const sink = new BodySink(1024);
  let closes = 0;
  sink.on('close', () => closes++);
  sink.write(bytes('x'));
  await sink.body.cancel();
  assert.equal(closes, 1);
  assert.equal(sink.write(bytes('y')), false);
  sink.destroy();
  assert.equal(closes, 1);
});

test('body sink: destroy() errors the body with EventStreamAbortedError, so the server aborts the response', async () => {
  const sink = new BodySink(1024);
  let closes = 0;
  sink.on('close', () => closes++);
  sink.destroy();
  assert.equal(closes, 1);
  await assert.rejects(sink.body.getReader().read(), EventStreamAbortedError);
});

test("body sink: the request's abort signal destroys it, whether it aborts later or had already aborted", async () => {
  const controller = new AbortController();
  const sink = new BodySink(1024, controller.signal);
  let closes = 0;
  sink.on('close', () => closes++);
  controller.abort();
  assert.equal(closes, 1);
  await assert.rejects(sink.body.getReader().read(), EventStreamAbortedError);

  const early = new BodySink(1024, AbortSignal.abort());
  let earlyCloses = 0;
  early.on('close', () => earlyCloses++);
  assert.equal(earlyCloses, 0, 'told in a microtask, after the listener could be added');
  await Promise.resolve();
  assert.equal(earlyCloses, 1);
  await assert.rejects(early.body.getReader().read(), EventStreamAbortedError);
});

test('body sink: once it ended, a later abort does nothing and the listener is gone', async () => {
  const controller = new AbortController();
  const sink = new BodySink(1024, controller.signal);
  let closes = 0;
  sink.on('close', () => closes++);
  sink.write(bytes('done'));
  sink.end();
  controller.abort();
  assert.equal(closes, 1);
  assert.equal(await new Response(sink.body).text(), 'done', 'the body ended cleanly, not aborted');
});
