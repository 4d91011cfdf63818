/**
 * Every error the library raises carries a stable `code`, so callers can
 * branch on it without parsing messages; docs/errors.md lists each code.
 * `error instanceof EventStreamError` is true for all of them.
 */

export type EventStreamErrorCode =
  | 'ERR_EVENTSTREAM_INVALID_EVENT'
  | 'ERR_EVENTSTREAM_INVALID_CHANNEL'
  | 'ERR_EVENTSTREAM_INVALID_OPTION'
  | 'ERR_EVENTSTREAM_INVALID_ARGUMENT'
  | 'ERR_EVENTSTREAM_BAD_REQUEST'
  | 'ERR_EVENTSTREAM_NOT_ACCEPTABLE'
  | 'ERR_EVENTSTREAM_REQUEST_REFUSED'
  | 'ERR_EVENTSTREAM_CLOSED'
  | 'ERR_EVENTSTREAM_ABORTED'
  | 'ERR_EVENTSTREAM_GRIP_CONFIG'
  | 'ERR_EVENTSTREAM_GRIP_PUBLISH'
  | 'ERR_EVENTSTREAM_STORE';

/** Marks our errors, whichever built-in they extend (argument errors are TypeErrors, as Node's are). */
const EVENTSTREAM_ERROR: unique symbol = Symbol.for('@fanoutio/eventstream.error');

/**
 * The base of every error this library throws. Errors about a bad argument
 * extend TypeError instead (as Node's own ERR_INVALID_ARG_TYPE does), so
 * they cannot also extend this class; they carry its mark, and
 * `instanceof EventStreamError` recognises every one of them.
 */
export class EventStreamError extends Error {
  readonly code: EventStreamErrorCode;

  constructor(code: EventStreamErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EventStreamError';
    this.code = code;
  }

  // `this` is the class on the right of `instanceof`: the base or one of its subclasses.
  static override [Symbol.hasInstance](value: unknown): boolean {
    // Subclasses test their own prototype chain as usual; only the base also accepts the marked TypeErrors.
    // biome-ignore lint/complexity/noThisInStatic: which class is asked is the point.
    if (this !== EventStreamError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === 'object' && value !== null && (value as { [EVENTSTREAM_ERROR]?: true })[EVENTSTREAM_ERROR] === true;
  }
}

/** The mark every error class of ours carries on its prototype (see EventStreamError). */
function mark(errorClass: { prototype: object }): void {
  Object.defineProperty(errorClass.prototype, EVENTSTREAM_ERROR, { value: true });
}

/** A published event or its fields are not valid SSE. Thrown synchronously or as a rejection; nothing is sent. */
export class InvalidEventError extends TypeError {
  readonly code = 'ERR_EVENTSTREAM_INVALID_EVENT' as const;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'InvalidEventError';
  }
}

/**
 * A channel name given to a publish call breaks the channel-name rules, or a
 * channel spec given to `eventStream(spec)` could never name a valid channel.
 */
export class InvalidChannelError extends TypeError {
  readonly code = 'ERR_EVENTSTREAM_INVALID_CHANNEL' as const;
  constructor(message: string) {
    super(message);
    this.name = 'InvalidChannelError';
  }
}

/** An option passed to the constructor is out of range or of the wrong type. */
export class InvalidOptionError extends TypeError {
  readonly code = 'ERR_EVENTSTREAM_INVALID_OPTION' as const;
  constructor(message: string) {
    super(message);
    this.name = 'InvalidOptionError';
  }
}

/** A function of the library was called with an argument (or `this`) it cannot work with. */
export class InvalidArgumentError extends TypeError {
  readonly code = 'ERR_EVENTSTREAM_INVALID_ARGUMENT' as const;
  constructor(message: string) {
    super(message);
    this.name = 'InvalidArgumentError';
  }
}

export type HttpRequestErrorCode =
  | 'ERR_EVENTSTREAM_BAD_REQUEST'
  | 'ERR_EVENTSTREAM_NOT_ACCEPTABLE'
  | 'ERR_EVENTSTREAM_REQUEST_REFUSED';

