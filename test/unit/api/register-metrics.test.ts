/**
 * The Prometheus entry against a real prom-client Registry, scraped as the
 * Prometheus text format and parsed here; traffic from real EventSource
 * clients over loopback.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { register as globalRegistry, Registry } from 'prom-client';
import { observe } from '../../../src/api/event-stream.js';
import { CLOSE_REASONS } from '../../../src/common/metrics.js';
import { EventStream, InvalidArgumentError } from '../../../src/index.js';
import { registerMetrics } from '../../../src/prometheus.js';
import { listen } from '../../helpers/server.js';
import { RecordingEventSource } from '../../helpers/sse-client.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface Scrape {
  help: Map<string, string>;
  type: Map<string, string>;
  samples: Sample[];
  /** The value of the one sample of `name` with exactly these labels. */
  value(name: string, labels?: Record<string, string>): number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** A parser for what prom-client writes: HELP and TYPE comments, then `name{labels} value` lines. */
function parse(text: string): Scrape {
  const help = new Map<string, string>();
  const type = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const comment = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (comment !== null) {
      const [, kind, name, rest] = comment;
      const seen = kind === 'HELP' ? help : type;
      assert.ok(!seen.has(name!), `a second # ${kind} for ${name}`);
      seen.set(name!, rest!);
      continue;
    }
    const sample = SAMPLE.exec(line);
    assert.ok(sample !== null, `not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (sample[2] ?? '').matchAll(LABEL)) labels[key!] = value!;
    samples.push({ name: sample[1]!, labels, value: Number(sample[3]) });
  }
  return {
    help,
    type,
    samples,
    value(name, wanted = {}) {
      const matching = samples.filter(
        (s) =>
          s.name === name &&
          Object.keys(s.labels).length === Object.keys(wanted).length &&
          Object.entries(wanted).every(([key, value]) => s.labels[key] === value),
      );
      assert.equal(
        matching.length,
        1,
        `one sample ${name}${JSON.stringify(wanted)}; the scrape has ${JSON.stringify(samples.filter((s) => s.name === name))}`,
      );
      return matching[0]!.value;
    },
  };
}

async function scrape(registry: Registry): Promise<Scrape> {
  return parse(await registry.metrics());
}

const PLAIN_COUNTERS = [
  'eventstream_events_published_total',
  'eventstream_deliveries_total',
  'eventstream_bytes_sent_total',
  'eventstream_events_replayed_total',
  'eventstream_stream_resets_total',
  'eventstream_slow_clients_dropped_total',
  'eventstream_grip_publish_failures_total',
  'eventstream_store_errors_total',
];
const COUNTERS = [
  'eventstream_streams_opened_total',
  'eventstream_streams_closed_total',
  'eventstream_requests_refused_total',
  ...PLAIN_COUNTERS,
];
const ALL = ['eventstream_streams', ...COUNTERS, 'eventstream_grip_publish_duration_seconds'];

/** Samples of a metric family (a histogram's _bucket, _sum and _count included). */
function familyOf(scrape: Scrape, name: string): Sample[] {
  return scrape.samples.filter((s) => s.name === name || s.name.startsWith(`${name}_`));
}

/**
 * N real EventSource clients on one channel of a loopback server, then M
 * events published and received by each. Leaves the clients open.
 */
async function traffic(eventStream: EventStream, clients: number, events: number) {
  const server = await listen((req, res) => {
    void eventStream.run(req, res, 'news');
  });
  const sources = Array.from({ length: clients }, () => new RecordingEventSource(`${server.url}/events`));
  await Promise.all(sources.map((source) => source.opened));
  for (let i = 0; i < events; i++) await eventStream.publishEvent('news', { data: { i } });
  await Promise.all(sources.map((source) => source.waitFor(events)));
  return {
    server,
    sources,
    async end() {
      for (const source of sources) source.close();
      await server.close();
      await eventStream.close();
    },
  };
}

/** Scrapes until `predicate` holds: the server learns of a client leaving a little after the client does. */
async function scrapeUntil(registry: Registry, predicate: (scrape: Scrape) => boolean, what: string): Promise<Scrape> {
  const start = Date.now();
  for (;;) {
    const result = await scrape(registry);
    if (predicate(result)) return result;
    if (Date.now() - start > 5000) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test('every metric has its HELP and TYPE, *_total ones are counters, and an idle EventStream reads zero everywhere', async () => {
  const eventStream = new EventStream();
  const registry = new Registry();
  registerMetrics(eventStream, registry);
  const result = await scrape(registry);
  for (const name of ALL) assert.ok((result.help.get(name) ?? '').length > 10, `# HELP ${name}`);
  assert.equal(result.type.get('eventstream_streams'), 'gauge');
  for (const name of COUNTERS) assert.equal(result.type.get(name), 'counter', `# TYPE ${name}`);
  assert.equal(result.type.get('eventstream_grip_publish_duration_seconds'), 'histogram');
  assert.deepEqual([...result.type.keys()].sort(), [...ALL].sort(), 'nothing else is registered');

  assert.equal(result.value('eventstream_streams', { mode: 'direct' }), 0);
  assert.equal(result.value('eventstream_streams', { mode: 'held' }), 0);
  assert.equal(result.value('eventstream_streams_opened_total', { mode: 'direct' }), 0);
  assert.equal(result.value('eventstream_streams_opened_total', { mode: 'held' }), 0);
  // Every reason is there from the start, so rate() works on the first close of each.
  for (const reason of CLOSE_REASONS) assert.equal(result.value('eventstream_streams_closed_total', { reason }), 0);
  assert.equal(familyOf(result, 'eventstream_requests_refused_total').length, 0, 'no status before a refusal');
  for (const name of PLAIN_COUNTERS) assert.equal(result.value(name), 0, name);
  assert.equal(result.value('eventstream_grip_publish_duration_seconds_count'), 0);
  const bounds = familyOf(result, 'eventstream_grip_publish_duration_seconds')
    .filter((s) => s.name.endsWith('_bucket'))
    .map((s) => s.labels.le);
  assert.equal(bounds[0], '0.001');
  assert.ok(bounds.includes('10'), `buckets up to 10 s: ${bounds.join(' ')}`);
  assert.equal(bounds.at(-1), '+Inf');
  await eventStream.close();
});

