/**
 * What tests against real external programs share: finding the program, and
 * the rule when it is missing — skip loudly on a laptop, fail in CI (CI=true),
 * so a missing binary can never hide a feature that went untested.
 */
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';

export function findOnPath(binary: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, binary);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here.
    }
  }
  return null;
}

/** Returns whether the test can go on; `missing` says what is absent and how to install it. */
export function requireProgram(t: TestContext, available: boolean, missing: string): boolean {
  if (available) return true;
  if (process.env.CI === 'true') throw new Error(`${missing}; failing because CI=true`);
  console.warn(`\n${'!'.repeat(78)}\n!!! SKIPPED: ${missing}\n${'!'.repeat(78)}\n`);
  t.skip(missing);
  return false;
}

/**
 * A stack of cleanups run after the test, last first, each even when an
 * earlier one failed; the first failure is reported.
 */
export function cleanups(t: TestContext): (fn: () => unknown) => void {
  const stack: Array<() => unknown> = [];
  t.after(async () => {
    const failures: unknown[] = [];
    for (const fn of stack.reverse()) {
      try {
        await fn();
      } catch (error) {
        failures.push(error);
      }
    }
    if (failures.length > 0) throw failures[0];
  });
  return (fn) => {
    stack.push(fn);
  };
}
