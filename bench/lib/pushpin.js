// A real Pushpin for the GRIP benchmark, in the foreground with a scratch
// directory of its own, so it neither reads nor touches the system's config.
//
// Debian's stock pushpin.conf expects zurl as a system service, and proxied
// requests hang without it: the config written here lists zurl among the
// runner's services and points its sockets into the scratch run dir. The only
// TCP ports opened are the proxy and control ports given here (the stock
// file is what would add the handler's 5560-5563).

import { execFileSync, spawn } from 'node:child_process';
import { accessSync, constants, readdirSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/**
 * @typedef {object} RunningPushpin
 * @property {string} proxyUrl where clients connect, e.g. http://127.0.0.1:40123
 * @property {string} controlUri the GRIP control_uri
 * @property {string} sigKey the key Pushpin signs Grip-Sig with
 * @property {() => Promise<string>} logs Pushpin's output and log files, for failure messages
 * @property {() => Promise<void>} stop SIGTERM, SIGKILL to all its processes after a grace period, scratch dir removed
 */

const READY_TIMEOUT_MS = 15_000;
const STOP_GRACE_MS = 5_000;
const PROBE_PATH = '/.bench-pushpin-probe';
const PROBE_CHANNEL = 'bench-pushpin-probe';

/** Whether a `pushpin` executable is on PATH. */
export function pushpinAvailable() {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    try {
      accessSync(path.join(dir, 'pushpin'), constants.X_OK);
      return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}

/** `pushpin --version`, for the report. */
export function pushpinVersion() {
  try {
    return execFileSync('pushpin', ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'pushpin, version unknown';
  }
}

/**
 * Pids in session `sid`. The runner is spawned detached, so it leads a session
 * of its own; its children (condure, zurl, proxy, handler) stay in it although
 * each takes its own process group, so a process-group kill would miss them.
 * @param {number} sid
 * @returns {number[]}
 */
function sessionPids(sid) {
  /** @type {number[]} */
  const pids = [];
  let entries;
  try {
    entries = readdirSync('/proc');
  } catch {
    return [sid];
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // After "pid (comm) ": state ppid pgrp session ...
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[3]) === sid) pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/** @param {number} sid */
function killSession(sid) {
  for (const pid of sessionPids(sid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/**
 * Two distinct free loopback ports: both listeners stay open until both are known.
 * @returns {Promise<[number, number]>}
 */
async function twoFreePorts() {
  /** @returns {Promise<net.Server>} */
  const listen = () =>
    new Promise((resolve, reject) => {
      const server = net.createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve(server));
    });
  const servers = [await listen(), await listen()];
  const ports = servers.map((server) => /** @type {net.AddressInfo} */ (server.address()).port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return [ports[0], ports[1]];
}

/**
 * @param {string} dir
 * @param {number} proxyPort
 * @param {number} controlPort
 * @param {string} sigKey
 */
function config(dir, proxyPort, controlPort, sigKey) {
  return [
    '[global]',
    'include={libdir}/internal.conf',
    `rundir=${dir}/run`,
    'ipc_prefix=pushpin-',
    '',
    '[runner]',
    'services=condure,zurl,pushpin-proxy,pushpin-handler',
    `http_port=127.0.0.1:${proxyPort}`,
    `logdir=${dir}/log`,
    `log_level=${Number(process.env.PUSHPIN_LOG_LEVEL ?? 2)}`,
    '',
    '[proxy]',
    'routesfile=routes',
    'sig_iss=pushpin',
    `sig_key=${sigKey}`,
    'zurl_out_specs=ipc://{rundir}/{ipc_prefix}zurl-in',
    'zurl_out_stream_specs=ipc://{rundir}/{ipc_prefix}zurl-in-stream',
    'zurl_in_specs=ipc://{rundir}/{ipc_prefix}zurl-out',
    'updates_check=off',
    '',
    '[handler]',
    'push_in_http_addr=127.0.0.1',
    `push_in_http_port=${controlPort}`,
    '',
  ].join('\n');
}

/**
 * Holds a stream on the probe channel through the proxy, publishes two items
 * to it one after the other, and resolves true once both arrived. The control
 * API answering is not enough: just after start Pushpin's processes may not
 * all be connected (ZMQ retries every 100 ms), and a hold made then is
 * refused or later dropped.
 * @param {string} proxyUrl
 * @param {string} controlUri
 * @returns {Promise<boolean>}
 */
function deliveryWorks(proxyUrl, controlUri) {
  const expected = ['ready\n', 'ping-1\n', 'ping-2\n'];
  return new Promise((resolve) => {
    let received = '';
    let step = 0;
    let settled = false;
    /** @param {boolean} ok */
    const finish = (ok) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), 2000);
    /** @param {string} content */
    const publish = (content) => {
      const body = JSON.stringify({ items: [{ channel: PROBE_CHANNEL, formats: { 'http-stream': { content } } }] });
      fetch(`${controlUri}/publish/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
        .then(async (response) => {
          await response.arrayBuffer();
          if (!response.ok) finish(false);
        })
        .catch(() => finish(false));
    };
    const req = http.get(`${proxyUrl}${PROBE_PATH}`, { agent: false }, (res) => {
      if (res.statusCode !== 200) return finish(false);
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        received += chunk;
        while (step < expected.length && received.includes(expected[step])) {
          step++;
          if (step < expected.length) publish(expected[step]);
        }
        if (step === expected.length) finish(true);
      });
      // Pushpin ends a hold it has dropped.
      res.on('end', () => finish(false));
      res.on('error', () => finish(false));
    });
    req.on('error', () => finish(false));
  });
}

/**
 * Messages condure dropped because a peer was not connected yet; a run of the
 * probe with drops does not count as ready.
 * @param {string} dir
 */
async function droppedSends(dir) {
  try {
    return (await readFile(path.join(dir, 'log', 'condure.log'), 'utf8')).split('Host unreachable').length - 1;
  } catch {
    return 0;
  }
}

/**
 * @param {string} dir
 * @param {string} output
 */
async function collectLogs(dir, output) {
  let text = `--- pushpin output ---\n${output}`;
  try {
    for (const name of await readdir(path.join(dir, 'log'))) {
      text += `\n--- ${name} ---\n${(await readFile(path.join(dir, 'log', name), 'utf8')).slice(-4000)}`;
    }
  } catch {
    // no log dir yet, or already removed
  }
  return text;
}

/**
 * Starts Pushpin routing every request to 127.0.0.1:`originPort` and resolves
 * once a held stream through it receives publishes.
 * @param {number} originPort
 * @returns {Promise<RunningPushpin>}
 */
export async function startPushpin(originPort) {
  const sigKey = `bench-${Math.random().toString(36).slice(2)}`;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-pushpin-'));
  await mkdir(path.join(dir, 'run'));
  await mkdir(path.join(dir, 'log'));
  // Answers the readiness probe with a stream hold; it listens before the two
  // ports are picked so they cannot collide with it.
  const probe = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'grip-hold': 'stream', 'grip-channel': PROBE_CHANNEL });
    res.end('ready\n');
  });
  await new Promise((resolve) => probe.listen(0, '127.0.0.1', () => resolve(undefined)));
  const probePort = /** @type {net.AddressInfo} */ (probe.address()).port;
  const [proxyPort, controlPort] = await twoFreePorts();
  const configPath = path.join(dir, 'pushpin.conf');
  // The probe's route first: the catch-all would take it otherwise.
  await writeFile(path.join(dir, 'routes'), `*,path_beg=${PROBE_PATH} 127.0.0.1:${probePort}\n* 127.0.0.1:${originPort}\n`);
  await writeFile(configPath, config(dir, proxyPort, controlPort, sigKey));

  const child = spawn('pushpin', ['--config', configPath], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  // Should this process die without stop(), Pushpin's session must not outlive it.
  const onExit = () => {
    if (child.pid !== undefined) killSession(child.pid);
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', onExit);
  let output = '';
  /** @param {Buffer} chunk */
  const collect = (chunk) => {
    output = (output + chunk.toString('utf8')).slice(-8000);
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  /** @type {Error | null} */
  let spawnError = null;
  child.once('error', (error) => {
    spawnError = error;
  });
  const exited = new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(undefined);
    else child.once('exit', () => resolve(undefined));
  });
  const running = () => spawnError === null && child.exitCode === null && child.signalCode === null;

  /** @type {Promise<void> | null} */
  let stopping = null;
  const stop = () => {
    stopping ??= (async () => {
      if (running() && child.pid !== undefined) {
        const pid = child.pid;
        child.kill('SIGTERM');
        const timer = setTimeout(() => killSession(pid), STOP_GRACE_MS);
        await exited;
        clearTimeout(timer);
        // Children that outlived the runner.
        killSession(pid);
      }
      process.removeListener('exit', onExit);
      probe.closeAllConnections();
      await new Promise((resolve) => probe.close(() => resolve(undefined)));
      await rm(dir, { recursive: true, force: true });
    })();
    return stopping;
  };

  const proxyUrl = `http://127.0.0.1:${proxyPort}`;
  const controlUri = `http://127.0.0.1:${controlPort}`;
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (!running()) {
      const logs = await collectLogs(dir, output);
      await stop();
      throw new Error(
        `pushpin exited before it was ready (${String(spawnError ?? child.exitCode ?? child.signalCode)})\n${logs}`,
      );
    }
    const droppedBefore = await droppedSends(dir);
    if (await deliveryWorks(proxyUrl, controlUri)) {
      // condure reports a dropped send after the data went out: give it a moment.
      await new Promise((resolve) => setTimeout(resolve, 100));
      if ((await droppedSends(dir)) === droppedBefore) break;
    }
    if (Date.now() > deadline) {
      const logs = await collectLogs(dir, output);
      await stop();
      throw new Error(`pushpin not ready after ${READY_TIMEOUT_MS} ms (the probe stream did not receive two publishes)\n${logs}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { proxyUrl, controlUri, sigKey, logs: () => collectLogs(dir, output), stop };
}
