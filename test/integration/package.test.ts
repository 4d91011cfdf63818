/**
 * The published package, as a user gets it: `npm pack` in a fresh copy of the
 * project (so `prepack` builds from scratch and nothing stale in the working
 * tree's dist/ can leak in), then the tarball installed into a new consumer
 * project with typescript and @types/node from the registry, then:
 * - the tarball holds dist JS + .d.ts, README, LICENSE, package.json and nothing else;
 * - `import()` and `require()` both load it on this Node, and give the same module;
 * - the main entry, and every file it imports (JS and .d.ts), names no package
 *   but its dependencies and Node's builtins, so no optional peer (ioredis, prom-client):
 *   bundlers such as Next.js resolve every import they see and fail on a
 *   missing one; the Redis store is on its own subpath, `/redis`, which loads
 *   and refuses politely without ioredis installed;
 * - a strict TypeScript consumer (module NodeNext) using the README's API compiles,
 *   one with a deliberate type error does not, and a CommonJS TypeScript file
 *   importing it compiles and runs;
 * - publint (strict) and arethetypeswrong pass on the tarball.
 *
 * Uses the npm registry (through npm's cache when it can) for the consumer's
 * dependencies.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import { after, before, test } from 'node:test';
import ts from 'typescript';
import { run, runOk } from '../helpers/child-process.js';
import { installInto, packFreshCopy, repoRoot } from '../helpers/pack.js';

const repoPackage = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
  name: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};
const PACKAGE = repoPackage.name;

/** Paths of files under `dir`, relative, with forward slashes. */
function listFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)).split(sep).join('/'));
}

let work = '';
let tarball = '';
let packedFiles: string[] = [];
let consumer = '';
/** src/ modules (paths without .ts) the build turns into dist/ files. */
let sourceModules: string[] = [];

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'eventstream-pack-'));

  const packed = await packFreshCopy(work);
  tarball = packed.tarball;
  packedFiles = packed.files;
  const project = packed.project;

  sourceModules = listFiles(join(project, 'src'))
    .filter((path) => path.endsWith('.ts') && !path.endsWith('.d.ts'))
    .map((path) => path.slice(0, -'.ts'.length))
    .sort();

  consumer = join(work, 'consumer');
  mkdirSync(consumer);
  writeFileSync(
    join(consumer, 'package.json'),
    JSON.stringify({ name: 'eventstream-consumer', version: '1.0.0', private: true, type: 'module' }, null, 2),
  );
  await installInto(consumer, [
    tarball,
    `typescript@${repoPackage.devDependencies.typescript}`,
    `@types/node@${repoPackage.devDependencies['@types/node']}`,
  ]);
});

after(() => {
  if (work !== '') rmSync(work, { recursive: true, force: true });
});

test('the tarball holds the built JS and .d.ts of every source module, README, LICENSE, package.json, and nothing else', () => {
  const expected = [
    'LICENSE',
    'README.md',
    'package.json',
    ...sourceModules.flatMap((module) => [`dist/${module}.d.ts`, `dist/${module}.js`]),
  ].sort();
  assert.ok(sourceModules.includes('index'), 'src/index.ts exists');
  assert.deepEqual(packedFiles, expected);
  const license = readFileSync(join(consumer, 'node_modules', PACKAGE, 'LICENSE'), 'utf8');
  assert.match(license, /^MIT License/);
  assert.match(license, /Fanout, Inc\. and EventStream contributors/);
});

test('import() loads the installed package', async () => {
  const script = `
    const m = await import(${JSON.stringify(PACKAGE)});
    const es = new m.EventStream();
    const handler = es('chan');
    console.log(JSON.stringify({
      EventStream: typeof m.EventStream,
      instance: es instanceof m.EventStream,
      handler: typeof handler,
      streams: es.stats().streams,
      errors: [m.InvalidEventError, m.InvalidChannelError, m.HttpRequestError, m.GripConfigError, m.GripPublishError, m.EventStreamClosedError].map((c) => typeof c),
      singleton: m.getEventStreamSingleton() === m.getEventStreamSingleton(),
      redisOnMainEntry: 'RedisEventStore' in m,
    }));
    await es.close();
  `;
  const { stdout } = await runOk(process.execPath, ['--input-type=module', '-e', script], consumer);
  assert.deepEqual(JSON.parse(stdout), {
    EventStream: 'function',
    instance: true,
    handler: 'function',
    streams: 0,
    errors: ['function', 'function', 'function', 'function', 'function', 'function'],
    singleton: true,
    redisOnMainEntry: false,
  });
});

