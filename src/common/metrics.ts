/** Why a stream ended, as `eventstream:stream:close` and `eventstream_streams_closed_total` say it. */
export const CLOSE_REASONS = ['client', 'slow', 'expired', 'disconnected', 'shutdown', 'error'] as const;
export type CloseReason = (typeof CLOSE_REASONS)[number];

/**
 * The running totals of one EventStream, kept as plain numbers so counting
 * costs an addition: per frame or per stream, never per client per event.
 * The Prometheus entry (api/register-metrics.ts) reads them at scrape time.
 */
export class StreamMetrics {
  /** Direct streams opened (each counted once, resumes included). */
  streamsOpened = 0;
  /** Hold instructions answered: streams a proxy holds for this origin. */
  heldStreamsOpened = 0;
  readonly streamsClosed: Record<CloseReason, number> = {
    client: 0,
    slow: 0,
    expired: 0,
    disconnected: 0,
    shutdown: 0,
    error: 0,
  };
  /** Refused stream requests by status (4xx; 200 retry-later answers count under 503). */
  readonly requestsRefused = new Map<number, number>();
  /** Events this process sequenced and handed on (its publishes). */
  eventsPublished = 0;
  /** Events that reached this process's hubs: its own publishes, and with a shared store every process's. */
  eventsReceived = 0;
  /** Events delivered to direct streams here, counted per frame: events times the streams the frame reached. */
  deliveries = 0;
  /** Bytes written to direct streams' sinks. */
  bytesSent = 0;
  /** Events sent from the history to resuming clients (direct and held). */
  eventsReplayed = 0;
  /** stream-reset events sent (a position that could not be continued without a gap). */
  streamResets = 0;
  slowClientsDropped = 0;
  gripPublishFailures = 0;
  /** Store calls that failed (appends, reads, watches), whoever made them. */
  storeErrors = 0;
  /** Told of every control-API exchange: its duration and whether it failed. */
  readonly gripPublishObservers = new Set<(seconds: number, failed: boolean) => void>();

  refused(status: number): void {
    this.requestsRefused.set(status, (this.requestsRefused.get(status) ?? 0) + 1);
  }
}
