export { EventStream, type WebEventStreamHandler, type WebRouteContext } from './api/event-stream.js';
export type { EventStreamStats } from './stats-types.js';
export { getEventStreamSingleton } from './api/singleton.js';
export { ChannelPublisher } from './api/channel-publisher.js';
export { CHANNEL_NAME_CHARACTERS } from './admission/channel-names.js';
export type { EventStreamOptions } from './core/options.js';
export { MemoryEventStore, type MemoryEventStoreOptions } from './stores/memory-store.js';
export type { EventStore, HistoryPage, MaybePromise, StoredEvent, StoreListener, StoreWatch } from './stores/event-store.js';
export type { ServerSentEvent, DataSerializer } from './event-types.js';
export type { ChannelSpec } from './admission/channel-spec.js';
export type { EventStreamHandler, NextFunction, SseRequest, SseResponse } from './types.js';
export type { GripOption, GripProxyConfig, GripPublisherClientLike, GripPublisherLike } from './grip-types.js';
export {
  EventStoreError,
  EventStreamError,
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
