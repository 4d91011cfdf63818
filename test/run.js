#!/usr/bin/env node
// Runs the test files below the folders named on the command line (test/unit, test/integration) with
// node --test. Node 20's --test takes no globs (they came in Node 21), and a shell's `**` does not recurse
// everywhere, so the files are listed here. Arguments starting with `--` are passed on to node --test.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';

function testFiles(dir) {
  const files = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) files.push(...testFiles(full));
    else if (entry.name.endsWith('.test.ts')) files.push(full);
  }
  return files;
}

const args = process.argv.slice(2);
const options = args.filter((arg) => arg.startsWith('--'));
const folders = args.filter((arg) => !arg.startsWith('--'));
if (folders.length === 0) {
  console.error('usage: node test/run.js [--node-test-option ...] test/unit [test/integration ...]');
  process.exit(2);
}
const files = folders.flatMap(testFiles).sort();
if (files.length === 0) {
  console.error(`no *.test.ts files below ${folders.join(', ')}`);
  process.exit(1);
}
const child = spawn(process.execPath, ['--test', '--test-concurrency=1', '--import', 'tsx', ...options, ...files], {
  stdio: 'inherit',
});
child.on('exit', (code, signal) => {
  process.exitCode = code ?? (signal === null ? 1 : 128);
});
