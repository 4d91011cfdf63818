// Benchmark event payloads. Every implementation and every publisher gets the
// same events: JSON data of exactly `bytes` bytes carrying a timestamp `t`
// (ms, wallNow()) and a sequence number `s`, which the client's SseCounter
// finds by the leading `{"t":`. `json` is that text; `obj` parses back to it,
// for publishers that serialize data themselves (JSON.stringify(obj) === json).
import { wallNow } from '../lib/ipc.js';

const PAD = 'x'.repeat(4096);
let sequence = 0;

/**
 * @param {number} bytes
 * @param {number} [at] the timestamp, ms on the wall clock
 */
export function makePayload(bytes, at = wallNow()) {
  const t = Math.round(at * 1000) / 1000;
  const s = sequence++;
  const ts = String(t);
  const ss = String(s);
  // {"t":T,"s":S,"p":"P"} is 18 bytes of punctuation and keys
  const p = PAD.slice(0, Math.max(0, bytes - 18 - ts.length - ss.length));
  return { t, obj: { t, s, p }, json: `{"t":${ts},"s":${ss},"p":"${p}"}` };
}
