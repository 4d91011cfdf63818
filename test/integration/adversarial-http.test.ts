import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import fc from 'fast-check';
import { KEEP_ALIVE_TEXT } from '../../src/sse/encoder.js';
import { IncompleteResponse, type ParsedResponse, parseResponse, RawConnection } from '../helpers/raw-http.js';
import { cleanups } from '../helpers/requirements.js';
import { forkStreamServer, type StreamServer, type StreamServerSnapshot, untilAsync } from '../helpers/stream-server.js';

/**
 * Keeps hunting: random sequences of raw HTTP/1.1 traffic on a few
 * connections (pipelined requests of every kind, HTTP/1.0, HEAD, half-close,
 * reset, clients that stop reading) interleaved with publishes, against a
 * live EventStream on node:http in a forked process. After each sequence:
 * - every byte each connection received parses as well-framed responses to
 *   the requests it sent, in order, each body its own: a plain answer is
 *   exactly what its route sent, a stream carries only its channel's events
 *   with consecutive ids, a stream the application ended has nothing after
 *   its opening event;
 * - streams, hubs, the keep-alive timer and the heap are back at baseline.
 * fast-check prints the seed and the shrunk sequence of any failure.
 */

const CHANNELS = ['a', 'b'] as const;
type Channel = (typeof CHANNELS)[number];

type RequestKind = 'stream' | 'stream-1.0' | 'head' | 'plain' | 'plain-1.0' | 'plain-close' | 'slow' | 'ended';

interface PlannedRequest {
  kind: RequestKind;
  channel: Channel;
}

interface SentRequest extends PlannedRequest {
  /** Unique in the run, so an answer in the wrong place shows. */
  tag: string;
}

type Step =
  | { do: 'send'; conn: number; requests: PlannedRequest[] }
  | { do: 'publish'; channel: Channel; count: number; size: number }
  | { do: 'pause' | 'resume' | 'half-close' | 'reset' | 'destroy'; conn: number }
  | { do: 'wait'; ms: number };

const CONNECTIONS = 4;

const requestArb: fc.Arbitrary<PlannedRequest> = fc.record({
  kind: fc.oneof(
    { arbitrary: fc.constant<RequestKind>('stream'), weight: 4 },
    {
      arbitrary: fc.constantFrom<RequestKind>('stream-1.0', 'head', 'plain', 'plain-1.0', 'plain-close', 'slow', 'ended'),
      weight: 7,
    },
  ),
  channel: fc.constantFrom(...CHANNELS),
});

const connArb = fc.nat({ max: CONNECTIONS - 1 });

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    arbitrary: fc.record({
      do: fc.constant('send' as const),
      conn: connArb,
      requests: fc.array(requestArb, { minLength: 1, maxLength: 4 }),
    }),
    weight: 5,
  },
  {
    arbitrary: fc.record({
      do: fc.constant('publish' as const),
      channel: fc.constantFrom(...CHANNELS),
      count: fc.integer({ min: 1, max: 3 }),
      size: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 3000 })),
    }),
    weight: 4,
  },
  { arbitrary: fc.record({ do: fc.constantFrom('pause' as const, 'resume' as const), conn: connArb }), weight: 2 },
  {
    arbitrary: fc.record({ do: fc.constantFrom('half-close' as const, 'reset' as const, 'destroy' as const), conn: connArb }),
    weight: 2,
  },
  { arbitrary: fc.record({ do: fc.constant('wait' as const), ms: fc.constantFrom(0, 5, 30) }), weight: 2 },
);

function requestText({ kind, channel, tag }: SentRequest): string {
  const stream = 'Accept: text/event-stream\r\n';
  switch (kind) {
    case 'stream':
      return `GET /events/${channel} HTTP/1.1\r\nHost: x\r\n${stream}\r\n`;
    case 'stream-1.0':
      return `GET /events/${channel} HTTP/1.0\r\n${stream}\r\n`;
    case 'head':
      return `HEAD /events/${channel} HTTP/1.1\r\nHost: x\r\n${stream}\r\n`;
    case 'ended':
      return `GET /ended/${channel} HTTP/1.1\r\nHost: x\r\n${stream}\r\n`;
    case 'plain':
      return `GET /plain/${tag} HTTP/1.1\r\nHost: x\r\n\r\n`;
    case 'plain-1.0':
      return `GET /plain/${tag} HTTP/1.0\r\n\r\n`;
    case 'plain-close':
      return `GET /plain/${tag} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`;
    case 'slow':
      return `GET /slow/${tag} HTTP/1.1\r\nHost: x\r\n\r\n`;
  }
}

