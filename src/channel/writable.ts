import { Writable } from 'readable-stream';
import { EncodedEvent, encodeEvent } from '../sse/encoder.js';
import type { DataSerializer } from '../sse/event.js';
import type { ChannelHub } from './hub.js';

/**
 * Where events go besides the local hub (a GRIP proxy). Called with every
 * batch the writable accepts, in order; the batch's write callbacks wait for
 * the returned promise, which is how backpressure reaches the proxy.
 */
export interface RemotePublisher {
  publish(channel: string, events: readonly EncodedEvent[]): Promise<void>;
}

export interface ChannelWritableOptions {
  channel: string;
  hub: ChannelHub;
  remote: RemotePublisher | null;
  serializeData: DataSerializer;
  /** Called once when the writable is finished or destroyed, to drop its hub reference. */
  onRelease: () => void;
  highWaterMark?: number;
}

type Callback = (error?: Error | null) => void;

/**
 * The publish primitive: an object-mode Writable for one channel. Each event
 * is validated and encoded once, handed to the channel hub (local
 * subscribers) and, when configured, to the remote publisher. The write
 * callback fires when both have taken it, so `write()` returns false and
 * `drain` follows whenever delivery is the slower side.
 */
export class ChannelWritable extends Writable {
  readonly channel: string;
  private readonly hub: ChannelHub;
  private readonly remote: RemotePublisher | null;
  private readonly serializeData: DataSerializer;
  private onRelease: (() => void) | null;

  constructor(options: ChannelWritableOptions) {
    super({ objectMode: true, highWaterMark: options.highWaterMark ?? 64 });
    this.channel = options.channel;
    this.hub = options.hub;
    this.remote = options.remote;
    this.serializeData = options.serializeData;
    this.onRelease = options.onRelease;
  }

  /**
   * With a remote publisher, writes issued in one tick are corked together so
   * they reach `_writev` as one batch (one control-API request) instead of the
   * first going out alone after every drain.
   */
  override write(chunk: unknown, encoding?: string | Callback, callback?: Callback): boolean {
    if (this.remote !== null && this.writableCorked === 0 && !this.destroyed) {
      this.cork();
      process.nextTick(uncork, this);
    }
    return super.write(chunk, encoding as string, callback);
  }

  override _write(chunk: unknown, _encoding: BufferEncoding, callback: Callback): void {
    let frame: EncodedEvent;
    try {
      frame = chunk instanceof EncodedEvent ? chunk : encodeEvent(chunk, this.serializeData);
    } catch (error) {
      callback(error as Error);
      return;
    }
    this.deliver([frame], callback);
  }

  override _writev(chunks: Array<{ chunk: unknown }>, callback: Callback): void {
    const frames: EncodedEvent[] = new Array(chunks.length);
    try {
      for (let i = 0; i < chunks.length; i++) {
        const { chunk } = chunks[i]!;
        frames[i] = chunk instanceof EncodedEvent ? chunk : encodeEvent(chunk, this.serializeData);
      }
    } catch (error) {
      // Stream rules: one bad chunk errors the stream; none of this batch is sent.
      callback(error as Error);
      return;
    }
    this.deliver(frames, callback);
  }

  override _final(callback: Callback): void {
    this.release();
    callback();
  }

  override _destroy(error: Error | null, callback: (error: Error | null) => void): void {
    this.release();
    callback(error);
  }

  private deliver(frames: EncodedEvent[], callback: Callback): void {
    const { hub, remote } = this;
    if (remote === null) {
      writeFrames(hub, frames, callback);
      return;
    }
    // Local delivery never waits for, nor depends on, the proxy.
    let pending = 2;
    let failure: Error | null = null;
    const settle = (error?: Error | null): void => {
      if (error && failure === null) failure = error;
      if (--pending === 0) callback(failure);
    };
    writeFrames(hub, frames, settle);
    remote.publish(this.channel, frames).then(() => settle(), settle);
  }

  private release(): void {
    const release = this.onRelease;
    this.onRelease = null;
    release?.();
  }
}

function uncork(writable: Writable): void {
  writable.uncork();
}

function writeFrames(hub: ChannelHub, frames: EncodedEvent[], callback: Callback): void {
  if (hub.destroyed) {
    // The EventStream was closed under this writer; local subscribers are gone.
    callback();
    return;
  }
  const last = frames.length - 1;
  for (let i = 0; i < last; i++) hub.write(frames[i]!.bytes);
  hub.write(frames[last]!.bytes, callback);
}
