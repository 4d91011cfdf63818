import http, { type RequestListener, type Server } from 'node:http';
import net, { type AddressInfo } from 'node:net';

export interface RunningServer {
  server: Server;
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Starts a real HTTP server on a free loopback port. */
export async function listen(handler: RequestListener): Promise<RunningServer> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    server,
    port,
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * Distinct ports free on 127.0.0.1 right now, for programs that must be told
 * their ports before they start. All are held open until every one is known,
 * so none repeats.
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () => {
      const server = net.createServer();
      return new Promise<net.Server>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve(server));
      });
    }),
  );
  const ports = servers.map((server) => (server.address() as AddressInfo).port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

/** A port free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  return port!;
}

/**
 * A real HTTP forwarder in front of a control API (Pushpin's): each request
 * body is shown to `inspect` first; when it answers 'lose', the forwarder
 * answers 200 as Pushpin would and never forwards the request.
 */
export function controlForwarder(
  controlUri: string,
  inspect: (req: http.IncomingMessage, body: Buffer) => 'forward' | 'lose',
): Promise<RunningServer> {
  return listen((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (inspect(req, body) === 'lose') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('Published\n');
        return;
      }
      const upstream = http.request(
        `${controlUri}${req.url}`,
        { method: req.method, headers: { 'content-type': 'application/json', 'content-length': String(body.length) } },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      upstream.on('error', (error) => res.writeHead(502).end(String(error)));
      upstream.end(body);
    });
  });
}
