// Publishing-idiom benchmark: raw node:http vs EventStream, driven the ways
// the README tells users to publish, side by side in one run (issue 12).
//
// 1. awaited loop: `for (const e of events) await eventStream.publishEvent(ch, e)`, bursts of E events, N clients;
// 2. piped: `await pipeline(Readable.from(events), eventStream.createChannelWritable(ch))`, same bursts;
// 3. steady awaited stream: one event due every I ms, each awaited before the next, open loop
//    (stamped with its due time, so falling behind shows as latency), at N and at N_SMALL;
// 4. chat: K publishers POST one event each, again and again, to an Express route that awaits
//    publishEvent and answers 204, with N subscribers;
// 5. heap and RSS per idle connection at N_IDLE, on plain node:http and under Express 5.
//
// The raw baseline runs the same user code with a hand-written SSE server in
// place of EventStream (see createRaw in bench/fanout/server.js): the awaited
// loop awaits what its publishOne returns (nothing: one microtask, as for a
// resolved promise) after writing the event to every response; the pipe
// goes into a Writable that does the same and calls back at once; the chat
// route has the same shape, middleware and answer. Raw keeps no history, sends
// no ids, has no slow-client bound and ignores backpressure: all work
// EventStream does on top, so raw is the cheaper side of every pair.
//
// Scenarios 1 to 4 run mounted as BENCH_IDIOMS_MOUNT says (default express,
// as the README mounts it; raw behind the same Express routes). Each
// implementation gets its own server child process (bench/fanout/server.js)
// and the clients and publishers one client child (bench/fanout/client.js);
// the order of raw and eventstream alternates from round to round. Server
// CPU is process.cpuUsage() of the server child over the whole measurement,
// until every client has every event, over the events delivered.
//
// Environment overrides (defaults in brackets):
//   BENCH_IDIOMS [awaited,piped,steady,chat,memory]  scenarios to run
//   BENCH_IDIOMS_MOUNT [express]       'express' or 'http' for scenarios 1-4
//   BENCH_IDIOMS_CLIENTS [1000]        N: clients for 1, 2, 4 and the large steady run
//   BENCH_IDIOMS_CLIENTS_SMALL [100]   N_SMALL: clients for the small steady run
//   BENCH_IDIOMS_IDLE_CLIENTS [5000]   N_IDLE: idle connections for the memory scenario
//   BENCH_IDIOMS_EVENTS [200]          E: events per burst and counted events per steady run
//   BENCH_IDIOMS_BURSTS [5]            measured bursts per idiom (at least 3, fewer if the budget runs out)
//   BENCH_IDIOMS_WARMUP_BURSTS [1]     unmeasured bursts first
//   BENCH_IDIOMS_BURST_BUDGET_MS [10000]  per idiom: stop measuring bursts after this long
//   BENCH_IDIOMS_INTERVAL_MS [10]      I: one event due every I ms in the steady runs
//   BENCH_IDIOMS_STEADY_WARMUP [50]    uncounted steady events before the counted E
//   BENCH_IDIOMS_PUBLISHERS [50]       K: concurrent POSTing publishers in the chat
//   BENCH_IDIOMS_CHAT_MS [3000]        measured chat duration (after BENCH_IDIOMS_CHAT_WARMUP_MS [500])
//   BENCH_PAYLOAD_BYTES [100]          JSON data bytes per event
//   BENCH_REPEAT [1]                   rounds; bars are judged on the median of the rounds' paired ratios
//   BENCH_IDIOMS_JSON                  if set, a file to write every round's raw measurements to
import { pathToFileURL } from 'node:url';
import {
  awaitSamples,
  cpuMicros,
  holdConnections,
  idleMemory,
  measureBursts,
  requireOpenFiles,
  runRounds,
  sleep,
  startPair,
  stopPair,
  warmUp,
} from './lib/driver.js';
import { envInt } from './lib/env.js';
import { wallNow } from './lib/ipc.js';
import { machineLoad, machineSnapshot } from './lib/machine-load.js';
import {
  changedSettingsNote,
  closeDetails,
  fmt,
  fmtInt,
  fmtRatio,
  median,
  openDetails,
  pushParagraph,
  ratio,
  table,
} from './lib/report.js';

