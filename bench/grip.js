// GRIP publish throughput: this package vs the original @fanoutio/eventstream
// 2.0.1 (dev dependency alias `eventstream-original`), each behind a real
// Pushpin.
//
// Per run: a fresh EventStream with `grip: { control_uri, verify_key }` serves
// /<impl>/events/<channel> from an app server on 127.0.0.1; Pushpin routes
// every request there. One `eventsource` client connects through Pushpin's
// proxy port and is held on the channel; a `warm` event published through the
// library proves the subscription is live. Then, timed from the first write:
// `Readable.from(events).pipe(eventStream.createChannelWritable(channel))`
// until the client has received the last event. Afterwards the client's
// sequence is checked: every event exactly once, in order. Control-API
// requests made during the timed part are counted (bench/grip/control-counter.js).
//
// App server and publisher run in this process, the client in a child process
// (bench/grip/client-process.js), Pushpin (one, shared by both implementations,
// runs interleaved) in its own processes, started by bench/lib/pushpin.js.
//
// Environment overrides (defaults in brackets):
//   BENCH_GRIP_EVENTS [10000]           events per run for this package
//   BENCH_GRIP_ORIGINAL_EVENTS [= BENCH_GRIP_EVENTS]  events per run for the original (one control-API
//                                       request per event: about 15-20 s per 10,000 here). Fewer is quicker
//                                       but not neutral: measured here, the original ran about 20% slower
//                                       per event in 2,000-event runs than in 10,000-event runs.
//   BENCH_GRIP_RUNS [3]                 measured runs per implementation; medians are reported
//   BENCH_GRIP_WARMUP_EVENTS [1000]     one unmeasured run of this many events per implementation first (0 = none)
//   BENCH_GRIP_PAYLOAD_BYTES [100]      bytes of JSON data per event
//   BENCH_GRIP_STALL_MS [10000]         a run fails when the client gets nothing new for this long
//   BENCH_GRIP_SETTLE_MS [2000]         idle pause before each timed part (the previous run's aftermath otherwise slows the next)
//   BENCH_GRIP_IMPLS [eventstream,original]
import http from 'node:http';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { startClientProcess } from './grip/client-driver.js';
import { countRequestsTo } from './grip/control-counter.js';
import { envInt } from './lib/env.js';
import { pushpinAvailable, pushpinVersion, startPushpin } from './lib/pushpin.js';
import { firstLine } from './lib/report.js';

/** The bar: this package's median events/s at least this many times the original's, every event delivered in order. */
const BAR_RATIO = 20;
const EVENT_TYPE = 'tick';

/**
 * What the benchmark uses of an EventStream, whichever version.
 * @typedef {object} Instance
 * @property {(channel: string) => (req: http.IncomingMessage, res: http.ServerResponse, next: (error?: unknown) => void) => unknown} middleware
 * @property {(channel: string, event: { event: string, data: unknown }) => Promise<void>} publishEvent
 * @property {(channel: string) => import('node:stream').Writable} createChannelWritable
 * @property {() => Promise<void>} close
 * @typedef {(grip: { control_uri: string, verify_key: string }) => Instance} Factory
 * @typedef {ReturnType<typeof config>} Config
 * @typedef {{ impl: string, ok: boolean, error: string | null, [figure: string]: any }} Result
 */

/**
 * The calls the benchmark makes, on an EventStream of either version.
 * @param {any} es this package's or 2.0.1's EventStream: two types with these methods in common
 * @param {() => Promise<void>} close
 * @returns {Instance}
 */
function calls(es, close) {
  return {
    middleware: (/** @type {string} */ channel) => es(channel),
    publishEvent: (/** @type {string} */ channel, /** @type {{ event: string, data: unknown }} */ event) =>
      es.publishEvent(channel, event),
    createChannelWritable: (/** @type {string} */ channel) => es.createChannelWritable(channel),
    close,
  };
}

