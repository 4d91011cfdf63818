import type { EventStreamOptions } from '../types.js';
import { EventStream } from './event-stream.js';

const REGISTRY = Symbol.for('@fanoutio/eventstream/singletons');

interface SingletonEntry {
  instance: EventStream;
  options: EventStreamOptions | undefined;
}

type GlobalWithRegistry = typeof globalThis & { [REGISTRY]?: Map<string, SingletonEntry> };

function registry(): Map<string, SingletonEntry> {
  const global = globalThis as GlobalWithRegistry;
  global[REGISTRY] ??= new Map();
  return global[REGISTRY];
}

function sameOptions(a: EventStreamOptions | undefined, b: EventStreamOptions | undefined): boolean {
  const left = (a ?? {}) as Record<string, unknown>;
  const right = (b ?? {}) as Record<string, unknown>;
  const keys = new Set([...Object.keys(left), ...Object.keys(right)]);
  for (const key of keys) {
    if (JSON.stringify(left[key]) !== JSON.stringify(right[key])) return false;
  }
  return true;
}

/**
 * One EventStream per `name` for the whole process, kept on `globalThis` so
 * module reloads (the Next.js dev server) find the same instance. The first
 * call creates it with its options; later calls return that instance and,
 * when they pass different options, emit a warning (the options are not
 * applied). Works with and without `new`.
 */
export function getEventStreamSingleton(options?: EventStreamOptions, name = 'eventStream'): EventStream {
  const instances = registry();
  const existing = instances.get(name);
  if (existing !== undefined) {
    if (options !== undefined && !sameOptions(existing.options, options)) {
      process.emitWarning(`getEventStreamSingleton(${JSON.stringify(name)}) already exists; the new options are ignored`, {
        code: 'EVENTSTREAM_SINGLETON_OPTIONS',
      });
    }
    return existing.instance;
  }
  const instance = new EventStream(options);
  instances.set(name, { instance, options });
  return instance;
}
