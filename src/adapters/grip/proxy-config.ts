import { type IPublisherClient, PublisherClient, parseGripUri } from '@fanoutio/grip';
import { unknownOptionProblem } from '../../common/option-checks.js';
import { GripConfigError } from '../../errors.js';
import type { GripProxyConfig, GripPublisherLike } from '../../types.js';
import { type SignatureVerifier, signatureVerifier } from './signature.js';

/** One proxy, reduced to what publishing and signature checks need. */
export interface GripProxy {
  /** For messages: the control URI without credentials. */
  readonly label: string;
  readonly client: IPublisherClient;
  /** Set when the client is a standard PublisherClient, whose control API we can batch against. */
  readonly publishUri: string | null;
  readonly verifyKey: unknown;
  readonly verifyIss: string | undefined;
  /** How this proxy's Grip-Sig is checked; null when it has no verify key (any Grip-Sig is trusted). */
  readonly verifier: SignatureVerifier | null;
}

function isPublisherLike(value: unknown): value is GripPublisherLike {
  return typeof value === 'object' && value !== null && Array.isArray((value as GripPublisherLike).clients);
}

/** `@fanoutio/grip`'s IGripConfig. A misspelt `verify_key` (say `verifyKey`) would silently trust any Grip-Sig. */
const GRIP_CONFIG_KEYS = {
  control_uri: true,
  control_iss: true,
  user: true,
  pass: true,
  key: true,
  verify_iss: true,
  verify_key: true,
} as const;

function toConfig(entry: unknown, where: string): GripProxyConfig {
  if (typeof entry === 'string') {
    try {
      return parseGripUri(entry) as GripProxyConfig;
    } catch (cause) {
      throw new GripConfigError(`${where} is not a valid GRIP URL`, { cause });
    }
  }
  if (typeof entry !== 'object' || entry === null || typeof (entry as GripProxyConfig).control_uri !== 'string') {
    throw new GripConfigError(`${where} must be a GRIP URL or an object with control_uri`);
  }
  const problem = unknownOptionProblem(entry, GRIP_CONFIG_KEYS, where);
  if (problem !== null) throw new GripConfigError(problem);
  return entry as GripProxyConfig;
}

function labelOf(uri: string): string {
  try {
    const url = new URL(uri);
    url.username = '';
    url.password = '';
    url.search = '';
    return url.toString();
  } catch {
    return '(custom publisher client)';
  }
}

function isEmptyKey(key: unknown): boolean {
  return (typeof key === 'string' && key.length === 0) || (key instanceof Uint8Array && key.length === 0);
}

function fromConfig(config: GripProxyConfig, where: string): GripProxy {
  let url: URL;
  try {
    url = new URL(config.control_uri);
  } catch (cause) {
    throw new GripConfigError(`${where}.control_uri ${JSON.stringify(config.control_uri)} is not a URL`, { cause });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new GripConfigError(`${where}.control_uri must be http: or https:, got ${url.protocol}`);
  }
  if (config.verify_key !== undefined && isEmptyKey(config.verify_key)) {
    // Pushpin without sig_key signs with an empty key, which anyone can forge.
    throw new GripConfigError(`${where}.verify_key is empty; an empty key would let anyone forge Grip-Sig`);
  }
  let client: PublisherClient;
  try {
    client = new PublisherClient(config);
  } catch (cause) {
    throw new GripConfigError(`${where} is not a usable GRIP configuration`, { cause });
  }
  return fromClient(client, where);
}

function fromClient(client: IPublisherClient, where: string): GripProxy {
  if (typeof client?.publish !== 'function') {
    throw new GripConfigError(`${where} is not a GRIP publisher client`);
  }
  const verifyKey = client.getVerifyKey?.();
  if (verifyKey !== undefined && isEmptyKey(verifyKey)) {
    throw new GripConfigError(`${where} has an empty verify key; an empty key would let anyone forge Grip-Sig`);
  }
  const publishUri = client instanceof PublisherClient ? client.publishUri : null;
  const verifyIss = client.getVerifyIss?.();
  return {
    label: publishUri === null ? '(custom publisher client)' : labelOf(publishUri),
    client,
    publishUri,
    verifyKey,
    verifyIss,
    verifier: verifyKey === undefined ? null : signatureVerifier(verifyKey, verifyIss, where),
  };
}

/** Turns `options.grip` into proxies, or throws GripConfigError at construction. */
export function resolveGripProxies(option: unknown): GripProxy[] {
  if (isPublisherLike(option)) {
    if (option.clients.length === 0) throw new GripConfigError('options.grip is a Publisher without clients');
    return option.clients.map((client, i) => fromClient(client as IPublisherClient, `options.grip.clients[${i}]`));
  }
  if (Array.isArray(option)) {
    if (option.length === 0) throw new GripConfigError('options.grip is an empty array');
    return option.map((entry, i) => fromConfig(toConfig(entry, `options.grip[${i}]`), `options.grip[${i}]`));
  }
  return [fromConfig(toConfig(option, 'options.grip'), 'options.grip')];
}