test(`require() loads the installed package on this Node (${process.version}), the same module as import()`, async () => {
  const script = `
    const m = require(${JSON.stringify(PACKAGE)});
    const es = new m.EventStream();
    let refused = null;
    try { es.getChannelPublisher('bad,name'); } catch (error) { refused = error instanceof m.InvalidChannelError && error instanceof TypeError; }
    import(${JSON.stringify(PACKAGE)}).then(async (esm) => {
      console.log(JSON.stringify({
        EventStream: typeof m.EventStream,
        handler: typeof es('chan'),
        refused,
        sameModule: esm.EventStream === m.EventStream,
      }));
      await es.close();
    });
  `;
  const { stdout } = await runOk(process.execPath, ['-e', script], consumer);
  assert.deepEqual(JSON.parse(stdout), { EventStream: 'function', handler: 'function', refused: true, sameModule: true });
});

/** A package name from an import specifier: `@scope/name/sub` -> `@scope/name`, `name/sub` -> `name`. */
function packageOf(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

/**
 * Every package the file `entry` and the package files it imports (relative
 * specifiers, followed transitively) import: static, dynamic and type-only
 * imports, re-exports and type reference directives alike, as a bundler or
 * tsc sees them. A relative import of a file missing from the package throws.
 */
function packagesImportedFrom(entry: string): { files: string[]; packages: string[] } {
  const declarations = entry.endsWith('.d.ts');
  const seen = new Set<string>();
  const packages = new Set<string>();
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    for (const { fileName } of [...info.importedFiles, ...info.referencedFiles]) {
      if (!fileName.startsWith('.')) {
        packages.add(packageOf(fileName));
        continue;
      }
      const target = join(dirname(file), declarations ? fileName.replace(/\.js$/, '.d.ts') : fileName);
      assert.ok(existsSync(target), `${file} imports ${fileName}, which the package lacks`);
      queue.push(target);
    }
    for (const { fileName } of info.typeReferenceDirectives) packages.add(packageOf(fileName));
  }
  return { files: [...seen].map((file) => relative(installed(), file)).sort(), packages: [...packages].sort() };
}

/** Where the consumer has the package installed. */
const installed = (): string => join(consumer, 'node_modules', PACKAGE);

function exportTargets(subpath: '.' | './redis' | './prometheus'): { types: string; default: string } {
  const manifest = JSON.parse(readFileSync(join(installed(), 'package.json'), 'utf8')) as {
    exports: Record<string, { types: string; default: string }>;
  };
  const targets = manifest.exports[subpath];
  assert.ok(targets !== undefined, `package.json "exports" has ${subpath}`);
  return { types: join(installed(), targets.types), default: join(installed(), targets.default) };
}

test('the main entry and all it imports, JS and declarations, name only dependencies and Node builtins: never ioredis or prom-client', () => {
  const allowed = new Set([...Object.keys(repoPackage.dependencies), ...builtinModules, 'node']);
  for (const entry of Object.values(exportTargets('.'))) {
    const { files, packages } = packagesImportedFrom(entry);
    // The walk really walked: the JS reaches dozens of modules; the declarations, with every public type in
    // types.d.ts, about ten (entry, API classes, errors, stores, types).
    assert.ok(files.length > 5, `the walk from ${entry} reached the package's modules: ${files.join(', ')}`);
    assert.ok(!packages.includes('ioredis'), `${entry} reaches ioredis: ${files.join(', ')}`);
    assert.ok(!packages.includes('prom-client'), `${entry} reaches prom-client: ${files.join(', ')}`);
    const foreign = packages.filter((name) => !allowed.has(name.replace(/^node:/, '')));
    assert.deepEqual(foreign, [], `${entry} imports packages that are not dependencies`);
  }
  // The same walk finds ioredis from the Redis subpath's JS, where it belongs (its declarations need no ioredis).
  const redisEntry = exportTargets('./redis').default;
  assert.ok(packagesImportedFrom(redisEntry).packages.includes('ioredis'), `${redisEntry} reaches ioredis`);
  // And prom-client from the Prometheus subpath, JS and declarations (its Registry type is in registerMetrics's signature).
  for (const entry of Object.values(exportTargets('./prometheus'))) {
    assert.ok(packagesImportedFrom(entry).packages.includes('prom-client'), `${entry} reaches prom-client`);
  }
});

