/**
 * A Next.js app serving EventStream's routes (examples/nextjs, or an app a
 * test wrote with the same routes): `GET /api/stats` (eventStream.stats()),
 * `POST /api/publish/<id>` with {"data": ...}, and event streams read with a
 * real EventSource. The server runs in a process group of its own.
 */
import assert from 'node:assert/strict';
import { GroupedProcess } from './child-process.js';
import { RecordingEventSource } from './sse-client.js';

export interface AppStats {
  channels: Record<string, number>;
  streams: number;
  eventsPublished: number;
}

export class NextServer {
  readonly url: string;
  private readonly process: GroupedProcess;

  /** `next start` or `next dev` of the app in `appDir`, with `nextBin` (next/dist/bin/next). */
  constructor(nextBin: string, appDir: string, command: 'start' | 'dev', port: number) {
    this.url = `http://127.0.0.1:${port}`;
    this.process = new GroupedProcess(process.execPath, [nextBin, command, '-p', String(port), '-H', '127.0.0.1'], appDir);
  }

  /** What the server printed so far (stdout and stderr). */
  log(): string {
    return this.process.log();
  }

  /** Resolves once the app answers /api/stats (which compiles it, under `next dev`). */
  async ready(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const code = this.process.exitCode();
      if (code !== undefined) throw new Error(`next exited (${code}) before it was ready:\n${this.log()}`);
      try {
        const response = await fetch(`${this.url}/api/stats`);
        if (response.status === 200) return;
        await response.body?.cancel();
      } catch {
        // Not listening yet.
      }
      if (Date.now() > deadline) throw new Error(`next was not ready after ${timeoutMs} ms:\n${this.log()}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  async stats(): Promise<AppStats> {
    const response = await fetch(`${this.url}/api/stats`);
    assert.equal(response.status, 200);
    return (await response.json()) as AppStats;
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

  /** Stops every process of the server; resolves when none is alive. */
  stop(): Promise<void> {
    return this.process.stop();
  }
}

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** The parsed `data` of each 'message' event a client received. */
export function eventData(client: RecordingEventSource): unknown[] {
  return client.of('message').map((event) => JSON.parse(event.data) as unknown);
}

/** A real EventSource on `url`, added to `clients` (for the caller to close), once its stream is open. */
export async function openClient(url: string, clients: RecordingEventSource[], timeoutMs: number): Promise<RecordingEventSource> {
  const client = new RecordingEventSource(url);
  clients.push(client);
  await withTimeout(client.opened, timeoutMs, `the stream ${url} to open`);
  return client;
}

/** Fails on the messages a Next.js server prints when a route or a handler misbehaves. */
export function assertCleanLog(log: string): void {
  assert.doesNotMatch(log, /API resolved without sending a response/);
  assert.doesNotMatch(log, /API handler should not return a value/);
  assert.doesNotMatch(log, /exceeds \d/);
  assert.doesNotMatch(log, /⨯|Error:|unhandled/i);
}

/** A failure's message with what the server printed, which usually tells why. */
export function withServerLog(error: unknown, server: NextServer): unknown {
  if (error instanceof Error && !error.message.includes('--- next output ---')) {
    error.message += `\n--- next output ---\n${server.log()}`;
  }
  return error;
}

/**
 * Runs `scenario` on a server, then closes its clients, waits until the
 * server released every stream of `channel` and checks its log; a failure
 * carries what the server printed. The server is stopped after, whatever
 * happened.
 */
export async function runScenario(
  server: NextServer,
  channel: string,
  scenario: (clients: RecordingEventSource[]) => Promise<void>,
): Promise<void> {
  const clients: RecordingEventSource[] = [];
  try {
    await scenario(clients);
    for (const client of clients) client.close();
    await poll(
      server.stats.bind(server),
      (stats) => stats.streams === 0 && stats.channels[channel] === undefined,
      10_000,
      'every stream to be released',
    );
    assertCleanLog(server.log());
  } catch (error) {
    throw withServerLog(error, server);
  } finally {
    for (const client of clients) client.close();
    await server.stop();
  }
}

/** Reads `read()` until `done` holds of its value, at most `timeoutMs`; the error shows the last value. */
export async function poll<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
