import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KeepAliveClock, type KeepAliveTarget } from '../../../src/delivery/keep-alive.js';
import { liveTimersOf, trackTimers } from '../../helpers/timers.js';

class Stream implements KeepAliveTarget {
  activityTick = 0;
  sent = 0;
  sendKeepAlive(): void {
    this.sent++;
  }
}

test('keep-alive: a stream idle for a whole interval gets a comment, a busy one does not', () => {
  const streams = new Set<Stream>();
  const clock = new KeepAliveClock(1000, streams);
  const idle = new Stream();
  const busy = new Stream();
  streams.add(idle).add(busy);
  for (let sweep = 1; sweep <= 12; sweep++) {
    clock.sweep();
    // A write records the current tick.
    busy.activityTick = clock.tick;
  }
  assert.equal(clock.tick, 12);
  assert.equal(busy.sent, 0);
  // Idle since tick 0 and never recording its keep-alives: one on every sweep from tick 4 to 12.
  assert.equal(idle.sent, 9);
});

test('keep-alive: a stream that records its keep-alive as activity gets one per interval, within a quarter interval', () => {
  const streams = new Set<KeepAliveTarget>();
  const clock = new KeepAliveClock(1000, streams);
  const at: number[] = [];
  const stream: KeepAliveTarget = {
    activityTick: 0,
    sendKeepAlive() {
      at.push(clock.tick);
      this.activityTick = clock.tick;
    },
  };
  streams.add(stream);
  for (let sweep = 0; sweep < 13; sweep++) clock.sweep();
  assert.deepEqual(at, [4, 8, 12]);
  // A write at tick 14 puts the next keep-alive four sweeps after it.
  clock.sweep();
  stream.activityTick = clock.tick;
  for (let sweep = 0; sweep < 4; sweep++) clock.sweep();
  assert.deepEqual(at, [4, 8, 12, 18]);
});

test('keep-alive: one unref’d timer a quarter interval long exists only while streams do', async (t) => {
  trackTimers();
  const streams = new Set<KeepAliveTarget>();
  // An unusual period, so no other timer in this process is counted.
  const clock = new KeepAliveClock(4 * 37, streams);
  assert.equal(liveTimersOf(37), 0);
  streams.add(new Stream());
  clock.streamAdded();
  streams.add(new Stream());
  clock.streamAdded();
  assert.equal(liveTimersOf(37), 1, 'one timer for all streams');
  streams.clear();
  clock.streamRemoved();
  // A destroyed Timeout leaves the tracked set asynchronously.
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(liveTimersOf(37), 0);
  clock.stop();
  t.mock.timers.enable({ apis: ['setInterval'] });
  const mocked = new KeepAliveClock(400, new Set([new Stream()]));
  mocked.streamAdded();
  t.mock.timers.tick(100 * 3);
  assert.equal(mocked.tick, 3, 'the timer sweeps every quarter interval');
  mocked.stop();
  t.mock.timers.tick(1000);
  assert.equal(mocked.tick, 3, 'stopped');
});

test('keep-alive: removing one of several streams keeps the timer; an interval below four ms still ticks every ms', (t) => {
  t.mock.timers.enable({ apis: ['setInterval'] });
  const streams = new Set<KeepAliveTarget>([new Stream(), new Stream()]);
  const clock = new KeepAliveClock(2, streams);
  clock.streamAdded();
  streams.delete([...streams][0]!);
  clock.streamRemoved();
  t.mock.timers.tick(5);
  assert.equal(clock.tick, 5);
  clock.stop();
});
