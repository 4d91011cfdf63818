/** A snapshot of what an EventStream holds, for monitoring and leak checks. */
export interface EventStreamStats {
  /** Local subscribers per channel (channels without subscribers are omitted). */
  channels: Record<string, number>;
  /** Live channel hubs (channels with a subscriber or an open writer). */
  hubs: number;
  /** Open direct event-stream responses. */
  streams: number;
  /** Events handed to hubs since construction. */
  eventsPublished: number;
  /** Clients disconnected for falling more than `maxBufferBytes` behind. */
  slowClientsDropped: number;
}
