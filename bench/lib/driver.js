// Parent side of the fan-out and idiom benchmarks: starts a server child and
// a client child and runs the measurements both use over their IPC.
import { execFileSync, fork } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { connect } from './ipc.js';
import { machineLoad, machineSnapshot } from './machine-load.js';
import { firstLine } from './report.js';

const SERVER = fileURLToPath(new URL('../fanout/server.js', import.meta.url));
const CLIENT = fileURLToPath(new URL('../fanout/client.js', import.meta.url));

/**
 * A server child and a client child, and the pids whose CPU counts as ours.
 * @typedef {{ server: import('./ipc.js').Peer, client: import('./ipc.js').Peer, pids: number[] }} Pair
 */

/** @type {(ms: number) => Promise<void>} */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * @param {string} what
 * @param {() => boolean | Promise<boolean>} predicate
 */
export async function until(what, predicate, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** @type {(usage: { user: number, system: number }) => number} */
export const cpuMicros = (usage) => usage.user + usage.system;

export function openFileLimit() {
  try {
    const text = execFileSync('/bin/sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim();
    return text === 'unlimited' ? Infinity : Number(text);
  } catch {
    return NaN;
  }
}

/**
 * The report's note on open files, once the limit allows `needed` per child;
 * throws otherwise, saying what each child would `hold` and what to do.
 * @param {number} needed
 * @param {string} hold
 */
export function requireOpenFiles(needed, hold, advice = '') {
  const limit = openFileLimit();
  if (Number.isFinite(limit) && limit < needed) {
    throw new Error(
      `ulimit -n is ${limit}, but the client and server processes each ${hold}; raise it (ulimit -n ${needed * 2})${advice}`,
    );
  }
  return `Open-file limit (ulimit -n) ${Number.isFinite(limit) ? limit : 'unknown'}; each child needs about ${needed}.`;
}

/**
 * A server child running `impl` (mounted on `mount`) and a fresh client child; `pids` for machine load.
 * @param {string} impl
 * @returns {Pair}
 */
export function startPair(impl, mount = 'http') {
  const prof = process.env.BENCH_SERVER_PROF;
  const server = connect(
    fork(SERVER, [impl, mount], {
      execArgv: ['--expose-gc', ...(prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : [])],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    }),
    `server[${impl}]`,
  );
  const client = connect(fork(CLIENT, [], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }), 'client');
  // fork() gives a pid or emits 'error', which the first call reports.
  return { server, client, pids: /** @type {number[]} */ ([server.child.pid, client.child.pid, process.pid]) };
}

/** @param {Pair} pair */
export function stopPair({ server, client }) {
  return Promise.all([client.stop(), server.stop()]);
}

/**
 * The client holds exactly `n` connections, and the server counts as many.
 * @param {Pair} pair
 * @param {number} port
 * @param {number} n
 */
export async function holdConnections({ server, client }, port, n) {
  const { connections } = await client.call('close', { keep: n });
  if (connections < n) await client.call('connect', { port, n: n - connections }, 120_000);
  await until(`${n} server-side subscribers`, async () => (await server.call('count')) === n);
}

/**
 * A few connections and events (published with the server command
 * `publish`), so lazily loaded code is not counted as per-connection memory.
 * @param {Pair} pair
 * @param {number} port
 * @param {number} bytes
 */
export async function warmUp(pair, port, bytes, publish = 'burst') {
  const { server, client } = pair;
  await holdConnections(pair, port, 20);
  await client.call('expect', { events: 20 });
  const warm = client.call('awaitTarget');
  await server.call(publish, { events: 20, bytes });
  await warm;
  await holdConnections(pair, port, 0);
}

/**
 * Idle memory per connection: after `n` clients connected, gc'd, minus before, over n. Starts and ends with none.
 * @param {Pair} pair
 * @param {number} port
 * @param {number} n
 */
export async function idleMemory(pair, port, n) {
  const before = await pair.server.call('mem');
  await holdConnections(pair, port, n);
  await sleep(100);
  const after = await pair.server.call('mem');
  return {
    heapPerConn: (after.heapUsed - before.heapUsed) / n,
    rssPerConn: (after.rss - before.rss) / n,
    externalPerConn: (after.external - before.external) / n,
  };
}

/**
 * Bursts to every connected client: `publish()` (a server call) hands the
 * burst over, and each is awaited until every client has all `events` of it.
 * `bursts` measured after `warmupBursts`, fewer (at least `minBursts`) when
 * `budgetMs` runs out. Server CPU is per delivered event; `replies` holds
 * what each measured publish() returned.
 * @param {Pair} pair
 * @param {{ events: number, bursts: number, warmupBursts: number, budgetMs: number, minBursts: number, publish: () => Promise<unknown> }} options
 */
export async function measureBursts(pair, { events, bursts, warmupBursts, budgetMs, minBursts, publish }) {
  const { server, client, pids } = pair;
  const clients = await server.call('count');
  /** @type {unknown[]} */
  const replies = [];
  const burst = async () => {
    await client.call('expect', { events });
    const done = client.call('awaitTarget', {}, 120_000);
    const start = performance.now();
    const reply = await publish();
    await done;
    return { ms: performance.now() - start, reply };
  };
  for (let i = 0; i < warmupBursts; i++) await burst();
  const countsBefore = await client.call('counts');
  await server.call('mem'); // start from a collected heap
  await server.call('cpuStart');
  await client.call('cpuStart');
  const loadStart = machineSnapshot(pids);
  const budgetEnd = performance.now() + budgetMs;
  let wallMs = 0;
  let count = 0;
  while (count < bursts && !(count >= minBursts && performance.now() > budgetEnd)) {
    const { ms, reply } = await burst();
    wallMs += ms;
    replies.push(reply);
    count++;
  }
  await sleep(20); // let trailing work (drain callbacks, frees) land in the measurement
  const serverCpu = cpuMicros(await server.call('cpuEnd'));
  const clientCpu = cpuMicros(await client.call('cpuEnd'));
  const load = machineLoad(loadStart, machineSnapshot(pids));
  const countsAfter = await client.call('counts');
  const delivered = countsAfter.events - countsBefore.events;
  const expected = count * events * clients;
  if (delivered !== expected) throw new Error(`bursts: clients received ${delivered} events, expected ${expected}`);
  return {
    bursts: count,
    cpuPerEvent: serverCpu / delivered,
    eventsPerSec: delivered / (wallMs / 1000),
    burstMs: wallMs / count,
    serverCpuShare: serverCpu / 1000 / wallMs,
    clientCpuShare: clientCpu / 1000 / wallMs,
    burstOtherPct: load.otherPct,
    burstStealPct: load.stealPct,
    replies,
  };
}

/**
 * Waits until the client recorded `expected` latency samples or `timeoutMs` passed; how long that took.
 * @param {import('./ipc.js').Peer} client
 * @param {number} expected
 * @param {number} timeoutMs
 */
export async function awaitSamples(client, expected, timeoutMs) {
  const start = performance.now();
  const deadline = start + timeoutMs;
  while ((await client.call('latCount')) < expected && performance.now() < deadline) await sleep(10);
  return performance.now() - start;
}

/**
 * `repeat` rounds of `measure(impl)` over the implementations `orderOf(round)`
 * returns; a failed measurement becomes `{ impl, error }`. When the
 * environment variable `jsonVar` names a file, every round's raw results and
 * the settings are written to it.
 * @template {{ log: (line: string) => void, repeat: number }} C
 * @param {{ cfg: C, label: string, orderOf: (round: number) => readonly string[], measure: (impl: string, cfg: C) => Promise<any>, jsonVar: string }} options
 * @returns {Promise<Record<string, any>[]>}
 */
export async function runRounds({ cfg, label, orderOf, measure, jsonVar }) {
  const { log } = cfg;
  const rounds = [];
  for (let round = 0; round < cfg.repeat; round++) {
    /** @type {Record<string, any>} */
    const results = {};
    for (const impl of orderOf(round)) {
      log(`${label}: ${impl}${cfg.repeat > 1 ? ` (round ${round + 1}/${cfg.repeat})` : ''}`);
      try {
        results[impl] = await measure(impl, cfg);
      } catch (error) {
        log(`  ${impl}: FAILED: ${error instanceof Error ? error.message : error}`);
        results[impl] = { impl, error: firstLine(error) };
      }
    }
    rounds.push(results);
  }
  if (process.env[jsonVar]) {
    const { log: _log, ...settings } = cfg;
    writeFileSync(process.env[jsonVar], `${JSON.stringify({ settings, rounds }, null, 2)}\n`);
  }
  return rounds;
}
