// Replay benchmark: a client resuming N events behind (Last-Event-ID) against
// a fan-out of N events to one connected client, measured side by side.
//
// The bar (from the issue): "a client resuming 10,000 events behind must be
// caught up within the time of a 10,000-event fan-out to one client".
//
// Server: `new EventStream({ store: new MemoryEventStore({ maxEvents }) })`
// serving GET /events/<channel> over real HTTP on 127.0.0.1, in its own child
// process (bench/replay/server.js, --expose-gc); a fresh EventStream and store
// for every measurement. Client: one plain node:http request with
// eventsource-parser, in another child process (bench/replay/client.js).
//
// - fan-out: the client is connected (stream-open received); timed from the
//   start of `Readable.from(events).pipe(eventStream.createChannelWritable(ch))`
//   on the server until the client has parsed the Nth event.
// - replay: the client connects once, keeps the stream-open id, disconnects;
//   the same pipe publishes N events with nobody listening (awaited until the
//   writable finishes, and the store's head checked); then timed from the
//   start of a new request with `Last-Event-ID: <that id>` until the client has
//   parsed the Nth replayed event.
// Both check every event arrived exactly once, in order: the JSON data's index
// runs 0..N-1 and ids `channel:seq` are consecutive from the stream's start
// position; no stream-reset or other event, nothing after the Nth.
// The order of the two alternates from round to round; medians are reported.
//
// Environment overrides (defaults in brackets):
//   BENCH_REPLAY_ROUNDS [5]            measured rounds (one fan-out and one replay each)
//   BENCH_REPLAY_WARMUP [1]            unmeasured rounds first
//   BENCH_REPLAY_EVENTS [10000]        events per measurement
//   BENCH_REPLAY_PAYLOAD_BYTES [100]   bytes of JSON data per event
//   BENCH_REPLAY_STORE_EVENTS [20000]  MemoryEventStore maxEvents
//   BENCH_REPLAY_VIA [header]          how the resuming client sends its position: 'header' (Last-Event-ID) or 'query' (?lastEventId=)
//   BENCH_REPLAY_SETTLE_MS [200]       idle pause (after a gc on both sides) before each timed part
//   BENCH_REPLAY_STALL_MS [20000]      a measurement fails when the client gets nothing new for this long
//   BENCH_REPLAY_SERVER_PROF           if set, a directory for the server child's --cpu-prof profile
//   BENCH_REPLAY_JSON                  if set, a file to write every measurement's raw numbers to
import { fork } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { envInt } from './lib/env.js';
import { connect } from './lib/ipc.js';
import { machineLoad, machineSnapshot } from './lib/machine-load.js';
import {
  changedSettingsNote,
  closeDetails,
  firstLine,
  fmtInt,
  fmtRatio,
  median,
  openDetails,
  pushParagraph,
  table,
} from './lib/report.js';

const SERVER = fileURLToPath(new URL('./replay/server.js', import.meta.url));
const CLIENT = fileURLToPath(new URL('./replay/client.js', import.meta.url));

/** The bar: median replay time over median fan-out time, at these settings. */
const BAR_RATIO = 1.0;
const BAR_SETTINGS = { events: 10_000, payloadBytes: 100 };
/** Other processes or steal above this % of a core during a measurement make the run suspect. */
const NOISY_PCT = 20;

/**
 * @typedef {ReturnType<typeof config>} Config
 * @typedef {{ server: import('./lib/ipc.js').Peer, client: import('./lib/ipc.js').Peer, port: number, cfg: Config, pids: number[] }} Context
 * @typedef {'fanout' | 'replay'} Kind
 * @typedef {{ kind: Kind, ms: number, ok: boolean, problems: string[], [figure: string]: any }} Measurement
 * @typedef {{ order: Kind[], fanout: Measurement, replay: Measurement }} Round
 */

/** @param {{ log?: (line: string) => void }} options */
function config(options) {
  const via = process.env.BENCH_REPLAY_VIA || 'header';
  if (via !== 'header' && via !== 'query') throw new Error(`BENCH_REPLAY_VIA must be header or query, got ${via}`);
  const events = envInt('BENCH_REPLAY_EVENTS', 10_000);
  return {
    rounds: envInt('BENCH_REPLAY_ROUNDS', 5),
    warmup: envInt('BENCH_REPLAY_WARMUP', 1, 0),
    events,
    payloadBytes: envInt('BENCH_REPLAY_PAYLOAD_BYTES', 100, 24),
    storeEvents: envInt('BENCH_REPLAY_STORE_EVENTS', Math.max(20_000, events)),
    via,
    settleMs: envInt('BENCH_REPLAY_SETTLE_MS', 200, 0),
    stallMs: envInt('BENCH_REPLAY_STALL_MS', 20_000),
    prof: process.env.BENCH_REPLAY_SERVER_PROF || null,
    log: options.log ?? ((/** @type {string} */ line) => process.stderr.write(`${line}\n`)),
  };
}