/** @type {Record<string, { label: string, factory: () => Promise<Factory> }>} */
const IMPLS = {
  eventstream: {
    label: 'eventstream (this package)',
    async factory() {
      const { EventStream } = await import('../dist/index.js');
      return (/** @type {{ control_uri: string, verify_key: string }} */ grip) => {
        const es = new EventStream({ grip });
        return calls(es, () => es.close());
      };
    },
  },
  original: {
    label: '@fanoutio/eventstream 2.0.1',
    async factory() {
      const { EventStream } = await import('eventstream-original');
      // It has no close(); in GRIP mode it holds no timers or sockets of its own.
      return (/** @type {{ control_uri: string, verify_key: string }} */ grip) =>
        calls(new EventStream({ grip }), async () => {});
    },
  },
};

/** @param {{ log?: (line: string) => void }} options */
function config(options) {
  const impls = (process.env.BENCH_GRIP_IMPLS ?? Object.keys(IMPLS).join(','))
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const impl of impls) if (!(impl in IMPLS)) throw new Error(`BENCH_GRIP_IMPLS: unknown implementation ${impl}`);
  return {
    impls,
    /** @type {Record<string, number>} */
    events: {
      eventstream: envInt('BENCH_GRIP_EVENTS', 10_000),
      original: envInt('BENCH_GRIP_ORIGINAL_EVENTS', envInt('BENCH_GRIP_EVENTS', 10_000)),
    },
    runs: envInt('BENCH_GRIP_RUNS', 3),
    warmupEvents: envInt('BENCH_GRIP_WARMUP_EVENTS', 1000, 0),
    payloadBytes: envInt('BENCH_GRIP_PAYLOAD_BYTES', 100, 24),
    stallMs: envInt('BENCH_GRIP_STALL_MS', 10_000),
    settleMs: envInt('BENCH_GRIP_SETTLE_MS', 2000, 0),
    log: options.log ?? ((/** @type {string} */ line) => process.stderr.write(`${line}\n`)),
  };
}

/** @type {(ms: number) => Promise<void>} */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Events whose JSON data is exactly `bytes` long: {"seq":N,"pad":"xxx..."}. */
/**
 * @param {number} count
 * @param {number} bytes
 */
function buildEvents(count, bytes) {
  const events = new Array(count);
  for (let seq = 0; seq < count; seq++) {
    const bare = JSON.stringify({ seq, pad: '' }).length;
    events[seq] = { event: EVENT_TYPE, data: { seq, pad: 'x'.repeat(Math.max(0, bytes - bare)) } };
  }
  return events;
}

/** @param {readonly number[]} values */
function median(values) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * @template T
 * @param {Promise<T>} promise
 * @param {number} ms
 * @param {string} what
 * @returns {Promise<T>}
 */
function withTimeout(promise, ms, what) {
  /** @type {NodeJS.Timeout | undefined} */
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]);
}

/** The app server Pushpin routes to: /<impl>/events/<channel> goes to that implementation's current EventStream. */
/** @param {Map<string, Instance>} active */
async function startOrigin(active) {
  const server = http.createServer((req, res) => {
    // The path only: a held stream's link (which Pushpin fetches to check on it) is its URL plus a query.
    const match = /^\/([a-z]+)\/events\/([A-Za-z0-9_-]+)$/.exec(new URL(req.url ?? '/', 'http://origin').pathname);
    const instance = match ? active.get(match[1]) : undefined;
    if (!match || !instance) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('no such stream\n');
      return;
    }
    /** @param {any} error */
    const fail = (error) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`${String(error?.message ?? error)}\n`);
    };
    Promise.resolve()
      .then(() =>
        instance.middleware(match[2])(req, res, (/** @type {unknown} */ error) => fail(error ?? new Error('not handled'))),
      )
      .catch(fail);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(undefined));
  });
  return server;
}

let channelCounter = 0;
const wallNow = () => performance.timeOrigin + performance.now();

/** One run: subscribe the client through Pushpin, pipe `count` events into the channel writable, wait for all of them. */
/**
 * @param {{ impl: string, factory: Factory, count: number, cfg: Config, pushpin: import('./lib/pushpin.js').RunningPushpin,
 *   active: Map<string, Instance>, counter: ReturnType<typeof countRequestsTo>,
 *   client: Awaited<ReturnType<typeof startClientProcess>> }} run
 * @returns {Promise<Result>}
 */
