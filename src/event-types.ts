/** One server-sent event as a publisher describes it. */
export interface ServerSentEvent<TData = unknown> {
  /** Event type; the browser dispatches it to `addEventListener(event)`. Omitted means `message`. */
  event?: string;
  /** Payload. Serialized as JSON unless the EventStream was given another `serializeData`. */
  data: TData;
  /**
   * Not settable: every event gets its channel's next sequence number as its
   * id, which is what clients resume from. Setting it is a TypeError.
   */
  id?: never;
  /** Reconnection delay the client should use, in milliseconds. */
  retry?: number;
}

/** Turns an event's `data` into the text carried by its `data:` lines. */
export type DataSerializer = (data: unknown) => string;
