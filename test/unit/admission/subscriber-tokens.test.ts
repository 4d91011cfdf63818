// Subscriber tokens: what createSubscriberToken signs, where subscriberTokens looks for a token in a
// Node or web request, which tokens it refuses (401) and which channels (403), and how prefixes match.
import assert from 'node:assert/strict';
import http, { type IncomingMessage } from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { EventSource } from 'eventsource';
import express, { type ErrorRequestHandler } from 'express';
import fc from 'fast-check';
import { decodeJwt, decodeProtectedHeader, generateKeyPair, SignJWT, UnsecuredJWT } from 'jose';
import { bearerToken, cookieValue, queryValue } from '../../../src/admission/request-credentials.js';
import { allows } from '../../../src/admission/subscriber-tokens.js';
import {
  type CreateSubscriberTokenOptions,
  createSubscriberToken,
  HttpRequestError,
  InvalidArgumentError,
  InvalidOptionError,
  type SubscriberTokensOptions,
  subscriberTokens,
} from '../../../src/index.js';
import type { AuthorizeFunction } from '../../../src/types.js';
import { listen } from '../../helpers/server.js';

const SECRET = 'a test secret that is long enough for HS256!';
const key = new TextEncoder().encode(SECRET);
const now = () => Math.floor(Date.now() / 1000);

function webRequest(headers: Record<string, string> = {}, path = '/events'): Request {
  return new Request(`http://127.0.0.1${path}`, { headers });
}

function bearer(token: string): Request {
  return webRequest({ authorization: `Bearer ${token}` });
}

/** The refusal `promise` rejects with: an HttpRequestError of `status`, whose message matches `message`. */
async function refused(promise: unknown, status: number, message: RegExp): Promise<HttpRequestError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof HttpRequestError, `expected an HttpRequestError, got ${String(error)}`);
    assert.equal(error.status, status, error.message);
    assert.match(error.message, message);
    return error;
  }
  assert.fail(`expected a ${status} refusal, but it was allowed`);
}

function token(channels: readonly string[], extra: Partial<CreateSubscriberTokenOptions> = {}): Promise<string> {
  return createSubscriberToken({ secret: SECRET, channels, expiresIn: 600, ...extra });
}

/** A token minted by jose directly, for what createSubscriberToken would never make. */
function minted(
  payload: Record<string, unknown>,
  alg = 'HS256',
  signingKey: Parameters<SignJWT['sign']>[0] = key,
): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg }).sign(signingKey);
}

// ---- createSubscriberToken ----

test('createSubscriberToken: an HS256 JWT with channels, iat, exp = iat + expiresIn, and sub/iss/aud when given', async () => {
  const before = now();
  const jwt = await token(['user-42', 'room-*'], { subject: 'user-42', issuer: 'https://app.example', audience: 'events' });
  assert.deepEqual(decodeProtectedHeader(jwt), { alg: 'HS256', typ: 'JWT' });
  const claims = decodeJwt(jwt);
  assert.deepEqual(claims.channels, ['user-42', 'room-*']);
  assert.ok(claims.iat! >= before && claims.iat! <= now());
  assert.equal(claims.exp, claims.iat! + 600);
  assert.equal(claims.sub, 'user-42');
  assert.equal(claims.iss, 'https://app.example');
  assert.equal(claims.aud, 'events');

  const bare = decodeJwt(await token(['a']));
  assert.deepEqual(Object.keys(bare).sort(), ['channels', 'exp', 'iat']);
});

test('createSubscriberToken: expiresIn as a jose time span, and several audiences', async () => {
  const claims = decodeJwt(await token(['a'], { expiresIn: '15m', audience: ['web', 'mobile'] }));
  assert.equal(claims.exp! - claims.iat!, 900);
  assert.deepEqual(claims.aud, ['web', 'mobile']);
  const twoHours = decodeJwt(await token(['a'], { expiresIn: '2 hours' }));
  assert.equal(twoHours.exp! - twoHours.iat!, 7200);
});