const IMPLS = ['raw', 'eventstream'];
const SCENARIOS = ['awaited', 'piped', 'steady', 'chat', 'memory'];
/** The bars are defined at these settings. */
const BAR_SETTINGS = {
  clients: 1000,
  clientsSmall: 100,
  idleClients: 5000,
  events: 200,
  intervalMs: 10,
  publishers: 50,
  payloadBytes: 100,
};
/** The steady run keeps its schedule when its counted events take at most this much longer than due. */
const SCHEDULE_SLACK = 1.1;
const NOISY_PCT = 20;
const STRAGGLER_TIMEOUT_MS = 60_000;

/**
 * One implementation's measurements in one round: figures by scenario; `error` when the run failed.
 * @typedef {{ impl: string, error?: string | null, [figure: string]: any }} Result
 * @typedef {Record<string, Result>} Round
 * @typedef {ReturnType<typeof config>} Config
 * @typedef {import('./lib/driver.js').Pair} Pair
 * @typedef {{ label: string, pick: (r: Result) => number, digits: number, limit: number | null }} Metric
 */

/** @param {{ log?: (line: string) => void }} options */
function config(options) {
  const scenarios = (process.env.BENCH_IDIOMS ?? SCENARIOS.join(','))
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const s of scenarios)
    if (!SCENARIOS.includes(s)) throw new Error(`BENCH_IDIOMS: unknown scenario ${s}; expected ${SCENARIOS.join(', ')}`);
  const mount = process.env.BENCH_IDIOMS_MOUNT || 'express';
  if (mount !== 'express' && mount !== 'http') throw new Error(`BENCH_IDIOMS_MOUNT must be express or http, got ${mount}`);
  if (mount === 'http' && scenarios.includes('chat')) {
    throw new Error('the chat scenario is an Express route: with BENCH_IDIOMS_MOUNT=http leave chat out of BENCH_IDIOMS');
  }
  const clients = envInt('BENCH_IDIOMS_CLIENTS', 1000);
  return {
    scenarios,
    mount,
    clients,
    clientsSmall: Math.min(clients, envInt('BENCH_IDIOMS_CLIENTS_SMALL', 100)),
    idleClients: envInt('BENCH_IDIOMS_IDLE_CLIENTS', 5000),
    events: envInt('BENCH_IDIOMS_EVENTS', 200),
    bursts: envInt('BENCH_IDIOMS_BURSTS', 5),
    warmupBursts: envInt('BENCH_IDIOMS_WARMUP_BURSTS', 1, 0),
    burstBudgetMs: envInt('BENCH_IDIOMS_BURST_BUDGET_MS', 10_000),
    intervalMs: envInt('BENCH_IDIOMS_INTERVAL_MS', 10),
    steadyWarmup: envInt('BENCH_IDIOMS_STEADY_WARMUP', 50, 0),
    publishers: envInt('BENCH_IDIOMS_PUBLISHERS', 50),
    chatMs: envInt('BENCH_IDIOMS_CHAT_MS', 3000),
    chatWarmupMs: envInt('BENCH_IDIOMS_CHAT_WARMUP_MS', 500),
    payloadBytes: envInt('BENCH_PAYLOAD_BYTES', 100, 32),
    repeat: envInt('BENCH_REPEAT', 1),
    log: options.log ?? ((/** @type {string} */ line) => process.stderr.write(`${line}\n`)),
  };
}

/** @type {(cfg: { scenarios: readonly string[] }, scenario: string) => boolean} */
const has = (cfg, scenario) => cfg.scenarios.includes(scenario);

// ---------------------------------------------------------------------------
// Measurements

/**
 * Bursts of E events in one idiom (a server command), to every connected client.
 * @param {Pair} pair
 * @param {Config} cfg
 * @param {string} command
 */
