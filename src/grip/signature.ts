import { validateSig } from '@fanoutio/grip';
import type { GripProxy } from './config.js';

type ValidateSigKey = Parameters<typeof validateSig>[1];

/**
 * Whether a request came through one of the proxies. A proxy with a verify
 * key must have signed `Grip-Sig` (checked, including expiry); a proxy
 * without one trusts any `Grip-Sig`. A forged or expired signature counts as
 * no signature: the request is served directly.
 */
export async function isProxiedRequest(gripSig: string | string[] | undefined, proxies: readonly GripProxy[]): Promise<boolean> {
  if (typeof gripSig !== 'string' || gripSig.length === 0) return false;
  for (const proxy of proxies) {
    if (proxy.verifyKey === undefined) return true;
  }
  for (const proxy of proxies) {
    try {
      if (await validateSig(gripSig, proxy.verifyKey as ValidateSigKey, proxy.verifyIss)) return true;
    } catch {
      // A malformed token or key is not a valid signature.
    }
  }
  return false;
}