test('createSubscriberToken: a Uint8Array secret works and is copied, so reusing the buffer changes nothing', async () => {
  const bytes = new Uint8Array(32).fill(7);
  const authorize = subscriberTokens({ secret: bytes });
  const jwt = await createSubscriberToken({ secret: bytes, channels: ['a'], expiresIn: 60 });
  bytes.fill(0);
  assert.ok(typeof (await authorize(bearer(jwt), ['a'])) === 'object');
});

test('createSubscriberToken: refuses a secret under 32 bytes (counted in UTF-8 bytes), or not a string or bytes', async () => {
  for (const secret of ['x'.repeat(31), new Uint8Array(31), 'é'.repeat(15), '']) {
    await assert.rejects(createSubscriberToken({ secret, channels: ['a'], expiresIn: 60 }), (error: unknown) => {
      assert.ok(error instanceof InvalidArgumentError);
      assert.match(error.message, /at least 32 bytes/);
      return true;
    });
  }
  // 16 two-byte characters are 32 bytes: enough.
  await createSubscriberToken({ secret: 'é'.repeat(16), channels: ['a'], expiresIn: 60 });
  for (const secret of [undefined, 42, null, ['x'.repeat(40)], new Uint16Array(32)]) {
    await assert.rejects(
      createSubscriberToken({ secret, channels: ['a'], expiresIn: 60 } as unknown as CreateSubscriberTokenOptions),
      InvalidArgumentError,
    );
  }
});

test('createSubscriberToken: channels must be a non-empty array of names or prefixes ending in "*"', async () => {
  for (const channels of [[], 'user-42', undefined, [42], ['ok', null], [''], ['a*b'], ['a b'], ['**'], ['room,1']]) {
    await assert.rejects(
      createSubscriberToken({ secret: SECRET, channels, expiresIn: 60 } as unknown as CreateSubscriberTokenOptions),
      (error: unknown) =>
        error instanceof InvalidArgumentError && error instanceof TypeError && error.code === 'ERR_EVENTSTREAM_INVALID_ARGUMENT',
      JSON.stringify(channels),
    );
  }
  assert.deepEqual(decodeJwt(await token(['*', 'user-*', 'a.b:c@d/e~f+g=h!'])).channels, ['*', 'user-*', 'a.b:c@d/e~f+g=h!']);
});

test('createSubscriberToken: expiresIn must be a positive whole number of seconds or a future time span', async () => {
  for (const expiresIn of [0, -5, 1.5, Number.NaN, Infinity, 'soon', '', '1h ago', '-10m', null, undefined, {}]) {
    await assert.rejects(
      createSubscriberToken({ secret: SECRET, channels: ['a'], expiresIn } as unknown as CreateSubscriberTokenOptions),
      InvalidOptionError,
      String(expiresIn),
    );
  }
});

test('createSubscriberToken: unknown option keys and bad option types are refused', async () => {
  await assert.rejects(
    createSubscriberToken({
      secret: SECRET,
      channels: ['a'],
      expiresIn: 60,
      expiresin: 5,
    } as unknown as CreateSubscriberTokenOptions),
    (error: unknown) => {
      assert.ok(error instanceof InvalidOptionError);
      assert.match(error.message, /unknown option "expiresin"; did you mean "expiresIn"\?/);
      return true;
    },
  );
  for (const extra of [{ subject: 42 }, { subject: '' }, { issuer: {} }, { audience: [] }, { audience: ['ok', 3] }]) {
    await assert.rejects(token(['a'], extra as Partial<CreateSubscriberTokenOptions>), InvalidOptionError, JSON.stringify(extra));
  }
  for (const options of [undefined, null, 'secret', []]) {
    await assert.rejects(createSubscriberToken(options as unknown as CreateSubscriberTokenOptions), InvalidArgumentError);
  }
});

// ---- subscriberTokens: options ----

