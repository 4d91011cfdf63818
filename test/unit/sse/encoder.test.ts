import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import fc from 'fast-check';
import { InvalidEventError } from '../../../src/index.js';
import { encodeComment, encodeEvent } from '../../../src/sse/encoder.js';

function parse(wire: string): { events: EventSourceMessage[]; retries: number[]; comments: string[] } {
  const events: EventSourceMessage[] = [];
  const retries: number[] = [];
  const comments: string[] = [];
  const parser = createParser({
    onEvent: (event) => events.push(event),
    onRetry: (retry) => retries.push(retry),
    onComment: (comment) => comments.push(comment),
  });
  parser.feed(wire);
  return { events, retries, comments };
}

const identity = (data: unknown): string => data as string;

/** An encoded event as a stream sends it: its fields, the id line the channel adds, the blank line. */
const wireOf = (body: string, id = 'ch:1'): string => `${body}id: ${id}\n\n`;

test('encodes event, retry and JSON data in SSE field order, leaving the id line to the channel', () => {
  const encoded = encodeEvent({ event: 'update', retry: 2500, data: { name: 'John' } });
  assert.equal(encoded.body, 'event: update\nretry: 2500\ndata: {"name":"John"}\n');
  const { events } = parse(wireOf(encoded.body, 'news:42'));
  assert.deepEqual(events, [{ event: 'update', id: 'news:42', data: '{"name":"John"}' }]);
});

test('event.id is refused: ids are the channel sequence clients resume from', () => {
  assert.throws(() => encodeEvent({ id: '7', data: 1 } as never), /ids|resume/);
  assert.throws(() => encodeEvent({ id: '7', data: 1 } as never), InvalidEventError);
});

test('omits the event line for the default type and JSON-encodes strings', () => {
  assert.equal(encodeEvent({ data: 'hi' }).body, 'data: "hi"\n');
  assert.equal(encodeEvent({ data: null }).body, 'data: null\n');
});

test('splits multi-line data on CRLF, CR and LF into one data line each', () => {
  const encoded = encodeEvent({ data: 'a\r\nb\rc\nd' }, identity);
  assert.equal(encoded.body, 'data: a\ndata: b\ndata: c\ndata: d\n');
  assert.deepEqual(
    parse(wireOf(encoded.body)).events.map((e) => e.data),
    ['a\nb\nc\nd'],
  );
});

test('refuses CR, LF or NUL in event instead of injecting fields', () => {
  for (const bad of ['a\nretry: 1', 'a\rb', 'a\0b', 'x\r\ndata: injected']) {
    assert.throws(() => encodeEvent({ event: bad, data: 1 }), InvalidEventError);
  }
});

test('refuses undefined, circular, BigInt and function data with a TypeError', () => {
  const circular: Record<string, unknown> = {};
  circular.self = circular;
  for (const data of [undefined, circular, 10n, () => 1, Symbol('s')]) {
    const error = (() => {
      try {
        encodeEvent({ data });
      } catch (caught) {
        return caught;
      }
      return null;
    })();
    assert.ok(error instanceof TypeError, `expected TypeError for ${String(typeof data)}`);
    assert.equal((error as InvalidEventError).code, 'ERR_EVENTSTREAM_INVALID_EVENT');
  }
});

test('refuses non-object events and bad field types', () => {
  for (const bad of [null, undefined, 'text', 42, [1, 2]]) {
    assert.throws(() => encodeEvent(bad), InvalidEventError);
  }
  assert.throws(() => encodeEvent({ event: 5, data: 1 }), InvalidEventError);
  assert.throws(() => encodeEvent({ id: 5, data: 1 }), InvalidEventError);
  assert.throws(() => encodeEvent({ retry: -1, data: 1 }), InvalidEventError);
  assert.throws(() => encodeEvent({ retry: 1.5, data: 1 }), InvalidEventError);
});

test('comments cannot carry line breaks', () => {
  assert.equal(encodeComment('keep-alive'), ': keep-alive\n\n');
  assert.throws(() => encodeComment('a\nb'), InvalidEventError);
});

