import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { StreamMetrics } from '../../../src/common/metrics.js';
import { ChannelHub } from '../../../src/delivery/hub.js';
import type { HubFrame } from '../../../src/delivery/hub-frame.js';
import { eventText, singleChannelText } from '../../../src/sse/event-text.js';
import type { StoredEvent } from '../../../src/types.js';

function events(from: number, count: number, bodyBytes = 8): StoredEvent[] {
  return Array.from({ length: count }, (_, i) => ({ seq: from + i, body: `data: ${String(from + i).padEnd(bodyBytes, '.')}\n` }));
}

function recording(hub: ChannelHub): HubFrame[] {
  const frames: HubFrame[] = [];
  hub.subscribe((frame) => frames.push(frame));
  return frames;
}

function write(hub: ChannelHub, batch: readonly StoredEvent[]): Promise<void> {
  return new Promise((resolve, reject) => hub.write(batch, (error) => (error ? reject(error) : resolve())));
}

const seqs = (frame: HubFrame): number[] => frame.events.map((event) => event.seq);

test('hub: events written in one turn leave as one frame whose bytes are each event with its id line', async () => {
  const hub = new ChannelHub('room', new StreamMetrics());
  const frames = recording(hub);
  hub.write(events(1, 2));
  hub.write(events(3, 1));
  hub.write(events(4, 3));
  assert.equal(frames.length, 0, 'nothing leaves before the end of the turn');
  await nextTurn();
  await nextTurn();
  assert.equal(frames.length, 1);
  const [frame] = frames as [HubFrame];
  assert.deepEqual(seqs(frame), [1, 2, 3, 4, 5, 6]);
  assert.equal(frame.channel, 'room');
  assert.equal(frame.firstSeq, 1);
  assert.equal(frame.lastSeq, 6);
  assert.equal(frame.wire.toString('utf8'), singleChannelText('room', events(1, 6)));
  assert.equal(eventText('room', { seq: 7, body: 'data: x\n' }), 'data: x\nid: room:7\n\n');
  assert.equal(hub.position, 6);
  hub.destroy();
});

test('hub: writes in different turns leave as different frames, in order', async () => {
  const hub = new ChannelHub('room', new StreamMetrics());
  const frames = recording(hub);
  await write(hub, events(1, 2));
  await nextTurn();
  await write(hub, events(3, 2));
  await nextTurn();
  assert.deepEqual(frames.map(seqs), [
    [1, 2],
    [3, 4],
  ]);
  hub.destroy();
});

test('hub: a batch reaching 64 KiB is handed on at once, the rest of the turn follows as another frame', async () => {
  const hub = new ChannelHub('big', new StreamMetrics());
  const frames = recording(hub);
  // 30,000-byte events: the third takes the batch past 64 KiB.
  hub.write(events(1, 5, 30_000));
  await nextTurn();
  await nextTurn();
  assert.deepEqual(frames.map(seqs), [
    [1, 2, 3],
    [4, 5],
  ]);
  assert.equal(Buffer.concat(frames.map((frame) => frame.wire)).toString(), singleChannelText('big', events(1, 5, 30_000)));
  hub.destroy();
});

test('hub: without subscribers nothing is framed, yet the position follows every event', async () => {
  const hub = new ChannelHub('quiet', new StreamMetrics());
  await write(hub, events(10, 3));
  await nextTurn();
  assert.equal(hub.position, 12);
  // A subscriber joining now gets only what comes after.
  const frames = recording(hub);
  await write(hub, events(13, 1));
  await nextTurn();
  assert.deepEqual(frames.map(seqs), [[13]]);
  hub.destroy();
});

