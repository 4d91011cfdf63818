import type { SseResponse } from '../../types.js';

/** A short plain-text answer, for refusals; does nothing once headers are out. */
export function respondPlainText(res: SseResponse, status: number, message: string, retryAfterSeconds?: number): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const body = message.endsWith('\n') ? message : `${message}\n`;
  const headers: Record<string, string> = {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
    'cache-control': 'no-store',
  };
  if (retryAfterSeconds !== undefined) headers['retry-after'] = String(retryAfterSeconds);
  res.writeHead(status, headers);
  res.end(body);
}