test('the streams gauge counts open direct streams and falls back when the clients leave', async () => {
  const eventStream = new EventStream({ keepAliveInterval: 0 });
  const registry = new Registry();
  registerMetrics(eventStream, registry);
  const run = await traffic(eventStream, 3, 4);
  try {
    const open = await scrape(registry);
    assert.equal(open.value('eventstream_streams', { mode: 'direct' }), 3);
    assert.equal(open.value('eventstream_streams', { mode: 'held' }), 0);
    for (const source of run.sources) source.close();
    await scrapeUntil(
      registry,
      (s) => s.value('eventstream_streams', { mode: 'direct' }) === 0,
      'the streams gauge to fall to 0',
    );
  } finally {
    await run.end();
  }
});

test('counters read the running totals at scrape time, each from its own field, and never go down between scrapes', async () => {
  const eventStream = new EventStream();
  const registry = new Registry();
  registerMetrics(eventStream, registry);
  const { metrics } = observe(eventStream);
  // The totals as the core keeps them; each field gets a distinct value so a crossed wire shows.
  metrics.streamsOpened = 11;
  metrics.heldStreamsOpened = 12;
  metrics.streamsClosed.client = 13;
  metrics.streamsClosed.slow = 14;
  metrics.refused(429);
  metrics.refused(429);
  metrics.refused(503);
  metrics.eventsPublished = 21;
  metrics.deliveries = 22;
  metrics.bytesSent = 23;
  metrics.eventsReplayed = 24;
  metrics.streamResets = 25;
  metrics.slowClientsDropped = 26;
  metrics.gripPublishFailures = 27;
  metrics.storeErrors = 28;
  const first = await scrape(registry);
  assert.equal(first.value('eventstream_streams_opened_total', { mode: 'direct' }), 11);
  assert.equal(first.value('eventstream_streams_opened_total', { mode: 'held' }), 12);
  assert.equal(first.value('eventstream_streams_closed_total', { reason: 'client' }), 13);
  assert.equal(first.value('eventstream_streams_closed_total', { reason: 'slow' }), 14);
  assert.equal(first.value('eventstream_streams_closed_total', { reason: 'expired' }), 0);
  assert.equal(first.value('eventstream_requests_refused_total', { status: '429' }), 2);
  assert.equal(first.value('eventstream_requests_refused_total', { status: '503' }), 1);
  assert.deepEqual(
    PLAIN_COUNTERS.map((name) => first.value(name)),
    [21, 22, 23, 24, 25, 26, 27, 28],
  );

  metrics.eventsPublished += 5;
  metrics.streamsClosed.client += 1;
  metrics.refused(429);
  const second = await scrape(registry);
  const third = await scrape(registry);
  assert.equal(second.value('eventstream_events_published_total'), 26, 'the new total, not the increment');
  assert.equal(second.value('eventstream_streams_closed_total', { reason: 'client' }), 14);
  assert.equal(second.value('eventstream_requests_refused_total', { status: '429' }), 3);
  // A scrape with no traffic in between reads the same totals: nothing is added twice.
  assert.deepEqual(third.samples, second.samples);
  for (const sample of second.samples) {
    const before = first.samples.find(
      (s) => s.name === sample.name && JSON.stringify(s.labels) === JSON.stringify(sample.labels),
    );
    assert.ok(before === undefined || sample.value >= before.value, `${sample.name} went down`);
  }
  await eventStream.close();
});