test('subscriberTokens: refuses a short or missing secret, unknown keys, and bad cookie/query/issuer/audience', () => {
  assert.throws(() => subscriberTokens({ secret: 'short' }), InvalidArgumentError);
  assert.throws(() => subscriberTokens({} as SubscriberTokensOptions), InvalidArgumentError);
  assert.throws(() => subscriberTokens(undefined as unknown as SubscriberTokensOptions), InvalidArgumentError);
  assert.throws(
    () => subscriberTokens({ secret: SECRET, cookies: 'x' } as unknown as SubscriberTokensOptions),
    /unknown option "cookies"; did you mean "cookie"\?/,
  );
  for (const extra of [
    { cookie: '' },
    { cookie: 'a b' },
    { cookie: 'a;b' },
    { cookie: true },
    { query: '' },
    { query: 5 },
    { issuer: '' },
    { audience: 7 },
  ]) {
    assert.throws(
      () => subscriberTokens({ secret: SECRET, ...extra } as unknown as SubscriberTokensOptions),
      InvalidOptionError,
      JSON.stringify(extra),
    );
  }
});

// ---- subscriberTokens: where the token comes from ----

test('authorize: allows a token from the Bearer header until its exp, in epoch milliseconds', async () => {
  const jwt = await token(['user-42']);
  const decision = await subscriberTokens({ secret: SECRET })(bearer(jwt), ['user-42']);
  assert.deepEqual(decision, { until: decodeJwt(jwt).exp! * 1000 });
  // The scheme name is case-insensitive (RFC 7235), extra spaces are tolerated.
  assert.deepEqual(
    await subscriberTokens({ secret: SECRET })(webRequest({ authorization: `  bEaReR   ${jwt}  ` }), ['user-42']),
    decision,
  );
});

test('authorize: reads the cookie among others, quoted or not, first of a repeated name; then the query', async () => {
  const authorize = subscriberTokens({ secret: SECRET });
  const a = await token(['a']);
  const b = await token(['b']);
  await authorize(webRequest({ cookie: `theme=dark; eventstream_token=${a}; sid=xyz` }), ['a']);
  await authorize(webRequest({ cookie: `eventstream_token="${a}"` }), ['a']);
  await authorize(webRequest({ cookie: `other_eventstream_token=${b};eventstream_token=${a};eventstream_token=${b}` }), ['a']);
  await refused(authorize(webRequest({ cookie: `eventstream_token=${a}; eventstream_token=${b}` }), ['b']), 403, /"b"/);
  // A cleared cookie counts as absent, so the query is read.
  await authorize(webRequest({ cookie: 'eventstream_token=' }, `/events?token=${a}`), ['a']);
  await authorize(webRequest({}, `/events?x=1&token=${a}&token=${b}#frag`), ['a']);
  await refused(authorize(webRequest({}, `/events?token=${a}&token=${b}`), ['b']), 403, /"b"/);
});

test('authorize: the header wins over the cookie, the cookie over the query; another scheme is ignored', async () => {
  const authorize = subscriberTokens({ secret: SECRET });
  const [h, c, q] = await Promise.all([token(['h']), token(['c']), token(['q'])]);
  const all = (authorization?: string) =>
    webRequest(
      { ...(authorization === undefined ? {} : { authorization }), cookie: `eventstream_token=${c}` },
      `/events?token=${q}`,
    );
  await authorize(all(`Bearer ${h}`), ['h']);
  await refused(authorize(all(`Bearer ${h}`), ['c']), 403, /"c"/);
  await authorize(all(), ['c']);
  await authorize(all('Basic dXNlcjpwYXNz'), ['c']);
  await authorize(all('Bearerish token'), ['c']);
  await authorize(webRequest({}, `/events?token=${q}`), ['q']);
});

