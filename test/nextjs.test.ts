/**
 * The Next.js example (examples/nextjs) on a real Next.js, built and served
 * here, with real EventSource clients:
 * - `next build` + `next start`: events published through the app-router
 *   publish route reach clients of the pages-router API route and of the
 *   app-router route handler alike (one EventStream per process, although
 *   Next bundles each route with its own copy of lib/eventStream.js and of the
 *   library); streams are not compressed or buffered; bad requests get 400;
 *   clients that leave are unsubscribed on both routes.
 * - `next dev`: clients connected before lib/eventStream.js is edited (so
 *   every route re-evaluates it) keep receiving events published by the
 *   reloaded publish route, and new clients join the same instance: the
 *   singleton lives on globalThis. The edited file is restored afterwards.
 *
 * The example depends on the repository itself (`file:../..`, so on dist/):
 * dist/ is built here when missing, and the example's own dependencies are
 * installed with `npm ci` from its lock file when they are not in place.
 * Every Next.js process is started in its own process group and the group is
 * killed at the end, also when a test fails.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openRaw, RecordingEventSource, until } from './helpers/sse-client.js';
import { freePort } from './helpers/server.js';

const repoRoot = dirname(dirname(fileURLToPath(import.meta.url)));
const exampleDir = join(repoRoot, 'examples', 'nextjs');
const nextBin = join(exampleDir, 'node_modules', 'next', 'dist', 'bin', 'next');
const libFile = join(exampleDir, 'lib', 'eventStream.js');

/**
 * Without npm's lifecycle variables (they would steer the child npm), the
 * test runner's own marker, and NODE_ENV (Next sets it per command).
 */
const childEnv: NodeJS.ProcessEnv = {
  ...Object.fromEntries(
    Object.entries(process.env).filter(
      ([name]) => !name.toLowerCase().startsWith('npm_') && name !== 'NODE_TEST_CONTEXT' && name !== 'NODE_ENV',
    ),
  ),
  NEXT_TELEMETRY_DISABLED: '1',
};

function run(command: string, args: string[], cwd: string, timeout: number): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd, env: childEnv, timeout, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
      resolve({ code, output: `${String(stdout)}\n${String(stderr)}` });
    });
  });
}

