import { type ChildProcess, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, type TestContext } from 'node:test';
import { findOnPath, requireProgram } from './requirements.js';
import { freePort } from './server.js';

/**
 * A real redis-server on a free loopback port with its own scratch
 * directory, so tests never touch a system Redis and several can run at once.
 */

export interface RedisOptions {
  /** Persist every write (AOF, fsync always), so data survives restart(). */
  appendOnly?: boolean;
}

export interface RunningRedis {
  port: number;
  /** `redis://127.0.0.1:<port>` */
  url: string;
  /** SIGTERM, wait for exit (SIGKILL after 5 s), remove the scratch dir. */
  stop(): Promise<void>;
  /**
   * Stops the server (keeping its dir), runs `whileDown` if given, and starts
   * it again on the same port; resolves once it answers PING.
   */
  restart(whileDown?: () => Promise<void>): Promise<void>;
  /** Like restart(), but the server is killed with SIGKILL: whatever it had not written to disk is gone. */
  crash(whileDown?: () => Promise<void>): Promise<void>;
  /** What redis-server printed so far, for failure messages. */
  output(): string;
}

const READY_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;

/** Servers not yet stopped, so a crashing test process leaves none running. */
const running = new Map<ChildProcess, string>();
process.once('exit', () => {
  for (const [child, dir] of running) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * One redis-server for all tests of the calling file: started before them
 * (when the binary exists; each test still calls requireRedis) and stopped
 * after them. `url` is only read inside tests.
 */
export function redisForFile(): { readonly url: string } {
  let server: RunningRedis | undefined;
  before(async () => {
    if (redisAvailable()) server = await startRedis();
  });
  after(async () => {
    await server?.stop();
  });
  return {
    get url(): string {
      if (server === undefined) throw new Error('redis-server is not running (call requireRedis(t) first)');
      return server.url;
    },
  };
}

let keyPrefixes = 0;

/** A key prefix no other test (nor an earlier run on a reused Redis) has used. */
export function uniqueKeyPrefix(label: string): string {
  return `${label}-${process.pid}-${++keyPrefixes}-${Date.now()}:`;
}

export function redisAvailable(): boolean {
  return findOnPath('redis-server') !== null;
}

/**
 * Call first in every Redis test: `if (!requireRedis(t)) return;`.
 * Without the binary the test fails in CI (CI=true) and is skipped loudly elsewhere.
 */
export function requireRedis(t: TestContext): boolean {
  return requireProgram(
    t,
    redisAvailable(),
    'redis-server not found on PATH: RedisEventStore tests against a real Redis cannot run (apt-get install redis-server)',
  );
}

/** Whether the server answers PING with PONG (not -LOADING while it replays its AOF). */
function pingAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let reply = '';
    const finish = (ok: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), 1000);
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      if (reply.includes('\r\n')) finish(reply.startsWith('+PONG'));
    });
    socket.on('error', () => finish(false));
    socket.on('close', () => finish(false));
  });
}

export async function startRedis(options: RedisOptions = {}): Promise<RunningRedis> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'redis-'));
  const port = await freePort();
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', dir];
  args.push(...(options.appendOnly === true ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']));

  let output = '';
  let child: ChildProcess | null = null;

  const launch = async (): Promise<void> => {
    const server = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child = server;
    running.set(server, dir);
    let spawnError: Error | null = null;
    server.once('error', (error) => {
      spawnError = error;
    });
    const collect = (chunk: Buffer): void => {
      output = (output + chunk.toString('utf8')).slice(-8000);
    };
    server.stdout!.on('data', collect);
    server.stderr!.on('data', collect);
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (spawnError !== null || server.exitCode !== null || server.signalCode !== null) {
        throw new Error(
          `redis-server exited before it was ready (${String(spawnError ?? server.exitCode ?? server.signalCode)})\n${output}`,
        );
      }
      if (await pingAnswers(port)) return;
      if (Date.now() > deadline) throw new Error(`redis-server not answering PING after ${READY_TIMEOUT_MS} ms\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  };

  const halt = async (signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> => {
    const current = child;
    if (current === null) return;
    child = null;
    if (current.exitCode === null && current.signalCode === null) {
      const exited = new Promise<void>((resolve) => current.once('exit', () => resolve()));
      current.kill(signal);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), STOP_TIMEOUT_MS);
      });
      if ((await Promise.race([exited.then(() => 'exited' as const), timeout])) === 'timeout') {
        current.kill('SIGKILL');
        await exited;
      }
      clearTimeout(timer);
    }
    running.delete(current);
  };

  let stopped: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      await halt();
      await rm(dir, { recursive: true, force: true });
    })();
    return stopped;
  };

  try {
    await launch();
  } catch (error) {
    await stop();
    throw error;
  }

  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop,
    restart: async (whileDown) => {
      if (stopped !== null) throw new Error('restart() after stop()');
      await halt();
      try {
        await whileDown?.();
      } finally {
        await launch();
      }
    },
    crash: async (whileDown) => {
      if (stopped !== null) throw new Error('crash() after stop()');
      await halt('SIGKILL');
      try {
        await whileDown?.();
      } finally {
        await launch();
      }
    },
    output: () => output,
  };
}
