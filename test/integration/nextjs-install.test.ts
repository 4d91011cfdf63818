/**
 * The package as a Next.js user installs it: the packed tarball (see
 * helpers/pack.ts) goes into a fresh Next.js 16 app written in a temp dir,
 * with next, react and react-dom at the versions examples/nextjs locks, no
 * ioredis (an optional peer, so npm does not install it) and no next.config
 * at all. Then `next build` with Turbopack (the default) and with webpack
 * (`--webpack`) must succeed, and `next start` (and `next dev`) must serve
 * streams that a real EventSource reads an event from, on an App Router route
 * handler and on a pages-router API route alike.
 *
 * Bundlers resolve every import they can see, dynamic ones too: with the Redis
 * store behind the main entry, Turbopack failed with "Module not found: Can't
 * resolve 'ioredis'" (and `next dev` answered 500). test/integration/nextjs.test.ts cannot see that: examples/nextjs
 * links the repository, whose node_modules holds ioredis as a dev dependency.
 *
 * Uses the npm registry (through npm's cache when it can). Every Next.js
 * server runs in its own process group, killed at the end, also on failure.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { run, runOk } from '../helpers/child-process.js';
import { eventData, NextServer, openClient, runScenario } from '../helpers/next-server.js';
import { installInto, packFreshCopy, repoRoot } from '../helpers/pack.js';
import { freePort } from '../helpers/server.js';

/** The app's files, as a user writes them from the README: one EventStream on globalThis, shared by every route. */
const APP_FILES: Record<string, string> = {
  'package.json': JSON.stringify({ name: 'fresh-next-app', version: '0.0.0', private: true }, null, 2),
  'lib/eventStream.js': `import { getEventStreamSingleton } from '@fanoutio/eventstream';
export const eventStream = getEventStreamSingleton();
`,
  'app/api/stream/[id]/route.js': `import { eventStream } from '../../../../lib/eventStream';
export const dynamic = 'force-dynamic';
export const GET = eventStream.fetchHandler('{id}');
`,
  'pages/api/events/[id].js': `import { eventStream } from '../../../lib/eventStream';
export default eventStream('{id}');
export const config = { api: { responseLimit: false } };
`,
  'app/api/publish/[id]/route.js': `import { eventStream } from '../../../../lib/eventStream';
export async function POST(request, { params }) {
  const { id } = await params;
  const body = await request.json();
  await eventStream.publishEvent(id, { event: 'message', data: body.data });
  return new Response(null, { status: 204 });
}
`,
  'app/api/stats/route.js': `import { eventStream } from '../../../lib/eventStream';
export const dynamic = 'force-dynamic';
export function GET() {
  return Response.json(eventStream.stats());
}
`,
};

/** next, react and react-dom as examples/nextjs locks them, so both Next.js tests share npm's cache. */
function lockedVersions(): string[] {
  const lock = JSON.parse(readFileSync(join(repoRoot, 'examples', 'nextjs', 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { version?: string }>;
  };
  return ['next', 'react', 'react-dom'].map((name) => {
    const version = lock.packages[`node_modules/${name}`]?.version;
    assert.ok(version !== undefined, `examples/nextjs/package-lock.json locks ${name}`);
    return `${name}@${version}`;
  });
}

let work = '';
let appDir = '';
let nextBin = '';
const servers: NextServer[] = [];

before(
  async () => {
    work = mkdtempSync(join(tmpdir(), 'eventstream-next-install-'));
    const { tarball } = await packFreshCopy(work);
    appDir = join(work, 'app');
    for (const [file, text] of Object.entries(APP_FILES)) {
      mkdirSync(dirname(join(appDir, file)), { recursive: true });
      writeFileSync(join(appDir, file), text);
    }
    await installInto(appDir, [tarball, ...lockedVersions()], { exact: true, timeoutMs: 300_000 });
    nextBin = join(appDir, 'node_modules', 'next', 'dist', 'bin', 'next');

    // What the test is about: nothing from the app's folder up can give the bundler an ioredis, and no config helps it.
    const resolved = await run(process.execPath, ['-e', "require.resolve('ioredis')"], appDir);
    assert.notEqual(resolved.code, 0, 'ioredis must not be resolvable from the app');
    assert.deepEqual(
      readdirSync(appDir).filter((name) => name.startsWith('next.config')),
      [],
      'the app has no next.config',
    );
    assert.ok(existsSync(join(appDir, 'node_modules', '@fanoutio', 'eventstream', 'dist', 'index.js')));
  },
  { timeout: 420_000 },
);

after(async () => {
  await Promise.all(servers.map((server) => server.stop()));
  if (work !== '') rmSync(work, { recursive: true, force: true });
});

/**
 * `next start` on the built app, or `next dev`: an event published through
 * the app's route reaches an EventSource on each router. Under `next dev` the
 * first request to each route compiles it.
 */
async function serveAStream(command: 'start' | 'dev', label: string): Promise<void> {
  const server = new NextServer(nextBin, appDir, command, await freePort());
  servers.push(server);
  const compileMs = command === 'dev' ? 60_000 : 15_000;
  const channel = `${label}-${process.pid}`;
  await runScenario(server, channel, async (clients) => {
    await server.ready(compileMs * 2);
    const viaApp = await openClient(`${server.url}/api/stream/${channel}`, clients, compileMs);
    const viaPages = await openClient(`${server.url}/api/events/${channel}`, clients, compileMs);
    assert.equal((await server.stats()).channels[channel], 2);

    const published = await server.publish(channel, JSON.stringify({ data: { built: label } }));
    assert.equal(published.status, 204, published.text);
    await Promise.all([viaApp.waitFor(1), viaPages.waitFor(1)]);
    assert.deepEqual(eventData(viaApp), [{ built: label }]);
    assert.deepEqual(eventData(viaPages), [{ built: label }]);
  });
}

/** Builds the app; the build must not so much as mention ioredis (webpack turns what it cannot resolve into warnings). */
async function build(args: string[], bundler: RegExp): Promise<void> {
  const { stdout, stderr } = await runOk(process.execPath, [nextBin, 'build', ...args], appDir, 300_000);
  assert.match(stdout, bundler);
  assert.doesNotMatch(`${stdout}\n${stderr}`, /ioredis|Module not found|Can't resolve/);
}

test('next build with Turbopack (the default) and no config, then next start serves a stream', { timeout: 420_000 }, async () => {
  await build([], /Next\.js 16\.\d+\.\d+ \(Turbopack\)/);
  await serveAStream('start', 'turbopack');
});

test('next build --webpack and no config, then next start serves a stream', { timeout: 420_000 }, async () => {
  await build(['--webpack'], /Next\.js 16\.\d+\.\d+ \(webpack\)/);
  await serveAStream('start', 'webpack');
});

test('next dev (Turbopack) and no config serves a stream', { timeout: 300_000 }, async () => {
  await serveAStream('dev', 'dev');
});
