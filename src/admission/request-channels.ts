import { HttpRequestError } from '../errors.js';
import { type ChannelNameLimits, channelNameProblem } from './channel-names.js';

export interface RequestChannelLimits extends ChannelNameLimits {
  maxChannelsPerRequest: number;
}

/**
 * Checks what a channel spec produced for one request. Anything wrong is the
 * request's fault (a route parameter, a query value), so it is a 400 with a
 * reason, never a 500.
 */
export function checkRequestChannels(value: unknown, limits: RequestChannelLimits): string[] {
  const list: unknown[] = typeof value === 'string' ? [value] : Array.isArray(value) ? value : [];
  if (list.length === 0) throw new HttpRequestError(400, 'No channel specified.');
  const channels = [...new Set(list)];
  if (channels.length > limits.maxChannelsPerRequest) {
    throw new HttpRequestError(400, `Too many channels: at most ${limits.maxChannelsPerRequest} per request.`);
  }
  for (const channel of channels) {
    const problem = channelNameProblem(channel, limits);
    if (problem !== null) throw new HttpRequestError(400, `Invalid channel: ${problem}.`);
  }
  return channels as string[];
}
