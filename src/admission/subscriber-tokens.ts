import { decodeJwt, type JWTPayload, type JWTVerifyOptions, errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import { checkOptionKeys, type OptionKeys } from '../common/option-checks.js';
import { HttpRequestError, InvalidArgumentError, InvalidOptionError } from '../errors.js';
import type {
  AuthorizeFunction,
  CreateSubscriberTokenOptions,
  NodeRequest,
  SubscriberTokenSecret,
  SubscriberTokensOptions,
} from '../types.js';
import { usesChannelNameCharacters } from './channel-names.js';
import { bearerToken, cookieValue, credentialSources, queryValue } from './request-credentials.js';

const ALGORITHM = 'HS256';

/** Below this an HS256 key can be brute-forced offline from a single token. */
const MIN_SECRET_BYTES = 32;

/**
 * Longer than any cookie a browser keeps (4 KiB) with room for a long channel
 * list; past it the text is refused before any decoding, so a hostile
 * multi-megabyte query string costs nothing.
 */
const MAX_TOKEN_CHARS = 16 * 1024;

/** The cookie names RFC 6265 allows (an HTTP token). */
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

const TOKENS_OPTION_KEYS = {
  secret: true,
  issuer: true,
  audience: true,
  cookie: true,
  query: true,
} as const satisfies OptionKeys<SubscriberTokensOptions>;
const CREATE_OPTION_KEYS = {
  secret: true,
  channels: true,
  expiresIn: true,
  subject: true,
  issuer: true,
  audience: true,
} as const satisfies OptionKeys<CreateSubscriberTokenOptions>;

/**
 * An `authorize` function that admits requests carrying a subscriber token
 * (made by `createSubscriberToken`) whose `channels` claim allows every
 * channel asked for, until the token expires.
 */
export function subscriberTokens(options: SubscriberTokensOptions): AuthorizeFunction<NodeRequest | Request> {
  const owner = 'subscriberTokens';
  assertOptionsObject(options, owner);
  checkOptionKeys(options, TOKENS_OPTION_KEYS, owner);
  const key = secretKey(options.secret, owner);
  const issuer = optionalString(options.issuer, `${owner}: issuer`);
  const audience = optionalAudience(options.audience, `${owner}: audience`);
  const cookie = sourceName(options.cookie, 'eventstream_token', `${owner}: cookie`);
  if (cookie !== false && !COOKIE_NAME.test(cookie))
    throw new InvalidOptionError(`${owner}: cookie must be a valid cookie name, got ${JSON.stringify(cookie)}`);
  const query = sourceName(options.query, 'token', `${owner}: query`);

  const verifyOptions: JWTVerifyOptions = { algorithms: [ALGORITHM], requiredClaims: ['exp'] };
  if (issuer !== undefined) verifyOptions.issuer = issuer;
  if (audience !== undefined) verifyOptions.audience = [...audience];
  const where = describeSources(cookie, query);

  return async function authorizeSubscriberToken(request, channels) {
    const token = readToken(request, cookie, query);
    if (token === undefined) throw new HttpRequestError(401, `No subscriber token: send ${where}.`);
    if (token === null) throw new HttpRequestError(401, 'Malformed Authorization header: expected "Bearer <token>".');
    if (token.length > MAX_TOKEN_CHARS) throw new HttpRequestError(401, 'Subscriber token is too long.');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, key, verifyOptions));
    } catch (error) {
      if (error instanceof joseErrors.JOSEError) throw new HttpRequestError(401, refusalReason(error), { cause: error });
      throw error;
    }
    const allowed = payload.channels;
    if (!Array.isArray(allowed) || !allowed.every((entry) => typeof entry === 'string')) {
      throw new HttpRequestError(401, 'Subscriber token is malformed: its "channels" claim must be a list of names.');
    }
    const refused = channels.filter((channel) => !allows(allowed as string[], channel));
    if (refused.length > 0) {
      const names = refused.map((name) => JSON.stringify(name)).join(', ');
      throw new HttpRequestError(403, `Subscriber token does not allow channel${refused.length === 1 ? '' : 's'} ${names}.`);
    }
    // requiredClaims made jose check that exp is present and a number.
    return { until: (payload.exp as number) * 1000 };
  };
}

