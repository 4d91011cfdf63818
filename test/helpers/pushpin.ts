import { type ChildProcess, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { killSession } from './child-process.js';
import { findOnPath, requireProgram } from './requirements.js';
import { freePorts } from './server.js';

/**
 * A real Pushpin, run in the foreground with its own scratch directory, so
 * several can run at once and none touches the system's config.
 *
 * Debian's stock config expects zurl as a system service (proxied requests
 * hang without it), so the config written here starts zurl itself and points
 * its sockets into the scratch run dir. Without the stock pushpin.conf the
 * only TCP ports Pushpin opens are the two given here (the handler's ZMQ
 * push/command ports 5560-5563 are set only by the stock file, and
 * {libdir}/internal.conf uses ipc sockets under {rundir} exclusively).
 * Each Pushpin also routes /.pushpin-ready-probe to a tiny origin of its own,
 * used to tell when it is really ready (see startProbeOrigin).
 */

export interface PushpinRoute {
  /**
   * Origin ports on 127.0.0.1. Several targets (space-separated in the routes
   * file) are failover, not load balancing: the first one up takes every request.
   */
  targets: readonly number[];
  /** Route only paths starting with this (Pushpin's `path_beg`); absent means every path. */
  pathPrefix?: string;
}

export interface PushpinOptions {
  /** An origin port that takes every request, or routes tried in order (first match wins). */
  routes: number | readonly PushpinRoute[];
  /** Pushpin signs Grip-Sig with this. Default: a random key. */
  sigKey?: string;
  /** Pushpin's log level: 2 = info (default), 3 = debug. PUSHPIN_LOG_LEVEL overrides it, for debugging a failing test. */
  logLevel?: number;
}

export interface RunningPushpin {
  /** Where clients connect, e.g. `http://127.0.0.1:40123`. */
  proxyUrl: string;
  /** The control API (GRIP `control_uri`), e.g. `http://127.0.0.1:40124`. */
  controlUri: string;
  sigKey: string;
  /** Pushpin's output and log files so far, for failure messages. */
  logs(): Promise<string>;
  /** SIGTERM, wait for exit (SIGKILL to its processes after 5 s), remove the scratch dir. */
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 5_000;

/** Pushpins not yet stopped, so a crashing test process does not leave them running. */
const running = new Map<ChildProcess, string>();
process.once('exit', () => {
  for (const [child, dir] of running) {
    if (child.pid !== undefined) killSession(child.pid);
    rmSync(dir, { recursive: true, force: true });
  }
});

export function pushpinAvailable(): boolean {
  return findOnPath('pushpin') !== null;
}

/**
 * Call first in every Pushpin test: `if (!requirePushpin(t)) return;`.
 * Without the binary the test fails in CI (CI=true) and is skipped loudly elsewhere.
 */
export function requirePushpin(t: TestContext): boolean {
  return requireProgram(
    t,
    pushpinAvailable(),
    'pushpin binary not found on PATH: GRIP tests against a real Pushpin cannot run (apt-get install pushpin)',
  );
}

const READY_PATH = '/.pushpin-ready-probe';
const PROBE_CHANNEL = 'pushpin-ready-probe';

function routesFile(routes: PushpinOptions['routes'], probePort: number): string {
  const list: readonly PushpinRoute[] = typeof routes === 'number' ? [{ targets: [routes] }] : routes;
  if (list.length === 0) throw new Error('startPushpin needs at least one route');
  // The readiness probe's route comes first so it wins over a catch-all.
  return `${[{ targets: [probePort], pathPrefix: READY_PATH }, ...list]
    .map(({ targets, pathPrefix }) => {
      if (targets.length === 0) throw new Error('a Pushpin route needs at least one target');
      const condition = pathPrefix === undefined ? '*' : `*,path_beg=${pathPrefix}`;
      return `${condition} ${targets.map((port) => `127.0.0.1:${port}`).join(' ')}`;
    })
    .join('\n')}\n`;
}

function configFile(dir: string, proxyPort: number, controlPort: number, sigKey: string, logLevel: number): string {
  return `[global]
include={libdir}/internal.conf
rundir=${dir}/run
ipc_prefix=pushpin-

[runner]
services=condure,zurl,pushpin-proxy,pushpin-handler
http_port=127.0.0.1:${proxyPort}
logdir=${dir}/log
log_level=${logLevel}

[proxy]
routesfile=routes
sig_iss=pushpin
sig_key=${sigKey}
zurl_out_specs=ipc://{rundir}/{ipc_prefix}zurl-in
zurl_out_stream_specs=ipc://{rundir}/{ipc_prefix}zurl-in-stream
zurl_in_specs=ipc://{rundir}/{ipc_prefix}zurl-out
updates_check=off

[handler]
push_in_http_addr=127.0.0.1
push_in_http_port=${controlPort}
`;
}

/**
 * An origin that answers every request with a stream hold on the probe channel.
 * Pushpin's control port answering is not enough: right after start its
 * processes may not all be connected yet (ZMQ reconnects every 100 ms).
 * Meanwhile a hold gets a 500, or condure's messages to the handler are
 * dropped ("stream zmq send to: Host unreachable" in condure.log) and the
 * held stream is canceled at a later publish ("received message out of
 * sequence" in the handler log). Ready means: a held stream received two
 * publishes and condure dropped nothing meanwhile.
 */
async function startProbeOrigin(): Promise<http.Server> {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'grip-hold': 'stream', 'grip-channel': PROBE_CHANNEL });
    res.end('ready\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

/** Whether Pushpin's control API answers GET / as it does when up. */
async function controlAnswers(controlUri: string): Promise<boolean> {
  try {
    const response = await fetch(`${controlUri}/`, { signal: AbortSignal.timeout(1000) });
    // The body tells Pushpin from anything else that might hold the port.
    return response.status === 200 && (await response.text()) === 'Pushpin API\n';
  } catch {
    return false;
  }
}

/** Holds a stream through the probe route, publishes two items to it and resolves true once both arrived. */
function deliveryWorks(proxyUrl: string, controlUri: string): Promise<boolean> {
  const expected = ['ready\n', 'ping-1\n', 'ping-2\n'];
  return new Promise((resolve) => {
    let received = '';
    let step = 0;
    let settled = false;
    const finish = (ok: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), 2000);
    const publish = (content: string): void => {
      const body = JSON.stringify({ items: [{ channel: PROBE_CHANNEL, formats: { 'http-stream': { content } } }] });
      fetch(`${controlUri}/publish/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
        .then((response) => response.arrayBuffer().then(() => response.ok || finish(false)))
        .catch(() => finish(false));
    };
    const req = http.get(`${proxyUrl}${READY_PATH}`, { agent: false }, (res) => {
      if (res.statusCode !== 200) {
        finish(false);
        return;
      }
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        received += chunk;
        while (step < expected.length && received.includes(expected[step]!)) {
          step++;
          if (step < expected.length) publish(expected[step]!);
        }
        if (step === expected.length) finish(true);
      });
      // A canceled hold ends the response early.
      res.on('end', () => finish(false));
      res.on('error', () => finish(false));
    });
    req.on('error', () => finish(false));
  });
}

/** How many messages condure has dropped because a peer was not connected yet. */
async function droppedSends(dir: string): Promise<number> {
  try {
    return (await readFile(path.join(dir, 'log', 'condure.log'), 'utf8')).split('Host unreachable').length - 1;
  } catch {
    return 0;
  }
}

async function readLogs(dir: string, output: string): Promise<string> {
  let text = `--- pushpin output ---\n${output}`;
  try {
    for (const name of await readdir(path.join(dir, 'log'))) {
      text += `\n--- ${name} ---\n${(await readFile(path.join(dir, 'log', name), 'utf8')).slice(-4000)}`;
    }
  } catch {
    // No log dir (yet, or removed).
  }
  return text;
}

export async function startPushpin(options: PushpinOptions): Promise<RunningPushpin> {
  const sigKey = options.sigKey ?? `sig-${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pp-'));
  await mkdir(path.join(dir, 'run'));
  await mkdir(path.join(dir, 'log'));
  // The probe origin listens first, so the ports picked next cannot be its port.
  const probeOrigin = await startProbeOrigin();
  const [proxyPort, controlPort] = (await freePorts(2)) as [number, number];
  const configPath = path.join(dir, 'pushpin.conf');
  try {
    await writeFile(path.join(dir, 'routes'), routesFile(options.routes, (probeOrigin.address() as AddressInfo).port));
    const logLevel = Number(process.env.PUSHPIN_LOG_LEVEL ?? options.logLevel ?? 2);
    await writeFile(configPath, configFile(dir, proxyPort, controlPort, sigKey, logLevel));
  } catch (error) {
    probeOrigin.close();
    await rm(dir, { recursive: true, force: true });
    throw error;
  }

  // Its own session, so a runner that ignores SIGTERM can be killed with its children.
  const child = spawn('pushpin', ['--config', configPath], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  running.set(child, dir);
  let output = '';
  const collect = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-8000);
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  let spawnError: Error | null = null;
  child.once('error', (error) => {
    spawnError = error;
  });

  let stopped: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
        child.kill('SIGTERM');
        const timer = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), STOP_TIMEOUT_MS).unref());
        if ((await Promise.race([exited.then(() => 'exited' as const), timer])) === 'timeout') {
          killSession(child.pid);
          await exited;
        }
      }
      running.delete(child);
      probeOrigin.closeAllConnections();
      await new Promise((resolve) => probeOrigin.close(resolve));
      await rm(dir, { recursive: true, force: true });
    })();
    return stopped;
  };

  const proxyUrl = `http://127.0.0.1:${proxyPort}`;
  const controlUri = `http://127.0.0.1:${controlPort}`;
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (spawnError !== null || child.exitCode !== null || child.signalCode !== null) {
      const logs = await readLogs(dir, output);
      await stop();
      throw new Error(
        `pushpin exited before it was ready (${String(spawnError ?? child.exitCode ?? child.signalCode)})\n${logs}`,
      );
    }
    const droppedBefore = await droppedSends(dir);
    if ((await controlAnswers(controlUri)) && (await deliveryWorks(proxyUrl, controlUri))) {
      // Condure sends its credits after the data reaches the client, so give them a moment to show up as dropped.
      await new Promise((resolve) => setTimeout(resolve, 100));
      if ((await droppedSends(dir)) === droppedBefore) break;
    }
    if (Date.now() > deadline) {
      const logs = await readLogs(dir, output);
      await stop();
      throw new Error(
        `pushpin not ready after ${READY_TIMEOUT_MS} ms (no held stream received two publishes without drops)\n${logs}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }

  return { proxyUrl, controlUri, sigKey, logs: () => readLogs(dir, output), stop };
}
