import assert from 'node:assert/strict';
import { test } from 'node:test';
import { holdInstructions } from '../../../../src/adapters/grip/hold-instructions.js';

test("hold: a plain hold names the channels, sends the direct stream's headers and sizes the first body in bytes", () => {
  const body = 'retry: 2000\ndata: é\n\n';
  assert.deepEqual(holdInstructions({ gripChannels: ['p-a', 'p-b'], positions: null, body, link: null, keepAliveMs: 0 }), {
    headers: {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      'x-accel-buffering': 'no',
      'grip-hold': 'stream',
      'grip-channel': 'p-a, p-b',
      'content-length': String(Buffer.byteLength(body)),
    },
    body,
  });
  assert.equal(Buffer.byteLength(body), body.length + 1, 'the length counts bytes, not characters');
});

test('hold: reliable mode gives each channel its prev-id and a Grip-Link back to the stream', () => {
  const { headers } = holdInstructions({
    gripChannels: ['p-a', 'p-b'],
    positions: [7, 0],
    body: '',
    link: '/events?channel=a&lastEventId=a:7',
    keepAliveMs: 0,
  });
  assert.equal(headers['grip-channel'], 'p-a; prev-id=7, p-b; prev-id=0');
  assert.equal(headers['grip-link'], '</events?channel=a&lastEventId=a:7>; rel=next');
  assert.equal(headers['content-length'], '0');
  assert.equal(headers['grip-keep-alive'], undefined);
});

test('hold: a link cannot break out of its angle brackets', () => {
  const { headers } = holdInstructions({
    gripChannels: ['c'],
    positions: [1],
    body: '',
    link: '/e?x=<a> "b"\tc',
    keepAliveMs: 0,
  });
  assert.equal(headers['grip-link'], '</e?x=%3Ca%3E%20%22b%22%09c>; rel=next');
});

test('hold: the keep-alive is the stream comment in cstring format, in whole seconds (at least one)', () => {
  const keepAlive = (keepAliveMs: number): string | undefined =>
    holdInstructions({ gripChannels: ['c'], positions: null, body: '', link: null, keepAliveMs }).headers['grip-keep-alive'];
  assert.equal(keepAlive(15_000), ': keep-alive\\n\\n; format=cstring; timeout=15');
  assert.equal(keepAlive(2_600), ': keep-alive\\n\\n; format=cstring; timeout=3');
  assert.equal(keepAlive(100), ': keep-alive\\n\\n; format=cstring; timeout=1');
  assert.equal(keepAlive(0), undefined);
});
