// The error catalogue: every code the source can raise is documented in docs/errors.md, every
// documented code exists, and every error class is an EventStreamError with its code.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import * as api from '../../src/index.js';

const root = resolve(import.meta.dirname, '../..');
const catalogue = readFileSync(join(root, 'docs/errors.md'), 'utf8');
const CODE = /'((?:ERR_)?EVENTSTREAM_[A-Z_]+)'/g;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

const codesInSource = new Set(
  sourceFiles(join(root, 'src')).flatMap((file) => [...readFileSync(file, 'utf8').matchAll(CODE)].map((m) => m[1]!)),
);
const documented = new Set([...catalogue.matchAll(/^\| `((?:ERR_)?EVENTSTREAM_[A-Z_]+)` \|/gm)].map((m) => m[1]!));

test('every error and warning code in src/ is in docs/errors.md', () => {
  assert.ok(codesInSource.size >= 14, `found only ${codesInSource.size} codes in src/`);
  const missing = [...codesInSource].filter((code) => !documented.has(code));
  assert.deepEqual(missing, [], `add these to docs/errors.md: ${missing.join(', ')}`);
});

test('every code in docs/errors.md is one the source raises', () => {
  const stale = [...documented].filter((code) => !codesInSource.has(code));
  assert.deepEqual(stale, [], `no longer in src/: ${stale.join(', ')}`);
});

test('no error of ours is thrown without a code: src/ creates no bare Error, TypeError or RangeError', () => {
  const bare = sourceFiles(join(root, 'src')).flatMap((file) =>
    readFileSync(file, 'utf8')
      .split('\n')
      .map((line, i) => ({ line, where: `${file.slice(root.length + 1)}:${i + 1}` }))
      .filter(({ line }) => /\bnew (Error|TypeError|RangeError)\(/.test(line))
      .map(({ where }) => where),
  );
  assert.deepEqual(bare, []);
});

test('every exported error class is an EventStreamError with its documented code', () => {
  const samples: Array<[api.EventStreamError, string]> = [
    [new api.InvalidEventError('x'), 'ERR_EVENTSTREAM_INVALID_EVENT'],
    [new api.InvalidChannelError('x'), 'ERR_EVENTSTREAM_INVALID_CHANNEL'],
    [new api.InvalidOptionError('x'), 'ERR_EVENTSTREAM_INVALID_OPTION'],
    [new api.InvalidArgumentError('x'), 'ERR_EVENTSTREAM_INVALID_ARGUMENT'],
    [new api.HttpRequestError(400, 'x'), 'ERR_EVENTSTREAM_BAD_REQUEST'],
    [new api.HttpRequestError(406, 'x'), 'ERR_EVENTSTREAM_NOT_ACCEPTABLE'],
    [new api.HttpRequestError(401, 'x'), 'ERR_EVENTSTREAM_REQUEST_REFUSED'],
    [new api.HttpRequestError(503, 'x'), 'ERR_EVENTSTREAM_REQUEST_REFUSED'],
    [new api.EventStreamClosedError(), 'ERR_EVENTSTREAM_CLOSED'],
    [new api.EventStreamAbortedError(), 'ERR_EVENTSTREAM_ABORTED'],
    [new api.GripConfigError('x'), 'ERR_EVENTSTREAM_GRIP_CONFIG'],
    [new api.GripPublishError('proxy', 500, 'x'), 'ERR_EVENTSTREAM_GRIP_PUBLISH'],
    [new api.EventStoreError('x'), 'ERR_EVENTSTREAM_STORE'],
  ];
  const exportedClasses = Object.entries(api).filter(
    ([name, value]) => typeof value === 'function' && name.endsWith('Error') && name !== 'EventStreamError',
  );
  assert.equal(samples.length - 3, exportedClasses.length, 'a sample per exported error class (HttpRequestError has four codes)');
  for (const [error, code] of samples) {
    assert.ok(error instanceof api.EventStreamError, `${error.name} is an EventStreamError`);
    assert.ok(error instanceof Error);
    assert.equal(error.code, code);
    assert.ok(documented.has(code), code);
    assert.match(catalogue, new RegExp(`\`${error.name}\``), `${error.name} is named in the catalogue`);
  }
  for (const error of samples.slice(0, 4).map(([e]) => e)) assert.ok(error instanceof TypeError, `${error.name} is a TypeError`);
  assert.ok(!(new Error('plain') instanceof api.EventStreamError));
  assert.ok(!(new TypeError('plain') instanceof api.EventStreamError));
  // instanceof on a subclass still means that subclass only.
  assert.ok(!(new api.EventStoreError('x') instanceof api.EventStreamClosedError));
  assert.ok(!(new api.InvalidEventError('x') instanceof api.InvalidOptionError));
});