test('authorize: custom cookie and query names; false turns a source off', async () => {
  const jwt = await token(['a']);
  const custom = subscriberTokens({ secret: SECRET, cookie: 'sse', query: 'access_token' });
  await custom(webRequest({ cookie: `sse=${jwt}` }), ['a']);
  await custom(webRequest({}, `/e?access_token=${jwt}`), ['a']);
  await refused(
    custom(webRequest({ cookie: `eventstream_token=${jwt}` }, `/e?token=${jwt}`), ['a']),
    401,
    /No subscriber token: send an "Authorization: Bearer <token>" header, the "sse" cookie or the "access_token" query parameter/,
  );

  const headerOnly = subscriberTokens({ secret: SECRET, cookie: false, query: false });
  await refused(
    headerOnly(webRequest({ cookie: `eventstream_token=${jwt}` }, `/e?token=${jwt}`), ['a']),
    401,
    /send an "Authorization: Bearer <token>" header\.$/,
  );
  await headerOnly(bearer(jwt), ['a']);
});

test('authorize: no token, or a Bearer header without a well-formed token, is a 401 saying so', async () => {
  const authorize = subscriberTokens({ secret: SECRET });
  await refused(
    authorize(webRequest(), ['a']),
    401,
    /^No subscriber token: send .*"eventstream_token" cookie or the "token" query parameter\.$/,
  );
  await refused(authorize(webRequest({}, '/events?token='), ['a']), 401, /No subscriber token/);
  for (const header of ['Bearer', 'Bearer ', 'bearer \t ', 'Bearer two words', 'Bearer a,b', 'Bearer "quoted"']) {
    await refused(authorize(webRequest({ authorization: header }), ['a']), 401, /^Malformed Authorization header/);
  }
});

test('authorize: huge values are refused with a 401, not a crash', async () => {
  const authorize = subscriberTokens({ secret: SECRET });
  const huge = 'A'.repeat(1024 * 1024);
  await refused(authorize(webRequest({}, `/events?token=${huge}`), ['a']), 401, /too long/);
  await refused(authorize(webRequest({ authorization: `Bearer ${huge}.${huge}.${huge}` }), ['a']), 401, /too long/);
  await refused(authorize(webRequest({ cookie: `eventstream_token=${'%'.repeat(20000)}` }), ['a']), 401, /too long/);
  // Just under the bound: jose gets it and refuses it.
  await refused(authorize(webRequest({}, `/events?token=${'A'.repeat(8000)}.${'A'.repeat(8000)}.AA`), ['a']), 401, /malformed/);
});

test('property: any text as a token is refused with a 401, never another error', async () => {
  const authorize = subscriberTokens({ secret: SECRET });
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(
        fc.string({ unit: 'binary', maxLength: 200 }),
        fc.tuple(fc.base64String(), fc.base64String(), fc.base64String()).map((parts) => parts.join('.').replaceAll('=', '')),
        fc
          .json()
          .map(
            (json) => `${Buffer.from('{"alg":"HS256"}').toString('base64url')}.${Buffer.from(json).toString('base64url')}.AAAA`,
          ),
      ),
      async (text) => {
        const request = webRequest({}, `/events?token=${encodeURIComponent(text)}`);
        await refused(authorize(request, ['a']), 401, /^(No subscriber token|Subscriber token)/);
      },
    ),
    { numRuns: 300 },
  );
});

// ---- subscriberTokens: which tokens are refused ----

test('authorize: tokens signed with another algorithm or secret are refused with 401', async () => {
  const authorize = subscriberTokens({ secret: SECRET });
  const exp = now() + 600;
  const payload = { channels: ['a'], exp };
  const none = new UnsecuredJWT(payload).encode();
  await refused(authorize(bearer(none), ['a']), 401, /^Subscriber token must be signed with HS256\.$/);
  await refused(authorize(bearer(await minted(payload, 'HS512')), ['a']), 401, /HS256/);
  await refused(authorize(bearer(await minted(payload, 'HS384')), ['a']), 401, /HS256/);
  const { privateKey } = await generateKeyPair('RS256');
  await refused(authorize(bearer(await minted(payload, 'RS256', privateKey)), ['a']), 401, /HS256/);
  const otherSecret = new TextEncoder().encode('another secret, just as long as the first one');
  await refused(
    authorize(bearer(await minted(payload, 'HS256', otherSecret)), ['a']),
    401,
    /^Subscriber token signature is invalid\.$/,
  );
  // The same token with the right secret passes, so the refusals above are about the algorithm and key.
  assert.deepEqual(await authorize(bearer(await minted(payload)), ['a']), { until: exp * 1000 });
});

