// Types for demo/app.js, so TypeScript tests can import it.
// (Type-only imports from src/ keep `npm run typecheck` working without a build; at run time app.js uses dist/.)
import type { Express } from 'express';
import type { EventStream, EventStreamOptions } from '../src/index.js';

export declare const DEFAULT_ROOM: string;
export declare const MAX_TEXT_LENGTH: number;

export interface DemoOptions {
  /** Interval between `tick` events, in milliseconds (default 1000). */
  tickMs?: number;
  eventStreamOptions?: EventStreamOptions;
}

export interface Demo {
  app: Express;
  eventStream: EventStream;
  /** Stops the ticker and ends every event stream; the HTTP server is the caller's to close. */
  stop(): Promise<void>;
}

export declare function createDemo(options?: DemoOptions): Demo;
