/** A place among the open streams, given back when its stream closes (or never opens). */
export interface StreamSlot {
  release(): void;
}

/** What a full limit says: this process has `maxStreams`, or this client has `maxStreamsPerClient`. */
export type LimitReached = 'process' | 'client';

/** The slot of a stream no limit counts. */
export const NO_SLOT: StreamSlot = Object.freeze({ release() {} });

/**
 * `maxStreams` and `maxStreamsPerClient`: direct streams are counted from
 * admission (so requests racing in together cannot all squeeze past the
 * limit) until they close. Held streams cost this process nothing and are
 * not counted.
 */
export class StreamLimits {
  private open = 0;
  private readonly perClient = new Map<string, number>();

  constructor(
    private readonly maxStreams: number | null,
    private readonly maxStreamsPerClient: number | null,
  ) {}

  /** Whether per-client counting needs the client's key at all. */
  get countsClients(): boolean {
    return this.maxStreamsPerClient !== null;
  }

  reserve(clientKey: string | null): StreamSlot | LimitReached {
    if (this.maxStreams === null && this.maxStreamsPerClient === null) return NO_SLOT;
    if (this.maxStreams !== null && this.open >= this.maxStreams) return 'process';
    const key = this.maxStreamsPerClient === null ? null : clientKey;
    if (key !== null) {
      const count = this.perClient.get(key) ?? 0;
      if (count >= this.maxStreamsPerClient!) return 'client';
      this.perClient.set(key, count + 1);
    }
    this.open++;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.open--;
        if (key === null) return;
        const count = this.perClient.get(key)! - 1;
        if (count === 0) this.perClient.delete(key);
        else this.perClient.set(key, count);
      },
    };
  }
}