test('authorize: a tampered token (channels widened, signature kept) is refused with 401', async () => {
  const authorize = subscriberTokens({ secret: SECRET });
  const [header, , signature] = (await token(['user-42'])).split('.');
  const widened = Buffer.from(JSON.stringify({ channels: ['*'], exp: now() + 600, iat: now() })).toString('base64url');
  await refused(authorize(bearer(`${header}.${widened}.${signature}`), ['user-1']), 401, /signature is invalid/);
});

test('authorize: an expired token, or one without exp, is refused with 401', async () => {
  const authorize = subscriberTokens({ secret: SECRET });
  await refused(
    authorize(bearer(await minted({ channels: ['a'], exp: now() - 10 })), ['a']),
    401,
    /^Subscriber token has expired\.$/,
  );
  await refused(authorize(bearer(await minted({ channels: ['a'] })), ['a']), 401, /no valid expiry/);
  await refused(authorize(bearer(await minted({ channels: ['a'], exp: 'tomorrow' })), ['a']), 401, /Subscriber token/);
  await refused(
    authorize(bearer(await minted({ channels: ['a'], exp: now() + 60, nbf: now() + 30 })), ['a']),
    401,
    /not valid yet/,
  );
});

test('authorize: iss and aud are checked when configured, and not otherwise', async () => {
  const strict = subscriberTokens({ secret: SECRET, issuer: 'https://app.example', audience: 'events' });
  const loose = subscriberTokens({ secret: SECRET });
  const good = await token(['a'], { issuer: 'https://app.example', audience: 'events' });
  await strict(bearer(good), ['a']);
  await strict(bearer(await token(['a'], { issuer: 'https://app.example', audience: ['other', 'events'] })), ['a']);
  await refused(
    strict(bearer(await token(['a'], { issuer: 'https://evil.example', audience: 'events' })), ['a']),
    401,
    /issued by someone else/,
  );
  await refused(
    strict(bearer(await token(['a'], { issuer: 'https://app.example', audience: 'admin' })), ['a']),
    401,
    /another audience/,
  );
  await refused(strict(bearer(await token(['a'])), ['a']), 401, /Subscriber token/);
  await loose(bearer(await token(['a'], { issuer: 'https://evil.example', audience: 'admin' })), ['a']);
  const either = subscriberTokens({ secret: SECRET, audience: ['web', 'mobile'] });
  await either(bearer(await token(['a'], { audience: 'mobile' })), ['a']);
  await refused(either(bearer(await token(['a'], { audience: 'tv' })), ['a']), 401, /audience/);
});

test('authorize: a signed token whose channels claim is missing or not a list of strings is a 401', async () => {
  const authorize = subscriberTokens({ secret: SECRET });
  for (const channels of [undefined, 'a', [1], ['a', null], { a: true }]) {
    await refused(authorize(bearer(await minted({ channels, exp: now() + 60 })), ['a']), 401, /"channels" claim/);
  }
});

test('authorize: refusal messages leak no library internals', async () => {
  const authorize = subscriberTokens({ secret: SECRET });
  const error = await refused(authorize(bearer('abc.def.ghi'), ['a']), 401, /^Subscriber token is malformed\.$/);
  assert.doesNotMatch(error.message, /jose|JWS|JWT|Error|at /);
  // The cause keeps jose's error for server logs.
  assert.ok(error.cause instanceof Error);
});

// ---- Channels and prefixes ----