test(`${PACKAGE}/redis loads by import() and require() without ioredis installed, and refuses to work until it is`, async () => {
  const script = `
    import { createRequire } from 'node:module';
    const require = createRequire(import.meta.url);
    const main = await import(${JSON.stringify(PACKAGE)});
    const redis = await import(${JSON.stringify(`${PACKAGE}/redis`)});
    let ioredisInstalled = true;
    try { require.resolve('ioredis'); } catch { ioredisInstalled = false; }
    const store = new redis.RedisEventStore({ url: 'redis://127.0.0.1:1' });
    const refusal = await Promise.resolve(store.head('chan')).then(
      () => null,
      (error) => ({ storeError: error instanceof main.EventStoreError, code: error.code, message: error.message }),
    );
    await store.close();
    console.log(JSON.stringify({
      ioredisInstalled,
      RedisEventStore: typeof redis.RedisEventStore,
      sameAsRequire: require(${JSON.stringify(`${PACKAGE}/redis`)}).RedisEventStore === redis.RedisEventStore,
      shared: store.shared,
      refusal,
    }));
  `;
  const { stdout } = await runOk(process.execPath, ['--input-type=module', '-e', script], consumer);
  const result = JSON.parse(stdout) as { refusal: { message: string } | null };
  assert.match(result.refusal?.message ?? '', /needs the ioredis package: npm install ioredis/);
  assert.deepEqual(result, {
    ioredisInstalled: false,
    RedisEventStore: 'function',
    sameAsRequire: true,
    shared: true,
    refusal: { storeError: true, code: 'ERR_EVENTSTREAM_STORE', message: result.refusal?.message },
  });
});

const CONSUMER_TS = `
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import http from 'node:http';
import {
  EventStream,
  getEventStreamSingleton,
  ChannelPublisher,
  InvalidEventError,
  InvalidChannelError,
  HttpRequestError,
  GripConfigError,
  GripPublishError,
  EventStreamClosedError,
  EventStoreError,
  MemoryEventStore,
  type EventStore,
  type EventStreamHandler,
  type EventStreamOptions,
  type EventStreamStats,
  type ServerSentEvent,
  type WebEventStreamHandler,
} from '${PACKAGE}';
import { RedisEventStore, type RedisEventStoreOptions } from '${PACKAGE}/redis';

const options: EventStreamOptions = { keepAliveInterval: 0, maxBufferBytes: 1 << 20, gripPrefix: 'events-' };
const eventStream = new EventStream(options);
const shared: EventStream = getEventStreamSingleton();

const single: EventStreamHandler = eventStream('test');
const routed: EventStreamHandler = eventStream('{id}');
const several: EventStreamHandler = eventStream(['news', 'alerts']);
const computed: EventStreamHandler = eventStream(async (req) => [\`user-\${String(req.headers['x-user'])}\`]);

// Web-standard handlers (Next.js App Router, Hono, ...)
export const GET: WebEventStreamHandler = eventStream.fetchHandler('{id}');
export async function direct(request: Request): Promise<Response> {
  return eventStream.respond(request, ['test']);
}

http.createServer((req, res) => {
  if (req.url === '/direct') {
    eventStream.run(req, res, ['test']).catch((error: unknown) => console.error(error));
    return;
  }
  void single(req, res, (error?: unknown) => console.error(error));
});

const event: ServerSentEvent = { event: 'message', data: { name: 'John' }, retry: 1000 };

// History stores: the Redis one type-checks without ioredis installed (it is an optional peer).
const store: EventStore = new MemoryEventStore({ maxEvents: 500, maxAge: 60_000 });
export const resumable = new EventStream({ store, clientRetry: 1000 });
const redisOptions: RedisEventStoreOptions = { url: 'redis://127.0.0.1:6379', maxEvents: 1000 };
export const acrossProcesses = new EventStream({ store: new RedisEventStore(redisOptions), gripReliable: true });
export async function publish(): Promise<EventStreamStats> {
  await eventStream.publishEvent('test', event);
  await eventStream.publishEvent('test', { data: 'only data' });

  const publisher: ChannelPublisher = eventStream.getChannelPublisher('test');
  await publisher.publishEvent({ event: 'message', data: { name: 'Alice' } });
  publisher.createWritable().end({ data: 1 });

  const writable = eventStream.createChannelWritable('test');
  writable.write({ event: 'message', data: { baz: ['hi', 'ho', 'hello'] } });
  writable.end();
  await pipeline(Readable.from([{ data: 1 }, { data: 2 }]), eventStream.createChannelWritable('feed'));

  try {
    await eventStream.publishEvent('bad,channel', { data: 1 });
  } catch (error) {
    if (error instanceof InvalidChannelError || error instanceof InvalidEventError) {
      const code: string = error.code;
      const asTypeError: TypeError = error;
      console.log(code, asTypeError.message);
    } else if (error instanceof GripPublishError) {
      console.log(error.proxy, error.status, error.body);
    } else if (error instanceof HttpRequestError) {
      console.log(error.status);
    } else if (error instanceof GripConfigError || error instanceof EventStreamClosedError || error instanceof EventStoreError) {
      console.log(error.code);
    }
  }
  const stats = eventStream.stats();
  const streams: number = stats.streams;
  const subscribers: number | undefined = stats.channels['test'];
  console.log(streams, subscribers, routed, several, computed, shared);
  await eventStream.close();
  return stats;
}
`;

