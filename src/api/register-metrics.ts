import {
  Counter,
  Gauge,
  register as globalRegistry,
  Histogram,
  type OpenMetricsContentType,
  type PrometheusContentType,
  type Registry,
} from 'prom-client';
import { CLOSE_REASONS, type StreamMetrics } from '../common/metrics.js';
import { InvalidArgumentError } from '../errors.js';
import { EventStream, observe } from './event-stream.js';

/** A prom-client registry of either exposition format. */
export type MetricsRegistry = Registry<PrometheusContentType> | Registry<OpenMetricsContentType>;

/** Removes what `registerMetrics` added; calling it again does nothing. */
export type UnregisterMetrics = () => void;

/**
 * Control-API exchanges on a LAN take a few milliseconds; the top buckets
 * catch a proxy that is struggling, up to the publish timeouts people set.
 */
const GRIP_PUBLISH_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** The counters with no label: name, help, and the running total they expose. */
const PLAIN_COUNTERS: ReadonlyArray<readonly [string, string, (metrics: StreamMetrics) => number]> = [
  ['eventstream_events_published_total', 'Events this process published.', (m) => m.eventsPublished],
  [
    'eventstream_deliveries_total',
    'Events delivered to direct streams: events times the streams they reached.',
    (m) => m.deliveries,
  ],
  ['eventstream_bytes_sent_total', 'Bytes written to direct streams.', (m) => m.bytesSent],
  ['eventstream_events_replayed_total', 'Events sent from the history to resuming clients.', (m) => m.eventsReplayed],
  [
    'eventstream_stream_resets_total',
    'stream-reset events sent: positions that could not be continued without a gap.',
    (m) => m.streamResets,
  ],
  [
    'eventstream_slow_clients_dropped_total',
    'Streams dropped for falling further behind than maxBufferBytes.',
    (m) => m.slowClientsDropped,
  ],
  [
    'eventstream_grip_publish_failures_total',
    'Control-API exchanges with a GRIP proxy that failed.',
    (m) => m.gripPublishFailures,
  ],
  ['eventstream_store_errors_total', 'Event store calls that failed.', (m) => m.storeErrors],
];

const STREAMS = 'eventstream_streams';
const OPENED = 'eventstream_streams_opened_total';
const CLOSED = 'eventstream_streams_closed_total';
const REFUSED = 'eventstream_requests_refused_total';
const GRIP_DURATION = 'eventstream_grip_publish_duration_seconds';

/** Every name registerMetrics claims on a registry. */
export const METRIC_NAMES: readonly string[] = [
  STREAMS,
  OPENED,
  CLOSED,
  REFUSED,
  ...PLAIN_COUNTERS.map(([name]) => name),
  GRIP_DURATION,
];

/** Which EventStream holds the names on a registry, to say so when a second registration is refused. */
const owners = new WeakMap<MetricsRegistry, EventStream>();

function isRegistry(value: unknown): value is MetricsRegistry {
  if (typeof value !== 'object' || value === null) return false;
  const registry = value as Record<string, unknown>;
  return ['registerMetric', 'getSingleMetric', 'removeSingleMetric', 'metrics'].every(
    (method) => typeof registry[method] === 'function',
  );
}

/** Refuses before anything is created, so a refused call leaves the registry as it was. */
function checkFree(eventStream: EventStream, registry: MetricsRegistry): void {
  const owner = owners.get(registry);
  if (owner === eventStream) {
    throw new InvalidArgumentError(
      "registerMetrics: this EventStream's metrics are already registered on this registry; call the function the first registerMetrics returned to remove them before registering again",
    );
  }
  if (owner !== undefined) {
    throw new InvalidArgumentError(
      "registerMetrics: another EventStream's metrics are already registered on this registry; the metric names are the same for every EventStream, so register each EventStream on a Registry of its own",
    );
  }
  const taken = METRIC_NAMES.find((name) => registry.getSingleMetric(name) !== undefined);
  if (taken !== undefined) {
    throw new InvalidArgumentError(
      `registerMetrics: the registry already has a metric named ${taken}; the EventStream's metrics are already registered on it (by another copy of this package?) or the name is used by something else`,
    );
  }
}

/**
 * Adds an EventStream's metrics to a prom-client registry (default: prom-client's
 * global one). Values are read from the EventStream's running totals when the
 * registry is scraped, so registering costs nothing per event. One EventStream
 * per registry. Returns a function that removes them again.
 */
export function registerMetrics(eventStream: EventStream, registry?: MetricsRegistry): UnregisterMetrics {
  if (!(eventStream instanceof EventStream)) {
    throw new InvalidArgumentError('registerMetrics: the first argument must be an EventStream');
  }
  if (registry !== undefined && !isRegistry(registry)) {
    throw new InvalidArgumentError('registerMetrics: registry must be a prom-client Registry (or left out for the global one)');
  }
  const target: MetricsRegistry = registry ?? globalRegistry;
  checkFree(eventStream, target);
  const { metrics, streams } = observe(eventStream);
  const registers = [target];

  // Counters mirror running totals: each scrape replaces the value with the total, which only grows.
  new Gauge({
    name: STREAMS,
    help: 'Open streams: direct ones this process serves, and ones a GRIP proxy holds for it.',
    labelNames: ['mode'] as const,
    registers,
    collect() {
      const counts = streams();
      this.set({ mode: 'direct' }, counts.direct);
      this.set({ mode: 'held' }, counts.held);
    },
  });
  new Counter({
    name: OPENED,
    help: 'Streams opened: direct ones (resumes included), and holds answered for a GRIP proxy.',
    labelNames: ['mode'] as const,
    registers,
    collect() {
      this.reset();
      this.inc({ mode: 'direct' }, metrics.streamsOpened);
      this.inc({ mode: 'held' }, metrics.heldStreamsOpened);
    },
  });
  new Counter({
    name: CLOSED,
    help: 'Streams ended, by why: client, slow, expired, disconnected, shutdown, error.',
    labelNames: ['reason'] as const,
    registers,
    collect() {
      this.reset();
      for (const reason of CLOSE_REASONS) this.inc({ reason }, metrics.streamsClosed[reason]);
    },
  });
  new Counter({
    name: REFUSED,
    help: 'Stream requests refused, by HTTP status (retry-later answers count as 503).',
    labelNames: ['status'] as const,
    registers,
    collect() {
      this.reset();
      for (const [status, count] of metrics.requestsRefused) this.inc({ status }, count);
    },
  });
  for (const [name, help, read] of PLAIN_COUNTERS) {
    new Counter({
      name,
      help,
      registers,
      collect() {
        this.reset();
        this.inc(read(metrics));
      },
    });
  }
  const gripDuration = new Histogram({
    name: GRIP_DURATION,
    help: 'Duration of control-API exchanges with GRIP proxies (publishes and closes), failed ones included.',
    buckets: GRIP_PUBLISH_BUCKETS,
    registers,
  });
  const observer = (seconds: number): void => gripDuration.observe(seconds);
  metrics.gripPublishObservers.add(observer);
  owners.set(target, eventStream);
  // The names were free (checkFree), so what holds them now is what was just created.
  const owned = METRIC_NAMES.map((name) => [name, target.getSingleMetric(name)] as const);

  let registered = true;
  return () => {
    if (!registered) return;
    registered = false;
    metrics.gripPublishObservers.delete(observer);
    // Only ours: a metric registered under the same name since then belongs to someone else.
    for (const [name, metric] of owned) {
      if (target.getSingleMetric(name) === metric) target.removeSingleMetric(name);
    }
    if (owners.get(target) === eventStream) owners.delete(target);
  };
}