/** Resolves to a signed HS256 token allowing `channels`, for the app to hand to its page. */
export async function createSubscriberToken(options: CreateSubscriberTokenOptions): Promise<string> {
  const owner = 'createSubscriberToken';
  assertOptionsObject(options, owner);
  checkOptionKeys(options, CREATE_OPTION_KEYS, owner);
  const key = secretKey(options.secret, owner);
  const channels = channelEntries(options.channels, owner);
  const subject = optionalString(options.subject, `${owner}: subject`);
  const issuer = optionalString(options.issuer, `${owner}: issuer`);
  const audience = optionalAudience(options.audience, `${owner}: audience`);
  const { expiresIn } = options;
  if (typeof expiresIn === 'number') {
    if (!Number.isSafeInteger(expiresIn) || expiresIn <= 0) {
      throw new InvalidOptionError(
        `${owner}: expiresIn must be a positive whole number of seconds or a time span, got ${String(expiresIn)}`,
      );
    }
  } else if (typeof expiresIn !== 'string') {
    throw new InvalidOptionError(`${owner}: expiresIn must be a number of seconds or a time span, got ${describe(expiresIn)}`);
  }

  let jwt: SignJWT;
  let issuedAt: number;
  do {
    issuedAt = Math.floor(Date.now() / 1000);
    jwt = new SignJWT({ channels: [...channels] }).setProtectedHeader({ alg: ALGORITHM, typ: 'JWT' }).setIssuedAt(issuedAt);
    if (typeof expiresIn === 'number') {
      // A number given to jose is an absolute time; ours is a lifetime.
      jwt.setExpirationTime(issuedAt + expiresIn);
    } else {
      try {
        jwt.setExpirationTime(expiresIn);
      } catch {
        throw new InvalidOptionError(
          `${owner}: expiresIn ${JSON.stringify(expiresIn)} is not a time span such as '15m' or '2 hours'`,
        );
      }
    }
    // jose counts a span from its own reading of the clock; should a second begin in between, exp - iat would be one off.
  } while (Math.floor(Date.now() / 1000) !== issuedAt);
  if (subject !== undefined) jwt.setSubject(subject);
  if (issuer !== undefined) jwt.setIssuer(issuer);
  if (audience !== undefined) jwt.setAudience(audience.length === 1 ? audience[0]! : [...audience]);
  const token = await jwt.sign(key);
  // jose accepts spans into the past ('1h ago'); a token born expired is a mistake worth failing loudly.
  const { exp } = decodeJwt(token);
  if (exp === undefined || exp <= issuedAt)
    throw new InvalidOptionError(`${owner}: expiresIn must lie in the future, got ${JSON.stringify(expiresIn)}`);
  return token;
}

/**
 * Whether an entry of a token's `channels` claim allows `channel`: an entry
 * ending in `*` allows exactly the names starting with the text before it
 * (`user-4*` allows `user-42`; `user-*` does not allow `users`; a lone `*`
 * allows all), any other entry only the name itself.
 */
export function allows(entries: readonly string[], channel: string): boolean {
  return entries.some((entry) => (entry.endsWith('*') ? channel.startsWith(entry.slice(0, -1)) : entry === channel));
}

function readToken(request: NodeRequest | Request, cookie: string | false, query: string | false): string | undefined | null {
  const sources = credentialSources(request);
  const bearer = bearerToken(sources.authorization);
  if (bearer !== undefined) return bearer;
  const fromCookie = cookie === false ? undefined : cookieValue(sources.cookie, cookie);
  if (fromCookie !== undefined) return fromCookie;
  return query === false ? undefined : queryValue(sources.url, query);
}