test('prefixes: an entry p* allows exactly the names starting with p; other entries only themselves', () => {
  assert.equal(allows(['user-4*'], 'user-42'), true);
  assert.equal(allows(['user-4*'], 'user-4'), true);
  assert.equal(allows(['user-4*'], 'user-5'), false);
  assert.equal(allows(['user-*'], 'users'), false);
  assert.equal(allows(['user-*'], 'user-42-inbox'), true);
  assert.equal(allows(['*'], 'anything'), true);
  assert.equal(allows(['user-42'], 'user-42'), true);
  assert.equal(allows(['user-42'], 'user-420'), false);
  assert.equal(allows(['user-42'], 'user-4'), false);
  assert.equal(allows(['a*b'], 'axb'), false, 'only a trailing * is a wildcard');
  assert.equal(allows([], 'a'), false);
});

test('authorize: every channel asked for must be allowed, else a 403 naming the refused ones', async () => {
  const authorize = subscriberTokens({ secret: SECRET });
  const jwt = await token(['user-4*', 'news']);
  await authorize(bearer(jwt), ['user-42', 'news']);
  await refused(authorize(bearer(jwt), ['user-42', 'admin']), 403, /^Subscriber token does not allow channel "admin"\.$/);
  await refused(
    authorize(bearer(jwt), ['users', 'user-5', 'news']),
    403,
    /^Subscriber token does not allow channels "users", "user-5"\.$/,
  );
  const everything = await token(['*']);
  await authorize(bearer(everything), ['admin', 'user-1', 'x']);
});

// ---- Real requests ----

function textAnswer(res: http.ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(body);
}

/** What the pipeline will do with the answer: the status and message of an HttpRequestError, else a 500. */
function answer(res: http.ServerResponse, decision: Promise<unknown>): void {
  decision.then(
    (value) => textAnswer(res, 200, JSON.stringify(value)),
    (error: unknown) =>
      error instanceof HttpRequestError ? textAnswer(res, error.status, error.message) : textAnswer(res, 500, 'internal error'),
  );
}

test('end to end: a real IncomingMessage over loopback, token by header, cookie and query', async (t) => {
  const authorize = subscriberTokens({ secret: SECRET });
  const seen: IncomingMessage[] = [];
  const server = await listen((req, res) => {
    seen.push(req);
    const channel = new URL(req.url!, 'http://x').pathname.slice(1);
    answer(res, Promise.resolve(authorize(req, [channel])));
  });
  t.after(() => server.close());
  const jwt = await token(['user-42', 'room-*']);
  const until = decodeJwt(jwt).exp! * 1000;

  const byHeader = await fetch(`${server.url}/user-42`, { headers: { authorization: `Bearer ${jwt}` } });
  assert.equal(byHeader.status, 200);
  assert.deepEqual(await byHeader.json(), { until });
  const byCookie = await fetch(`${server.url}/room-7`, { headers: { cookie: `a=1; eventstream_token=${jwt}` } });
  assert.equal(byCookie.status, 200);
  const byQuery = await fetch(`${server.url}/room-7?token=${jwt}`);
  assert.equal(byQuery.status, 200);
  assert.ok(seen.every((req) => req instanceof http.IncomingMessage));

  const forbidden = await fetch(`${server.url}/user-1?token=${jwt}`);
  assert.equal(forbidden.status, 403);
  assert.equal(await forbidden.text(), 'Subscriber token does not allow channel "user-1".');
  const anonymous = await fetch(`${server.url}/user-42`);
  assert.equal(anonymous.status, 401);
  assert.match(await anonymous.text(), /^No subscriber token/);
  const expired = await fetch(`${server.url}/user-42?token=${await minted({ channels: ['user-42'], exp: now() - 1 })}`);
  assert.equal(expired.status, 401);
  assert.equal(await expired.text(), 'Subscriber token has expired.');
});