/** After the answer to this request, the server closes the connection. */
function closesConnection(kind: RequestKind): boolean {
  return kind === 'stream-1.0' || kind === 'plain-1.0' || kind === 'plain-close';
}

class Client {
  readonly connection: RawConnection;
  readonly sent: SentRequest[] = [];
  private writable = true;

  private constructor(port: number) {
    this.connection = new RawConnection(port);
  }

  /**
   * Connected before anything is done with it: Node's resetAndDestroy() on a
   * socket still connecting, combined with end(), never closes the socket.
   */
  static async open(port: number): Promise<Client> {
    const client = new Client(port);
    await once(client.connection.socket, 'connect');
    return client;
  }

  /**
   * Whether it sent bytes after a request that closes the connection: Node's
   * parser takes them as an error and, unless a response has begun, answers
   * 400 and closes, so that answer may replace the ones still due.
   */
  sentAfterClose = false;

  send(requests: SentRequest[]): void {
    if (!this.writable || this.connection.closed) return;
    for (const request of requests) {
      if (this.sent.some((earlier) => closesConnection(earlier.kind))) this.sentAfterClose = true;
      this.sent.push(request);
    }
    this.connection.send(requests.map(requestText).join(''));
  }

  act(action: 'pause' | 'resume' | 'half-close' | 'reset' | 'destroy'): void {
    const { socket } = this.connection;
    if (this.connection.closed) return;
    if (action === 'pause') socket.pause();
    else if (action === 'resume') socket.resume();
    else if (action === 'half-close' && !this.writable) return;
    else {
      this.writable = false;
      if (action === 'half-close') socket.end();
      // Once the server has ended the connection, Node has already shut down this side (allowHalfOpen is off),
      // and libuv refuses to reset a socket that is shutting down: resetAndDestroy() then never closes it.
      else if (action === 'reset' && !socket.readableEnded && !socket.writableEnded) socket.resetAndDestroy();
      else socket.destroy();
    }
  }
}

/** The body of an event stream (all of it, or as much as arrived): its opening, then only `channel`'s events and keep-alives. */
function checkStreamBody(body: string, channel: Channel): void {
  const blocks = body.split('\n\n');
  const tail = blocks.pop()!;
  const opening = `event: stream-open\ndata: \nid: ${channel}:`;
  let seq: number | null = null;
  for (const block of blocks) {
    if (seq === null) {
      assert.ok(
        block.startsWith(opening) && /^\d+$/.test(block.slice(opening.length)),
        `the stream opens: ${JSON.stringify(block)}`,
      );
      seq = Number(block.slice(opening.length));
      continue;
    }
    if (`${block}\n\n` === KEEP_ALIVE_TEXT) continue;
    seq++;
    assert.match(block, new RegExp(`^data: "${channel}:\\d+:z*"\\nid: ${channel}:${seq}$`), `event ${seq} of channel ${channel}`);
  }
  // What arrived of the block in flight when the connection ended.
  if (tail === '') return;
  const candidates = seq === null ? [opening] : [KEEP_ALIVE_TEXT, `data: "${channel}:`];
  const fits = candidates.some((start) => start.startsWith(tail) || tail.startsWith(start));
  assert.ok(fits, `the stream's last bytes belong to it: ${JSON.stringify(tail.slice(0, 80))}`);
  if (tail.startsWith(`data: "${channel}:`))
    assert.match(tail, new RegExp(`^data: "${channel}:\\d*:?z*"?(\\nid: ${channel}:\\d*\\n?)?$`));
}

function expectedPlain(request: SentRequest): string {
  return `${request.kind === 'slow' ? 'slow' : 'plain'} ${request.tag}`;
}

