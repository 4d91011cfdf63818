// Fan-out benchmark: raw node:http vs EventStream vs better-sse vs sse-channel.
//
// Each implementation runs alone, in turn, in its own server child process
// (bench/fanout/server.js, --expose-gc); the N clients live in one separate
// client child process (bench/fanout/client.js, raw sockets). This module
// drives both over IPC and returns a markdown report.
//
// Environment overrides (defaults in brackets):
//   BENCH_CLIENTS [1000]            clients for the burst, memory and large latency runs
//   BENCH_CLIENTS_SMALL [100]       clients for the small latency run
//   BENCH_BURSTS [20]               measured bursts (fewer if BENCH_BURST_BUDGET_MS runs out)
//   BENCH_BURST_BUDGET_MS [12000]   per implementation: stop measuring bursts after this long (at least 5 bursts)
//   BENCH_WARMUP_BURSTS [2]         unmeasured bursts first
//   BENCH_BURST_EVENTS [200]        events per burst, written synchronously
//   BENCH_PAYLOAD_BYTES [100]       JSON data bytes per event
//   BENCH_LATENCY_MS [5000]         measured steady-rate duration per latency run
//   BENCH_LATENCY_WARMUP_MS [500]   steady-rate events before measuring
//   BENCH_LATENCY_INTERVAL_MS [10]  one event every this many ms
//   BENCH_CLOSED_LOOP [1]           0 skips the closed-loop latency runs (reported, not used by the bars)
//   BENCH_IMPLS [raw,eventstream,better-sse,sse-channel]   raw is always included; eventstream-observed (on request)
//                                   is EventStream with Prometheus metrics registered and a diagnostics subscriber
//   BENCH_REPEAT [1]                rounds over all implementations; medians are reported
//   BENCH_ES_KEEPALIVE              keepAliveInterval for EventStream (default: the library default)
//   BENCH_ES_PUBLISH [writable]     'writable' (createChannelWritable writes) or 'publishEvent'
//   BENCH_FANOUT_JSON               if set, a file to write every round's raw measurements to

import {
  awaitSamples,
  cpuMicros,
  idleMemory,
  measureBursts,
  requireOpenFiles,
  runRounds,
  sleep,
  startPair,
  stopPair,
  until,
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

const ALL_IMPLS = ['raw', 'eventstream', 'eventstream-observed', 'better-sse', 'sse-channel'];

// Bars the project must meet: EventStream relative to raw, at these settings.
const BARS = { cpu: 1.0, heap: 1.5, latency: 1.1 };
/** Other processes or steal above this % of a core during a measurement make the run suspect. */
const NOISY_PCT = 20;
/** How long a latency run waits after its last publish for events still on their way. */
const STRAGGLER_TIMEOUT_MS = 30_000;
const BAR_SETTINGS = { clients: 1000, clientsSmall: 100, burstEvents: 200, intervalMs: 10, payloadBytes: 100 };

/**
 * One implementation's measurements in one round (or their medians): figures
 * by name, nested per latency run; `error` when the run failed.
 * @typedef {{ impl: string, error?: string | null, [figure: string]: any }} Result
 * @typedef {Record<string, Result>} Round
 * @typedef {ReturnType<typeof config>} Config
 */

/** @param {{ log?: (line: string) => void }} options */
function config(options) {
  const impls = (process.env.BENCH_IMPLS ?? ALL_IMPLS.filter((impl) => impl !== 'eventstream-observed').join(','))
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const impl of impls) if (!ALL_IMPLS.includes(impl)) throw new Error(`BENCH_IMPLS: unknown implementation ${impl}`);
  if (!impls.includes('raw')) impls.unshift('raw'); // every ratio is against raw
  const clients = envInt('BENCH_CLIENTS', 1000);
  return {
    impls,
    clients,
    clientsSmall: Math.min(clients, envInt('BENCH_CLIENTS_SMALL', 100)),
    bursts: envInt('BENCH_BURSTS', 20),
    burstBudgetMs: envInt('BENCH_BURST_BUDGET_MS', 12_000),
    warmupBursts: envInt('BENCH_WARMUP_BURSTS', 2, 0),
    burstEvents: envInt('BENCH_BURST_EVENTS', 200),
    payloadBytes: envInt('BENCH_PAYLOAD_BYTES', 100, 32),
    latencyMs: envInt('BENCH_LATENCY_MS', 5000),
    latencyWarmupMs: envInt('BENCH_LATENCY_WARMUP_MS', 500, 0),
    intervalMs: envInt('BENCH_LATENCY_INTERVAL_MS', 10),
    closedLoop: envInt('BENCH_CLOSED_LOOP', 1, 0) === 1,
    repeat: envInt('BENCH_REPEAT', 1),
    log: options.log ?? ((/** @type {string} */ line) => process.stderr.write(`${line}\n`)),
  };
}