test('end to end: repeated Cookie and Authorization header lines on a real Node request', async (t) => {
  const authorize = subscriberTokens({ secret: SECRET });
  const server = await listen((req, res) => answer(res, Promise.resolve(authorize(req, ['a']))));
  t.after(() => server.close());
  const jwt = await token(['a']);
  const status = (headers: Record<string, string | string[]>) =>
    new Promise<number>((resolve, reject) => {
      const request = http.request(`${server.url}/`, { headers }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      request.on('error', reject);
      request.end();
    });
  // Two Cookie lines, the token in the second: Node joins them with "; ".
  assert.equal(await status({ cookie: ['theme=dark', `eventstream_token=${jwt}`] }), 200);
  // Node keeps the first of repeated Authorization lines.
  assert.equal(await status({ authorization: [`Bearer ${jwt}`, 'Bearer garbage'] }), 200);
  assert.equal(await status({ authorization: ['Bearer garbage', `Bearer ${jwt}`] }), 401);
  assert.equal(await status({ authorization: 'Bearer' }), 401);
});

test('end to end: a web Request built from a real loopback request', async (t) => {
  const authorize = subscriberTokens({ secret: SECRET, issuer: 'app' });
  const requests: Request[] = [];
  const server = await listen((req, res) => {
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) if (typeof value === 'string') headers.set(name, value);
    const request = new Request(`http://${req.headers.host}${req.url}`, { headers });
    requests.push(request);
    answer(res, Promise.resolve(authorize(request, ['user-42'])));
  });
  t.after(() => server.close());
  const jwt = await token(['user-*'], { issuer: 'app' });
  assert.equal((await fetch(`${server.url}/events?token=${jwt}`)).status, 200);
  assert.equal((await fetch(`${server.url}/events`, { headers: { cookie: `eventstream_token=${jwt}` } })).status, 200);
  assert.equal((await fetch(`${server.url}/events`, { headers: { authorization: `Bearer ${jwt}` } })).status, 200);
  const wrongIssuer = await fetch(`${server.url}/events?token=${await token(['user-*'], { issuer: 'other' })}`);
  assert.equal(wrongIssuer.status, 401);
  assert.equal(await wrongIssuer.text(), 'Subscriber token was issued by someone else ("iss").');
  assert.equal((await fetch(`${server.url}/events?token=${await token(['users'], { issuer: 'app' })}`)).status, 403);
  assert.equal(requests.length, 5);
  assert.ok(requests.every((request) => request instanceof Request));
});