async function measure({ impl, factory, count, cfg, pushpin, active, counter, client }) {
  const channel = `bench-${impl}-${process.pid}-${++channelCounter}`;
  const instance = factory({ control_uri: pushpin.controlUri, verify_key: pushpin.sigKey });
  active.set(impl, instance);
  /** @type {Readable | null} */
  let source = null;
  /** @type {import('node:stream').Writable | null} */
  let writable = null;
  try {
    await client.open(`${pushpin.proxyUrl}/${impl}/events/${channel}`, count);

    // Publish `warm` until one arrives: the hold is live and both sides have warm connections.
    const warmDeadline = performance.now() + 10_000;
    while (client.state.warm === 0) {
      if (performance.now() > warmDeadline) throw new Error('no warm-up event reached the client within 10 s');
      await instance.publishEvent(channel, { event: 'warm', data: 'warm' });
      for (let i = 0; i < 40 && client.state.warm === 0; i++) await sleep(10);
    }

    const events = buildEvents(count, cfg.payloadBytes);
    // Let the previous run's aftermath die down first: without the pause, a run right after
    // a 10,000-event run of the other implementation was measured up to 2x slower.
    if (cfg.settleMs > 0) await sleep(cfg.settleMs);
    const target = instance.createChannelWritable(channel);
    writable = target;
    /** @type {Error | null} */
    let writeError = null;
    let finishedAt = null;
    const finished = new Promise((resolve) => {
      target.once('finish', () => {
        finishedAt = wallNow();
        resolve(undefined);
      });
      target.once('error', (error) => {
        writeError = error;
        resolve(undefined);
      });
    });
    // Counted from here: only the timed publishes.
    counter.reset();
    const startedAt = wallNow();
    source = Readable.from(events);
    source.pipe(writable);

    // Wakes on the last event, a write error, or every 50 ms to check for a stall (never spins on a settled promise).
    const failed = finished.then(() => (writeError === null ? new Promise(() => {}) : undefined));
    while (client.state.doneAt === null && writeError === null) {
      if (wallNow() - Math.max(startedAt, client.state.lastProgressAt) > cfg.stallMs) break;
      await Promise.race([client.done(), failed, sleep(50)]);
    }
    if (writeError === null && client.state.doneAt !== null) {
      await withTimeout(finished, cfg.stallMs, "the writable's finish");
    }
    // Anything arriving after the last expected event (duplicates) shows up in the check.
    await sleep(300);
    const requests = counter.snapshot();
    const { result: check, clientErrors } = await client.verify();
    // Set by the writable's listeners, which the checker does not follow.
    const failure = /** @type {Error | null} */ (writeError);
    const doneAt = client.state.doneAt;
    const ok = failure === null && doneAt !== null && check.exactlyOnceInOrder;
    const ms = doneAt === null ? null : doneAt - startedAt;
    let error = null;
    if (failure !== null) error = `writable error: ${failure?.message ?? String(failure)}`;
    else if (doneAt === null) error = `client stalled at ${check.received}/${count} events for ${cfg.stallMs} ms`;
    else if (!check.exactlyOnceInOrder) error = 'events not delivered exactly once in order';
    return {
      impl,
      count,
      ok,
      error,
      ms,
      finishMs: finishedAt === null ? null : finishedAt - startedAt,
      eventsPerSecond: ms === null ? null : count / (ms / 1000),
      publishRequests: requests.publishRequests,
      controlRequests: requests.requests,
      check,
      clientErrors,
    };
  } finally {
    // A failed run must not keep publishing into the next one.
    source?.destroy();
    if (writable && !writable.writableFinished) writable.destroy();
    await client.close().catch(() => {});
    active.delete(impl);
    await instance.close();
  }
}

/** @type {(n: number | null) => string} */
const fmtInt = (n) => (n === null || !Number.isFinite(n) ? '—' : Math.round(n).toLocaleString('en-US'));
/** @type {(n: number | null) => string} */
const fmtMs = (n) => (n === null || !Number.isFinite(n) ? '—' : n.toFixed(0));

