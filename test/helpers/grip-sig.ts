import { createHmac } from 'node:crypto';

/** A Grip-Sig as Pushpin makes it: an HS256 JWT, signed with `key`. */
export function gripSig(key: string, claims: Record<string, unknown> = {}): string {
  const part = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  const unsigned = `${part({ typ: 'JWT', alg: 'HS256' })}.${part({ iss: 'pushpin', exp: Math.floor(Date.now() / 1000) + 3600, ...claims })}`;
  return `${unsigned}.${createHmac('sha256', key).update(unsigned).digest('base64url')}`;
}