async function bursts(pair, cfg, command) {
  const { replies, ...r } = await measureBursts(pair, {
    events: cfg.events,
    bursts: cfg.bursts,
    warmupBursts: cfg.warmupBursts,
    budgetMs: cfg.burstBudgetMs,
    minBursts: Math.min(3, cfg.bursts),
    publish: () => pair.server.call(command, { events: cfg.events, bytes: cfg.payloadBytes }, 120_000),
  });
  return { ...r, publishP50: median(replies.map((/** @type {any} */ reply) => reply?.publishP50)) };
}

/**
 * The steady awaited stream to the `n` connected clients; fails unless every event reached every client.
 * @param {Pair} pair
 * @param {Config} cfg
 * @param {number} n
 */
async function steady(pair, cfg, n) {
  const { server, client, pids } = pair;
  const total = cfg.steadyWarmup + cfg.events;
  const wallStart = wallNow() + 100; // the IPC below lands before the first event is due
  // counted: events stamped from the first counted due time on (half an interval early: stamps are rounded)
  await client.call('latStart', { from: wallStart + (cfg.steadyWarmup - 0.5) * cfg.intervalMs });
  const countsA = await client.call('counts');
  await server.call('cpuStart');
  await client.call('cpuStart');
  const loadA = machineSnapshot(pids);
  const r = await server.call(
    'steadyAwaited',
    { intervalMs: cfg.intervalMs, events: cfg.events, warmupEvents: cfg.steadyWarmup, bytes: cfg.payloadBytes, wallStart },
    total * cfg.intervalMs * 20 + 60_000,
  );
  const loadB = machineSnapshot(pids);
  const drainMs = await awaitSamples(client, cfg.events * n, STRAGGLER_TIMEOUT_MS);
  await sleep(20);
  const serverCpu = cpuMicros(await server.call('cpuEnd'));
  const clientCpu = cpuMicros(await client.call('cpuEnd'));
  const countsB = await client.call('counts');
  const lat = await client.call('latStop');
  const delivered = countsB.events - countsA.events;
  if (delivered !== total * n || lat.count !== cfg.events * n) {
    throw new Error(`steady N=${n}: ${delivered}/${total * n} events delivered, ${lat.count}/${cfg.events * n} samples`);
  }
  const scheduleMs = cfg.events * cfg.intervalMs;
  const load = machineLoad(loadA, loadB);
  return {
    n,
    elapsedMs: r.elapsedMs,
    scheduleMs,
    scheduleRatio: r.elapsedMs / scheduleMs,
    publishP50: r.publishP50,
    publishP99: r.publishP99,
    startLagP50: r.startLagP50,
    startLagMax: r.startLagMax,
    p50: lat.p50,
    p99: lat.p99,
    max: lat.max,
    cpuPerEvent: serverCpu / delivered,
    serverLoopUtilization: r.eventLoopUtilization,
    clientCpuShare: clientCpu / 1000 / (r.elapsedMs + drainMs),
    eventsPerRead: delivered / (countsB.reads - countsA.reads),
    drainMs,
    otherPct: load.otherPct,
    stealPct: load.stealPct,
  };
}

/**
 * The open publishers POST to /say for `durationMs`; every event must reach every connected client.
 * @param {Pair} pair
 * @param {Config} cfg
 * @param {number} durationMs
 */
