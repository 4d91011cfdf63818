// The public API. Everything not exported here is internal and may change in any release.

export { CHANNEL_NAME_CHARACTERS } from './admission/channel-names.js';
export { createSubscriberToken, subscriberTokens } from './admission/subscriber-tokens.js';
export { ChannelPublisher } from './api/channel-publisher.js';
export { EventStream } from './api/event-stream.js';
export { getEventStreamSingleton } from './api/singleton.js';
export {
  EventStoreError,
  EventStreamAbortedError,
  EventStreamClosedError,
  EventStreamError,
  type EventStreamErrorCode,
  GripConfigError,
  GripPublishError,
  HttpRequestError,
  type HttpRequestErrorCode,
  InvalidArgumentError,
  InvalidChannelError,
  InvalidEventError,
  InvalidOptionError,
} from './errors.js';
export { MemoryEventStore } from './stores/memory-store.js';
export type {
  Authorization,
  AuthorizeFunction,
  ChannelEventWritable,
  ChannelSpec,
  CreateSubscriberTokenOptions,
  DataSerializer,
  EventMap,
  EventOf,
  EventStore,
  EventStreamHandler,
  EventStreamOptions,
  EventStreamStats,
  GripOption,
  GripProxyConfig,
  GripPublisherClientLike,
  GripPublisherLike,
  HistoryPage,
  MaybePromise,
  MemoryEventStoreOptions,
  NextFunction,
  NodeRequest,
  RouteOptions,
  ServerSentEvent,
  SseRequest,
  SseResponse,
  StoredEvent,
  StoreListener,
  StoreLossListener,
  StoreWatch,
  SubscriberTokenSecret,
  SubscriberTokensOptions,
  WebEventStreamHandler,
  WebRouteContext,
} from './types.js';
