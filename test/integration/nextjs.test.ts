/**
 * The Next.js example (examples/nextjs) on a real Next.js, built and served
 * here, with real EventSource clients:
 * - `next build` + `next start`: events published through the app-router
 *   publish route reach clients of the pages-router API route and of the
 *   app-router route handler alike (one EventStream per process, although
 *   Next bundles each route with its own copy of lib/eventStream.js and of the
 *   library); streams are not compressed or buffered; bad requests get 400;
 *   clients that leave are unsubscribed on both routes.
 * - `next dev`: clients connected before lib/eventStream.js is edited (so
 *   every route re-evaluates it) keep receiving events published by the
 *   reloaded publish route, and new clients join the same instance: the
 *   singleton lives on globalThis. The edited file is restored afterwards.
 *
 * The example depends on the repository itself (`file:../..`, so on dist/):
 * dist/ is built here when missing, and the example's own dependencies are
 * installed with `npm ci` from its lock file when they are not in place.
 * Every Next.js process is started in its own process group and the group is
 * killed at the end, also when a test fails.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { onEarlyExit, runOk } from '../helpers/child-process.js';
import { eventData, NextServer, openClient, poll, runScenario } from '../helpers/next-server.js';
import { repoRoot } from '../helpers/pack.js';
import { freePort } from '../helpers/server.js';
import { openRaw, until } from '../helpers/sse-client.js';

const exampleDir = join(repoRoot, 'examples', 'nextjs');
const nextBin = join(exampleDir, 'node_modules', 'next', 'dist', 'bin', 'next');
const libFile = join(exampleDir, 'lib', 'eventStream.js');

/** Whether examples/nextjs/node_modules holds what its lock file asks for (the packages this test relies on). */
function exampleDepsInstalled(): boolean {
  const lock = JSON.parse(readFileSync(join(exampleDir, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { version?: string }>;
  };
  if (!existsSync(join(exampleDir, 'node_modules', '@fanoutio', 'eventstream', 'package.json'))) return false;
  for (const name of ['next', 'react', 'react-dom']) {
    const manifest = join(exampleDir, 'node_modules', name, 'package.json');
    if (!existsSync(manifest)) return false;
    const { version } = JSON.parse(readFileSync(manifest, 'utf8')) as { version: string };
    if (version !== lock.packages[`node_modules/${name}`]?.version) return false;
  }
  return true;
}

const servers: NextServer[] = [];
const suffix = `${process.pid}-${Date.now()}`;

before(
  async () => {
    if (!existsSync(join(repoRoot, 'dist', 'index.js'))) await runOk('npm', ['run', 'build'], repoRoot, 120_000);
    if (!exampleDepsInstalled()) await runOk('npm', ['ci', '--no-audit', '--no-fund'], exampleDir, 240_000);
    assert.ok(exampleDepsInstalled(), 'npm ci did not install what examples/nextjs/package-lock.json lists');
    await runOk(process.execPath, [nextBin, 'build'], exampleDir, 240_000);
  },
  { timeout: 420_000 },
);

after(async () => {
  await Promise.all(servers.map((server) => server.stop()));
});

test('next start: the pages route and the app route serve one EventStream', { timeout: 120_000 }, async () => {
  const server = new NextServer(nextBin, exampleDir, 'start', await freePort());
  servers.push(server);
  await server.ready(30_000);
  const channel = `prod-${suffix}`;
  await runScenario(server, channel, async (clients) => {
    const viaPages = await openClient(`${server.url}/api/events/${channel}`, clients, 15_000);
    const viaApp = await openClient(`${server.url}/api/stream/${channel}`, clients, 15_000);
    // The stats route is a third bundle of lib/eventStream.js; it sees both subscribers.
    assert.equal((await server.stats()).channels[channel], 2);

    for (let n = 1; n <= 3; n++) {
      const published = await server.publish(channel, JSON.stringify({ data: { n } }));
      assert.equal(published.status, 204, published.text);
    }
    await Promise.all([viaPages.waitFor(3), viaApp.waitFor(3)]);
    assert.deepEqual(eventData(viaPages), [{ n: 1 }, { n: 2 }, { n: 3 }]);
    assert.deepEqual(eventData(viaApp), [{ n: 1 }, { n: 2 }, { n: 3 }]);

    // A client that accepts gzip still gets an uncompressed stream whose bytes arrive as they are written.
    for (const path of ['/api/events/', '/api/stream/']) {
      const raw = await openRaw(`${server.url}${path}${channel}`, {
        accept: 'text/event-stream',
        'accept-encoding': 'gzip, deflate',
      });
      try {
        assert.equal(raw.status, 200);
        assert.equal(raw.headers['content-type'], 'text/event-stream; charset=utf-8');
        assert.equal(raw.headers['content-encoding'], undefined);
        assert.match(String(raw.headers['cache-control']), /no-transform/);
        await until(() => /^event: stream-open\ndata: \nid: [^\n]+\n\n/.test(raw.text()), 5000, `the opening bytes on ${path}`);
        assert.equal((await server.publish(channel, JSON.stringify({ data: path }))).status, 204);
        await until(
          () => raw.text().includes(`event: message\ndata: ${JSON.stringify(path)}\nid: ${channel}:`),
          5000,
          `the event on ${path}`,
        );
      } finally {
        raw.close();
      }
    }

    // Refusals: a channel name with a comma on either route, a body that is not JSON, missing data.
    for (const path of ['/api/events/', '/api/stream/']) {
      const response = await fetch(`${server.url}${path}bad%2Cname`, { headers: { accept: 'text/event-stream' } });
      assert.equal(response.status, 400, path);
      assert.match(await response.text(), /channel name/);
    }
    assert.equal((await server.publish(channel, 'not json')).status, 400);
    assert.equal((await server.publish(channel, '{}')).status, 400);
    // runScenario checks that clients that leave are unsubscribed, on both routes.
  });
});

test('next dev: the singleton outlives a reload of every route', { timeout: 150_000 }, async () => {
  const server = new NextServer(nextBin, exampleDir, 'dev', await freePort());
  servers.push(server);
  // The first request compiles the app.
  await server.ready(60_000);
  const channel = `dev-${suffix}`;
  const original = readFileSync(libFile, 'utf8');
  let restoreOnExit = (): unknown => undefined;
  try {
    await runScenario(server, channel, async (clients) => {
      const pagesBefore = await openClient(`${server.url}/api/events/${channel}`, clients, 60_000);
      const appBefore = await openClient(`${server.url}/api/stream/${channel}`, clients, 60_000);
      assert.equal((await server.publish(channel, JSON.stringify({ data: 'before' }))).status, 204);
      await Promise.all([pagesBefore.waitFor(1), appBefore.waitFor(1)]);

      // Edit the module every route imports; each route evaluates it anew on its next request and says so.
      const probe = `[eventstream-reload-probe ${suffix}]`;
      const probes = (): number => server.log().split(probe).length - 1;
      restoreOnExit = onEarlyExit(() => writeFileSync(libFile, original));
      writeFileSync(
        libFile,
        `${original}\n// Added by test/integration/nextjs.test.ts to make Next.js reload this module.\nconsole.log(${JSON.stringify(probe)});\n`,
      );
      // Wait for the recompile: the stats route runs the edited module.
      await poll(
        async () => {
          await server.stats();
          return probes();
        },
        (count) => count > 0,
        60_000,
        'the edited module to run',
      );

      // The publish route, reloaded by this very request, reaches the clients of the routes as they were before.
      const beforePublish = probes();
      assert.equal((await server.publish(channel, JSON.stringify({ data: 'after reload' }))).status, 204);
      await until(() => probes() > beforePublish, 10_000, 'the publish route to run the edited module');
      await Promise.all([pagesBefore.waitFor(2), appBefore.waitFor(2)]);

      // Clients of the reloaded stream routes join the same instance.
      const beforeConnect = probes();
      const pagesAfter = await openClient(`${server.url}/api/events/${channel}`, clients, 60_000);
      const appAfter = await openClient(`${server.url}/api/stream/${channel}`, clients, 60_000);
      await until(() => probes() >= beforeConnect + 2, 10_000, 'both stream routes to run the edited module');
      assert.equal((await server.stats()).channels[channel], 4);
      assert.equal((await server.publish(channel, JSON.stringify({ data: 'to all' }))).status, 204);
      await Promise.all([pagesBefore.waitFor(3), appBefore.waitFor(3), pagesAfter.waitFor(1), appAfter.waitFor(1)]);
      assert.deepEqual(eventData(pagesBefore), ['before', 'after reload', 'to all']);
      assert.deepEqual(eventData(appBefore), ['before', 'after reload', 'to all']);
      assert.deepEqual(eventData(pagesAfter), ['to all']);
      assert.deepEqual(eventData(appAfter), ['to all']);
    });
  } finally {
    writeFileSync(libFile, original);
    restoreOnExit();
  }
});