test('end to end: an HTTP/2 request (Http2ServerRequest), cookie crumbs sent as separate header fields', async (t) => {
  const authorize = subscriberTokens({ secret: SECRET });
  const server = http2.createServer((req, res) => {
    Promise.resolve(authorize(req, ['a'])).then(
      () => res.writeHead(200).end(),
      (error: unknown) => res.writeHead(error instanceof HttpRequestError ? error.status : 500).end(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  t.after(() => {
    client.close();
    server.close();
  });
  const status = (headers: http2.OutgoingHttpHeaders) =>
    new Promise<number>((resolve, reject) => {
      const stream = client.request({ ':path': '/events', ...headers });
      stream.on('response', (head) => resolve(Number(head[':status'])));
      stream.on('error', reject);
      stream.resume();
      stream.end();
    });
  const jwt = await token(['a']);
  assert.equal(await status({ cookie: ['theme=dark', `eventstream_token=${jwt}`] }), 200);
  assert.equal(await status({ authorization: `Bearer ${jwt}` }), 200);
  assert.equal(await status({ ':path': `/events?token=${jwt}` }), 200);
  assert.equal(await status({}), 401);
  assert.equal(await status({ cookie: `eventstream_token=${await token(['b'])}` }), 403);
});

/** The first message an EventSource gets, or the HTTP status it gave up on. */
function firstMessage(
  url: string,
  init?: ConstructorParameters<typeof EventSource>[1],
): Promise<{ data: string } | { status: number | undefined }> {
  const source = new EventSource(url, init);
  return new Promise((resolve) => {
    source.onmessage = (event) => {
      source.close();
      resolve({ data: event.data });
    };
    source.onerror = (event) => {
      source.close();
      resolve({ status: event.code });
    };
  });
}

test('end to end: Express as in the README: a login route hands out a token, EventSource sends it as ?token= or a cookie', async (t) => {
  const authorize = subscriberTokens({ secret: SECRET, audience: 'events' });
  // It fits any route's authorize, whatever the framework's request type.
  const typed: AuthorizeFunction<express.Request> = authorize;
  const app = express();
  app.get('/login/:user', async (req, res) => {
    const user = req.params.user;
    res.json({
      token: await createSubscriberToken({
        secret: SECRET,
        channels: [`user-${user}-*`],
        expiresIn: '15m',
        subject: user,
        audience: 'events',
      }),
    });
  });
  app.get('/events/:channel', async (req, res, next) => {
    try {
      const { until } = (await typed(req, [req.params.channel])) as { until: number };
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
      res.end(`data: ${JSON.stringify({ channel: req.params.channel, until })}\n\n`);
    } catch (error) {
      next(error);
    }
  });
  const refusals: ErrorRequestHandler = (error, _req, res, next) => {
    if (error instanceof HttpRequestError) res.status(error.status).type('text/plain').send(error.message);
    else next(error);
  };
  app.use(refusals);
  const server = await listen(app);
  t.after(() => server.close());

  const { token: jwt } = (await (await fetch(`${server.url}/login/42`)).json()) as { token: string };
  const until = decodeJwt(jwt).exp! * 1000;
  assert.deepEqual(await firstMessage(`${server.url}/events/user-42-inbox?token=${jwt}`), {
    data: JSON.stringify({ channel: 'user-42-inbox', until }),
  });
  const withCookie = await firstMessage(`${server.url}/events/user-42-alerts`, {
    fetch: (input, init) => fetch(input, { ...init, headers: { ...init?.headers, cookie: `eventstream_token=${jwt}` } }),
  });
  assert.deepEqual(withCookie, { data: JSON.stringify({ channel: 'user-42-alerts', until }) });
  // EventSource does not retry after a 401 or 403: the page must get a new token.
  assert.deepEqual(await firstMessage(`${server.url}/events/user-43-inbox?token=${jwt}`), { status: 403 });
  assert.deepEqual(await firstMessage(`${server.url}/events/user-42-inbox`), { status: 401 });
  const refusal = await fetch(`${server.url}/events/user-43-inbox?token=${jwt}`);
  assert.equal(refusal.headers.get('content-type'), 'text/plain; charset=utf-8');
  assert.equal(await refusal.text(), 'Subscriber token does not allow channel "user-43-inbox".');
});

// ---- The parsers on their own ----

test('parsers: bearerToken, cookieValue and queryValue on edge cases', () => {
  assert.equal(bearerToken(undefined), undefined);
  assert.equal(bearerToken('Basic abc'), undefined);
  assert.equal(bearerToken('Bearer'), null);
  assert.equal(bearerToken('Bearer a.b.c'), 'a.b.c');
  assert.equal(bearerToken('Bearer abc=='), 'abc==');
  assert.equal(bearerToken('Bearer ab=c'), null);

  assert.equal(cookieValue(undefined, 'c'), undefined);
  assert.equal(cookieValue('', 'c'), undefined);
  assert.equal(cookieValue('c', 'c'), undefined);
  assert.equal(cookieValue(';;; =x; c=1', 'c'), '1');
  assert.equal(cookieValue(' c = 1 ', 'c'), '1');
  assert.equal(cookieValue('C=1', 'c'), undefined, 'cookie names are case-sensitive');
  assert.equal(cookieValue('c="', 'c'), '"');
  assert.equal(cookieValue('c=%zz', 'c'), '%zz');
  assert.equal(cookieValue('c=a%2Eb', 'c'), 'a.b');
  assert.equal(cookieValue('c=a=b', 'c'), 'a=b');

  assert.equal(queryValue(undefined, 'token'), undefined);
  assert.equal(queryValue('/events', 'token'), undefined);
  assert.equal(queryValue('/events?token', 'token'), undefined);
  assert.equal(queryValue('/events?token=a&token=b', 'token'), 'a');
  assert.equal(queryValue('/events#?token=a', 'token'), undefined);
  assert.equal(queryValue('http://h/events?a=%ZZ&token=x%2Ey', 'token'), 'x.y');
  assert.equal(queryValue('//weird??token=1', 'token'), undefined);
});
