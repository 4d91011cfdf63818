import type { HoldInstructions } from '../../core/proxy-gateway.js';
import { KEEP_ALIVE_TEXT } from '../../sse/encoder.js';
import { EVENT_STREAM_HEADERS } from '../../sse/headers.js';

/** GRIP's cstring format: backslash escapes, so the value fits in one header line. */
function cstring(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\r/g, '\\r').replace(/\n/g, '\\n').replace(/\t/g, '\\t');
}

export interface HoldOptions {
  gripChannels: readonly string[];
  /**
   * Reliable mode: per channel, the sequence number the held stream has
   * reached; the proxy expects the next item's prev-id to match.
   */
  positions: readonly number[] | null;
  /**
   * Channels held without `prev-id` whatever the mode: the control channels
   * a close is published on (see closeHeldStreams).
   */
  controlChannels?: readonly string[];
  body: string;
  /**
   * URL (path and query) the proxy fetches: with `Grip-Last` when it detects
   * a gap (reliable mode), and every `linkTimeoutSeconds` while the stream is idle.
   */
  link: string | null;
  linkTimeoutSeconds?: number | null;
  keepAliveMs: number;
}

/**
 * A proxied request's answer: hold instructions in reliable mode, and the
 * body the client gets first. The proxy holds the stream, not us.
 */
export function holdInstructions(options: HoldOptions): HoldInstructions {
  const { gripChannels, positions, body, link, keepAliveMs } = options;
  const held = gripChannels.map((channel, i) => (positions === null ? channel : `${channel}; prev-id=${positions[i]}`));
  const headers: Record<string, string> = {
    // The proxy passes these on to the client with the stream.
    ...EVENT_STREAM_HEADERS,
    'grip-hold': 'stream',
    // Names were checked against the allowlist, so none carries `,` or `;` into this header.
    'grip-channel': [...held, ...(options.controlChannels ?? [])].join(', '),
    'content-length': String(Buffer.byteLength(body)),
  };
  if (link !== null) {
    const timeout = options.linkTimeoutSeconds ?? null;
    headers['grip-link'] =
      `<${link.replace(/[<>"\s]/g, encodeURIComponent)}>; rel=next${timeout === null ? '' : `; timeout=${timeout}`}`;
  }
  if (keepAliveMs > 0) {
    const seconds = Math.max(1, Math.round(keepAliveMs / 1000));
    headers['grip-keep-alive'] = `${cstring(KEEP_ALIVE_TEXT)}; format=cstring; timeout=${seconds}`;
  }
  return { headers, body };
}
