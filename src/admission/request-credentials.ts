import type { NodeRequest } from '../types.js';

/**
 * The three places a credential can come from, as raw text, from either kind
 * of request. Nothing here trusts the request: a header may be missing,
 * repeated or of any length, and the request object itself may be odd.
 */
export interface RequestCredentialSources {
  authorization: string | undefined;
  cookie: string | undefined;
  /** The request target (`/path?query`) or the absolute URL. */
  url: string | undefined;
}

interface WebHeaders {
  get(name: string): string | null;
}

/** A web Request's headers have `get`; a Node request's are a plain object, where `get` could only be a header's string value. */
function isWebHeaders(headers: unknown): headers is WebHeaders {
  return typeof headers === 'object' && headers !== null && typeof (headers as { get?: unknown }).get === 'function';
}

export function credentialSources(request: NodeRequest | Request): RequestCredentialSources {
  const headers: unknown = (request as { headers?: unknown } | null)?.headers;
  const url: unknown = (request as { url?: unknown } | null)?.url;
  const target = typeof url === 'string' ? url : undefined;
  if (isWebHeaders(headers)) {
    return { authorization: headers.get('authorization') ?? undefined, cookie: headers.get('cookie') ?? undefined, url: target };
  }
  if (typeof headers !== 'object' || headers === null) return { authorization: undefined, cookie: undefined, url: target };
  const nodeHeaders = headers as Record<string, unknown>;
  return {
    // Node drops repeated Authorization headers; a list can only come from a hand-built request, so its first counts.
    authorization: firstString(nodeHeaders.authorization),
    // HTTP/2 may deliver each cookie crumb as its own header line.
    cookie: Array.isArray(nodeHeaders.cookie)
      ? nodeHeaders.cookie.filter((v) => typeof v === 'string').join('; ')
      : firstString(nodeHeaders.cookie),
    url: target,
  };
}

function firstString(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (Array.isArray(value) && typeof value[0] === 'string') return value[0];
  return undefined;
}

/** token68 (RFC 7235), which every compact JWT is. */
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/;

/**
 * Reads `Authorization: Bearer <token>`. Returns `undefined` when the header
 * is absent or uses another scheme (the app may use Basic for itself), and
 * `null` when it says Bearer but carries no well-formed token: the client
 * meant to send one, so falling back to a cookie would hide its mistake.
 */
export function bearerToken(header: string | undefined): string | undefined | null {
  if (header === undefined) return undefined;
  const match = /^[ \t]*bearer(?:[ \t]+(.*))?$/is.exec(header);
  if (match === null) return undefined;
  const credentials = (match[1] ?? '').trim();
  return TOKEN68.test(credentials) ? credentials : null;
}

/**
 * The first cookie called `name` in a Cookie header, unquoted. Browsers send
 * the most specific path's cookie first, so the first one wins. An empty
 * value counts as absent (a cookie cleared on logout).
 */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq === -1 || pair.slice(0, eq).trim() !== name) continue;
    let value = pair.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    if (value.includes('%')) {
      try {
        value = decodeURIComponent(value);
      } catch {
        // Not percent-encoding after all; the verifier refuses it as it is.
      }
    }
    return value === '' ? undefined : value;
  }
  return undefined;
}

/** The first value of query parameter `name`, from a request target or an absolute URL. Never throws. */
export function queryValue(url: string | undefined, name: string): string | undefined {
  if (url === undefined) return undefined;
  const hash = url.indexOf('#');
  const target = hash === -1 ? url : url.slice(0, hash);
  const start = target.indexOf('?');
  if (start === -1) return undefined;
  // Given with its '?', which URLSearchParams strips once, exactly as URL parsing does (`??token=` names `?token`).
  const value = new URLSearchParams(target.slice(start)).get(name);
  return value === null || value === '' ? undefined : value;
}
