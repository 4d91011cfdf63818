import { HttpRequestError, InvalidChannelError } from '../errors.js';
import { CHANNEL_NAME_CHARACTERS, channelNameProblem, usesChannelNameCharacters } from './channel-names.js';
import type { RequestChannelLimits } from './request-channels.js';

type Awaitable<T> = T | Promise<T>;

/** Where `{param}` tokens are looked up: `params` first, then `query`. */
export interface RouteValues {
  params?: unknown;
  query?: unknown;
}

export type ChannelResolver<TRequest, TContext> = (req: TRequest, context: TContext) => Awaitable<unknown>;

const TOKEN = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g;
/** What is left of a template once its tokens are taken out: any brace left is malformed. */
const BRACE = /[{}]/;

/**
 * Turns a spec into a function of the request. A spec that could only ever
 * produce refused names (a literal `'my room'`, a malformed `'{room'`, more
 * channels than a request may have) is a programming error: it throws
 * InvalidChannelError here, when the route is made, instead of answering
 * every request with a 400.
 */
export function compileChannelSpec<TRequest, TContext>(
  spec: unknown,
  routeValues: (req: TRequest, context: TContext) => Awaitable<RouteValues>,
  limits: RequestChannelLimits,
): ChannelResolver<TRequest, TContext> {
  if (typeof spec === 'function') return spec as ChannelResolver<TRequest, TContext>;
  if (typeof spec === 'string') {
    checkTemplate(spec, limits);
    return compileTemplates([spec], routeValues);
  }
  if (Array.isArray(spec)) {
    if (spec.length === 0) throw new InvalidChannelError('eventStream([]) needs at least one channel');
    for (const entry of spec) {
      if (typeof entry !== 'string') {
        throw new InvalidChannelError(`eventStream([...]) takes channel names as strings, got ${describe(entry)}`);
      }
      checkTemplate(entry, limits);
    }
    const distinct = new Set(spec as string[]).size;
    if (distinct > limits.maxChannelsPerRequest) {
      throw new InvalidChannelError(
        `eventStream([...]) names ${distinct} channels; a request may listen to at most ${limits.maxChannelsPerRequest} (maxChannelsPerRequest)`,
      );
    }
    return compileTemplates(spec as string[], routeValues);
  }
  throw new InvalidChannelError(
    `eventStream(spec) takes a channel name, an array of names, or a function (req) => names; got ${describe(spec)}`,
  );
}

/**
 * A literal name must be a valid channel name; a template's literal parts
 * must be made of channel-name characters, and every brace must belong to a
 * `{param}` token.
 */
function checkTemplate(template: string, limits: RequestChannelLimits): void {
  const literal = template.replace(TOKEN, '');
  if (BRACE.test(literal)) {
    throw new InvalidChannelError(
      `eventStream(${JSON.stringify(template)}): malformed template; a parameter is written {name}, name made of letters, digits and _, not starting with a digit`,
    );
  }
  if (literal.length === template.length) {
    const problem = channelNameProblem(template, limits);
    if (problem !== null) throw new InvalidChannelError(`eventStream(${JSON.stringify(template)}): ${problem}`);
    return;
  }
  if (literal !== '' && !usesChannelNameCharacters(literal)) {
    throw new InvalidChannelError(
      `eventStream(${JSON.stringify(template)}): the text around the parameters may only contain ${CHANNEL_NAME_CHARACTERS}`,
    );
  }
  // Each parameter adds at least one character.
  const tokens = template.match(TOKEN)!.length;
  if (literal.length + tokens > limits.maxChannelNameLength) {
    throw new InvalidChannelError(
      `eventStream(${JSON.stringify(template)}): every name it makes is longer than ${limits.maxChannelNameLength} characters (maxChannelNameLength)`,
    );
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value;
}

function compileTemplates<TRequest, TContext>(
  templates: readonly string[],
  routeValues: (req: TRequest, context: TContext) => Awaitable<RouteValues>,
): ChannelResolver<TRequest, TContext> {
  if (!templates.some((t) => t.includes('{'))) {
    const fixed = [...templates];
    return () => fixed;
  }
  return async (req, context) => {
    const values = await routeValues(req, context);
    return templates.map((template) => template.replace(TOKEN, (_match, name: string) => routeValue(values, name)));
  };
}

function routeValue(values: RouteValues, name: string): string {
  const value = lookup(values.params, name) ?? lookup(values.query, name);
  if (value === undefined || value === '') {
    throw new HttpRequestError(400, `Missing route parameter "${name}" for the channel name.`);
  }
  if (typeof value !== 'string') {
    throw new HttpRequestError(400, `Route parameter "${name}" must be a single value.`);
  }
  return value;
}

function lookup(source: unknown, name: string): unknown {
  if (source === null || typeof source !== 'object') return undefined;
  if (source instanceof URLSearchParams)
    return source.getAll(name).length > 1 ? source.getAll(name) : (source.get(name) ?? undefined);
  return Object.hasOwn(source, name) ? (source as Record<string, unknown>)[name] : undefined;
}