/** @type {(ms: number) => Promise<void>} */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * @param {string} what
 * @param {() => Promise<boolean>} predicate
 */
async function until(what, predicate, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** @type {(usage: { user: number, system: number }) => number} */
const cpuMs = (usage) => (usage.user + usage.system) / 1000;

// ---------------------------------------------------------------------------

let channelCounter = 0;

/**
 * Runs `body` as a timed part with CPU and machine load around it.
 * @template {object} T
 * @param {Context} ctx
 * @param {() => Promise<T>} body
 */
async function timed(ctx, body) {
  const { server, client, pids, cfg } = ctx;
  await Promise.all([server.call('gc'), client.call('gc')]);
  if (cfg.settleMs > 0) await sleep(cfg.settleMs);
  await Promise.all([server.call('cpuStart'), client.call('cpuStart')]);
  const loadA = machineSnapshot(pids);
  const result = await body();
  const loadB = machineSnapshot(pids);
  const [serverCpu, clientCpu] = await Promise.all([server.call('cpuEnd'), client.call('cpuEnd')]);
  // Anything arriving after the Nth event (duplicates, extras) must show up in the check.
  await sleep(100);
  const final = await client.call('close');
  return { ...result, final, serverCpuMs: cpuMs(serverCpu), clientCpuMs: cpuMs(clientCpu), ...machineLoad(loadA, loadB) };
}

/**
 * @param {any} summary the client's, null when it had none
 * @param {Config} cfg
 * @returns {string[]}
 */
function checkDelivery(summary, cfg) {
  /** @type {string[]} */
  const problems = [];
  if (summary === null) return ['no client summary'];
  if (summary.error !== null) problems.push(summary.error);
  if (summary.received !== cfg.events) problems.push(`received ${summary.received}/${cfg.events}`);
  if (summary.problemCount > 0) problems.push(`${summary.problemCount} problem(s): ${summary.problems.join('; ')}`);
  return problems;
}

/** @param {string} id */
function seqOf(id) {
  return Number(id.slice(id.lastIndexOf(':') + 1));
}

/**
 * One connected client; N events piped into the channel.
 * @param {Context} ctx
 */
async function measureFanout(ctx) {
  const { server, client, port, cfg } = ctx;
  const channel = `fanout-${++channelCounter}`;
  await server.call('reset', { storeEvents: cfg.storeEvents });
  const open = await client.call('open', { port, channel, lastEventId: null, expected: cfg.events, firstIndex: 0 });
  await until('the server-side stream', async () => (await server.call('streams')) === 1);
  const r = await timed(ctx, async () => {
    const done = client.call('done', { stallMs: cfg.stallMs }, cfg.stallMs + 30_000);
    const published = await server.call('publish', { channel, count: cfg.events, bytes: cfg.payloadBytes }, cfg.stallMs + 30_000);
    const summary = await done;
    return { startedAt: published.startedAt, finishedAt: published.finishedAt, summary };
  });
  const problems = checkDelivery(r.final, cfg);
  if (!problems.length && seqOf(r.summary.firstId) !== seqOf(open.openId) + 1)
    problems.push(`first id ${r.summary.firstId} after stream-open ${open.openId}`);
  return measurement('fanout', r, problems, { writableFinishMs: r.finishedAt - r.startedAt });
}

/**
 * One timed part's figures, times from its start.
 * @param {Kind} kind
 * @param {any} r what timed() returned
 * @param {string[]} problems
 * @param {Record<string, number>} extra
 * @returns {Measurement}
 */
function measurement(kind, r, problems, extra) {
  return {
    kind,
    ms: r.summary.doneAt - r.startedAt,
    firstMs: r.summary.firstAt - r.startedAt,
    ...extra,
    serverCpuMs: r.serverCpuMs,
    clientCpuMs: r.clientCpuMs,
    reads: r.summary.reads,
    bytes: r.summary.bytes,
    otherPct: r.otherPct,
    stealPct: r.stealPct,
    ok: problems.length === 0,
    problems,
  };
}

/**
 * N events published with nobody listening, then a client resumes from the position before them.
 * @param {Context} ctx
 */
async function measureReplay(ctx) {
  const { server, client, port, cfg } = ctx;
  const channel = `replay-${++channelCounter}`;
  await server.call('reset', { storeEvents: cfg.storeEvents });
  // The position before the events: the id of a fresh stream's stream-open.
  const open = await client.call('open', { port, channel, lastEventId: null, expected: 0 });
  await client.call('close');
  if (!open.openId) throw new Error('the stream-open event carried no id');
  await until('the server-side stream to close', async () => (await server.call('streams')) === 0);
  await server.call('publish', { channel, count: cfg.events, bytes: cfg.payloadBytes }, 60_000);
  const head = await server.call('head', { channel });
  if (head !== seqOf(open.openId) + cfg.events) {
    throw new Error(`store head ${head} after publishing ${cfg.events} events from ${open.openId}`);
  }
  const r = await timed(ctx, async () => {
    const resumed = await client.call('open', {
      port,
      channel,
      lastEventId: open.openId,
      via: cfg.via,
      expected: cfg.events,
      firstIndex: 0,
    });
    const summary = await client.call('done', { stallMs: cfg.stallMs }, cfg.stallMs + 30_000);
    return { startedAt: resumed.startedAt, openedAt: resumed.openedAt, summary };
  });
  const problems = checkDelivery(r.final, cfg);
  if (!problems.length && seqOf(r.summary.firstId) !== seqOf(open.openId) + 1)
    problems.push(`first replayed id ${r.summary.firstId} after ${open.openId}`);
  if (!problems.length && r.summary.lastId !== `${channel}:${head}`)
    problems.push(`last replayed id ${r.summary.lastId}, store head ${head}`);
  return measurement('replay', r, problems, { openMs: r.openedAt - r.startedAt });
}

/**
 * @param {Kind} kind
 * @param {Context} ctx
 * @returns {Promise<Measurement>}
 */
async function attempt(kind, ctx) {
  try {
    return await (kind === 'fanout' ? measureFanout(ctx) : measureReplay(ctx));
  } catch (error) {
    await ctx.client.call('close').catch(() => {});
    return { kind, ms: NaN, ok: false, problems: [firstLine(error)] };
  }
}

// ---------------------------------------------------------------------------
// Reporting

/** @type {(v: number, digits?: number) => string} */
const fmt = (v, digits = 1) => (Number.isFinite(v) ? v.toFixed(digits) : 'n/a');

/**
 * @param {Config} cfg
 * @param {Round[]} rounds
 * @param {string[]} notes
 */
function render(cfg, rounds, notes) {
  /** @param {Kind} kind */
  const all = (kind) => rounds.map((round) => round[kind]);
  /** @param {Kind} kind */
  const stats = (kind) => {
    const runs = all(kind);
    const done = runs.filter((r) => r.ok);
    // A failed run has no time: the median is only reported when every run delivered everything.
    const ms = done.length === runs.length ? median(done.map((r) => r.ms)) : NaN;
    return {
      runs,
      done,
      ms,
      eventsPerSec: cfg.events / (ms / 1000),
      min: Math.min(...done.map((r) => r.ms)),
      max: Math.max(...done.map((r) => r.ms)),
      firstMs: median(done.map((r) => r.firstMs)),
      serverCpuMs: median(done.map((r) => r.serverCpuMs)),
      clientCpuMs: median(done.map((r) => r.clientCpuMs)),
      reads: median(done.map((r) => r.reads)),
    };
  };
  const fan = stats('fanout');
  const rep = stats('replay');
  const ratio = rep.ms / fan.ms;
  const pairedRatio = median(rounds.map((round) => round.replay.ms / round.fanout.ms));
  const delivered = fan.done.length === fan.runs.length && rep.done.length === rep.runs.length;
  const pass = delivered && Number.isFinite(ratio) && ratio <= BAR_RATIO;
  /** @param {typeof fan} s */
  const describe = (s) => {
    if (s.done.length === s.runs.length)
      return `yes, ${s.done.length}/${s.runs.length} runs (${fmtInt(cfg.events)}/${fmtInt(cfg.events)} each)`;
    const why = s.runs
      .filter((r) => !r.ok)
      .map((r) => r.problems.join('; '))
      .join(' / ');
    return `**NO**, ${s.done.length}/${s.runs.length} runs ok (${why})`;
  };

  const out = [];
  out.push(`## Replay (resume ${fmtInt(cfg.events)} events behind) vs fan-out`);
  out.push('');
  out.push(
    `\`new EventStream({ store: new MemoryEventStore({ maxEvents: ${cfg.storeEvents} }) })\` serving one channel over HTTP on 127.0.0.1, ` +
      'in its own server process (a fresh EventStream and store per measurement); one client (plain `node:http` request, eventsource-parser) ' +
      `in another process. Events: ${cfg.payloadBytes} B JSON data carrying an index. ` +
      '**Fan-out**: the client is connected; timed from the start of `Readable.from(events).pipe(eventStream.createChannelWritable(channel))` ' +
      `until the client has parsed the ${fmtInt(cfg.events)}th event. ` +
      `**Replay**: the client keeps a fresh stream's stream-open id and disconnects; the same pipe publishes ${fmtInt(cfg.events)} events with nobody listening ` +
      `(awaited); then timed from the start of a new request with ${cfg.via === 'header' ? '`Last-Event-ID: <that id>`' : '`?lastEventId=<that id>`'} ` +
      `(connection and admission included) until the client has parsed the ${fmtInt(cfg.events)}th replayed event. ` +
      'Both check every event arrived exactly once, in order (data index 0..N-1, consecutive `channel:seq` ids from the start position, ' +
      'no stream-reset, nothing after the last). ' +
      `${cfg.rounds} measured round(s)${cfg.warmup > 0 ? ` after ${cfg.warmup} unmeasured` : ''}, the order of the two alternating; ` +
      `gc on both sides and ${cfg.settleMs} ms idle before each timed part; medians. ` +
      'Times are `performance.timeOrigin + performance.now()` in both processes.',
  );
  out.push('');
  out.push(
    table(
      [
        'measurement',
        `median ms to ${fmtInt(cfg.events)}th event`,
        'events/s',
        'min–max ms',
        'median ms to first event',
        'server CPU ms',
        'client CPU ms',
        'client socket reads',
        'every event exactly once, in order',
      ],
      /** @type {[string, typeof fan][]} */ ([
        ['fan-out to one connected client', fan],
        [`replay to a resuming client (${cfg.via === 'header' ? 'Last-Event-ID' : '?lastEventId='})`, rep],
      ]).map(([label, s]) => [
        label,
        fmt(s.ms),
        fmtInt(s.eventsPerSec),
        s.done.length ? `${fmt(s.min)}–${fmt(s.max)}` : 'n/a',
        fmt(s.firstMs),
        fmt(s.serverCpuMs),
        fmt(s.clientCpuMs),
        fmtInt(s.reads),
        describe(s),
      ]),
      [0, 8],
    ),
  );
  out.push('');
  out.push('### Bar (replay vs fan-out)');
  out.push('');
  out.push(
    table(
      ['bar', 'replay', 'fan-out', 'ratio', 'limit', 'result'],
      [
        [
          `ms until a client has ${fmtInt(cfg.events)} events (medians)`,
          fmt(rep.ms),
          fmt(fan.ms),
          fmtRatio(ratio),
          `<= ${BAR_RATIO.toFixed(1)}x`,
          Number.isFinite(ratio) ? (ratio <= BAR_RATIO ? 'PASS' : 'FAIL') : 'FAIL (no data)',
        ],
        [
          'every event delivered exactly once, in order (all runs of both)',
          `${rep.done.length}/${rep.runs.length}`,
          `${fan.done.length}/${fan.runs.length}`,
          '—',
          'all',
          delivered ? 'PASS' : 'FAIL',
        ],
      ],
    ),
  );
  out.push('');
  out.push(
    `**Replay bar: ${pass ? 'PASS' : 'FAIL'}** (replay/fan-out = ${fmtRatio(ratio)}, median of per-round ratios ${fmtRatio(pairedRatio)}; limit <= ${BAR_RATIO.toFixed(1)}x).`,
  );
  pushParagraph(out, changedSettingsNote(BAR_SETTINGS, cfg, 'the verdict is'));
  const noisy = rounds.some((round) =>
    [round.fanout, round.replay].some((r) => r.otherPct > NOISY_PCT || r.stealPct > NOISY_PCT),
  );
  if (noisy) {
    out.push('');
    out.push(
      `**Warning: during some measurements other processes or the hypervisor took more than ${NOISY_PCT}% of a core ` +
        '(see the rounds below); times are skewed, rerun on a quiet machine.** (These shares are counted in 10 ms ticks, so over a ' +
        'measurement of about 100 ms one tick is about 10%: a single warning can be a rounding artefact.)',
    );
  }
  openDetails(out, 'Rounds');
  out.push(
    table(
      [
        'round',
        'order',
        'fan-out ms',
        'replay ms',
        'replay/fan-out',
        'fan-out ms to writable finish',
        'replay ms to stream-open',
        'other / steal % (fan-out)',
        'other / steal % (replay)',
      ],
      rounds.map((round, i) => [
        String(i + 1),
        round.order.join(', '),
        round.fanout.ok ? fmt(round.fanout.ms) : `failed: ${round.fanout.problems.join('; ')}`,
        round.replay.ok ? fmt(round.replay.ms) : `failed: ${round.replay.problems.join('; ')}`,
        fmtRatio(round.replay.ms / round.fanout.ms),
        fmt(round.fanout.writableFinishMs),
        fmt(round.replay.openMs),
        `${fmt(round.fanout.otherPct, 0)} / ${fmt(round.fanout.stealPct, 0)}`,
        `${fmt(round.replay.otherPct, 0)} / ${fmt(round.replay.stealPct, 0)}`,
      ]),
      [0, 1],
    ),
  );
  out.push('');
  out.push(
    'Server CPU covers the timed part only: for fan-out that includes encoding and storing the events, for replay only reading ' +
      'them back from the store (they were published before). "other" is busy CPU of everything else on the machine, "steal" CPU the hypervisor took.',
  );
  closeDetails(out, notes);
  return { markdown: out.join('\n'), pass };
}

/** @param {{ log?: (line: string) => void }} [options] */
export async function run(options = {}) {
  const cfg = config(options);
  const { log } = cfg;
  /** @type {string[]} */
  const notes = [];
  const startedAt = performance.now();
  const execArgv = ['--expose-gc', ...(cfg.prof ? ['--cpu-prof', `--cpu-prof-dir=${cfg.prof}`] : [])];
  const server = connect(fork(SERVER, [], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }), 'replay server');
  const client = connect(
    fork(CLIENT, [], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }),
    'replay client',
  );
  /** @type {Round[]} */
  const rounds = [];
  try {
    const { port } = await server.call('start');
    const [sc, cc] = await Promise.all([server.call('clock'), client.call('clock')]);
    const clockSkewMs = sc.wall - sc.mono - (cc.wall - cc.mono);
    /** @type {Context} */
    const ctx = { server, client, port, cfg, pids: /** @type {number[]} */ ([server.child.pid, client.child.pid, process.pid]) };

    for (let i = 0; i < cfg.warmup; i++) {
      log(`replay: warm-up round ${i + 1}/${cfg.warmup}`);
      for (const kind of /** @type {Kind[]} */ (['fanout', 'replay'])) {
        const r = await attempt(kind, ctx);
        if (!r.ok) notes.push(`Warm-up ${kind} failed: ${r.problems.join('; ')}.`);
      }
    }
    for (let i = 0; i < cfg.rounds; i++) {
      /** @type {Kind[]} */
      const order = i % 2 === 0 ? ['fanout', 'replay'] : ['replay', 'fanout'];
      const round = /** @type {Round} */ ({ order });
      for (const kind of order) round[kind] = await attempt(kind, ctx);
      log(
        `replay: round ${i + 1}/${cfg.rounds} (${order.join(' then ')}): fan-out ${fmt(round.fanout.ms)} ms, ` +
          `replay ${fmt(round.replay.ms)} ms, ratio ${fmtRatio(round.replay.ms / round.fanout.ms)}` +
          [round.fanout, round.replay]
            .filter((r) => !r.ok)
            .map((r) => ` [${r.kind} FAILED: ${r.problems.join('; ')}]`)
            .join(''),
      );
      rounds.push(round);
    }
    notes.push(
      `Clock skew between the server and client processes ${fmt(clockSkewMs * 1000, 0)} µs (fan-out times span both; replay times are the client's alone). ` +
        `Whole replay benchmark took ${fmt((performance.now() - startedAt) / 1000)} s.`,
    );
  } finally {
    await Promise.all([client.stop(), server.stop()]);
  }
  if (process.env.BENCH_REPLAY_JSON) {
    const { log: _log, ...settings } = cfg;
    writeFileSync(process.env.BENCH_REPLAY_JSON, `${JSON.stringify({ settings, rounds }, null, 2)}\n`);
  }
  const { markdown, pass } = render(cfg, rounds, notes);
  log(`replay: ${pass ? 'PASS' : 'FAIL'}`);
  return markdown;
}

// Run alone: `npm run build && node bench/replay.js`
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const markdown = await run({});
  console.log(markdown);
  if (!markdown.includes('**Replay bar: PASS**')) process.exitCode = 1;
}
