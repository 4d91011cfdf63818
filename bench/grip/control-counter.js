// Counts the HTTP requests this process makes to one origin (Pushpin's control
// API). Both libraries publish with the global fetch, whose undici core
// announces every request on the `undici:request:create` diagnostics channel,
// so counting costs nothing on the wire: no forwarding hop that would slow
// the implementation making more requests.
import dc from 'node:diagnostics_channel';

/** @param {string} origin */
export function countRequestsTo(origin) {
  const target = new URL(origin).origin;
  const counts = { requests: 0, publishRequests: 0 };
  /** @param {unknown} message */
  const onCreate = (message) => {
    const { request } = /** @type {{ request: { origin: unknown, method: string, path: unknown } }} */ (message);
    let requestOrigin;
    try {
      requestOrigin = new URL(String(request.origin)).origin;
    } catch {
      return;
    }
    if (requestOrigin !== target) return;
    counts.requests++;
    if (request.method === 'POST' && String(request.path).startsWith('/publish')) counts.publishRequests++;
  };
  dc.subscribe('undici:request:create', onCreate);
  return {
    reset() {
      counts.requests = 0;
      counts.publishRequests = 0;
    },
    snapshot() {
      return { ...counts };
    },
    stop() {
      dc.unsubscribe('undici:request:create', onCreate);
    },
  };
}
