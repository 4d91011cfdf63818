/** What the keep-alive clock needs from a stream. */
export interface KeepAliveTarget {
  /** Clock tick of the stream's last write; the stream sets it on every write. */
  activityTick: number;
  sendKeepAlive(): void;
}

/** Sweeps per keep-alive interval: a stream idle for this many ticks gets a comment. */
const TICKS_PER_INTERVAL = 4;

/**
 * One coarse clock for all streams of an EventStream instead of a timer per
 * response: cheaper in memory (a Timeout per connection) and on the hot path
 * (a stream records the current tick on each write instead of re-arming a
 * timer). A stream idle for at least the interval gets a keep-alive within
 * another quarter interval. The timer exists only while streams exist.
 */
export class KeepAliveClock {
  tick = 0;
  private readonly periodMs: number;
  private readonly streams: ReadonlySet<KeepAliveTarget>;
  private timer: NodeJS.Timeout | null = null;

  constructor(intervalMs: number, streams: ReadonlySet<KeepAliveTarget>) {
    this.periodMs = Math.max(1, Math.floor(intervalMs / TICKS_PER_INTERVAL));
    this.streams = streams;
  }

  /** Call after a stream was added. */
  streamAdded(): void {
    if (this.timer !== null) return;
    this.timer = setInterval(sweep, this.periodMs, this);
    this.timer.unref();
  }

  /** Call after a stream was removed. */
  streamRemoved(): void {
    if (this.streams.size === 0) this.stop();
  }

  stop(): void {
    if (this.timer === null) return;
    clearInterval(this.timer);
    this.timer = null;
  }

  /** @internal */
  sweep(): void {
    const tick = ++this.tick;
    for (const stream of this.streams) {
      if (tick - stream.activityTick >= TICKS_PER_INTERVAL) stream.sendKeepAlive();
    }
  }
}

function sweep(clock: KeepAliveClock): void {
  clock.sweep();
}
