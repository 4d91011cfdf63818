// The architecture as a rule the build enforces (docs/architecture.md): imports in src/ only point
// down the layers, transport adapters never import one another, and nothing outside test/ imports it.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';

const root = resolve(import.meta.dirname, '../..');
const src = join(root, 'src');

/** Bottom first: a module may import its own layer and those below it. */
const LAYERS: ReadonlyArray<readonly [string, RegExp]> = [
  ['shared', /^(types|errors)\.ts$|^common\//],
  ['sse', /^sse\//],
  ['stores', /^stores\//],
  ['delivery', /^delivery\//],
  ['admission', /^admission\//],
  ['core', /^core\//],
  ['adapters', /^adapters\//],
  ['api', /^api\//],
  ['entries', /^(index|redis|prometheus)\.ts$/],
];

function files(dir: string, ext: RegExp): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'node_modules' || entry.name === 'results' ? [] : files(path, ext);
    return ext.test(entry.name) ? [path] : [];
  });
}

function layerOf(path: string): number {
  const index = LAYERS.findIndex(([, pattern]) => pattern.test(path));
  assert.notEqual(index, -1, `src/${path} is in no layer: put it in one of the layer folders`);
  return index;
}

/** Relative imports of a module, as paths under src/ (type-only imports included: they are dependencies too). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [
    ...text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s*'(\.{1,2}\/[^']+)'/g),
    ...text.matchAll(/import\(\s*'(\.{1,2}\/[^']+)'\s*\)/g),
  ].map((m) => relative(src, resolve(dirname(file), m[1]!.replace(/\.js$/, '.ts'))));
}

const modules = files(src, /\.ts$/).map((file) => ({ path: relative(src, file), imports: importsOf(file) }));

test('every module of src/ is in a layer, and the layers are all used', () => {
  const used = new Set(modules.map(({ path }) => layerOf(path)));
  assert.equal(used.size, LAYERS.length);
});

test('imports in src/ only point down the layers', () => {
  const upward: string[] = [];
  for (const { path, imports } of modules) {
    for (const target of imports) {
      if (layerOf(target) > layerOf(path))
        upward.push(`src/${path} (${LAYERS[layerOf(path)]![0]}) imports src/${target} (${LAYERS[layerOf(target)]![0]})`);
    }
  }
  assert.deepEqual(upward, []);
});

test('the core knows no transport: it imports nothing of node:http, node:http2 or node:net', () => {
  for (const { path } of modules.filter((m) => /^(core|delivery|admission|stores|sse)\//.test(m.path))) {
    const text = readFileSync(join(src, path), 'utf8');
    assert.doesNotMatch(text, /from 'node:(http|http2|net)'/, `src/${path}`);
  }
});

test('transport adapters are independent of one another', () => {
  const crossing: string[] = [];
  for (const { path, imports } of modules.filter((m) => m.path.startsWith('adapters/'))) {
    const own = path.split('/')[1];
    for (const target of imports) {
      if (target.startsWith('adapters/') && target.split('/')[1] !== own) crossing.push(`src/${path} imports src/${target}`);
    }
  }
  assert.deepEqual(crossing, []);
});

test('the layer test sees real imports (an upward one would be caught)', () => {
  const pipeline = modules.find(({ path }) => path === 'core/request-pipeline.ts');
  assert.ok(pipeline?.imports.includes('admission/accept.ts'));
  assert.ok(layerOf('adapters/node/node-handler.ts') > layerOf('core/request-pipeline.ts'));
});

test('src/ and bench/ never import test/', () => {
  const offenders = [...files(src, /\.ts$/), ...files(join(root, 'bench'), /\.(js|ts)$/)].filter((file) =>
    /(from\s*|import\(\s*|tsImport\(\s*)['"][^'"]*\/test\//.test(readFileSync(file, 'utf8')),
  );
  assert.deepEqual(
    offenders.map((file) => relative(root, file)),
    [],
  );
});