async function chatRun(pair, cfg, durationMs) {
  const { server, client, pids } = pair;
  const n = await server.call('count');
  await server.call('sayStats'); // forget earlier calls
  await client.call('latStart', { from: wallNow() });
  const countsA = await client.call('counts');
  await server.call('cpuStart');
  await client.call('cpuStart');
  const loadA = machineSnapshot(pids);
  const start = performance.now();
  const posted = await client.call('post', { durationMs, bytes: cfg.payloadBytes }, durationMs + 120_000);
  const loadB = machineSnapshot(pids);
  const drainMs = await awaitSamples(client, posted.posts * n, STRAGGLER_TIMEOUT_MS);
  const wallMs = performance.now() - start;
  await sleep(20);
  const serverCpu = cpuMicros(await server.call('cpuEnd'));
  const clientCpu = cpuMicros(await client.call('cpuEnd'));
  const countsB = await client.call('counts');
  const lat = await client.call('latStop');
  const say = await server.call('sayStats');
  const delivered = countsB.events - countsA.events;
  if (say.count !== posted.posts || delivered !== posted.posts * n) {
    throw new Error(`chat: ${posted.posts} answered, ${say.count} routed, ${delivered}/${posted.posts * n} delivered`);
  }
  const load = machineLoad(loadA, loadB);
  return {
    n,
    posts: posted.posts,
    postsPerSec: posted.posts / (posted.ms / 1000),
    eventsPerSec: delivered / (wallMs / 1000),
    cpuPerEvent: serverCpu / delivered,
    publishP50: say.publishP50,
    p50: lat.p50,
    p99: lat.p99,
    clientCpuShare: clientCpu / 1000 / wallMs,
    eventsPerRead: delivered / (countsB.reads - countsA.reads),
    drainMs,
    otherPct: load.otherPct,
    stealPct: load.stealPct,
  };
}

/**
 * A fresh, warmed-up server child (and client child) for `body`.
 * @template T
 * @param {string} impl
 * @param {string} mount
 * @param {Config} cfg
 * @param {(pair: Pair, port: number) => Promise<T>} body
 */
async function withPair(impl, mount, cfg, body) {
  const pair = startPair(impl, mount);
  try {
    const { port } = await pair.server.call('start');
    // Warmed up with an idiom: the synchronous-burst writable of bench/fanout.js is never made.
    await warmUp(pair, port, cfg.payloadBytes, 'awaitedBurst');
    return await body(pair, port);
  } finally {
    await stopPair(pair);
  }
}

/**
 * Every scenario for one implementation: one child on cfg.mount for 1-4 (and its memory), one for the other mount's memory.
 * @param {string} impl
 * @param {Config} cfg
 */
async function measure(impl, cfg) {
  const { log } = cfg;
  /** @type {Result} */
  const result = { impl };
  const other = cfg.mount === 'express' ? 'http' : 'express';
  /** @param {string} mount */
  const memKey = (mount) => (mount === 'express' ? 'memExpress' : 'memHttp');
  const main = has(cfg, 'awaited') || has(cfg, 'piped') || has(cfg, 'steady') || has(cfg, 'chat');
  if (main || has(cfg, 'memory')) {
    await withPair(impl, cfg.mount, cfg, async (pair, port) => {
      if (has(cfg, 'memory')) {
        result[memKey(cfg.mount)] = await idleMemory(pair, port, cfg.idleClients);
        log(
          `  ${impl}: ${cfg.idleClients} idle connections (${cfg.mount}): ${fmtInt(result[memKey(cfg.mount)].heapPerConn)} B heap/conn`,
        );
      }
      if (!main) return;
      await holdConnections(pair, port, cfg.clients);
      if (has(cfg, 'awaited')) {
        result.awaited = await bursts(pair, cfg, 'awaitedBurst');
        log(
          `  ${impl}: awaited loop: ${fmt(result.awaited.cpuPerEvent, 3)} µs CPU/event, ${fmt(result.awaited.burstMs, 0)} ms/burst`,
        );
      }
      if (has(cfg, 'piped')) {
        result.piped = await bursts(pair, cfg, 'pipedBurst');
        log(`  ${impl}: piped: ${fmt(result.piped.cpuPerEvent, 3)} µs CPU/event, ${fmt(result.piped.burstMs, 0)} ms/burst`);
      }
      if (has(cfg, 'chat')) {
        // Each new publisher connection POSTs once; those events land before the runs count.
        await pair.client.call('expect', { events: cfg.publishers });
        const opened = pair.client.call('awaitTarget', {}, 120_000);
        await pair.client.call('openPublishers', { port, k: cfg.publishers, bytes: cfg.payloadBytes });
        await opened;
        await chatRun(pair, cfg, cfg.chatWarmupMs);
        result.chat = await chatRun(pair, cfg, cfg.chatMs);
        await pair.client.call('closePublishers');
        log(`  ${impl}: chat: ${fmt(result.chat.cpuPerEvent, 3)} µs CPU/event, ${fmtInt(result.chat.postsPerSec)} posts/s`);
      }
      if (has(cfg, 'steady')) {
        for (const [key, n] of /** @type {[string, number][]} */ ([
          ['steadyLarge', cfg.clients],
          ['steadySmall', cfg.clientsSmall],
        ])) {
          await holdConnections(pair, port, n);
          result[key] = await steady(pair, cfg, n);
          const s = result[key];
          log(
            `  ${impl}: steady N=${n}: ${fmt(s.elapsedMs, 0)} ms for ${s.scheduleMs} ms of schedule, p50 ${fmt(s.p50, 2)} ms, p99 ${fmt(s.p99, 2)} ms, publish p50 ${fmt(s.publishP50, 2)} ms`,
          );
        }
      }
    });
  }
  if (has(cfg, 'memory')) {
    await withPair(impl, other, cfg, async (pair, port) => {
      result[memKey(other)] = await idleMemory(pair, port, cfg.idleClients);
      log(`  ${impl}: ${cfg.idleClients} idle connections (${other}): ${fmtInt(result[memKey(other)].heapPerConn)} B heap/conn`);
    });
  }
  return result;
}