// ---------------------------------------------------------------------------

/**
 * Runs every scenario against one implementation, with fresh server and client processes.
 * @param {string} impl
 * @param {Config} cfg
 */
async function measure(impl, cfg) {
  const { log } = cfg;
  const pair = startPair(impl);
  const { server, client, pids } = pair;
  /** @type {Result} */
  const result = { impl };
  const serverCount = () => server.call('count');
  try {
    const { port } = await server.call('start');

    // Both sides stamp with performance.timeOrigin + performance.now(); check they agree (CLOCK_MONOTONIC is shared).
    const [sc, cc] = await Promise.all([server.call('clock'), client.call('clock')]);
    result.clockSkewMs = sc.wall - sc.mono - (cc.wall - cc.mono);

    await warmUp(pair, port, cfg.payloadBytes);
    Object.assign(result, await idleMemory(pair, port, cfg.clients));
    log(`  ${impl}: idle memory with ${cfg.clients} clients: ${Math.round(result.heapPerConn)} B heap/conn`);

    // Bursts: each written synchronously, then awaited until every client has all of it.
    const { replies: _replies, ...bursts } = await measureBursts(pair, {
      events: cfg.burstEvents,
      bursts: cfg.bursts,
      warmupBursts: cfg.warmupBursts,
      budgetMs: cfg.burstBudgetMs,
      minBursts: 5,
      publish: () => server.call('burst', { events: cfg.burstEvents, bytes: cfg.payloadBytes }),
    });
    Object.assign(result, bursts);
    log(
      `  ${impl}: ${result.bursts} bursts, ${result.burstMs.toFixed(1)} ms each, ${result.cpuPerEvent.toFixed(3)} server CPU µs/event`,
    );

    // Steady-rate latency.
    /**
     * @param {number} n
     * @param {'open' | 'closed'} mode
     */
    const latency = async (n, mode) => {
      const from = wallNow() + cfg.latencyWarmupMs;
      await client.call('latStart', { from });
      await server.call('cpuStart');
      await client.call('cpuStart');
      const loadA = machineSnapshot(pids);
      const countsA = await client.call('counts');
      const steady = await server.call(
        'steady',
        { intervalMs: cfg.intervalMs, durationMs: cfg.latencyWarmupMs + cfg.latencyMs, bytes: cfg.payloadBytes, from, mode },
        cfg.latencyMs + cfg.latencyWarmupMs + 60_000,
      );
      const serverCpu = cpuMicros(await server.call('cpuEnd'));
      const loadB = machineSnapshot(pids);
      // Stragglers: wait until every counted event reached every client (a
      // server that fell behind is still writing), so no slow sample is lost.
      const expected = steady.counted * n;
      const drainMs = await awaitSamples(client, expected, STRAGGLER_TIMEOUT_MS);
      const clientCpu = cpuMicros(await client.call('cpuEnd'));
      const countsB = await client.call('counts');
      const stats = await client.call('latStop');
      const load = machineLoad(loadA, loadB);
      Object.assign(stats, {
        mode,
        expected,
        drainMs,
        eventsPerTurn: steady.eventsPerTurn,
        publishLagP50: steady.publishLagP50,
        publishLagP99: steady.publishLagP99,
        eventsPerRead: (countsB.events - countsA.events) / (countsB.reads - countsA.reads),
        achievedRate: steady.published / (steady.elapsedMs / 1000),
        serverCpuShare: serverCpu / 1000 / steady.elapsedMs,
        serverCpuPerEvent: serverCpu / (steady.published * n),
        clientCpuShare: clientCpu / 1000 / (steady.elapsedMs + drainMs),
        serverLoopUtilization: steady.eventLoopUtilization,
        otherPct: load.otherPct,
        stealPct: load.stealPct,
      });
      if (stats.count !== stats.expected) {
        log(`  ${impl}: ${mode}-loop latency at N=${n}: ${stats.count} samples, expected ${stats.expected}`);
      }
      log(
        `  ${impl}: ${mode}-loop latency at N=${n}: p50 ${stats.p50.toFixed(3)} ms, p99 ${stats.p99.toFixed(3)} ms ` +
          `(${stats.achievedRate.toFixed(0)} events/s published, ${stats.eventsPerRead.toFixed(2)} events/read, ` +
          `client CPU ${(stats.clientCpuShare * 100).toFixed(0)}%, publish lag p50 ${stats.publishLagP50.toFixed(1)} ms, ${stats.eventsPerTurn.toFixed(2)} events/turn, last sample ${drainMs.toFixed(0)} ms after the last publish)`,
      );
      return stats;
    };
    // Open loop first: it is what the bars use.
    result.latLarge = await latency(cfg.clients, 'open');
    if (cfg.closedLoop) result.closedLarge = await latency(cfg.clients, 'closed');
    await client.call('close', { keep: cfg.clientsSmall });
    await until(`${cfg.clientsSmall} server-side subscribers`, async () => (await serverCount()) === cfg.clientsSmall);
    await sleep(100);
    result.latSmall = await latency(cfg.clientsSmall, 'open');
    if (cfg.closedLoop) result.closedSmall = await latency(cfg.clientsSmall, 'closed');
  } finally {
    await stopPair(pair);
  }
  return result;
}

