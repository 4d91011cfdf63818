/**
 * Where one store keeps a channel in Redis. The braces around the channel
 * name are a hash tag: a channel's keys hash alike, whatever their suffix.
 */
export interface ChannelKeys {
  /** The counter: the last seq handed out. */
  readonly seq: string;
  /** The stream of recent events. */
  readonly log: string;
  /** The pub/sub channel that announces each append. */
  readonly pubsub: string;
  /** Shared by every channel of the prefix: where numbering starts (see NUMBERING in scripts.ts). */
  readonly epoch: string;
}

export function channelKeys(keyPrefix: string, channel: string): ChannelKeys {
  const base = `${keyPrefix}{${channel}}`;
  // `:feed` is what running stores already publish and subscribe on; processes of two versions must meet there.
  return { seq: `${base}:seq`, log: `${base}:log`, pubsub: `${base}:feed`, epoch: `${keyPrefix}epoch` };
}

/** Stream ids are `0-<seq>`. */
export function seqOf(id: string): number {
  return Number(id.slice(id.indexOf('-') + 1));
}