async function runOk(command: string, args: string[], cwd: string, timeout: number): Promise<string> {
  const started = Date.now();
  const { code, output } = await run(command, args, cwd, timeout);
  assert.equal(code, 0, `${command} ${args.join(' ')} (in ${cwd}) failed with exit ${code}:\n${output}`);
  console.log(`# ${[command, ...args].join(' ')}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return output;
}

/** Whether examples/nextjs/node_modules holds what its lock file asks for (the packages this test relies on). */
function exampleDepsInstalled(): boolean {
  const lock = JSON.parse(readFileSync(join(exampleDir, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { version?: string }>;
  };
  if (!existsSync(join(exampleDir, 'node_modules', '@fanoutio', 'eventstream', 'package.json'))) return false;
  for (const name of ['next', 'react', 'react-dom']) {
    const manifest = join(exampleDir, 'node_modules', name, 'package.json');
    if (!existsSync(manifest)) return false;
    const { version } = JSON.parse(readFileSync(manifest, 'utf8')) as { version: string };
    if (version !== lock.packages[`node_modules/${name}`]?.version) return false;
  }
  return true;
}


function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Live (not zombie) processes whose process group is `pgid`. */
function groupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // Fields after the parenthesized command: state ppid pgrp ...
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) === pgid && fields[0] !== 'Z') members.push(Number(entry));
    } catch {
      // Exited meanwhile.
    }
  }
  return members;
}

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // The group is gone.
  }
}

/** Process groups of Next.js servers not stopped yet, killed if this process exits first. */
const runningGroups = new Set<number>();
/** The original text of a file this test edited, put back if this process exits first. */
let pendingRestore: { file: string; text: string } | null = null;
function cleanUpNow(): void {
  for (const pgid of runningGroups) killGroup(pgid, 'SIGKILL');
  if (pendingRestore !== null) writeFileSync(pendingRestore.file, pendingRestore.text);
}
process.once('exit', cleanUpNow);
// The servers run in groups of their own, out of reach of a Ctrl-C meant for this process.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    cleanUpNow();
    process.kill(process.pid, signal);
  });
}

class NextServer {
  readonly url: string;
  private output = '';
  private readonly child: ChildProcess;
  private readonly exited: Promise<void>;
  private exitCode: number | null | undefined;

  constructor(command: 'start' | 'dev', port: number) {
    this.url = `http://127.0.0.1:${port}`;
    // A new process group: Next.js forks a server process of its own, and both must go at the end.
    this.child = spawn(process.execPath, [nextBin, command, '-p', String(port), '-H', '127.0.0.1'], {
      cwd: exampleDir,
      env: childEnv,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    runningGroups.add(this.child.pid!);
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (this.output += chunk));
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.output += chunk));
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code) => {
        this.exitCode = code;
        resolve();
      }),
    );
  }

  /** What the server printed so far (stdout and stderr). */
  log(): string {
    return this.output;
  }

  /** Resolves once the app answers /api/stats (which compiles it, under `next dev`). */
  async ready(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.exitCode !== undefined) throw new Error(`next exited (${this.exitCode}) before it was ready:\n${this.output}`);
      try {
        const response = await fetch(`${this.url}/api/stats`);
        if (response.status === 200) return;
        await response.body?.cancel();
      } catch {
        // Not listening yet.
      }
      if (Date.now() > deadline) throw new Error(`next was not ready after ${timeoutMs} ms:\n${this.output}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  async stats(): Promise<{ channels: Record<string, number>; streams: number; eventsPublished: number }> {
    const response = await fetch(`${this.url}/api/stats`);
    assert.equal(response.status, 200);
    return (await response.json()) as { channels: Record<string, number>; streams: number; eventsPublished: number };
  }

  /** POST /api/publish/<channel> with {data}; returns the status and body text. */
  async publish(channel: string, body: string): Promise<{ status: number; text: string }> {
    const response = await fetch(`${this.url}/api/publish/${channel}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    return { status: response.status, text: await response.text() };
  }

  /** SIGTERM to the whole group, SIGKILL to what is left after 5 s; resolves when no member is alive. */
  async stop(): Promise<void> {
    const pgid = this.child.pid!;
    killGroup(pgid, 'SIGTERM');
    await Promise.race([this.exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
    killGroup(pgid, 'SIGKILL');
    await until(() => groupMembers(pgid).length === 0, 5000, `the processes of next (group ${pgid}) to exit`);
    runningGroups.delete(pgid);
  }
}

function eventData(client: RecordingEventSource): unknown[] {
  return client.of('message').map((event) => JSON.parse(event.data) as unknown);
}

async function openClient(url: string, clients: RecordingEventSource[], timeoutMs: number): Promise<RecordingEventSource> {
  const client = new RecordingEventSource(url);
  clients.push(client);
  await withTimeout(client.opened, timeoutMs, `the stream ${url} to open`);
  return client;
}

/** Messages a Next.js server prints when an API route or a handler misbehaves. */
function assertCleanLog(log: string): void {
  assert.doesNotMatch(log, /API resolved without sending a response/);
  assert.doesNotMatch(log, /API handler should not return a value/);
  assert.doesNotMatch(log, /exceeds \d/);
  assert.doesNotMatch(log, /⨯|Error:|unhandled/i);
}

/** A failure's message with what the server printed, which usually tells why. */
function withServerLog(error: unknown, server: NextServer): unknown {
  if (error instanceof Error && !error.message.includes('--- next output ---')) {
    error.message += `\n--- next output ---\n${server.log()}`;
  }
  return error;
}

/** Reads `read()` until `done` holds of its value, at most `timeoutMs`; the error shows the last value. */
async function poll<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const servers: NextServer[] = [];
const suffix = `${process.pid}-${Date.now()}`;

before(
  async () => {
    if (!existsSync(join(repoRoot, 'dist', 'index.js'))) await runOk('npm', ['run', 'build'], repoRoot, 120_000);
    if (!exampleDepsInstalled()) await runOk('npm', ['ci', '--no-audit', '--no-fund'], exampleDir, 240_000);
    assert.ok(exampleDepsInstalled(), 'npm ci did not install what examples/nextjs/package-lock.json lists');
    await runOk(process.execPath, [nextBin, 'build'], exampleDir, 240_000);
  },
  { timeout: 420_000 },
);

after(async () => {
  await Promise.all(servers.map((server) => server.stop()));
});

test('next start: the pages route and the app route serve one EventStream', { timeout: 120_000 }, async () => {
  const server = new NextServer('start', await freePort());
  servers.push(server);
  await server.ready(30_000);
  const channel = `prod-${suffix}`;
  const clients: RecordingEventSource[] = [];
  try {
    const viaPages = await openClient(`${server.url}/api/events/${channel}`, clients, 15_000);
    const viaApp = await openClient(`${server.url}/api/stream/${channel}`, clients, 15_000);
    // The stats route is a third bundle of lib/eventStream.js; it sees both subscribers.
    assert.equal((await server.stats()).channels[channel], 2);

    for (let n = 1; n <= 3; n++) {
      const published = await server.publish(channel, JSON.stringify({ data: { n } }));
      assert.equal(published.status, 204, published.text);
    }
    await Promise.all([viaPages.waitFor(3), viaApp.waitFor(3)]);
    assert.deepEqual(eventData(viaPages), [{ n: 1 }, { n: 2 }, { n: 3 }]);
    assert.deepEqual(eventData(viaApp), [{ n: 1 }, { n: 2 }, { n: 3 }]);

    // A client that accepts gzip still gets an uncompressed stream whose bytes arrive as they are written.
    for (const path of ['/api/events/', '/api/stream/']) {
      const raw = await openRaw(`${server.url}${path}${channel}`, { accept: 'text/event-stream', 'accept-encoding': 'gzip, deflate' });
      try {
        assert.equal(raw.status, 200);
        assert.equal(raw.headers['content-type'], 'text/event-stream; charset=utf-8');
        assert.equal(raw.headers['content-encoding'], undefined);
        assert.match(String(raw.headers['cache-control']), /no-transform/);
        await until(() => /^event: stream-open\ndata: \nid: [^\n]+\n\n/.test(raw.text()), 5000, `the opening bytes on ${path}`);
        assert.equal((await server.publish(channel, JSON.stringify({ data: path }))).status, 204);
        await until(() => raw.text().includes(`event: message\ndata: ${JSON.stringify(path)}\nid: ${channel}:`), 5000, `the event on ${path}`);
      } finally {
        raw.close();
      }
    }

    // Refusals: a channel name with a comma on either route, a body that is not JSON, missing data.
    for (const path of ['/api/events/', '/api/stream/']) {
      const response = await fetch(`${server.url}${path}bad%2Cname`, { headers: { accept: 'text/event-stream' } });
      assert.equal(response.status, 400, path);
      assert.match(await response.text(), /channel name/);
    }
    assert.equal((await server.publish(channel, 'not json')).status, 400);
    assert.equal((await server.publish(channel, '{}')).status, 400);

    // Clients that leave are unsubscribed, on both routes.
    for (const client of clients) client.close();
    await poll(server.stats.bind(server), (stats) => stats.streams === 0 && stats.channels[channel] === undefined, 10_000, 'every stream to be released');
    assertCleanLog(server.log());
  } catch (error) {
    throw withServerLog(error, server);
  } finally {
    for (const client of clients) client.close();
    await server.stop();
  }
});

test('next dev: the singleton outlives a reload of every route', { timeout: 150_000 }, async () => {
  const server = new NextServer('dev', await freePort());
  servers.push(server);
  // The first request compiles the app.
  await server.ready(60_000);
  const channel = `dev-${suffix}`;
  const clients: RecordingEventSource[] = [];
  const original = readFileSync(libFile, 'utf8');
  try {
    const pagesBefore = await openClient(`${server.url}/api/events/${channel}`, clients, 60_000);
    const appBefore = await openClient(`${server.url}/api/stream/${channel}`, clients, 60_000);
    assert.equal((await server.publish(channel, JSON.stringify({ data: 'before' }))).status, 204);
    await Promise.all([pagesBefore.waitFor(1), appBefore.waitFor(1)]);

    // Edit the module every route imports; each route evaluates it anew on its next request and says so.
    const probe = `[eventstream-reload-probe ${suffix}]`;
    const probes = (): number => server.log().split(probe).length - 1;
    pendingRestore = { file: libFile, text: original };
    writeFileSync(libFile, `${original}\n// Added by test/nextjs.test.ts to make Next.js reload this module.\nconsole.log(${JSON.stringify(probe)});\n`);
    // Wait for the recompile: the stats route runs the edited module.
    await poll(async () => (await server.stats(), probes()), (count) => count > 0, 60_000, 'the edited module to run');

    // The publish route, reloaded by this very request, reaches the clients of the routes as they were before.
    const beforePublish = probes();
    assert.equal((await server.publish(channel, JSON.stringify({ data: 'after reload' }))).status, 204);
    await until(() => probes() > beforePublish, 10_000, 'the publish route to run the edited module');
    await Promise.all([pagesBefore.waitFor(2), appBefore.waitFor(2)]);

    // Clients of the reloaded stream routes join the same instance.
    const beforeConnect = probes();
    const pagesAfter = await openClient(`${server.url}/api/events/${channel}`, clients, 60_000);
    const appAfter = await openClient(`${server.url}/api/stream/${channel}`, clients, 60_000);
    await until(() => probes() >= beforeConnect + 2, 10_000, 'both stream routes to run the edited module');
    assert.equal((await server.stats()).channels[channel], 4);
    assert.equal((await server.publish(channel, JSON.stringify({ data: 'to all' }))).status, 204);
    await Promise.all([pagesBefore.waitFor(3), appBefore.waitFor(3), pagesAfter.waitFor(1), appAfter.waitFor(1)]);
    assert.deepEqual(eventData(pagesBefore), ['before', 'after reload', 'to all']);
    assert.deepEqual(eventData(appBefore), ['before', 'after reload', 'to all']);
    assert.deepEqual(eventData(pagesAfter), ['to all']);
    assert.deepEqual(eventData(appAfter), ['to all']);

    for (const client of clients) client.close();
    await poll(server.stats.bind(server), (stats) => stats.streams === 0 && stats.channels[channel] === undefined, 10_000, 'every stream to be released');
    assertCleanLog(server.log());
  } catch (error) {
    throw withServerLog(error, server);
  } finally {
    for (const client of clients) client.close();
    await server.stop();
    writeFileSync(libFile, original);
    pendingRestore = null;
  }
});
