// Compiled by test/unit/types.test.ts under `strict`: every line must compile except the ones marked as
// expected errors, which must fail to. A channel function's request is typed as the user's framework gives it.
import type { IncomingMessage } from 'node:http';
import { createServer } from 'node:http';
import connect from 'connect';
import express, { type Request } from 'express';
import { EventStream, type EventStreamHandler, type SseRequest } from '../../src/index.js';

const eventStream = new EventStream();

// Unannotated: req is an SseRequest, so route parameters are strings.
const app = express();
app.get(
  '/rooms/:room',
  eventStream((req) => [req.params.room]),
);
app.get(
  '/rooms/:room/async',
  eventStream(async (req) => `room-${req.params.room}`),
);
app.get('/static', eventStream('news'));
app.get('/pair', eventStream(['a', 'b']));
app.get('/template/:id', eventStream('{id}'));

// Annotated with Express's type: the function gets exactly it, and Express takes the middleware.
app.get(
  '/users/:id',
  eventStream((req: Request) => [`user-${req.params.id}`, String(req.query.extra ?? 'none')]),
);

// Annotated with Node's type: plain servers and connect take the middleware.
const byUrl = eventStream((req: IncomingMessage) => [new URL(req.url ?? '/', 'http://x').pathname.slice(1)]);
createServer(byUrl);
connect().use(eventStream('news')).use(byUrl);
createServer(eventStream('news'));

// Names only, or an unannotated function: any Node request will do.
const handler: EventStreamHandler = eventStream((req) => [req.params.room ?? 'lobby']);
createServer((req, res) => void handler(req, res));
void eventStream.route((req: SseRequest<{ room: string }>) => req.params.room);

// @ts-expect-error a channel function returns names, not numbers
eventStream((req) => [Number(req.params.room)]);
// @ts-expect-error an Express-typed middleware cannot serve a plain Node request
createServer(eventStream((req: Request) => [req.params.id!]));
// @ts-expect-error SseRequest's params are strings
eventStream((req) => [req.params.room.toFixed()]);
