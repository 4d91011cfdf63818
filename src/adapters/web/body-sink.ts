import { EventEmitter } from 'node:events';
import type { EventSink } from '../../delivery/event-sink.js';
import { EventStreamAbortedError } from '../../errors.js';

/**
 * The sink behind a web `Response` body: a byte-counted ReadableStream. What
 * the consumer has not read yet counts as unsent, exactly like the queue of
 * a Node response, so the same slow-client bound applies. The stream closes
 * when the consumer cancels the body or the request's signal aborts.
 */
export class BodySink extends EventEmitter implements EventSink {
  readonly body: ReadableStream<Uint8Array>;
  private controller: ReadableStreamDefaultController<Uint8Array> | null = null;
  private readonly highWaterMark: number;
  private readonly signal: AbortSignal | undefined;
  private readonly onAbort = (): void => {
    this.destroy();
  };
  private finished = false;

  constructor(highWaterMark: number, signal?: AbortSignal) {
    super();
    this.highWaterMark = highWaterMark;
    this.signal = signal;
    this.body = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.controller = controller;
        },
        pull: () => {
          this.emit('drain');
        },
        cancel: () => {
          this.finish();
        },
      },
      new ByteLengthQueuingStrategy({ highWaterMark }),
    );
    if (signal?.aborted) queueMicrotask(this.onAbort);
    else signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  get writableLength(): number {
    const desired = this.controller?.desiredSize ?? this.highWaterMark;
    return Math.max(0, this.highWaterMark - desired);
  }

  get writableNeedDrain(): boolean {
    return (this.controller?.desiredSize ?? 1) <= 0;
  }

  write(chunk: Buffer): boolean {
    if (this.finished || this.controller === null) return false;
    this.controller.enqueue(chunk);
    return !this.writableNeedDrain;
  }

  end(): void {
    if (this.finished) return;
    this.controller?.close();
    this.finish();
  }

  destroy(): void {
    if (this.finished) return;
    this.controller?.error(new EventStreamAbortedError());
    this.finish();
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.signal?.removeEventListener('abort', this.onAbort);
    this.emit('close');
  }
}