/** @param {Result[]} results */
function describeCheck(results) {
  const good = results.filter((r) => r.ok).length;
  const bad = results.filter((r) => !r.ok);
  if (bad.length === 0) {
    const c = results[0]?.check;
    return `yes, ${good}/${results.length} runs (${fmtInt(c?.received)}/${fmtInt(c?.expected)} each, 0 missing, 0 duplicate, 0 reordered)`;
  }
  const details = bad
    .map((r) => {
      const c = r.check;
      return c
        ? `${r.error}: got ${c.received}/${c.expected}, missing ${c.missing}, duplicates ${c.duplicates}, out of order ${c.outOfOrder}, reconnects ${c.reconnects}`
        : r.error;
    })
    .join('; ');
  return `**NO**, ${good}/${results.length} runs ok (${details})`;
}

/**
 * @param {Config} cfg
 * @param {string} versionText
 * @param {Record<string, Result[]>} byImpl
 * @param {string[]} notes
 */
function report(cfg, versionText, byImpl, notes) {
  const lines = [];
  lines.push('## GRIP publish throughput');
  lines.push('');
  lines.push(
    `Real Pushpin (${versionText}) on loopback, one for both implementations, runs interleaved. Per run: a fresh EventStream ` +
      '(`grip: { control_uri, verify_key }`) serving the app on 127.0.0.1 behind Pushpin, one `eventsource` client held on the channel ' +
      "through Pushpin's proxy port, then `Readable.from(events).pipe(eventStream.createChannelWritable(channel))`, timed from the first " +
      'write until the client has received the last event. ' +
      `Events: \`event: ${EVENT_TYPE}\`, ${cfg.payloadBytes} B JSON data carrying a sequence number; the client checks every event arrived exactly once, in order. ` +
      `${cfg.runs} measured run(s) per implementation${cfg.warmupEvents > 0 ? ` after one unmeasured ${cfg.warmupEvents}-event warm-up run each` : ''}; ` +
      `${cfg.settleMs} ms idle before each timed part. App server and publisher share one Node process, the client runs in a child process; ` +
      'times are `performance.timeOrigin + performance.now()` on both sides. Control-API requests are those made during the timed part ' +
      "(counted on undici's diagnostics channel, no extra hop).",
  );
  lines.push('');
  lines.push(
    '| implementation | events/run | median events/s | min–max events/s | median ms to last event | median ms to writable finish | control-API requests/run | events/request | every event exactly once, in order |',
  );
  lines.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
  /** @type {Record<string, number | null>} */
  const medians = {};
  for (const impl of cfg.impls) {
    const results = byImpl[impl];
    const done = results.filter((r) => r.eventsPerSecond !== null);
    const rates = done.map((r) => r.eventsPerSecond);
    // A run that never delivered everything has no rate: the median is only reported when every run completed.
    const med = done.length === results.length && results.length > 0 ? median(rates) : null;
    medians[impl] = med;
    const reqs = median(results.map((r) => r.publishRequests));
    const perRequest = median(results.filter((r) => r.ok && r.publishRequests > 0).map((r) => r.count / r.publishRequests));
    lines.push(
      `| ${IMPLS[impl].label} | ${fmtInt(cfg.events[impl])} | ${fmtInt(med)} | ` +
        `${rates.length ? `${fmtInt(Math.min(...rates))}–${fmtInt(Math.max(...rates))}` : '—'} | ` +
        `${fmtMs(median(done.map((r) => r.ms)))} | ${fmtMs(median(results.filter((r) => r.finishMs !== null).map((r) => r.finishMs)))} | ` +
        `${fmtInt(reqs)} | ${Number.isFinite(perRequest) ? perRequest.toFixed(1) : '—'} | ${describeCheck(results)} |`,
    );
  }
  lines.push('');

  let verdict = 'NOT MEASURED';
  if (cfg.impls.includes('eventstream') && cfg.impls.includes('original')) {
    const ours = medians.eventstream;
    const theirs = medians.original;
    const ratio = ours !== null && theirs !== null ? ours / theirs : null;
    const delivered = byImpl.eventstream.every((r) => r.ok) && byImpl.original.every((r) => r.ok);
    const pass = ratio !== null && ratio >= BAR_RATIO && delivered;
    verdict = pass ? 'PASS' : 'FAIL';
    lines.push('### Bar (eventstream vs original)');
    lines.push('');
    lines.push('| bar | eventstream | original | ratio | limit | result |');
    lines.push('| --- | ---: | ---: | ---: | ---: | ---: |');
    lines.push(
      `| GRIP publish events/s through Pushpin to one client (median) | ${fmtInt(ours)} | ${fmtInt(theirs)} | ` +
        `${ratio === null ? '—' : `${ratio.toFixed(1)}x`} | >= ${BAR_RATIO}x | ${ratio !== null && ratio >= BAR_RATIO ? 'PASS' : 'FAIL'} |`,
    );
    lines.push(
      `| every event delivered exactly once, in order (all runs of both) | ${byImpl.eventstream.filter((r) => r.ok).length}/${byImpl.eventstream.length} | ` +
        `${byImpl.original.filter((r) => r.ok).length}/${byImpl.original.length} | — | all | ${delivered ? 'PASS' : 'FAIL'} |`,
    );
    lines.push('');
    lines.push(
      `**GRIP bar: ${verdict}** (ours/original = ${ratio === null ? 'not computable' : `${ratio.toFixed(1)}x`}, limit >= ${BAR_RATIO}x).`,
    );
    lines.push('');
  }
  if (cfg.events.eventstream !== cfg.events.original && cfg.impls.length > 1) {
    notes.push(
      `The original ran ${fmtInt(cfg.events.original)} events per run, this package ${fmtInt(cfg.events.eventstream)}: the original sends one ` +
        'control-API request per event and awaits each; events/s are compared, not totals. Unequal counts are not neutral: ' +
        'measured on the development machine, the original ran about 20% slower per event in 2,000-event runs than in 10,000-event runs, ' +
        'which inflates the ratio; leave BENCH_GRIP_ORIGINAL_EVENTS unset for the bar.',
    );
  }
  for (const impl of cfg.impls) {
    for (const [i, r] of byImpl[impl].entries()) {
      if (r.clientErrors > 0) notes.push(`${impl} run ${i + 1}: the client saw ${r.clientErrors} error event(s).`);
    }
  }
  if (notes.length) {
    lines.push('Notes:');
    lines.push('');
    for (const note of notes) lines.push(`- ${note}`);
    lines.push('');
  }
  return { markdown: lines.join('\n').trimEnd(), verdict };
}