test('hub: subscriberCount follows subscribe/unsubscribe and an unsubscribed listener gets nothing more', async () => {
  const hub = new ChannelHub('room', new StreamMetrics());
  const a: HubFrame[] = [];
  const b: HubFrame[] = [];
  const onA = (frame: HubFrame): void => void a.push(frame);
  const onB = (frame: HubFrame): void => void b.push(frame);
  hub.subscribe(onA);
  hub.subscribe(onB);
  assert.equal(hub.subscriberCount, 2);
  await write(hub, events(1, 1));
  await nextTurn();
  hub.unsubscribe(onA);
  assert.equal(hub.subscriberCount, 1);
  await write(hub, events(2, 1));
  await nextTurn();
  assert.deepEqual(a.map(seqs), [[1]]);
  assert.deepEqual(b.map(seqs), [[1], [2]]);
  assert.equal(a[0], b[0], 'every subscriber gets the same frame object (bytes built once)');
  hub.destroy();
});

test('hub: while a subscriber is congested, a large write is taken 16 KiB per turn, one frame per turn', async () => {
  const relaxed = new ChannelHub('pace', new StreamMetrics());
  const relaxedFrames = recording(relaxed);
  await write(relaxed, events(1, 10, 4096));
  await nextTurn();
  assert.deepEqual(relaxedFrames.map(seqs), [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]], 'a healthy hub sends the write as one frame');
  relaxed.destroy();

  const hub = new ChannelHub('pace', new StreamMetrics());
  const frames = recording(hub);
  hub.congestedSubscribers = 1;
  // The subscriber's 'data' listener starts the flow on the next tick; from then on frames are emitted as pushed.
  await nextTurn();
  let written = false;
  hub.write(events(1, 10, 4096), () => {
    written = true;
  });
  assert.deepEqual(frames.map(seqs), [[1, 2, 3, 4]], 'this turn takes about 16 KiB (four 4 KiB events), handed on at once');
  await nextTurn();
  assert.deepEqual(
    frames.map(seqs),
    [
      [1, 2, 3, 4],
      [5, 6, 7, 8],
    ],
    'the next turn takes the next share',
  );
  assert.equal(written, false, 'the writer waits while the rest is not taken');
  while (!written) await nextTurn();
  await nextTurn();
  assert.deepEqual(frames.map(seqs), [
    [1, 2, 3, 4],
    [5, 6, 7, 8],
    [9, 10],
  ]);
  assert.equal(hub.position, 10);
  hub.destroy();
});

test('hub: a congested turn that took its share makes the writer wait for the next turn; an uncongested one does not', async () => {
  async function order(congested: boolean): Promise<string[]> {
    const hub = new ChannelHub('pace', new StreamMetrics());
    recording(hub);
    hub.congestedSubscribers = congested ? 1 : 0;
    const seen: string[] = [];
    setImmediate(() => seen.push('next turn'));
    await new Promise<void>((resolve) =>
      hub.write(events(1, 1, 20_000), () => {
        seen.push('write done');
        resolve();
      }),
    );
    await nextTurn();
    hub.destroy();
    return seen;
  }
  assert.deepEqual(await order(false), ['write done', 'next turn']);
  assert.deepEqual(await order(true), ['next turn', 'write done']);
});

test('hub: small events keep being taken at once while congested (pacing counts bytes, not writes)', async () => {
  const hub = new ChannelHub('pace', new StreamMetrics());
  const frames = recording(hub);
  hub.congestedSubscribers = 1;
  const seen: string[] = [];
  setImmediate(() => seen.push('next turn'));
  for (let i = 1; i <= 20; i++) await write(hub, events(i, 1));
  seen.push('20 writes done');
  await nextTurn();
  assert.deepEqual(seen, ['20 writes done', 'next turn']);
  assert.equal(frames.length, 1, 'and they coalesce into one frame');
  assert.equal(frames[0]!.events.length, 20);
  hub.destroy();
});

test('hub: ending the writable side hands on the pending batch at once', async () => {
  const hub = new ChannelHub('end', new StreamMetrics());
  const frames = recording(hub);
  hub.write(events(1, 2));
  await new Promise<void>((resolve) => hub.end(resolve));
  assert.deepEqual(frames.map(seqs), [[1, 2]]);
});
