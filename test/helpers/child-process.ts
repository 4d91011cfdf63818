/**
 * Programs a test runs (npm, tsc, next): one-shot commands with their output,
 * and long-running servers started in a process group of their own, killed
 * with the whole group when the test stops them, and also when this process
 * exits or is interrupted before it could (a test that fails, a Ctrl-C).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { until } from './sse-client.js';

/**
 * This process's environment without npm's lifecycle variables (under
 * `npm test` they would steer a child npm), the test runner's own marker (a
 * child node would think it runs under the runner), and NODE_ENV (Next.js
 * sets it per command).
 */
export const childEnv: NodeJS.ProcessEnv = {
  ...Object.fromEntries(
    Object.entries(process.env).filter(
      ([name]) => !name.toLowerCase().startsWith('npm_') && name !== 'NODE_TEST_CONTEXT' && name !== 'NODE_ENV',
    ),
  ),
  NEXT_TELEMETRY_DISABLED: '1',
};

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end (killed after `timeout` ms); never rejects. */
export function run(command: string, args: string[], cwd: string, timeout = 120_000): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd, env: childEnv, timeout, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** Runs a command that must succeed; the failure shows its output. Logs how long it took. */
export async function runOk(command: string, args: string[], cwd: string, timeout = 120_000): Promise<RunResult> {
  const started = Date.now();
  const result = await run(command, args, cwd, timeout);
  assert.equal(
    result.code,
    0,
    `${command} ${args.join(' ')} (in ${cwd}) failed with exit ${result.code}:\n${result.stdout}\n${result.stderr}`,
  );
  console.log(`# ${[command, ...args].join(' ')}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return result;
}

/** Live (not zombie) processes whose process group (`pgrp`) or session is `id`, as /proc tells. */
function processesOf(field: 'pgrp' | 'session', id: number): number[] {
  // Fields after the parenthesized command: state ppid pgrp session ...
  const index = field === 'pgrp' ? 2 : 3;
  const members: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[index]) === id && fields[0] !== 'Z') members.push(Number(entry));
    } catch {
      // Exited meanwhile.
    }
  }
  return members;
}

/** Live processes whose process group is `pgid`. */
export function groupMembers(pgid: number): number[] {
  return processesOf('pgrp', pgid);
}

/**
 * SIGKILL to every process of the session `sid` leads. A signal to a process
 * group does not do for a program whose children each start a group of their
 * own in its session (Pushpin's runner and condure, zurl, proxy, handler).
 */
export function killSession(sid: number): void {
  for (const pid of processesOf('session', sid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // The group is gone.
  }
}

/** Process groups not stopped yet, and other undo steps, run if this process exits first. */
const runningGroups = new Set<number>();
const exitSteps = new Set<() => void>();
let exitHooksInstalled = false;

function cleanUpNow(): void {
  for (const pgid of runningGroups) killGroup(pgid, 'SIGKILL');
  for (const step of exitSteps) step();
}

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.once('exit', cleanUpNow);
  // The groups are out of reach of a Ctrl-C meant for this process: kill them, then die of the signal.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      cleanUpNow();
      process.kill(process.pid, signal);
    });
  }
}

/**
 * Runs `step` (synchronous) if this process exits or is interrupted before
 * the returned function is called, e.g. to put back a file a test edited.
 */
export function onEarlyExit(step: () => void): () => void {
  installExitHooks();
  exitSteps.add(step);
  return () => exitSteps.delete(step);
}

/** A long-running program in a process group of its own, with what it printed. */
export class GroupedProcess {
  private output = '';
  private readonly child: ChildProcess;
  private readonly exited: Promise<void>;
  private code: number | null | undefined;

  constructor(command: string, args: string[], cwd: string) {
    installExitHooks();
    // A new process group: programs such as Next.js fork servers of their own, and all must go at the end.
    this.child = spawn(command, args, { cwd, env: childEnv, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    runningGroups.add(this.child.pid!);
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (this.output += chunk));
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.output += chunk));
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code) => {
        this.code = code;
        resolve();
      }),
    );
  }

  /** What the program printed so far (stdout and stderr). */
  log(): string {
    return this.output;
  }

  /** Its exit code once it exited (null after a signal), undefined while it runs. */
  exitCode(): number | null | undefined {
    return this.code;
  }

  /** SIGTERM to the whole group, SIGKILL to what is left after 5 s; resolves when no member is alive. */
  async stop(): Promise<void> {
    const pgid = this.child.pid!;
    if (!runningGroups.has(pgid)) return;
    killGroup(pgid, 'SIGTERM');
    await Promise.race([this.exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
    killGroup(pgid, 'SIGKILL');
    await until(() => groupMembers(pgid).length === 0, 5000, `the processes of group ${pgid} to exit`);
    runningGroups.delete(pgid);
  }
}
