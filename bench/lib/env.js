// Benchmark settings from the environment, with defaults.

/**
 * An integer setting `name` (>= min), or `fallback` when unset.
 * @param {string} name
 * @param {number} fallback
 */
export function envInt(name, fallback, min = 1) {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < min) throw new Error(`${name} must be an integer >= ${min}, got ${text}`);
  return value;
}