// ---------------------------------------------------------------------------
// Reporting

/**
 * Per implementation, the median of every numeric metric over the rounds.
 * @param {Round[]} rounds
 * @param {readonly string[]} impls
 * @returns {Round}
 */
function combine(rounds, impls) {
  /** @type {Round} */
  const out = {};
  for (const impl of impls) {
    const runs = rounds.map((round) => round[impl]).filter((r) => r && !r.error);
    const error = rounds.map((round) => round[impl]?.error).find(Boolean);
    if (runs.length === 0) {
      out[impl] = { impl, error: error ?? 'no data' };
      continue;
    }
    /**
     * @param {Record<string, any>[]} objects
     * @returns {Record<string, any>}
     */
    const merge = (objects) => {
      /** @type {Record<string, any>} */
      const merged = {};
      for (const key of Object.keys(objects[0])) {
        const values = objects.map((o) => o[key]);
        if (typeof values[0] === 'number') merged[key] = median(values);
        else if (values[0] && typeof values[0] === 'object') merged[key] = merge(values);
        else merged[key] = values[0];
      }
      return merged;
    };
    out[impl] = { impl, ...merge(runs), rounds: runs.length, failedRounds: rounds.length - runs.length, error: null };
  }
  return out;
}

/**
 * @param {Round} results the medians, from combine()
 * @param {Config} cfg
 * @param {readonly string[]} notes
 * @param {Round[]} rounds
 */