test('the GRIP publish histogram observes what gripPublishObservers are told, failed exchanges included', async () => {
  const eventStream = new EventStream();
  const registry = new Registry();
  const { metrics } = observe(eventStream);
  assert.equal(metrics.gripPublishObservers.size, 0);
  registerMetrics(eventStream, registry);
  assert.equal(metrics.gripPublishObservers.size, 1);
  for (const observer of metrics.gripPublishObservers) {
    observer(0.003, false);
    observer(0.2, true);
    observer(20, true);
  }
  const result = await scrape(registry);
  const histogram = 'eventstream_grip_publish_duration_seconds';
  assert.equal(result.value(`${histogram}_count`), 3);
  assert.ok(Math.abs(result.value(`${histogram}_sum`) - 20.203) < 1e-9);
  assert.equal(result.value(`${histogram}_bucket`, { le: '0.001' }), 0);
  assert.equal(result.value(`${histogram}_bucket`, { le: '0.005' }), 1);
  assert.equal(result.value(`${histogram}_bucket`, { le: '0.25' }), 2);
  assert.equal(result.value(`${histogram}_bucket`, { le: '10' }), 2);
  assert.equal(result.value(`${histogram}_bucket`, { le: '+Inf' }), 3);
  await eventStream.close();
});

test('the returned function removes every metric and the observer, once; the EventStream can then be registered again', async () => {
  const eventStream = new EventStream();
  const registry = new Registry();
  const { metrics } = observe(eventStream);
  // Someone else's metric on the same registry is left alone.
  registry.registerMetric(
    new (await import('prom-client')).Counter({ name: 'app_requests_total', help: 'requests', registers: [] }),
  );
  const unregister = registerMetrics(eventStream, registry);
  assert.equal(familyOf(await scrape(registry), 'eventstream').length > 20, true);
  unregister();
  assert.equal(metrics.gripPublishObservers.size, 0);
  const after = await scrape(registry);
  assert.deepEqual([...after.type.keys()], ['app_requests_total']);
  unregister();
  const again = registerMetrics(eventStream, registry);
  assert.equal((await scrape(registry)).type.get('eventstream_streams'), 'gauge');
  again();
  await eventStream.close();
});