/**
 * A run that measured nothing.
 * @param {string} impl
 * @param {string} error
 * @param {number} [count] the events it was to publish
 * @returns {Result}
 */
function failedRun(impl, error, count) {
  return {
    impl,
    ...(count === undefined ? {} : { count }),
    ok: false,
    error,
    ms: null,
    finishMs: null,
    eventsPerSecond: null,
    publishRequests: NaN,
    check: null,
    clientErrors: 0,
  };
}

/** @param {{ log?: (line: string) => void }} [options] */
export async function run(options = {}) {
  const cfg = config(options);
  const { log } = cfg;
  const notes = [];
  if (!pushpinAvailable()) {
    const message = 'pushpin binary not found on PATH (apt-get install pushpin): the GRIP benchmark did not run.';
    log(`grip: ${message}`);
    return `## GRIP publish throughput\n\n**NOT RUN: ${message}** GRIP bar: FAIL (not measured).`;
  }

  /** @type {Record<string, Factory>} */
  const factories = {};
  for (const impl of cfg.impls) factories[impl] = await IMPLS[impl].factory();

  /** @type {Map<string, Instance>} */
  const active = new Map();
  /** @type {Record<string, Result[]>} */
  const byImpl = Object.fromEntries(cfg.impls.map((impl) => [impl, []]));
  /** @type {http.Server | null} */
  let origin = null;
  /** @type {import('./lib/pushpin.js').RunningPushpin | null} */
  let pushpin = null;
  /** @type {ReturnType<typeof countRequestsTo> | null} */
  let counter = null;
  /** @type {Awaited<ReturnType<typeof startClientProcess>> | null} */
  let client = null;
  const startedAt = performance.now();
  const loadBefore = os.loadavg()[0];
  // Pushpin runs in its own session, so a Ctrl-C at the terminal does not reach it: stop it here, then exit.
  /** @param {NodeJS.Signals} signal */
  const onSignal = (signal) => {
    log(`grip: ${signal}, stopping Pushpin`);
    Promise.all([pushpin?.stop(), client?.stop()])
      .catch(() => {})
      .finally(() => process.exit(128 + (signal === 'SIGINT' ? 2 : 15)));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    origin = await startOrigin(active);
    pushpin = await startPushpin(/** @type {import('node:net').AddressInfo} */ (origin.address()).port);
    counter = countRequestsTo(pushpin.controlUri);
    client = await startClientProcess();
    const context = { cfg, pushpin, active, counter, client };

    if (cfg.warmupEvents > 0) {
      for (const impl of cfg.impls) {
        log(`grip: ${impl} warm-up (${cfg.warmupEvents} events)`);
        try {
          const r = await measure({ ...context, impl, factory: factories[impl], count: cfg.warmupEvents });
          if (!r.ok) notes.push(`${impl} warm-up run failed: ${r.error}.`);
        } catch (error) {
          notes.push(`${impl} warm-up run failed: ${firstLine(error)}.`);
        }
      }
    }
    for (let round = 0; round < cfg.runs; round++) {
      for (const impl of cfg.impls) {
        const count = cfg.events[impl];
        log(`grip: ${impl} run ${round + 1}/${cfg.runs} (${count} events)`);
        let r;
        try {
          r = await measure({ ...context, impl, factory: factories[impl], count });
        } catch (error) {
          r = failedRun(impl, firstLine(error), count);
        }
        log(
          `  ${r.ok ? 'ok' : `FAILED (${r.error})`}: ${fmtInt(r.eventsPerSecond)} events/s, ${fmtMs(r.ms)} ms to last event, ` +
            `${r.publishRequests} publish requests`,
        );
        byImpl[impl].push(r);
      }
    }
  } catch (error) {
    const logs = pushpin ? `\n${(await pushpin.logs()).slice(-3000)}` : '';
    log(`grip: setup failed: ${error instanceof Error ? (error.stack ?? error) : error}${logs}`);
    notes.push(`Setup failed: ${firstLine(error)}`);
    for (const impl of cfg.impls) {
      if (byImpl[impl].length === 0) byImpl[impl].push(failedRun(impl, 'not run (setup failed)'));
    }
  } finally {
    counter?.stop();
    await client?.stop();
    for (const instance of active.values()) await instance.close().catch(() => {});
    if (origin) {
      const server = origin;
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
    await pushpin?.stop();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
  const cpus = os.cpus().length;
  const loadAfter = os.loadavg()[0];
  notes.push(
    `1-minute load average ${loadBefore.toFixed(2)} before, ${loadAfter.toFixed(2)} after, on ${cpus} CPU(s)` +
      (Math.max(loadBefore, loadAfter) > cpus
        ? ': **other processes competed for the CPUs; absolute events/s are skewed (both implementations ran interleaved, so the ratio is less affected), rerun on a quiet machine.**'
        : '.'),
  );
  notes.push(
    `Whole GRIP benchmark (Pushpin start, warm-up, all runs, cleanup) took ${((performance.now() - startedAt) / 1000).toFixed(1)} s.`,
  );
  const { markdown, verdict } = report(cfg, pushpinVersion(), byImpl, notes);
  log(`grip: ${verdict}`);
  return markdown;
}

// Run alone: `npm run build && node bench/grip.js`
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const markdown = await run({});
  console.log(markdown);
  if (!markdown.includes('**GRIP bar: PASS**')) process.exitCode = 1;
}
