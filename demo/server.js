// Runs the EventStream demo: `npm run demo` (builds dist/ first), then open the printed URL.
// PORT sets the port (default 3000; PORT=0 picks a free one). Listens on 127.0.0.1 only.
import { createDemo } from './app.js';

const HOST = '127.0.0.1';
const port = parsePort(process.env.PORT);
const { app, stop } = createDemo();

const server = app.listen(port, HOST, (error) => {
  if (error) {
    console.error(`EventStream demo could not listen on ${HOST}:${port}: ${error.message}`);
    process.exit(1);
  }
  console.log(`EventStream demo on http://${HOST}:${server.address().port}`);
});

let shuttingDown = false;
async function shutdown(signal) {
  if (shuttingDown) {
    console.log(`${signal} again: exiting now.`);
    process.exit(1);
  }
  shuttingDown = true;
  console.log(`${signal}: shutting down...`);
  // If something still holds a connection open, do not wait forever.
  const force = setTimeout(() => {
    console.error('Connections still open after 5 s; closing them.');
    server.closeAllConnections();
  }, 5000);
  force.unref();
  try {
    await stop(); // ends every event stream, stops the ticker
    await new Promise((resolve, reject) => {
      server.close((error) => (error ? reject(error) : resolve()));
      server.closeIdleConnections();
    });
    console.log('Stopped.');
  } catch (error) {
    console.error('Shutdown failed:', error);
    process.exitCode = 1;
  }
}

process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));

function parsePort(value) {
  if (value === undefined || value.trim() === '') return 3000;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0 || parsed > 65535) {
    console.error(`PORT must be an integer from 0 to 65535, got ${JSON.stringify(value)}`);
    process.exit(1);
  }
  return parsed;
}