test('property: any string data round-trips through a spec parser', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary' }), (text) => {
      const { events } = parse(wireOf(encodeEvent({ data: text }, identity).body));
      assert.equal(events.length, 1);
      assert.equal(events[0]!.data, text.replace(/\r\n|\r/g, '\n'));
    }),
    { numRuns: 2000 },
  );
});

test('property: any JSON value round-trips as data', () => {
  fc.assert(
    fc.property(fc.jsonValue(), (value) => {
      const { events } = parse(wireOf(encodeEvent({ data: value }).body));
      assert.equal(events.length, 1);
      assert.deepEqual(JSON.parse(events[0]!.data), JSON.parse(JSON.stringify(value)));
    }),
    { numRuns: 1000 },
  );
});

test('property: an event type either round-trips exactly or is refused; no field is ever injected', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary' }), fc.string(), (type, data) => {
      const id = 'ch:7';
      let wire: string;
      try {
        wire = wireOf(encodeEvent({ event: type, data }, identity).body, id);
      } catch (error) {
        assert.ok(error instanceof InvalidEventError);
        assert.match(type, /[\r\n\0]/);
        return;
      }
      const { events, retries } = parse(wire);
      assert.equal(events.length, 1);
      assert.equal(retries.length, 0);
      assert.equal(events[0]!.event, type === '' ? undefined : type);
      assert.equal(events[0]!.id, id);
      assert.equal(events[0]!.data, data.replace(/\r\n|\r/g, '\n'));
    }),
    { numRuns: 2000 },
  );
});

test('property: a sequence of events parses back as the same sequence', () => {
  const eventArb = fc.record({
    event: fc.option(fc.stringMatching(/^[a-z][a-z-]{0,10}$/), { nil: undefined }),
    data: fc.jsonValue(),
  });
  fc.assert(
    fc.property(fc.array(eventArb, { maxLength: 20 }), (list) => {
      const wire = list.map((event, i) => wireOf(encodeEvent(event).body, `ch:${i}`)).join('');
      const { events } = parse(wire);
      assert.equal(events.length, list.length);
      events.forEach((parsed, i) => {
        assert.equal(parsed.event, list[i]!.event);
        assert.deepEqual(JSON.parse(parsed.data), JSON.parse(JSON.stringify(list[i]!.data)));
      });
    }),
  );
});

test('maxEventBytes bounds the UTF-8 bytes of every encoded field: at the limit passes, one byte more is refused', () => {
  const body = 'event: e\nretry: 5\ndata: a\ndata: é\n';
  const bytes = Buffer.byteLength(body);
  assert.equal(bytes, body.length + 1, 'é takes two bytes');
  const event = { event: 'e', retry: 5, data: 'a\né' };
  assert.equal(encodeEvent(event, identity, bytes).body, body);
  assert.throws(
    () => encodeEvent(event, identity, bytes - 1),
    (error: unknown) =>
      error instanceof InvalidEventError &&
      error.message ===
        `event is ${bytes} bytes encoded, more than maxEventBytes (${bytes - 1}); raise the maxEventBytes option (and maxBufferBytes, which bounds it) to send larger events`,
  );
  // Characters outside the BMP: two UTF-16 units, four bytes.
  const emoji = { data: '😀'.repeat(100) };
  assert.equal(encodeEvent(emoji, identity, 407).body.length, 207);
  assert.throws(() => encodeEvent(emoji, identity, 406), InvalidEventError);
});

test('property: an event is refused by maxEventBytes exactly when its encoded body is longer in bytes', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary' }), fc.nat({ max: 64 }), (data, slack) => {
      const body = encodeEvent({ data }).body;
      const bytes = Buffer.byteLength(body);
      assert.equal(encodeEvent({ data }, undefined, bytes + slack).body, body);
      if (bytes - 1 - slack >= 1) assert.throws(() => encodeEvent({ data }, undefined, bytes - 1 - slack), InvalidEventError);
    }),
  );
});
