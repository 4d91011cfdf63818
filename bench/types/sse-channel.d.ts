// sse-channel ships no types; this is the part of its API the fan-out benchmark uses.
declare module 'sse-channel' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  export default class SseChannel {
    constructor(options?: Record<string, unknown>);
    addClient(req: IncomingMessage, res: ServerResponse, callback?: (error?: Error) => void): void;
    getConnectionCount(): number;
    send(message: string | { data: string; event?: string; id?: string; retry?: number }): void;
  }
}
