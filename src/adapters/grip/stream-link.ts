import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** What a held stream was allowed, carried (signed) in its `Grip-Link`: the proxy fetches it without the client's credentials. */
export interface LinkClaims {
  /** The stream the link is for (each held stream has its own link, so the proxy checks on each), or null. */
  readonly id: string | null;
  readonly channels: readonly string[];
  /** When the stream is to be closed (epoch ms), or null when its access does not expire. */
  readonly closeAt: number | null;
}

/** The query parameter of a link that carries its claims. */
export const LINK_PARAMETER = 'eventstream_link';

/**
 * Signs and checks the claims of stream links. Every process behind the
 * same proxies derives the same key from the proxies' keys (so a link one
 * process issued is good at another), unless given one; with no key at
 * all, each process makes its own, and a link is good only where it was issued.
 */
export class LinkSigner {
  private readonly key: Buffer;

  constructor(secrets: ReadonlyArray<string | Uint8Array>) {
    if (secrets.length === 0) {
      this.key = randomBytes(32);
      return;
    }
    const hash = createHash('sha256').update('eventstream stream link v1');
    for (const secret of secrets) hash.update(secret).update('\0');
    this.key = hash.digest();
  }

  /** `url` (path and query) with the signed claims as its link parameter. */
  link(url: string, claims: LinkClaims): string {
    const payload = Buffer.from(JSON.stringify({ i: claims.id, c: claims.channels, e: claims.closeAt })).toString('base64url');
    const token = `${payload}.${this.mac(payload)}`;
    const [path, query = ''] = splitQuery(url);
    const params = new URLSearchParams(query);
    params.set(LINK_PARAMETER, token);
    return `${path}?${params.toString()}`;
  }

  /**
   * The claims of a link request: undefined when `url` carries no link
   * parameter (a client's own request), null when it carries one this
   * signer did not sign (forged, tampered, or from another key).
   */
  claimsOf(url: string): LinkClaims | null | undefined {
    const [, query] = splitQuery(url);
    if (query === undefined) return undefined;
    const token = new URLSearchParams(query).get(LINK_PARAMETER);
    if (token === null) return undefined;
    const dot = token.indexOf('.');
    if (dot <= 0) return null;
    const payload = token.slice(0, dot);
    const given = Buffer.from(token.slice(dot + 1), 'base64url');
    const expected = Buffer.from(this.mac(payload), 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
    try {
      const { i, c, e } = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as {
        i?: unknown;
        c?: unknown;
        e?: unknown;
      };
      if (!Array.isArray(c) || c.length === 0 || !c.every((name) => typeof name === 'string')) return null;
      if (e !== null && typeof e !== 'number') return null;
      return { id: typeof i === 'string' ? i : null, channels: c as string[], closeAt: e };
    } catch {
      return null;
    }
  }

  private mac(payload: string): string {
    return createHmac('sha256', this.key).update(payload).digest('base64url');
  }
}

function splitQuery(url: string): [string, string | undefined] {
  const mark = url.indexOf('?');
  return mark === -1 ? [url, undefined] : [url.slice(0, mark), url.slice(mark + 1)];
}
