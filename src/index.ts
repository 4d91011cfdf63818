export { EventStream, type WebEventStreamHandler, type WebRouteContext } from './event-stream.js';
export type { EventStreamStats } from './stats.js';
export { getEventStreamSingleton } from './singleton.js';
export { ChannelPublisher } from './channel/publisher.js';
export { CHANNEL_NAME_CHARACTERS } from './channel/names.js';
export type { EventStreamOptions } from './options.js';
export { MemoryEventStore, type MemoryEventStoreOptions } from './history/memory-store.js';
export type { EventStore, HistoryPage, MaybePromise, StoredEvent, StoreListener, StoreWatch } from './history/store.js';
export type { ServerSentEvent, DataSerializer } from './sse/event.js';
export type { ChannelSpec } from './http/channel-spec.js';
export type { EventStreamHandler, NextFunction, SseRequest, SseResponse } from './http/types.js';
export type { GripOption, GripProxyConfig, GripPublisherClientLike, GripPublisherLike } from './grip/options.js';
export {
  EventStoreError,
  EventStreamAbortedError,
  EventStreamClosedError,
  GripConfigError,
  GripPublishError,
  HttpRequestError,
  InvalidArgumentError,
  InvalidChannelError,
  InvalidEventError,
  InvalidOptionError,
  type EventStreamErrorCode,
  type HttpRequestErrorCode,
} from './errors.js';
