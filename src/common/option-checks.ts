import { InvalidOptionError } from '../errors.js';

/**
 * The option names of an options interface, kept in step with it by the
 * compiler: `{ a: true, b: true } satisfies OptionKeys<Options>` fails to
 * compile when an option is added to the interface but not here.
 */
export type OptionKeys<T> = Record<keyof T & string, true>;

/**
 * An integer option: `fallback` when absent, else a safe integer of at
 * least `min`. `label` names it as the user wrote it (`options.maxBufferBytes`,
 * `MemoryEventStore: maxEvents`).
 */
export function integerOption(value: unknown, label: string, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new InvalidOptionError(`${label} must be an integer >= ${min}, got ${String(value)}`);
  }
  return value;
}

/**
 * Refuses an option name nobody reads. A misspelt option (`keepalive` for
 * `keepAliveInterval`) is otherwise silently ignored, and the default it was
 * meant to change stays in force unnoticed.
 */
export function checkOptionKeys(given: object, known: Readonly<Record<string, true>>, owner: string): void {
  const problem = unknownOptionProblem(given, known, owner);
  if (problem !== null) throw new InvalidOptionError(problem);
}

/** What checkOptionKeys would throw, as a message, for callers that raise their own error class. */
export function unknownOptionProblem(given: object, known: Readonly<Record<string, true>>, owner: string): string | null {
  for (const key of Object.keys(given)) {
    if (Object.hasOwn(known, key)) continue;
    const names = Object.keys(known);
    const closest = closestName(key, names);
    const hint = closest === null ? `known options: ${names.join(', ')}` : `did you mean "${closest}"?`;
    return `${owner}: unknown option "${key}"; ${hint}`;
  }
  return null;
}

/**
 * The known name a typo most likely meant, or null when none is close.
 * Case is ignored, and a name that contains what was typed (`retry` in
 * `clientRetry`, `keepalive` in `keepAliveInterval`) counts as close.
 */
export function closestName(typed: string, names: readonly string[]): string | null {
  const lower = typed.toLowerCase();
  let best: string | null = null;
  let bestScore = Infinity;
  for (const name of names) {
    const candidate = name.toLowerCase();
    // Matching a part of the name costs one more than matching it whole, so a true typo of the whole name wins.
    // Too short a name is a part of too many.
    const part = lower.length >= 4 ? substringDistance(lower, candidate) + 1 : Infinity;
    const score = Math.min(editDistance(lower, candidate), part);
    if (score < bestScore) {
      best = name;
      bestScore = score;
    }
  }
  return bestScore <= Math.max(2, Math.floor(typed.length / 3)) ? best : null;
}

/** Levenshtein distance. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}

/** Fewest edits that turn `a` into some substring of `b` (Sellers' approximate matching). */
function substringDistance(a: string, b: string): number {
  let previous = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return Math.min(...previous);
}
