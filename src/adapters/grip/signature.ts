import {
  createHmac,
  createPublicKey,
  createSecretKey,
  type JsonWebKey,
  KeyObject,
  timingSafeEqual,
  verify,
  type webcrypto,
} from 'node:crypto';
import { JwkKey, loadKey, PemKey } from '@fanoutio/grip';
import { GripConfigError } from '../../errors.js';
import type { GripProxy } from './proxy-config.js';

/**
 * Pushpin signs every forwarded request with `exp = now + 3600`. A token
 * meant to live longer was not made by it, and would let anyone who saw one
 * (a log, a misrouted request) pass as the proxy for that long.
 */
const PUSHPIN_LIFETIME_S = 3600;
/** Clock difference tolerated between the proxy and this process. */
const CLOCK_SKEW_S = 30;
/** Far larger than any Grip-Sig; a longer header is not parsed at all. */
const MAX_TOKEN_LENGTH = 8192;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
/** A runtime class in Node 20 only as a global; node:crypto's `webcrypto.CryptoKey` is a type there. */
const { CryptoKey } = globalThis as unknown as { CryptoKey: typeof webcrypto.CryptoKey };

/**
 * How one proxy's `Grip-Sig` is checked. The algorithm is fixed by the key,
 * never read from the token: a shared secret means HS256 (Pushpin, Fanout
 * Cloud), an EC P-256 public key means ES256 (Fastly Fanout). Letting the
 * token choose is what makes algorithm-confusion forgeries possible.
 */
export interface SignatureVerifier {
  readonly alg: 'HS256' | 'ES256';
  /** Longest lifetime (`exp` minus now, in seconds) a token may claim; null when the signer's is unknown. */
  readonly maxLifetime: number | null;
  readonly iss: string | undefined;
  checkSignature(signingInput: string, signature: Buffer): boolean;
}

/** Builds the verifier for a proxy's verify key, or throws GripConfigError when no proxy could sign for it. */
export function signatureVerifier(verifyKey: unknown, iss: string | undefined, where: string): SignatureVerifier {
  const key = keyObjectOf(verifyKey, where);
  if (key.type === 'secret') {
    return {
      alg: 'HS256',
      maxLifetime: PUSHPIN_LIFETIME_S,
      iss,
      checkSignature: (input, signature) => {
        const expected = createHmac('sha256', key).update(input).digest();
        return signature.length === expected.length && timingSafeEqual(signature, expected);
      },
    };
  }
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  const curve = publicKey.asymmetricKeyType === 'ec' ? publicKey.asymmetricKeyDetails?.namedCurve : undefined;
  if (curve !== 'prime256v1') {
    throw new GripConfigError(
      `${where} verify key is a ${publicKey.asymmetricKeyType ?? 'unknown'} key; GRIP proxies sign Grip-Sig with HS256 (a shared secret) or ES256 (an EC P-256 public key)`,
    );
  }
  return {
    alg: 'ES256',
    maxLifetime: null,
    iss,
    checkSignature: (input, signature) =>
      signature.length === 64 && verify('sha256', Buffer.from(input), { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature),
  };
}

/** The forms `@fanoutio/grip` leaves a verify key in (bytes, PemKey, JwkKey, KeyObject, CryptoKey), as a KeyObject. */
function keyObjectOf(verifyKey: unknown, where: string): KeyObject {
  try {
    const key: unknown = typeof verifyKey === 'string' || verifyKey instanceof Uint8Array ? loadKey(verifyKey) : verifyKey;
    if (key instanceof KeyObject) return key;
    if (key instanceof CryptoKey) return KeyObject.from(key);
    if (key instanceof Uint8Array) return createSecretKey(key);
    // A private PEM yields its public half.
    if (key instanceof PemKey) return createPublicKey(key.keyString);
    const jwk = key instanceof JwkKey ? key.jwk : key;
    if (typeof jwk === 'object' && jwk !== null && typeof (jwk as { kty?: unknown }).kty === 'string') {
      const { kty, k } = jwk as { kty: string; k?: unknown };
      if (kty === 'oct' && typeof k === 'string') return createSecretKey(Buffer.from(k, 'base64url'));
      return createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
    }
  } catch (cause) {
    throw new GripConfigError(`${where} verify key cannot be read: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
  }
  throw new GripConfigError(`${where} verify key must be a string, bytes, a PEM or JWK key, or a KeyObject`);
}

/**
 * Whether `token` is a Grip-Sig this verifier's proxy made: a compact JWS
 * with exactly the expected algorithm and no critical extensions, a valid
 * signature, an `exp` that is present, not past and (for Pushpin) not
 * further ahead than it signs for, an `nbf` (if any) that has come, and the
 * configured issuer.
 */
export function verifyGripSig(token: string, verifier: SignatureVerifier, nowSeconds = Date.now() / 1000): boolean {
  if (token.length > MAX_TOKEN_LENGTH) return false;
  const parts = token.split('.');
  if (parts.length !== 3 || !parts.every((part) => BASE64URL.test(part))) return false;
  const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];
  const header = jsonObject(headerPart);
  if (header === null || header.alg !== verifier.alg || header.crit !== undefined) return false;
  if (!verifier.checkSignature(`${headerPart}.${payloadPart}`, Buffer.from(signaturePart, 'base64url'))) return false;
  const claims = jsonObject(payloadPart);
  if (claims === null) return false;
  const { exp, nbf, iss } = claims;
  if (typeof exp !== 'number' || !Number.isFinite(exp) || nowSeconds >= exp + CLOCK_SKEW_S) return false;
  if (verifier.maxLifetime !== null && exp > nowSeconds + verifier.maxLifetime + CLOCK_SKEW_S) return false;
  if (nbf !== undefined && (typeof nbf !== 'number' || nowSeconds + CLOCK_SKEW_S < nbf)) return false;
  if (verifier.iss !== undefined && iss !== verifier.iss) return false;
  return true;
}

function jsonObject(part: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/**
 * Whether a request came through one of the proxies. A proxy with a verify
 * key must have signed `Grip-Sig` (see verifyGripSig); a proxy without one
 * trusts any `Grip-Sig`. A forged, expired or over-long signature counts as
 * no signature: the request is served directly.
 */
export async function isProxiedRequest(gripSig: string | string[] | undefined, proxies: readonly GripProxy[]): Promise<boolean> {
  if (typeof gripSig !== 'string' || gripSig.length === 0) return false;
  for (const proxy of proxies) {
    if (proxy.verifier === null) return true;
  }
  const now = Date.now() / 1000;
  return proxies.some((proxy) => verifyGripSig(gripSig, proxy.verifier!, now));
}
