import diagnostics from 'node:diagnostics_channel';
import type { CloseReason } from './metrics.js';

/**
 * The library's lifecycle on `node:diagnostics_channel`, the Node
 * convention for instrumentation (undici and fastify publish theirs the same
 * way). Every publisher checks `hasSubscribers` first, so the message is
 * not even built while nobody listens.
 */
export const streamOpenChannel = diagnostics.channel('eventstream:stream:open');
export const streamCloseChannel = diagnostics.channel('eventstream:stream:close');
export const publishChannel = diagnostics.channel('eventstream:publish');
export const gripPublishChannel = diagnostics.channel('eventstream:grip:publish');

/** `eventstream:stream:open`: a stream started, served directly or held by a GRIP proxy. */
export interface StreamOpenMessage {
  readonly channels: readonly string[];
  readonly transport: 'node' | 'web';
  readonly held: boolean;
}

/** `eventstream:stream:close`: a direct stream ended. */
export interface StreamCloseMessage {
  readonly channels: readonly string[];
  readonly reason: CloseReason;
  readonly durationMs: number;
  readonly bytesSent: number;
}

/** `eventstream:publish`: events were numbered on a channel by this process. */
export interface PublishMessage {
  readonly channel: string;
  readonly events: ReadonlyArray<{ readonly seq: number; readonly body: string }>;
}

/** `eventstream:grip:publish`: one control-API exchange with one proxy ended. */
export interface GripPublishMessage {
  readonly channel: string;
  readonly proxy: string;
  readonly items: number;
  readonly durationMs: number;
  readonly error?: Error;
}