const CONSUMER_CTS = `
import { EventStream, InvalidChannelError } from '${PACKAGE}';

const eventStream = new EventStream();
let refused = false;
try {
  eventStream.getChannelPublisher('bad,name');
} catch (error) {
  refused = error instanceof InvalidChannelError;
}
console.log(JSON.stringify({ handler: typeof eventStream('chan'), refused }));
void eventStream.close();
`;

/**
 * A consumer tsconfig: strict, module NodeNext. `lib` stays at its default,
 * which includes the DOM (@fanoutio/grip's declarations, reached through the
 * GRIP option types, name the DOM's JsonWebKey).
 */
function writeTsconfig(name: string, files: string[], compilerOptions: Record<string, unknown>): void {
  writeFileSync(
    join(consumer, name),
    JSON.stringify(
      {
        compilerOptions: {
          strict: true,
          noEmit: true,
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          target: 'ES2022',
          types: ['node'],
          ...compilerOptions,
        },
        files,
      },
      null,
      2,
    ),
  );
}

const tsc = (): string => join(consumer, 'node_modules', 'typescript', 'bin', 'tsc');

test('a strict TypeScript consumer (module NodeNext) using the README API compiles', async () => {
  writeFileSync(join(consumer, 'index.ts'), CONSUMER_TS);
  writeTsconfig('tsconfig.json', ['index.ts'], { skipLibCheck: true });
  await runOk(process.execPath, [tsc(), '-p', 'tsconfig.json'], consumer);
});

test("the package's declarations type-check too (skipLibCheck: false, tsc's default): all they import resolves to types", async () => {
  writeFileSync(join(consumer, 'index.ts'), CONSUMER_TS);
  writeTsconfig('tsconfig.libcheck.json', ['index.ts'], { skipLibCheck: false });
  await runOk(process.execPath, [tsc(), '-p', 'tsconfig.libcheck.json'], consumer);
});

test('a type error against the package types does not compile', async () => {
  writeFileSync(
    join(consumer, 'bad.ts'),
    `import { EventStream } from '${PACKAGE}';\nconst eventStream = new EventStream();\nawait eventStream.publishEvent(42, { data: 1 });\n`,
  );
  writeTsconfig('tsconfig.bad.json', ['bad.ts'], { skipLibCheck: true });
  const result = await run(process.execPath, [tsc(), '-p', 'tsconfig.bad.json'], consumer);
  assert.notEqual(result.code, 0, 'publishEvent(42, ...) must not type-check');
  const errors = result.stdout.split('\n').filter((line) => line.includes('error TS'));
  assert.equal(errors.length, 1, result.stdout);
  assert.match(
    errors[0]!,
    /^bad\.ts\(3,32\): error TS2345: Argument of type 'number' is not assignable to parameter of type 'string'/,
  );
});

test('a CommonJS TypeScript file (module NodeNext) imports the package, compiles and runs', async () => {
  // TypeScript >= 5.8 accepts require() of an ES module under module NodeNext, as Node >= 20.19 does.
  writeFileSync(join(consumer, 'index.cts'), CONSUMER_CTS);
  writeTsconfig('tsconfig.cjs.json', ['index.cts'], { skipLibCheck: true, noEmit: false, outDir: 'out' });
  await runOk(process.execPath, [tsc(), '-p', 'tsconfig.cjs.json'], consumer);
  const compiled = readFileSync(join(consumer, 'out', 'index.cjs'), 'utf8');
  assert.match(compiled, new RegExp(`require\\("${PACKAGE.replace('/', '\\/')}"\\)`));
  const { stdout } = await runOk(process.execPath, ['out/index.cjs'], consumer);
  assert.deepEqual(JSON.parse(stdout), { handler: 'function', refused: true });
});

test('publint (strict) and arethetypeswrong pass on the tarball', async () => {
  const publint = await runOk(
    process.execPath,
    [join(repoRoot, 'node_modules', 'publint', 'src', 'cli.js'), 'run', tarball, '--strict'],
    consumer,
  );
  assert.match(publint.stdout, /All good!/);
  // See package.json "lint:package": cjs-resolves-to-esm is ignored because require(esm) works on Node >= 20.19.
  await runOk(
    process.execPath,
    [
      join(repoRoot, 'node_modules', '@arethetypeswrong', 'cli', 'dist', 'index.js'),
      tarball,
      '--ignore-rules',
      'cjs-resolves-to-esm',
      '--format',
      'ascii',
    ],
    consumer,
  );
});