/** An event stream's head: chunked for HTTP/1.1, its body delimited by the connection's end for HTTP/1.0. */
function checkStreamHead(request: SentRequest, head: string): void {
  assert.match(head, /\r\ncontent-type: text\/event-stream/i, `content type of ${request.tag}`);
  const chunked = /\r\ntransfer-encoding: chunked/i.test(head);
  assert.equal(chunked, request.kind !== 'stream-1.0', `framing of ${request.tag}: ${JSON.stringify(head)}`);
}

/** A whole response: its own answer to `request`. */
function checkResponse(request: SentRequest, response: ParsedResponse): void {
  assert.equal(response.status, 200, `status of ${request.tag} (${request.kind}): ${JSON.stringify(response.head)}`);
  switch (request.kind) {
    case 'plain':
    case 'plain-1.0':
    case 'plain-close':
    case 'slow':
      assert.equal(response.body, expectedPlain(request));
      return;
    case 'head':
      assert.match(response.head, /\r\ncontent-type: text\/event-stream/i);
      return;
    case 'ended': {
      checkStreamHead(request, response.head);
      // Not one byte after the application ended it, though its channel may have had events meanwhile.
      const opening = new RegExp(`^event: stream-open\\ndata: \\nid: ${request.channel}:\\d+\\n\\n$`);
      assert.match(response.body, opening, `${request.tag} ended right after opening`);
      assert.deepEqual(response.chunks, [response.body.length, 0]);
      return;
    }
    case 'stream':
    case 'stream-1.0':
      // A live stream never ends by itself while its client is there.
      assert.fail(`stream ${request.tag} ended: ${JSON.stringify(response.body.slice(-80))}`);
  }
}

/** What arrived of a response before the connection ended. */
function checkPartial(request: SentRequest, partial: IncompleteResponse): void {
  if (partial.head === null) return;
  assert.match(partial.head, /^HTTP\/1\.1 200 /, `status of ${request.tag}`);
  switch (request.kind) {
    case 'stream':
    case 'stream-1.0':
    case 'ended':
      checkStreamHead(request, partial.head);
      checkStreamBody(partial.body, request.channel);
      if (request.kind === 'ended') assert.doesNotMatch(partial.body, /\n\n./s, `${request.tag} ended right after opening`);
      return;
    default:
      assert.ok(expectedPlain(request).startsWith(partial.body), `${request.tag} got ${JSON.stringify(partial.body)}`);
  }
}

/** What Node writes when its parser fails, before closing the connection. */
const BAD_REQUEST = 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n';

/** Every byte on the connection: well-framed answers to its requests, in order, possibly cut short by its end. */
function checkConnection(client: Client): void {
  let rest = client.connection.text();
  for (const request of client.sent) {
    if (rest === '') return;
    if (client.sentAfterClose && rest.startsWith('HTTP/1.1 400 ')) {
      // A message of our own: Node's diff of two long strings can take minutes.
      assert.equal(
        rest,
        BAD_REQUEST,
        `a 400 and nothing else after the client closed its side, got ${JSON.stringify(rest.slice(0, 200))}`,
      );
      return;
    }
    let response: ParsedResponse;
    try {
      response = parseResponse(rest, { head: request.kind === 'head' });
    } catch (error) {
      if (!(error instanceof IncompleteResponse)) throw error;
      checkPartial(request, error);
      return;
    }
    checkResponse(request, response);
    rest = response.rest;
    if (closesConnection(request.kind)) break;
  }
  assert.equal(rest, '', 'no byte beyond the answers to the requests sent');
}

/** The sequences CI replays (see the test). */
const CI_SEED = 624879151;

/** How long one generated run may take; a normal one takes well under a second. */
const RUN_DEADLINE_MS = 20_000;

async function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

async function settled(server: StreamServer): Promise<StreamServerSnapshot> {
  let last: StreamServerSnapshot | null = null;
  await untilAsync(
    async () => {
      last = await server.snapshot();
      return last.connections === 0 && last.stats!.streams === 0 && last.stats!.hubs === 0 && last.keepAliveTimers === 0;
    },
    5000,
    'streams, hubs, connections and the keep-alive timer back to none',
  ).catch((error: unknown) => {
    throw new Error(`${(error as Error).message}: ${JSON.stringify(last)}`);
  });
  return last!;
}

