/**
 * Whether an Accept header admits `text/event-stream`. A missing or empty
 * header admits everything (what EventSource and most clients send is fine);
 * `q=0` on a matching range refuses it.
 */
export function acceptsEventStream(accept: string | string[] | undefined): boolean {
  if (accept === undefined) return true;
  const header = Array.isArray(accept) ? accept.join(',') : accept;
  if (header.trim() === '') return true;

  let best = -1;
  let bestSpecificity = -1;
  for (const range of header.split(',')) {
    const [mediaRange = '', ...params] = range.split(';');
    const media = mediaRange.trim().toLowerCase();
    const specificity = media === 'text/event-stream' ? 2 : media === 'text/*' ? 1 : media === '*/*' ? 0 : -1;
    if (specificity < 0 || specificity < bestSpecificity) continue;
    let q = 1;
    for (const param of params) {
      const [key = '', value = ''] = param.split('=');
      if (key.trim().toLowerCase() === 'q') {
        const parsed = Number(value.trim());
        q = Number.isFinite(parsed) ? parsed : 0;
      }
    }
    // The most specific matching range decides (RFC 9110 §12.5.1).
    if (specificity > bestSpecificity) {
      bestSpecificity = specificity;
      best = q;
    } else {
      best = Math.max(best, q);
    }
  }
  return best > 0;
}