function describeSources(cookie: string | false, query: string | false): string {
  const places = ['an "Authorization: Bearer <token>" header'];
  if (cookie !== false) places.push(`the ${JSON.stringify(cookie)} cookie`);
  if (query !== false) places.push(`the ${JSON.stringify(query)} query parameter`);
  return places.length === 1 ? places[0]! : `${places.slice(0, -1).join(', ')} or ${places.at(-1)!}`;
}

/** Why a token was refused, in words a client can act on; jose's own message names library internals. */
function refusalReason(error: InstanceType<typeof joseErrors.JOSEError>): string {
  if (error instanceof joseErrors.JWTExpired) return 'Subscriber token has expired.';
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    if (error.claim === 'exp') return 'Subscriber token has no valid expiry ("exp").';
    if (error.claim === 'iss') return 'Subscriber token was issued by someone else ("iss").';
    if (error.claim === 'aud') return 'Subscriber token is meant for another audience ("aud").';
    if (error.claim === 'nbf') return 'Subscriber token is not valid yet ("nbf").';
    return 'Subscriber token has an invalid claim.';
  }
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return 'Subscriber token must be signed with HS256.';
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return 'Subscriber token signature is invalid.';
  return 'Subscriber token is malformed.';
}

function assertOptionsObject(options: unknown, owner: string): asserts options is object {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidArgumentError(`${owner}: options must be an object, got ${describe(options)}`);
  }
}

function secretKey(secret: SubscriberTokenSecret | undefined, owner: string): Uint8Array {
  let bytes: Uint8Array;
  if (typeof secret === 'string') bytes = new TextEncoder().encode(secret);
  else if (secret instanceof Uint8Array)
    bytes = Uint8Array.from(secret); // a copy: the caller may reuse its buffer
  else throw new InvalidArgumentError(`${owner}: secret must be a string or a Uint8Array, got ${describe(secret)}`);
  if (bytes.length < MIN_SECRET_BYTES) {
    throw new InvalidArgumentError(
      `${owner}: secret must be at least ${MIN_SECRET_BYTES} bytes (HS256 with a shorter key can be brute-forced), got ${bytes.length}`,
    );
  }
  return bytes;
}

function channelEntries(channels: unknown, owner: string): readonly string[] {
  if (!Array.isArray(channels) || channels.length === 0) {
    throw new InvalidArgumentError(`${owner}: channels must be a non-empty array of channel names, got ${describe(channels)}`);
  }
  for (const entry of channels as unknown[]) {
    if (typeof entry !== 'string') throw new InvalidArgumentError(`${owner}: channels must hold strings, got ${describe(entry)}`);
    // Only a trailing `*` means anything; one elsewhere could never match a valid name, so it is a typo.
    const literal = entry.endsWith('*') ? entry.slice(0, -1) : entry;
    if (entry === '' || (literal !== '' && !usesChannelNameCharacters(literal))) {
      throw new InvalidArgumentError(
        `${owner}: channel entry ${JSON.stringify(entry)} is neither a channel name nor a prefix ending in "*"`,
      );
    }
  }
  return channels as string[];
}

function optionalString(value: unknown, label: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '')
    throw new InvalidOptionError(`${label} must be a non-empty string, got ${describe(value)}`);
  return value;
}

function optionalAudience(value: unknown, label: string): readonly string[] | undefined {
  if (value === undefined) return undefined;
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || list.length === 0 || !list.every((v) => typeof v === 'string' && v !== '')) {
    throw new InvalidOptionError(`${label} must be a non-empty string or a non-empty array of them, got ${describe(value)}`);
  }
  return list as string[];
}

function sourceName(value: unknown, fallback: string, label: string): string | false {
  if (value === undefined) return fallback;
  if (value === false) return false;
  if (typeof value !== 'string' || value === '')
    throw new InvalidOptionError(`${label} must be a non-empty string or false, got ${describe(value)}`);
  return value;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return typeof value;
}