// ---------------------------------------------------------------------------
// Reporting

/**
 * A metric: its label, how to read it from one implementation's round, its digits; `limit` makes it a bar.
 * @param {string} label
 * @param {(r: Result) => number} pick
 * @param {number} digits
 * @param {number | null} [limit]
 * @returns {Metric}
 */
function metric(label, pick, digits, limit = null) {
  return { label, pick, digits, limit };
}

/**
 * @param {Config} cfg
 * @param {Round[]} rounds
 * @param {readonly string[]} notes
 */
function render(cfg, rounds, notes) {
  /** @type {(round: Round, impl: string) => boolean} */
  const ok = (round, impl) => round[impl] && !round[impl].error;
  /** @type {(impl: string, m: Metric) => number} */
  const value = (impl, m) => median(rounds.filter((round) => ok(round, impl)).map((round) => m.pick(round[impl])));
  /** @type {(m: Pick<Metric, 'pick'>, base?: (r: Result) => number) => number[]} */
  const paired = (m, base = m.pick) =>
    rounds
      .filter((round) => ok(round, 'raw') && ok(round, 'eventstream'))
      .map((round) => ratio(m.pick(round.eventstream), base(round.raw)));
  /** @type {string[]} */
  const out = [];
  /** @type {{ id: number, m: Metric & { limit: number }, each: number[] }[]} */
  const bars = [];

  /** @type {(v: number, digits: number) => string} */
  const num = (v, digits) => (digits === 0 ? fmtInt(v) : fmt(v, digits));
  /** @type {(id: number, title: string, metrics: Metric[]) => void} */
  const section = (id, title, metrics) => {
    out.push(`### ${id}. ${title}`);
    out.push('');
    out.push(
      table(
        ['', 'raw', 'eventstream', 'ratio of medians', 'ratio in each round', 'median ratio'],
        metrics.map((m) => {
          const each = paired(m);
          if (m.limit !== null) bars.push({ id, m: { ...m, limit: m.limit }, each });
          return [
            m.label,
            num(value('raw', m), m.digits),
            num(value('eventstream', m), m.digits),
            fmtRatio(ratio(value('eventstream', m), value('raw', m))),
            each.map(fmtRatio).join(', '),
            fmtRatio(median(each)),
          ];
        }),
      ),
    );
    out.push('');
  };

  const L = cfg.clients;
  const S = cfg.clientsSmall;
  out.push('## Publishing idioms');
  out.push('');
  out.push(
    `raw \`node:http\` vs EventStream, each driven by the same user code, ${cfg.payloadBytes} B JSON events; ` +
      `scenarios 1-4 mounted on ${cfg.mount === 'express' ? 'Express 5 (raw behind the same routes)' : 'plain node:http'}. ` +
      `Bursts: ${cfg.events} events to N=${L} clients, up to ${cfg.bursts} measured after ${cfg.warmupBursts} warm-up, each awaited until every client has all of it. ` +
      `Server CPU is the server child's process.cpuUsage() over a measurement, per delivered event. ` +
      (cfg.repeat > 1 ? `Medians of ${cfg.repeat} rounds; ` : 'One round; ') +
      "bars are judged on the median of the rounds' own eventstream/raw ratios.",
  );
  out.push('');
  const burstMetrics = [
    metric('server CPU µs per delivered event', (r) => r.cpuPerEvent, 3),
    metric('delivered events/s', (r) => r.eventsPerSec, 0),
    metric('ms per burst (publish to every client having it)', (r) => r.burstMs, 1),
  ];
  /** @type {(m: Metric, limit: number) => Metric} */
  const withLimit = (m, limit) => ({ ...m, limit });
  /** @type {(key: string, m: Metric) => Metric} */
  const under = (key, m) => ({ ...m, pick: (r) => (r[key] ? m.pick(r[key]) : NaN) });
  if (has(cfg, 'awaited')) {
    section(1, `Awaited loop: \`for (…) await eventStream.publishEvent(ch, e)\`, N=${L}, ${cfg.events} events`, [
      under('awaited', withLimit(burstMetrics[0], 0.25)),
      ...burstMetrics.slice(1).map((m) => under('awaited', m)),
      under(
        'awaited',
        metric('publishEvent call p50 ms (median over bursts)', (r) => r.publishP50, 3),
      ),
    ]);
  }
  if (has(cfg, 'piped')) {
    section(
      2,
      `Piped: \`await pipeline(Readable.from(events), eventStream.createChannelWritable(ch))\`, N=${L}, ${cfg.events} events`,
      [under('piped', withLimit(burstMetrics[0], 0.25)), ...burstMetrics.slice(1).map((m) => under('piped', m))],
    );
  }
  if (has(cfg, 'steady')) {
    /** @type {(key: string, n: number, bar: { p50: number | null, p99: number | null, cpu: number | null }) => Metric[]} */
    const steadyMetrics = (key, n, bar) => [
      under(
        key,
        metric(`N=${n}: ms to publish ${cfg.events} events due over ${cfg.events * cfg.intervalMs} ms`, (r) => r.elapsedMs, 0),
      ),
      under(
        key,
        metric(`N=${n}: publishEvent call p50 ms`, (r) => r.publishP50, 3),
      ),
      under(
        key,
        metric(`N=${n}: latency p50 ms (from due time)`, (r) => r.p50, 3, bar.p50),
      ),
      under(
        key,
        metric(`N=${n}: latency p99 ms (from due time)`, (r) => r.p99, 3, bar.p99),
      ),
      under(
        key,
        metric(`N=${n}: server CPU µs per delivery`, (r) => r.cpuPerEvent, 3, bar.cpu),
      ),
    ];
    section(3, `Steady awaited stream: one event due every ${cfg.intervalMs} ms, each awaited, open loop`, [
      ...steadyMetrics('steadyLarge', L, { p50: 1.1, p99: null, cpu: 1.05 }),
      ...steadyMetrics('steadySmall', S, { p50: null, p99: 1.1, cpu: null }),
    ]);
    /** @type {(impl: string, key: string) => string[]} */
    const kept = (impl, key) =>
      rounds
        .map((round) => (ok(round, impl) && round[impl][key] ? round[impl][key].scheduleRatio : NaN))
        .map((r) => (Number.isFinite(r) ? `${fmtRatio(r)} ${r <= SCHEDULE_SLACK ? 'kept' : 'behind'}` : 'n/a'));
    for (const [key, n] of /** @type {[string, number][]} */ ([
      ['steadyLarge', L],
      ['steadySmall', S],
    ])) {
      out.push(
        `Schedule at N=${n} (time to publish / ${cfg.events * cfg.intervalMs} ms; kept within ${SCHEDULE_SLACK}x), each round: ` +
          `raw ${kept('raw', key).join(', ')}; eventstream ${kept('eventstream', key).join(', ')}.`,
      );
      out.push('');
    }
  }
  if (has(cfg, 'chat')) {
    section(
      4,
      `Chat: K=${cfg.publishers} publishers POST one event each, again and again, to an Express route that awaits publishEvent; N=${L} subscribers`,
      [
        under(
          'chat',
          metric('server CPU µs per delivered event', (r) => r.cpuPerEvent, 3, 1.0),
        ),
        under(
          'chat',
          metric('delivered events/s', (r) => r.eventsPerSec, 0),
        ),
        under(
          'chat',
          metric('POSTs answered/s', (r) => r.postsPerSec, 0),
        ),
        under(
          'chat',
          metric('awaited publish in the route, p50 ms', (r) => r.publishP50, 3),
        ),
        under(
          'chat',
          metric('latency p50 ms (POST sent to subscriber)', (r) => r.p50, 3),
        ),
        under(
          'chat',
          metric('latency p99 ms (POST sent to subscriber)', (r) => r.p99, 3),
        ),
      ],
    );
  }
  if (has(cfg, 'memory')) {
    section(5, `Idle connections, N=${cfg.idleClients}`, [
      under(
        'memHttp',
        metric('heap B per idle connection, plain node:http', (r) => r.heapPerConn, 0, 1.2),
      ),
      under(
        'memHttp',
        metric('RSS B per idle connection, plain node:http', (r) => r.rssPerConn, 0),
      ),
      under(
        'memExpress',
        metric('heap B per idle connection, under Express 5', (r) => r.heapPerConn, 0),
      ),
      under(
        'memExpress',
        metric('RSS B per idle connection, under Express 5', (r) => r.rssPerConn, 0),
      ),
    ]);
    const each = paired({ pick: (r) => r.memExpress?.heapPerConn }, (r) => r.memHttp?.heapPerConn);
    out.push(
      `EventStream under Express against raw on plain node:http (what the issue's table compares), heap: ${each.map(fmtRatio).join(', ')} (median ${fmtRatio(median(each))}).`,
    );
    out.push('');
  }

  // The schedule bar is absolute (eventstream alone), the others paired ratios; listed in scenario order.
  /** @type {(r: number, limit: number) => string} */
  const verdict = (r, limit) => (Number.isFinite(r) ? (r <= limit ? 'PASS' : 'FAIL') : 'FAIL (no data)');
  /** @param {number} limit */
  const fmtLimit = (limit) => `<= ${Number.isInteger(limit) ? limit.toFixed(1) : limit}x`;
  /** @type {string[][]} */
  const barRows = [];
  for (const { id, m, each } of bars) {
    if (id === 3 && has(cfg, 'steady') && !barRows.some((row) => row[0].startsWith('3.'))) {
      const schedule = rounds
        .filter((round) => ok(round, 'eventstream') && round.eventstream.steadyLarge)
        .map((round) => round.eventstream.steadyLarge.scheduleRatio);
      barRows.push([
        `3. eventstream keeps the schedule at N=${L} (time to publish / schedule)`,
        schedule.map(fmtRatio).join(', '),
        fmtRatio(median(schedule)),
        fmtLimit(SCHEDULE_SLACK),
        verdict(median(schedule), SCHEDULE_SLACK),
      ]);
    }
    barRows.push([
      `${id}. ${m.label} (eventstream/raw)`,
      each.map(fmtRatio).join(', '),
      fmtRatio(median(each)),
      fmtLimit(m.limit),
      verdict(median(each), m.limit),
    ]);
  }
  out.push('### Bars (issue 12)');
  out.push('');
  out.push(table(['bar', 'ratio in each round', 'median ratio', 'limit', 'result'], barRows));
  pushParagraph(out, changedSettingsNote(BAR_SETTINGS, cfg));
  const failed = rounds.flatMap((round, i) =>
    IMPLS.filter((impl) => round[impl]?.error).map((impl) => `round ${i + 1} ${impl}: ${round[impl].error}`),
  );
  if (failed.length > 0) {
    out.push('');
    out.push(`**Failed: ${failed.join('; ')}** (a failed round has no ratio).`);
  }
  const noisy = rounds.some((round) =>
    IMPLS.some(
      (impl) =>
        ok(round, impl) &&
        ['awaited', 'piped', 'steadyLarge', 'steadySmall', 'chat'].some((key) => {
          const r = round[impl][key];
          return r && [r.otherPct, r.stealPct, r.burstOtherPct, r.burstStealPct].some((pct) => pct > NOISY_PCT);
        }),
    ),
  );
  if (noisy) {
    out.push('');
    out.push(
      `**Warning: other processes or the hypervisor took more than ${NOISY_PCT}% of a core during some measurement (see Diagnostics); rerun on a quiet machine.**`,
    );
  }

  openDetails(out, 'Diagnostics');
  /** @type {string[][]} */
  const diag = [];
  rounds.forEach((round, i) => {
    for (const impl of IMPLS) {
      const r = round[impl];
      if (!r || r.error) continue;
      /** @param {any} b a burst measurement, if the scenario ran */
      const burst = (b) =>
        b ? `${b.bursts} × ${fmt(b.burstMs, 0)} ms, other/steal ${fmt(b.burstOtherPct, 0)}/${fmt(b.burstStealPct, 0)}%` : '';
      /** @param {any} s a steady measurement, if the scenario ran */
      const st = (s) =>
        s
          ? `lag p50/max ${fmt(s.startLagP50, 1)}/${fmt(s.startLagMax, 1)} ms, loop ${fmt(s.serverLoopUtilization * 100, 0)}%, ${fmt(s.eventsPerRead, 2)} ev/read, other/steal ${fmt(s.otherPct, 0)}/${fmt(s.stealPct, 0)}%`
          : '';
      const c = r.chat;
      diag.push([
        `${i + 1} ${impl}`,
        burst(r.awaited),
        burst(r.piped),
        st(r.steadyLarge),
        st(r.steadySmall),
        c
          ? `${fmtInt(c.posts)} posts, ${fmt(c.eventsPerRead, 2)} ev/read, client CPU ${fmt(c.clientCpuShare * 100, 0)}%, other/steal ${fmt(c.otherPct, 0)}/${fmt(c.stealPct, 0)}%`
          : '',
      ]);
    }
  });
  out.push(table(['round, implementation', '1. bursts', '2. bursts', `3. steady N=${L}`, `3. steady N=${S}`, '4. chat'], diag));
  out.push('');
  out.push(
    '"lag" is how late a steady publish call started after its due time (the previous awaited call still running); ' +
      '"ev/read" is events per client socket read (how many events one server write carried). ' +
      '"other/steal" is busy CPU of other processes and hypervisor steal in % of a core.',
  );
  closeDetails(out, notes);
  return out.join('\n');
}

/** Renders a run saved with BENCH_IDIOMS_JSON again. */
/**
 * @param {{ settings: Config, rounds: Round[] }} saved
 * @param {string[]} [notes]
 */
export function report({ settings, rounds }, notes = []) {
  return render(settings, rounds, notes);
}

/** @param {{ log?: (line: string) => void }} [options] */
export async function run(options = {}) {
  const cfg = config(options);
  const needed = Math.max(cfg.clients, has(cfg, 'memory') ? cfg.idleClients : 0) + cfg.publishers + 64;
  const notes = [requireOpenFiles(needed, `need about ${needed} files`)];
  // Alternate who goes first, so drift of the machine over a round favours neither.
  /** @param {number} round */
  const orderOf = (round) => (round % 2 === 0 ? IMPLS : [...IMPLS].reverse());
  const rounds = await runRounds({ cfg, label: 'idioms', orderOf, measure, jsonVar: 'BENCH_IDIOMS_JSON' });
  return render(cfg, rounds, notes);
}

// `node bench/idioms.js` runs just this benchmark and prints its markdown.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  console.log(await run());
}