async function runSequence(server: StreamServer, steps: readonly Step[]): Promise<void> {
  const clients: Array<Client | undefined> = [];
  let tags = 0;
  let events = 0;
  const publish = (channel: Channel, count: number, size: number): Promise<void> =>
    server.publish(channel, `${channel}:${events++}:${'z'.repeat(size)}`, { count });
  try {
    for (const step of steps) {
      switch (step.do) {
        case 'send': {
          const client = clients[step.conn] ?? (await Client.open(server.port));
          clients[step.conn] = client;
          client.send(step.requests.map((request) => ({ ...request, tag: `t${tags++}` })));
          break;
        }
        case 'publish':
          await publish(step.channel, step.count, step.size);
          break;
        case 'wait':
          await new Promise((resolve) => setTimeout(resolve, step.ms));
          break;
        default:
          clients[step.conn]?.act(step.do);
      }
    }
    // Let every request reach the server and be answered, then end each connection as a client would.
    await new Promise((resolve) => setTimeout(resolve, 60));
    for (const channel of CHANNELS) await publish(channel, 1, 10);
    await new Promise((resolve) => setTimeout(resolve, 20));
  } finally {
    for (const client of clients) client?.connection.close();
  }
  await Promise.all(clients.map((client) => client?.connection.closedPromise));
  for (const client of clients) if (client !== undefined) checkConnection(client);
}

test('random raw HTTP/1.1 traffic: every byte belongs to its response, and everything returns to baseline', async (t) => {
  const defer = cleanups(t);
  // Frequent keep-alives interleave with events in the bodies, and let a connection Node stopped reading notice its client left.
  const server = await forkStreamServer({ keepAliveInterval: 100, historyEvents: 50 });
  defer(() => server.close());

  // Warm up with every kind of request and a full history, so the baseline is the steady state.
  const everyKind: PlannedRequest[] = (['plain', 'slow', 'head', 'ended', 'stream'] as const).map((kind) => ({
    kind,
    channel: 'a',
  }));
  await runSequence(server, [
    { do: 'send', conn: 0, requests: everyKind },
    { do: 'send', conn: 1, requests: [{ kind: 'stream-1.0', channel: 'b' }] },
    { do: 'send', conn: 2, requests: [{ kind: 'plain-1.0', channel: 'b' }] },
    { do: 'wait', ms: 80 },
  ]);
  for (const channel of CHANNELS) await server.publish(channel, `${channel}:0:${'z'.repeat(3000)}`, { count: 60 });
  const baseline = await settled(server);

  const property = fc.asyncProperty(fc.array(stepArb, { minLength: 2, maxLength: 24 }), async (steps) => {
    // A run that hangs fails with its steps, rather than running on behind the time limit.
    await withDeadline(runSequence(server, steps), RUN_DEADLINE_MS, 'the traffic and its connections to end');
    const after = await settled(server);
    assert.deepEqual(after.stats!.channels, {});
    const grown = after.heapUsed - baseline.heapUsed;
    assert.ok(grown < 4 * 1024 * 1024, `heap after GC grew by ${(grown / 1024 / 1024).toFixed(1)} MB`);
  });
  // Each local run draws a new seed and keeps hunting; CI replays one fixed set of 30 sequences, so its
  // verdict is about the change, not the draw. FC_SEED and FC_PATH (from a failure's report) replay a
  // failure; the seed is printed first, so even a run that never ends can be replayed.
  const seed =
    process.env.FC_SEED !== undefined
      ? Number(process.env.FC_SEED)
      : process.env.CI === 'true'
        ? CI_SEED
        : (Math.random() * 2 ** 31) | 0;
  t.diagnostic(`FC_SEED=${seed}`);
  console.log(`# adversarial-http FC_SEED=${seed}`);
  const replay = { seed, ...(process.env.FC_PATH === undefined ? {} : { path: process.env.FC_PATH }) };
  // The time limit bounds shrinking a failure; a failure found is reported all the same.
  const details = await fc.check(property, { numRuns: 30, plugins: [fc.interruptAfterTimeLimit(60_000)], ...replay });
  if (details.failed) {
    const error = details.errorInstance;
    assert.fail(`${fc.defaultReportMessage(details)}\n${error instanceof Error ? error.message : String(error)}`);
  }
});