function render(results, cfg, notes, rounds) {
  /** @type {Result} */
  const raw = results.raw.error ? { impl: 'raw' } : results.raw;
  const impls = cfg.impls;
  const S = cfg.clientsSmall;
  const L = cfg.clients;
  /** @type {(impl: string, width: number) => string[]} */
  const failedRow = (impl, width) => [impl, `failed: ${results[impl].error}`, ...Array(width - 2).fill('')];
  const out = [];
  out.push('## Fan-out');
  out.push('');
  out.push(
    `${L} clients in one client process; each implementation alone, in turn, in its own server process (2 cores in all). ` +
      `Bursts: up to ${cfg.bursts} measured (after ${cfg.warmupBursts} warm-up) × ${cfg.burstEvents} events × ${cfg.payloadBytes} B JSON data, ` +
      `each burst written synchronously and awaited until every client has all of it. ` +
      `Latency: one event due every ${cfg.intervalMs} ms for ${cfg.latencyMs / 1000} s (after ${cfg.latencyWarmupMs} ms warm-up), ` +
      'a timestamp in the data, `performance.timeOrigin + performance.now()` on both sides, percentiles over all (client, event) pairs ' +
      'once every event has arrived. Open loop (the bars): every event is published, late if the server is busy, and stamped with ' +
      'the time it was due, so a server that falls behind pays for it. Closed loop (reported only): stamped when published, ' +
      'and a server that falls behind publishes fewer events instead. ' +
      (cfg.repeat > 1 ? `Medians of ${cfg.repeat} rounds.` : 'One round.'),
  );
  out.push('');
  out.push(`### Bursts and idle memory (N=${L})`);
  out.push('');
  out.push(
    table(
      [
        'implementation',
        'server CPU µs/event',
        'cpu/event (x raw)',
        'delivered events/s',
        'events/s (x raw)',
        'heap B/conn',
        'heap/conn (x raw)',
        'RSS B/conn',
        'RSS/conn (x raw)',
      ],
      impls.map((impl) => {
        const r = results[impl];
        if (r.error) return failedRow(impl, 9);
        return [
          impl,
          fmt(r.cpuPerEvent, 3),
          fmtRatio(ratio(r.cpuPerEvent, raw.cpuPerEvent)),
          fmtInt(r.eventsPerSec),
          fmtRatio(ratio(r.eventsPerSec, raw.eventsPerSec)),
          fmtInt(r.heapPerConn),
          fmtRatio(ratio(r.heapPerConn, raw.heapPerConn)),
          fmtInt(r.rssPerConn),
          fmtRatio(ratio(r.rssPerConn, raw.rssPerConn)),
        ];
      }),
    ),
  );
  out.push('');
  /** @type {(small: string, large: string, rateColumn: string) => string} */
  const latencyTable = (small, large, rateColumn) =>
    table(
      ['implementation', `p50 N=${S}`, 'x raw', `p99 N=${S}`, 'x raw', `p50 N=${L}`, 'x raw', `p99 N=${L}`, 'x raw', rateColumn],
      impls.map((impl) => {
        const r = results[impl];
        if (r.error) return failedRow(impl, 10);
        return [
          impl,
          fmt(r[small].p50, 3),
          fmtRatio(ratio(r[small].p50, raw[small]?.p50)),
          fmt(r[small].p99, 3),
          fmtRatio(ratio(r[small].p99, raw[small]?.p99)),
          fmt(r[large].p50, 3),
          fmtRatio(ratio(r[large].p50, raw[large]?.p50)),
          fmt(r[large].p99, 3),
          fmtRatio(ratio(r[large].p99, raw[large]?.p99)),
          rateColumn.startsWith('events/s') ? fmt(r[large].achievedRate, 0) : fmt(r[large].publishLagP50, 1),
        ];
      }),
    );
  out.push(`### Latency, open loop: one event due every ${cfg.intervalMs} ms (ms, due time to client process)`);
  out.push('');
  out.push(latencyTable('latSmall', 'latLarge', `publish lag p50 N=${L}`));
  out.push('');
  out.push(
    '"publish lag" is how long after its due time an event was handed to the implementation: the time the server\'s loop ' +
      'was still busy with earlier events.',
  );
  if (cfg.closedLoop) {
    out.push('');
    out.push(
      `### Latency, closed loop: one event every ${cfg.intervalMs} ms or slower (ms, publish to client process; reported only)`,
    );
    out.push('');
    out.push(latencyTable('closedSmall', 'closedLarge', `events/s published N=${L}`));
    const target = 1000 / cfg.intervalMs;
    const saturated = impls.filter((impl) => !results[impl].error && results[impl].closedLarge.achievedRate < target * 0.95);
    if (saturated.length > 0) {
      out.push('');
      out.push(
        `At N=${L} the server of ${saturated.join(', ')} could not keep ${target} events/s in closed loop (see "events/s published"), ` +
          'so each implementation was measured at a different load: these ratios compare unequal work.',
      );
    }
  }

  const noisy = impls.filter((impl) => {
    const r = results[impl];
    if (r.error) return false;
    const runs = [r.latLarge, r.latSmall, r.closedLarge, r.closedSmall].filter(Boolean);
    return [r.burstOtherPct, r.burstStealPct, ...runs.flatMap((run) => [run.otherPct, run.stealPct])].some(
      (pct) => pct > NOISY_PCT,
    );
  });
  if (noisy.length > 0) {
    out.push('');
    out.push(
      `**Warning: while ${noisy.join(', ')} ran, other processes or the hypervisor took more than ${NOISY_PCT}% of a core ` +
        '(see Diagnostics); timings and latencies of this run are skewed, rerun on a quiet machine.**',
    );
  }

  // eventstream-observed: the same EventStream with metrics registered and a diagnostics subscriber attached.
  for (const subject of ['eventstream', 'eventstream-observed']) {
    const es = results[subject];
    if (es) {
      out.push('');
      out.push(`### Bars (${subject} vs raw)`);
      out.push('');
      // Each round runs raw and eventstream minutes apart on the same machine state, so a bar is
      // judged on the median of the rounds' own ratios (paired), not on a ratio of medians taken
      // from different rounds; both are shown.
      /** @type {(name: string, pick: (r: Result) => number, limit: number | null) => string[]} */
      const barRow = (name, pick, limit) => {
        const paired = rounds
          .map(
            (round) =>
              round[subject] &&
              round.raw &&
              !round[subject].error &&
              !round.raw.error &&
              ratio(pick(round[subject]), pick(round.raw)),
          )
          // only the finite ratios: false and NaN go
          .filter(/** @type {(r: number | false) => r is number} */ ((r) => Number.isFinite(r)));
        const r = median(paired);
        let verdict;
        if (es.error || results.raw.error) verdict = 'FAIL (run failed)';
        else if (!Number.isFinite(r)) verdict = 'FAIL (no data)';
        else if (limit === null) verdict = '—';
        else verdict = r <= limit ? 'PASS' : 'FAIL';
        return [
          name,
          fmt(pick(es), 3),
          fmt(pick(raw), 3),
          fmtRatio(ratio(pick(es), pick(raw))),
          paired.map(fmtRatio).join(', '),
          fmtRatio(r),
          limit === null ? '(reported only)' : `<= ${limit.toFixed(1)}x`,
          verdict,
        ];
      };
      out.push(
        table(
          ['bar', subject, 'raw', 'ratio of medians', 'ratio in each round', 'median ratio', 'limit', 'result'],
          [
            barRow(`server CPU µs per delivered event, N=${L}, ${cfg.burstEvents}-event bursts`, (r) => r.cpuPerEvent, BARS.cpu),
            barRow(`heap bytes per idle connection, N=${L}`, (r) => r.heapPerConn, BARS.heap),
            barRow(`p50 latency ms, N=${L}, 1 event/${cfg.intervalMs} ms (open loop)`, (r) => r.latLarge?.p50, BARS.latency),
            barRow(`p99 latency ms, N=${S}, 1 event/${cfg.intervalMs} ms (open loop)`, (r) => r.latSmall?.p99, BARS.latency),
            barRow(`p99 latency ms, N=${L}, open loop`, (r) => r.latLarge?.p99, null),
            ...(cfg.closedLoop
              ? [
                  barRow(`p50 latency ms, N=${L}, closed loop`, (r) => r.closedLarge?.p50, null),
                  barRow(`p99 latency ms, N=${S}, closed loop`, (r) => r.closedSmall?.p99, null),
                ]
              : []),
          ],
        ),
      );
      pushParagraph(out, changedSettingsNote(BAR_SETTINGS, cfg));
    }
  }

  openDetails(out, 'Diagnostics');
  out.push(
    table(
      [
        'implementation',
        'bursts',
        'ms/burst',
        'server CPU % (bursts)',
        'client CPU % (bursts)',
        'other procs / steal % (bursts)',
        `server CPU µs/event open loop N=${S} / N=${L}`,
        `server CPU % / loop util (open loop N=${L})`,
        `client CPU % (open loop N=${L})`,
        `other / steal % (open loop N=${L})`,
        `events per publish turn / per client read (open loop N=${L})`,
        `samples N=${L}`,
        `samples N=${S}`,
        `max ms N=${S} / N=${L}`,
        'clock skew µs',
      ],
      impls.map((impl) => {
        const r = results[impl];
        if (r.error) return failedRow(impl, 15);
        return [
          impl,
          fmtInt(r.bursts),
          fmt(r.burstMs, 1),
          fmt(r.serverCpuShare * 100, 0),
          fmt(r.clientCpuShare * 100, 0),
          `${fmt(r.burstOtherPct, 0)} / ${fmt(r.burstStealPct, 0)}`,
          `${fmt(r.latSmall.serverCpuPerEvent, 2)} / ${fmt(r.latLarge.serverCpuPerEvent, 2)}`,
          `${fmt(r.latLarge.serverCpuShare * 100, 0)} / ${fmt(r.latLarge.serverLoopUtilization * 100, 0)}`,
          fmt(r.latLarge.clientCpuShare * 100, 0),
          `${fmt(r.latLarge.otherPct, 0)} / ${fmt(r.latLarge.stealPct, 0)}`,
          `${fmt(r.latLarge.eventsPerTurn, 2)} / ${fmt(r.latLarge.eventsPerRead, 2)}`,
          `${fmtInt(r.latLarge.count)}/${fmtInt(r.latLarge.expected)}`,
          `${fmtInt(r.latSmall.count)}/${fmtInt(r.latSmall.expected)}`,
          `${fmt(r.latSmall.max, 1)} / ${fmt(r.latLarge.max, 1)}`,
          fmt(r.clockSkewMs * 1000, 0),
        ];
      }),
    ),
  );
  out.push('');
  out.push(
    'CPU % is of one core over the measured wall time; process CPU includes its GC and libuv threads and the kernel work its syscalls do ' +
      '(on loopback that includes much of the receiving side). "other procs" is busy CPU of everything else on the machine ' +
      '(other processes, kernel threads, softirq not charged to ours), "steal" is CPU the hypervisor took; both make a run noisier.',
  );
  closeDetails(out, notes);
  return out.join('\n');
}

