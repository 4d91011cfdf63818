import { HttpRequestError } from '../errors.js';
import type { SseRequest } from './types.js';

type Awaitable<T> = T | Promise<T>;

/**
 * Which channels a request listens to: a name, a list of names, templates
 * with `{param}` tokens filled from the route (`req.params`, Express) or the
 * query (`req.query`, Next.js pages router), or a function of the request.
 */
export type ChannelSpec<TRequest = SseRequest> =
  | string
  | readonly string[]
  | ((req: TRequest) => Awaitable<string | readonly string[]>);

export type ChannelResolver = (req: SseRequest) => Awaitable<unknown>;

const TOKEN = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

export function compileChannelSpec(spec: unknown): ChannelResolver {
  if (typeof spec === 'function') return spec as ChannelResolver;
  if (typeof spec === 'string') return compileTemplates([spec]);
  if (Array.isArray(spec)) {
    if (spec.length === 0) throw new TypeError('eventStream([]) needs at least one channel');
    for (const entry of spec) {
      if (typeof entry !== 'string') throw new TypeError('eventStream([...]) takes channel names as strings');
    }
    return compileTemplates(spec as string[]);
  }
  throw new TypeError('eventStream(spec) takes a channel name, an array of names, or a function (req) => names');
}

function compileTemplates(templates: readonly string[]): ChannelResolver {
  if (!templates.some((t) => t.includes('{'))) {
    const fixed = [...templates];
    return () => fixed;
  }
  return (req) => templates.map((template) => fillTemplate(template, req));
}

function fillTemplate(template: string, req: SseRequest): string {
  return template.replace(TOKEN, (_match, name: string) => routeValue(req, name));
}

function routeValue(req: SseRequest, name: string): string {
  const value = lookup(req.params, name) ?? lookup(req.query, name);
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
  return Object.prototype.hasOwnProperty.call(source, name) ? (source as Record<string, unknown>)[name] : undefined;
}
