/**
 * Grip-Sig is checked as strictly as a proxy signs it: each forged token
 * below is sent over a real HTTP request to a real server, and only the
 * tokens a proxy could have made get hold instructions. No proxy runs here:
 * the verdict shows in the answer (Grip-Hold headers or a direct stream).
 */
import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import http from 'node:http';
import { test } from 'node:test';
import { EventStream, GripConfigError } from '../../../../src/index.js';
import { cleanups } from '../../../helpers/requirements.js';
import { freePort, listen } from '../../../helpers/server.js';

const SECRET = 'a-long-random-secret';
const now = (): number => Math.floor(Date.now() / 1000);

function part(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** A JWT signed with HMAC; `alg` names the hash it really uses, as a forger with the key would. */
function hmacToken(
  key: string | Buffer,
  claims: Record<string, unknown>,
  alg = 'HS256',
  header: Record<string, unknown> = {},
): string {
  const hash = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' }[alg] ?? 'sha256';
  const unsigned = `${part({ typ: 'JWT', alg, ...header })}.${part(claims)}`;
  return `${unsigned}.${createHmac(hash, key).update(unsigned).digest('base64url')}`;
}

function es256Token(privateKey: KeyObject, claims: Record<string, unknown>): string {
  const unsigned = `${part({ typ: 'JWT', alg: 'ES256' })}.${part(claims)}`;
  return `${unsigned}.${sign('sha256', Buffer.from(unsigned), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
}

/** What Pushpin sends: HS256, iss "pushpin", exp an hour ahead. */
function pushpinClaims(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { iss: 'pushpin', exp: now() + 3600, ...extra };
}

/** Serves `/events` from an EventStream configured with `grip`; returns a probe telling whether a Grip-Sig was trusted. */
async function signatureProbe(
  t: Parameters<typeof cleanups>[0],
  grip: Record<string, unknown>,
): Promise<(sig: string) => Promise<boolean>> {
  const defer = cleanups(t);
  // Nothing is published, so the control API is never called; a closed port makes sure of it.
  const eventStream = new EventStream({ grip: { control_uri: `http://127.0.0.1:${await freePort()}`, ...grip } });
  defer(() => eventStream.close());
  const server = await listen((req, res) => void eventStream.run(req, res, 'sig'));
  defer(() => server.close());
  return (sig) =>
    new Promise((resolve, reject) => {
      const req = http.get(`${server.url}/events`, { headers: { accept: 'text/event-stream', 'grip-sig': sig } }, (res) => {
        const held = res.headers['grip-hold'] === 'stream';
        if (!held)
          assert.match(String(res.headers['content-type']), /^text\/event-stream/, 'an untrusted request is served directly');
        res.resume();
        req.destroy();
        resolve(held);
      });
      req.on('error', reject);
    });
}

test('HS256 verify key: only a Pushpin-shaped token is trusted; no exp, far exp, HS384/HS512 with the right key are not', async (t) => {
  const trusted = await signatureProbe(t, { verify_key: SECRET });
  assert.equal(await trusted(hmacToken(SECRET, pushpinClaims())), true, 'the token Pushpin sends');
  assert.equal(await trusted(hmacToken(SECRET, pushpinClaims({ exp: now() + 3600 + 20 }))), true, 'within the clock skew');

  const forged: Record<string, string> = {
    'no exp': hmacToken(SECRET, { iss: 'pushpin' }),
    'exp in the year 2500': hmacToken(SECRET, pushpinClaims({ exp: Math.floor(Date.UTC(2500, 0, 1) / 1000) })),
    'exp two hours ahead (Pushpin signs for one)': hmacToken(SECRET, pushpinClaims({ exp: now() + 7200 })),
    'exp as a string': hmacToken(SECRET, pushpinClaims({ exp: String(now() + 3600) })),
    expired: hmacToken(SECRET, pushpinClaims({ exp: now() - 60 })),
    'not before a time still to come': hmacToken(SECRET, pushpinClaims({ nbf: now() + 600 })),
    'HS384 with the right key': hmacToken(SECRET, pushpinClaims(), 'HS384'),
    'HS512 with the right key': hmacToken(SECRET, pushpinClaims(), 'HS512'),
    'a critical extension': hmacToken(SECRET, pushpinClaims(), 'HS256', { crit: ['b64'], b64: false }),
    'alg none': `${part({ alg: 'none' })}.${part(pushpinClaims())}.`,
    'wrong key': hmacToken('guessed', pushpinClaims()),
    'payload is an array': hmacToken(SECRET, [pushpinClaims()] as unknown as Record<string, unknown>),
    malformed: 'not.a.jwt',
  };
  for (const [label, sig] of Object.entries(forged)) {
    assert.equal(await trusted(sig), false, label);
  }
});

test('verify_iss: the issuer must match when configured', async (t) => {
  const trusted = await signatureProbe(t, { verify_key: SECRET, verify_iss: 'pushpin' });
  assert.equal(await trusted(hmacToken(SECRET, pushpinClaims())), true);
  assert.equal(await trusted(hmacToken(SECRET, pushpinClaims({ iss: 'someone-else' }))), false, 'another issuer');
  assert.equal(await trusted(hmacToken(SECRET, { exp: now() + 3600 })), false, 'no issuer');
});

test('an EC P-256 verify key (Fastly Fanout) takes ES256 only; an HS256 token keyed with the public key is refused', async (t) => {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const trusted = await signatureProbe(t, { verify_key: publicPem });
  const claims = { iss: 'fastly:service', exp: now() + 3600 };
  assert.equal(await trusted(es256Token(privateKey, claims)), true);
  assert.equal(await trusted(es256Token(privateKey, { iss: 'fastly:service' })), false, 'no exp');
  assert.equal(await trusted(es256Token(privateKey, { exp: now() - 60 })), false, 'expired');
  // Algorithm confusion: the public key is public, so an HMAC keyed with it proves nothing.
  assert.equal(await trusted(hmacToken(publicPem, claims)), false, 'HS256 keyed with the public PEM');
  const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  assert.equal(await trusted(es256Token(other, claims)), false, 'another EC key');
});

test('a verify key no GRIP proxy signs with is a GripConfigError at construction', () => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
  assert.throws(
    () => new EventStream({ grip: { control_uri: 'http://127.0.0.1:5561', verify_key: rsa } }),
    (error: unknown) =>
      error instanceof GripConfigError && error.code === 'ERR_EVENTSTREAM_GRIP_CONFIG' && /HS256.*ES256/.test(error.message),
  );
});
