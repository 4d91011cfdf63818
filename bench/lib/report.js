// Markdown and statistics helpers shared by the benchmark reports.

/**
 * Median of the finite values, NaN when there are none.
 * @param {readonly number[]} values
 */
export function median(values) {
  const finite = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (finite.length === 0) return NaN;
  const mid = finite.length >> 1;
  return finite.length % 2 ? finite[mid] : (finite[mid - 1] + finite[mid]) / 2;
}

/**
 * The q-quantile (0..1) of `values` by nearest rank, NaN when empty.
 * @param {ArrayLike<number> & Iterable<number>} values
 * @param {number} q
 */
export function percentile(values, q) {
  if (values.length === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** @type {(v: number, digits?: number) => string} */
export const fmt = (v, digits = 2) => (Number.isFinite(v) ? v.toFixed(digits) : 'n/a');
/** @type {(v: number) => string} */
export const fmtInt = (v) => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : 'n/a');
/** @type {(v: number, base: number) => number} */
export const ratio = (v, base) => (Number.isFinite(v) && Number.isFinite(base) && base !== 0 ? v / base : NaN);
/** @type {(r: number) => string} */
export const fmtRatio = (r) => (Number.isFinite(r) ? `${r.toFixed(2)}x` : 'n/a');

/**
 * A markdown table; the `left` columns are text (left-aligned), the rest numbers.
 * @param {readonly string[]} header
 * @param {readonly (readonly string[])[]} rows
 * @param {readonly number[]} [left] indexes of the text columns
 */
export function table(header, rows, left = [0]) {
  const lines = [`| ${header.join(' | ')} |`, `|${header.map((_, i) => (left.includes(i) ? ' --- ' : ' ---: ')).join('|')}|`];
  for (const row of rows) lines.push(`| ${row.join(' | ')} |`);
  return lines.join('\n');
}

/**
 * The warning a report carries when a run changed a setting its bars are
 * defined at (`what`: 'these verdicts are' or 'the verdict is'), or null.
 * @param {Record<string, unknown>} barSettings
 * @param {Record<string, unknown>} cfg
 * @returns {string | null}
 */
export function changedSettingsNote(barSettings, cfg, what = 'these verdicts are') {
  const differs = Object.keys(barSettings).filter((key) => cfg[key] !== barSettings[key]);
  if (differs.length === 0) return null;
  const defined = Object.entries(barSettings)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
  const changed = differs.map((k) => `${k}=${cfg[k]}`).join(', ');
  return `**The ${what === 'the verdict is' ? 'bar is' : 'bars are'} defined at ${defined}; this run changed ${changed}, so ${what} indicative only.**`;
}

/**
 * The first line of what was thrown, for a table cell or a note.
 * @param {unknown} error
 */
export function firstLine(error) {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0];
}

/**
 * Appends `paragraph` to `out` after a blank line; null appends nothing.
 * @param {string[]} out
 * @param {string | null} paragraph
 */
export function pushParagraph(out, paragraph) {
  if (paragraph === null) return;
  out.push('');
  out.push(paragraph);
}

/**
 * Opens the collapsed block that holds the report's details; closeDetails ends it.
 * @param {string[]} out
 * @param {string} summary
 */
export function openDetails(out, summary) {
  out.push('');
  out.push(`<details><summary>${summary}</summary>`);
  out.push('');
}

/**
 * Appends `notes` (paragraphs) to `out` and closes the report's <details> block.
 * @param {string[]} out
 * @param {readonly string[]} notes
 */
export function closeDetails(out, notes) {
  for (const note of notes) pushParagraph(out, note);
  out.push('');
  out.push('</details>');
}
