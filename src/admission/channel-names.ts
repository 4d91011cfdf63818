import { InvalidChannelError } from '../errors.js';

/**
 * Channel names reach GRIP headers (`Grip-Channel` is split on `,` and `;`),
 * logs and URLs, so only a conservative set of characters is allowed:
 * ASCII letters, digits and `- _ . : @ / ~ + = !`. Everything else, including
 * `,` `;` `"` `{` `}`, whitespace and control characters, is refused.
 */
const CHANNEL_NAME = /^[A-Za-z0-9\-_.:@/~+=!]+$/;

export const CHANNEL_NAME_CHARACTERS = 'A-Z a-z 0-9 - _ . : @ / ~ + = !';

/** Whether `text` (a part of a name, say the literal text of a template) uses only channel-name characters. */
export function usesChannelNameCharacters(text: string): boolean {
  return CHANNEL_NAME.test(text);
}

export interface ChannelNameLimits {
  maxChannelNameLength: number;
}

/** Returns a reason the name is refused, or null when it is valid. */
export function channelNameProblem(name: unknown, limits: ChannelNameLimits): string | null {
  if (typeof name !== 'string') return `channel name must be a string, got ${name === null ? 'null' : typeof name}`;
  if (name.length === 0) return 'channel name is empty';
  if (name.length > limits.maxChannelNameLength) {
    return `channel name is longer than ${limits.maxChannelNameLength} characters`;
  }
  if (!CHANNEL_NAME.test(name)) {
    return `channel name ${JSON.stringify(name)} contains a character outside ${CHANNEL_NAME_CHARACTERS}`;
  }
  return null;
}

/** For publish calls: a bad name is a programming error, so it throws. */
export function assertChannelName(name: unknown, limits: ChannelNameLimits): asserts name is string {
  const problem = channelNameProblem(name, limits);
  if (problem !== null) throw new InvalidChannelError(problem);
}
