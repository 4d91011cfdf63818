// Runs every benchmark in sequence, prints its markdown, and writes all of
// it to bench/results/latest.md. A benchmark is a module exporting
// `async function run(options)` that returns a markdown string.
// BENCH_SCENARIOS (comma-separated names below, default all) runs only some,
// e.g. BENCH_SCENARIOS=idioms.
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';

/** @type {Record<string, string>} */
const benchmarks = {
  fanout: './fanout.js',
  grip: './grip.js',
  replay: './replay.js',
  idioms: './idioms.js',
};

const selected = (process.env.BENCH_SCENARIOS || Object.keys(benchmarks).join(','))
  .split(',')
  .map((name) => name.trim())
  .filter(Boolean);
for (const name of selected) {
  if (!(name in benchmarks))
    throw new Error(`BENCH_SCENARIOS: unknown benchmark ${name}; expected ${Object.keys(benchmarks).join(', ')}`);
}

const sections = [];
for (const name of selected) {
  const { run } = await import(benchmarks[name]);
  const markdown = await run({});
  console.log(`${markdown}\n`);
  sections.push(markdown);
}

function sourceVersion() {
  try {
    const cwd = new URL('..', import.meta.url);
    return execFileSync('git', ['describe', '--always', '--dirty'], {
      cwd,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return 'unknown';
  }
}

const cpus = os.cpus();
const header =
  `# Benchmark results\n\n` +
  `${new Date().toISOString()} · source ${sourceVersion()} · Node ${process.version} · ${os.platform()} ${os.arch()} · ` +
  `${cpus.length} × ${cpus[0]?.model ?? 'unknown CPU'}\n`;
const resultsDir = new URL('./results/', import.meta.url);
await mkdir(resultsDir, { recursive: true });
await writeFile(new URL('latest.md', resultsDir), `${header}\n${sections.join('\n\n')}\n`);