/** Renders a run saved with BENCH_FANOUT_JSON again (for example after changing the report). */
/**
 * @param {{ settings: Config, rounds: Round[] }} saved
 * @param {string[]} [notes]
 */
export function report({ settings, rounds }, notes = []) {
  return render(combine(rounds, settings.impls), settings, notes, rounds);
}

/** @param {{ log?: (line: string) => void }} [options] */
export async function run(options = {}) {
  const cfg = config(options);
  const notes = [];

  const openFiles = requireOpenFiles(cfg.clients + 64, `hold ${cfg.clients} sockets plus a few files`, ' or lower BENCH_CLIENTS');
  notes.push(
    `${openFiles} ` +
      `EventStream: keepAliveInterval ${process.env.BENCH_ES_KEEPALIVE || 'default (15000)'}, publishing with ` +
      `${process.env.BENCH_ES_PUBLISH === 'publishEvent' ? 'publishEvent' : 'createChannelWritable writes'}. ` +
      'better-sse and sse-channel run with their defaults (keep-alive every 10 s / ping every 20 s); keep-alive blocks are not counted as events.',
  );

  const rounds = await runRounds({ cfg, label: 'fan-out', orderOf: () => cfg.impls, measure, jsonVar: 'BENCH_FANOUT_JSON' });
  return render(combine(rounds, cfg.impls), cfg, notes, rounds);
}
