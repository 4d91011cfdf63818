import { HttpRequestError } from '../errors.js';
import type { SseRequest } from './types.js';

type Awaitable<T> = T | Promise<T>;

/**
 * Which channels a request listens to: a name, a list of names, templates
 * with `{param}` tokens filled from the route (`req.params`, Express; the
 * route context's `params`, Next.js App Router) or the query (`req.query`,
 * Next.js pages router; the URL's search params for web requests), or a
 * function of the request.
 */
export type ChannelSpec<TRequest = SseRequest, TContext = never> =
  | string
  | readonly string[]
  | ((req: TRequest, context: TContext) => Awaitable<string | readonly string[]>);

/** Where `{param}` tokens are looked up: `params` first, then `query`. */
export interface RouteValues {
  params?: unknown;
  query?: unknown;
}

export type ChannelResolver<TRequest, TContext> = (req: TRequest, context: TContext) => Awaitable<unknown>;

const TOKEN = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

export function compileChannelSpec<TRequest, TContext>(
  spec: unknown,
  routeValues: (req: TRequest, context: TContext) => Awaitable<RouteValues>,
): ChannelResolver<TRequest, TContext> {
  if (typeof spec === 'function') return spec as ChannelResolver<TRequest, TContext>;
  if (typeof spec === 'string') return compileTemplates([spec], routeValues);
  if (Array.isArray(spec)) {
    if (spec.length === 0) throw new TypeError('eventStream([]) needs at least one channel');
    for (const entry of spec) {
      if (typeof entry !== 'string') throw new TypeError('eventStream([...]) takes channel names as strings');
    }
    return compileTemplates(spec as string[], routeValues);
  }
  throw new TypeError('eventStream(spec) takes a channel name, an array of names, or a function (req) => names');
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
  if (source instanceof URLSearchParams) return source.getAll(name).length > 1 ? source.getAll(name) : (source.get(name) ?? undefined);
  return Object.prototype.hasOwnProperty.call(source, name) ? (source as Record<string, unknown>)[name] : undefined;
}