/**
 * A request refused with a 4xx (or 503) status and a plain-text message. The
 * library raises it for requests it cannot serve (400, 406); a channel
 * function throws it to refuse one itself (`new HttpRequestError(401, 'Log in
 * first')`), and the client gets exactly that status and message. The
 * message is meant for the client, so it must not carry server internals.
 */
export class HttpRequestError extends EventStreamError {
  declare readonly code: HttpRequestErrorCode;
  readonly status: number;
  /** Express's default error handler reads `expose` to decide whether the message may reach the client. */
  readonly expose = true;
  constructor(status: number, message: string, options?: { cause?: unknown }) {
    // Anything else would be a server error or a success, neither of which is a refusal.
    if (!Number.isInteger(status) || !((status >= 400 && status <= 499) || status === 503)) {
      throw new InvalidArgumentError(`HttpRequestError status must be 400-499 or 503, got ${String(status)}`);
    }
    if (typeof message !== 'string') throw new InvalidArgumentError('HttpRequestError message must be a string');
    super(refusalCode(status), message, options);
    this.name = 'HttpRequestError';
    this.status = status;
  }
  get statusCode(): number {
    return this.status;
  }
}

function refusalCode(status: number): HttpRequestErrorCode {
  return status === 400
    ? 'ERR_EVENTSTREAM_BAD_REQUEST'
    : status === 406
      ? 'ERR_EVENTSTREAM_NOT_ACCEPTABLE'
      : 'ERR_EVENTSTREAM_REQUEST_REFUSED';
}

/** The EventStream was closed; it accepts no new streams or publishes. */
export class EventStreamClosedError extends EventStreamError {
  declare readonly code: 'ERR_EVENTSTREAM_CLOSED';
  constructor() {
    super('ERR_EVENTSTREAM_CLOSED', 'EventStream is closed');
    this.name = 'EventStreamClosedError';
  }
}

/**
 * A stream was cut off instead of ended: its client fell more than
 * `maxBufferBytes` behind, or it could not be served. A web Response body
 * errors with it, so the server aborts the response rather than ending it cleanly.
 */
export class EventStreamAbortedError extends EventStreamError {
  declare readonly code: 'ERR_EVENTSTREAM_ABORTED';
  constructor() {
    super('ERR_EVENTSTREAM_ABORTED', 'event stream aborted');
    this.name = 'EventStreamAbortedError';
  }
}

/** A GRIP option that cannot work: a bad GRIP_URL, control URI or key. Raised by the constructor. */
export class GripConfigError extends EventStreamError {
  declare readonly code: 'ERR_EVENTSTREAM_GRIP_CONFIG';
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_EVENTSTREAM_GRIP_CONFIG', message, options);
    this.name = 'GripConfigError';
  }
}

/**
 * A GRIP proxy did not accept a publish. `status` is the HTTP status, or -1
 * when no response arrived (connection refused, timeout); `body` is the
 * proxy's response text, or what went wrong. `cause` is the underlying
 * error (the one with the code: ECONNREFUSED, ECONNRESET, UND_ERR_SOCKET,
 * or the TimeoutError), and the message names it too. Local subscribers
 * and the store had the event regardless.
 */
export class GripPublishError extends EventStreamError {
  declare readonly code: 'ERR_EVENTSTREAM_GRIP_PUBLISH';
  readonly proxy: string;
  readonly status: number;
  readonly body: string;
  constructor(proxy: string, status: number, body: string, options?: { cause?: unknown }) {
    const detail = status === -1 ? body : `HTTP ${status}: ${body.trim().slice(0, 500)}`;
    super('ERR_EVENTSTREAM_GRIP_PUBLISH', `GRIP publish to ${proxy} failed: ${detail}`, options);
    this.name = 'GripPublishError';
    this.proxy = proxy;
    this.status = status;
    this.body = body;
  }
}

/**
 * The event store (Redis) could not append or read: it is down, unreachable
 * or answered with an error. A publish that fails this way was not stored
 * and reached no subscriber.
 */
export class EventStoreError extends EventStreamError {
  declare readonly code: 'ERR_EVENTSTREAM_STORE';
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_EVENTSTREAM_STORE', message, options);
    this.name = 'EventStoreError';
  }
}

for (const errorClass of [EventStreamError, InvalidEventError, InvalidChannelError, InvalidOptionError, InvalidArgumentError])
  mark(errorClass);
