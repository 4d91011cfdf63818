import { channelNameProblem } from '../admission/channel-names.js';
import { checkOptionKeys, integerOption, type OptionKeys } from '../common/option-checks.js';
import { InvalidOptionError } from '../errors.js';
import { jsonSerializer } from '../sse/encoder.js';
import type {
  AuthorizeFunction,
  ClientKeyFunction,
  DataSerializer,
  EventStore,
  EventStreamOptions,
  GripOption,
  NodeRequest,
} from '../types.js';

export interface ResolvedOptions {
  authorize: AuthorizeFunction | null;
  grip: GripOption | null;
  gripPrefix: string;
  gripReliable: boolean;
  gripPublishTimeout: number;
  gripCheckInterval: number;
  keepAliveInterval: number;
  clientRetry: number | null;
  maxBufferBytes: number;
  maxEventBytes: number;
  maxChannelNameLength: number;
  maxChannelsPerRequest: number;
  maxStreams: number | null;
  maxStreamsPerClient: number | null;
  clientKey: ClientKeyFunction;
  serializeData: DataSerializer;
  store: EventStore | null;
}

/**
 * Largest event that fits one publish request to Pushpin, which refuses
 * bodies of 1,000,000 bytes or more: the event's text is JSON-escaped into
 * the request, which at worst doubles it (each `"` and `\` of JSON data is
 * escaped again), plus the item's envelope and id line.
 */
const GRIP_MAX_EVENT_BYTES = 480 * 1024;

const OPTION_KEYS = {
  grip: true,
  gripPrefix: true,
  gripReliable: true,
  gripPublishTimeout: true,
  gripCheckInterval: true,
  keepAliveInterval: true,
  clientRetry: true,
  maxBufferBytes: true,
  maxEventBytes: true,
  maxChannelNameLength: true,
  maxChannelsPerRequest: true,
  maxStreams: true,
  maxStreamsPerClient: true,
  clientKey: true,
  serializeData: true,
  store: true,
  authorize: true,
} as const satisfies OptionKeys<EventStreamOptions>;

export function resolveOptions(options: EventStreamOptions | null | undefined): ResolvedOptions {
  const given = options ?? {};
  if (typeof given !== 'object') throw new InvalidOptionError('EventStream options must be an object');
  checkOptionKeys(given, OPTION_KEYS, 'EventStream');
  const gripPrefix = given.gripPrefix ?? 'events-';
  if (typeof gripPrefix !== 'string') throw new InvalidOptionError('options.gripPrefix must be a string');
  if (gripPrefix !== '' && channelNameProblem(gripPrefix, { maxChannelNameLength: 256 }) !== null) {
    throw new InvalidOptionError(`options.gripPrefix ${JSON.stringify(gripPrefix)} may only contain channel-name characters`);
  }
  const serializeData = given.serializeData ?? jsonSerializer;
  const store = checkStore(given.store);
  const gripReliable = given.gripReliable ?? store?.shared === true;
  if (typeof gripReliable !== 'boolean') throw new InvalidOptionError('options.gripReliable must be a boolean');
  if (typeof serializeData !== 'function') throw new InvalidOptionError('options.serializeData must be a function');
  const maxBufferBytes = integerOption(given.maxBufferBytes, 'options.maxBufferBytes', 1024 * 1024, 1024);
  // Half the buffer: a client less than half a buffer behind always has room for the largest event.
  // Through a GRIP proxy the event must also fit its publish request (see GRIP_MAX_EVENT_BYTES).
  const grip = given.grip ?? null;
  const eventBound = Math.min(Math.floor(maxBufferBytes / 2), grip === null ? Number.POSITIVE_INFINITY : GRIP_MAX_EVENT_BYTES);
  const maxEventBytes = integerOption(given.maxEventBytes, 'options.maxEventBytes', eventBound, 1);
  if (maxEventBytes > eventBound) {
    throw new InvalidOptionError(
      eventBound === GRIP_MAX_EVENT_BYTES
        ? `options.maxEventBytes (${maxEventBytes}) may be at most ${GRIP_MAX_EVENT_BYTES} with a GRIP proxy: Pushpin refuses publish requests of 1,000,000 bytes or more, and an event escaped into one can double in size`
        : `options.maxEventBytes (${maxEventBytes}) may be at most half of options.maxBufferBytes (${maxBufferBytes}), so a client that reads always has room for such an event; raise maxBufferBytes too`,
    );
  }
  return {
    authorize: checkAuthorize(given.authorize, 'options.authorize'),
    grip,
    gripPrefix,
    gripReliable,
    gripPublishTimeout: integerOption(given.gripPublishTimeout, 'options.gripPublishTimeout', 10_000, 1),
    gripCheckInterval: integerOption(given.gripCheckInterval, 'options.gripCheckInterval', 30_000, 0),
    keepAliveInterval: integerOption(given.keepAliveInterval, 'options.keepAliveInterval', 15_000, 0),
    clientRetry: given.clientRetry === undefined ? null : integerOption(given.clientRetry, 'options.clientRetry', 0, 0),
    maxBufferBytes,
    maxEventBytes,
    maxChannelNameLength: integerOption(given.maxChannelNameLength, 'options.maxChannelNameLength', 128, 1),
    maxChannelsPerRequest: integerOption(given.maxChannelsPerRequest, 'options.maxChannelsPerRequest', 16, 1),
    maxStreams: given.maxStreams === undefined ? null : integerOption(given.maxStreams, 'options.maxStreams', 0, 0),
    maxStreamsPerClient:
      given.maxStreamsPerClient === undefined
        ? null
        : integerOption(given.maxStreamsPerClient, 'options.maxStreamsPerClient', 0, 1),
    clientKey: checkClientKey(given.clientKey),
    serializeData,
    store,
  };
}

function checkStore(store: unknown): EventStore | null {
  if (store === undefined || store === null) return null;
  const candidate = store as Partial<EventStore>;
  for (const method of ['append', 'readSince', 'head'] as const) {
    if (typeof candidate[method] !== 'function') throw new InvalidOptionError(`options.store has no ${method}() method`);
  }
  if (candidate.shared === true && typeof candidate.watch !== 'function') {
    throw new InvalidOptionError('options.store is shared but has no watch() method');
  }
  return store as EventStore;
}

/** An `authorize` option, instance-wide or per route: a function, or absent. */
export function checkAuthorize(value: unknown, label: string): AuthorizeFunction | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'function')
    throw new InvalidOptionError(`${label} must be a function (request, channels) => boolean | { until }`);
  return value as AuthorizeFunction;
}

/**
 * Who a request comes from, for `maxStreamsPerClient`: by default the
 * remote address of a Node request. A web Request carries none, so web
 * requests are not counted per client unless `clientKey` says who they are.
 */
function remoteAddress(request: NodeRequest | Request): string | null {
  if (typeof Request !== 'undefined' && request instanceof Request) return null;
  return (request as NodeRequest).socket?.remoteAddress ?? null;
}

function checkClientKey(value: unknown): ClientKeyFunction {
  if (value === undefined || value === null) return remoteAddress;
  if (typeof value !== 'function') throw new InvalidOptionError('options.clientKey must be a function (request) => string');
  return value as ClientKeyFunction;
}
