/** Past the interval, how long a fetch may be late before its stream is taken for gone. */
const GRACE_MS = 5000;

interface HeldStream {
  readonly channels: readonly string[];
  /** When the proxy last held it or fetched its link. */
  lastSeen: number;
}

/**
 * The streams the proxies hold for this process, as far as it can tell.
 * A proxy never says when a held stream ends; what it does is fetch each
 * idle stream's link every `gripCheckInterval` (links carry a stream
 * id, so each stream is fetched on its own), and a publish on one of its
 * channels pushes that fetch back. So a stream counts from its hold until
 * the interval plus a grace has passed since it was last seen AND since the
 * last publish on its channels this process made: a stream that left is
 * counted until then, and on a channel published to more often than the
 * interval, until the channel goes quiet.
 */
export class HeldStreams {
  private readonly streams = new Map<string, HeldStream>();
  private readonly lastPublish = new Map<string, number>();
  private readonly windowMs: number;

  constructor(checkIntervalMs: number) {
    this.windowMs = checkIntervalMs + GRACE_MS;
  }

  /** A hold answered, or a link fetched: the stream is there now. */
  seen(id: string, channels: readonly string[], now = Date.now()): void {
    const known = this.streams.get(id);
    if (known === undefined) this.streams.set(id, { channels, lastSeen: now });
    else known.lastSeen = now;
  }

  /** The stream ended (its closing time passed, or it was told to close). */
  ended(id: string): void {
    this.streams.delete(id);
  }

  /** Every stream on `channel` ended (disconnect). */
  endedOn(channel: string): void {
    for (const [id, stream] of this.streams) if (stream.channels.includes(channel)) this.streams.delete(id);
  }

  published(channel: string, now = Date.now()): void {
    this.lastPublish.set(channel, now);
  }

  /** Held streams on `channel`, or on any channel. Forgets those taken for gone. */
  count(channel?: string, now = Date.now()): number {
    let count = 0;
    for (const [id, stream] of this.streams) {
      if (!this.alive(stream, now)) {
        this.streams.delete(id);
        continue;
      }
      if (channel === undefined || stream.channels.includes(channel)) count++;
    }
    for (const [name, time] of this.lastPublish) if (now - time > this.windowMs) this.lastPublish.delete(name);
    return count;
  }

  /** Per channel, the held streams on it. */
  counts(now = Date.now()): Record<string, number> {
    const counts: Record<string, number> = {};
    this.count(undefined, now);
    for (const stream of this.streams.values()) {
      for (const channel of stream.channels) counts[channel] = (counts[channel] ?? 0) + 1;
    }
    return counts;
  }

  private alive(stream: HeldStream, now: number): boolean {
    let last = stream.lastSeen;
    for (const channel of stream.channels) {
      const published = this.lastPublish.get(channel);
      if (published !== undefined && published > last) last = published;
    }
    return now - last <= this.windowMs;
  }
}