test('registering twice on one registry is refused with an InvalidArgumentError, leaving the registry as it was', async () => {
  const eventStream = new EventStream();
  const other = new EventStream();
  const registry = new Registry();
  registerMetrics(eventStream, registry);
  const before = await registry.metrics();
  assert.throws(
    () => registerMetrics(eventStream, registry),
    (error: unknown) =>
      error instanceof InvalidArgumentError &&
      error.code === 'ERR_EVENTSTREAM_INVALID_ARGUMENT' &&
      /this EventStream's metrics are already registered on this registry/.test(error.message),
  );
  assert.throws(
    () => registerMetrics(other, registry),
    (error: unknown) =>
      error instanceof InvalidArgumentError && /another EventStream's metrics are already registered/.test(error.message),
  );
  assert.equal(await registry.metrics(), before);
  assert.equal(observe(other).metrics.gripPublishObservers.size, 0, 'a refused call adds no observer');
  // A second EventStream goes on a registry of its own.
  const own = new Registry();
  registerMetrics(other, own);
  assert.equal((await scrape(own)).type.get('eventstream_streams'), 'gauge');

  // A name already taken by something else is refused the same way, before anything is added.
  const taken = new Registry();
  const { Gauge } = await import('prom-client');
  new Gauge({ name: 'eventstream_store_errors_total', help: 'not ours', registers: [taken] });
  assert.throws(
    () => registerMetrics(new EventStream(), taken),
    (error: unknown) =>
      error instanceof InvalidArgumentError && /already has a metric named eventstream_store_errors_total/.test(error.message),
  );
  assert.deepEqual(
    taken.getMetricsAsArray().map((metric) => (metric as unknown as { name: string }).name),
    ['eventstream_store_errors_total'],
  );
  await eventStream.close();
  await other.close();
});

test('arguments that are not an EventStream or a Registry are refused', () => {
  assert.throws(
    () => registerMetrics({} as EventStream, new Registry()),
    (error: unknown) => error instanceof InvalidArgumentError && /first argument must be an EventStream/.test(error.message),
  );
  const eventStream = new EventStream();
  assert.throws(
    () => registerMetrics(eventStream, {} as Registry),
    (error: unknown) => error instanceof InvalidArgumentError && /registry must be a prom-client Registry/.test(error.message),
  );
  void eventStream.close();
});

test("without a registry the metrics go on prom-client's global one", async () => {
  const eventStream = new EventStream();
  const unregister = registerMetrics(eventStream);
  try {
    const result = parse(await globalRegistry.metrics());
    assert.equal(result.type.get('eventstream_streams'), 'gauge');
    assert.equal(result.value('eventstream_streams', { mode: 'direct' }), 0);
  } finally {
    unregister();
    await eventStream.close();
  }
  assert.equal(globalRegistry.getSingleMetric('eventstream_streams'), undefined);
});

test('known traffic gives exact counts of streams, publishes, deliveries and bytes (needs core wiring)', async () => {
  const clients = 3;
  const events = 4;
  const eventStream = new EventStream({ keepAliveInterval: 0 });
  const registry = new Registry();
  registerMetrics(eventStream, registry);
  const run = await traffic(eventStream, clients, events);
  try {
    const open = await scrape(registry);
    assert.equal(open.value('eventstream_events_published_total'), events);
    assert.equal(open.value('eventstream_deliveries_total'), events * clients);
    assert.ok(open.value('eventstream_bytes_sent_total') > 0, 'bytes were sent');
    assert.equal(open.value('eventstream_streams_opened_total', { mode: 'direct' }), clients);
    for (const source of run.sources) source.close();
    const closed = await scrapeUntil(
      registry,
      (s) => s.value('eventstream_streams', { mode: 'direct' }) === 0,
      'the streams gauge to fall to 0',
    );
    assert.equal(closed.value('eventstream_streams_closed_total', { reason: 'client' }), clients);
  } finally {
    await run.end();
  }
});
