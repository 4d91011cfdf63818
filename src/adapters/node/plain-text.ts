import type { SseResponse } from '../../types.js';

/** A short plain-text answer, for refusals; does nothing once headers are out. */
export function respondPlainText(res: SseResponse, status: number, message: string): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const body = message.endsWith('\n') ? message : `${message}\n`;
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
    'cache-control': 'no-store',
  });
  res.end(body);
}
