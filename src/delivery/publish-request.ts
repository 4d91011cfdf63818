import type { EncodedEvent } from '../sse/encoder.js';

/**
 * A write made by publishEvent: everything that happens to its event (the
 * store, the hub, the proxies) is reported to it, and never to the stream,
 * so one caller's failure is nobody else's. It settles once the writable
 * reported the outcome AND the write callback fired, so whatever the caller
 * does next runs after the writable finished with the write.
 */
export class PublishRequest {
  readonly event: EncodedEvent;
  private onSettled: ((error: Error | null) => void) | null;
  private outcome: Error | null | undefined = undefined;
  private writeDone = false;

  constructor(event: EncodedEvent, onSettled: (error: Error | null) => void) {
    this.event = event;
    this.onSettled = onSettled;
  }

  /** From the writable: what became of the event (null once the store, the hub and every proxy have it). */
  settle(error: Error | null): void {
    if (this.outcome !== undefined) return;
    this.outcome = error;
    if (this.writeDone) this.finish(error);
  }

  /** The write callback: with an error the stream failed before it could take the event, and nothing more will come. */
  written(error: Error | null): void {
    this.writeDone = true;
    if (error !== null) this.finish(error);
    else if (this.outcome !== undefined) this.finish(this.outcome);
  }

  /** Settles now, whatever is still pending (the EventStream closed). */
  abandon(error: Error): void {
    this.finish(error);
  }

  private finish(error: Error | null): void {
    const onSettled = this.onSettled;
    this.onSettled = null;
    onSettled?.(error);
  }
}
