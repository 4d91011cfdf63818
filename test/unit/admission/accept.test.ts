import assert from 'node:assert/strict';
import { test } from 'node:test';
import { acceptsEventStream } from '../../../src/admission/accept.js';

test('accept: a missing or empty header admits the stream (EventSource and most clients)', () => {
  assert.equal(acceptsEventStream(undefined), true);
  assert.equal(acceptsEventStream(''), true);
  assert.equal(acceptsEventStream('   '), true);
  assert.equal(acceptsEventStream([]), true);
});

test('accept: text/event-stream, text/* and */* admit it, case and spaces aside', () => {
  for (const header of [
    'text/event-stream',
    'TEXT/Event-Stream',
    ' text/event-stream ; charset=utf-8',
    'text/*',
    '*/*',
    'application/json, */*;q=0.1',
  ]) {
    assert.equal(acceptsEventStream(header), true, header);
  }
});

test('accept: only other media types refuse it', () => {
  for (const header of [
    'application/json',
    'text/html, application/xhtml+xml',
    'image/*',
    'text/event-streams',
    'event-stream',
  ]) {
    assert.equal(acceptsEventStream(header), false, header);
  }
});

test('accept: q=0 on the matching range refuses it; a bad q counts as 0', () => {
  assert.equal(acceptsEventStream('text/event-stream;q=0'), false);
  assert.equal(acceptsEventStream('text/event-stream; Q = 0.0'), false);
  assert.equal(acceptsEventStream('text/event-stream;q=abc'), false);
  assert.equal(acceptsEventStream('*/*;q=0'), false);
  assert.equal(acceptsEventStream('text/event-stream;q=0.001'), true);
});

test('accept: the most specific matching range decides (RFC 9110 §12.5.1)', () => {
  assert.equal(acceptsEventStream('*/*, text/event-stream;q=0'), false, 'the exact type refuses although */* admits');
  assert.equal(acceptsEventStream('text/*;q=0, text/event-stream'), true, 'the exact type admits although text/* refuses');
  assert.equal(acceptsEventStream('*/*;q=0, text/*;q=0.5'), true);
  assert.equal(acceptsEventStream('text/*;q=0, */*'), false, 'text/* is more specific than */*');
  assert.equal(acceptsEventStream('text/event-stream;q=0, text/event-stream;q=0.5'), true, 'equally specific ranges: the best q');
});

test('accept: a header sent several times counts as one list', () => {
  assert.equal(acceptsEventStream(['application/json', 'text/event-stream']), true);
  assert.equal(acceptsEventStream(['application/json', 'text/html']), false);
  assert.equal(acceptsEventStream(['*/*', 'text/event-stream;q=0']), false);
});
