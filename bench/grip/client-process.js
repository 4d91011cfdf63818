// The GRIP benchmark's subscriber, in its own process (forked by bench/grip.js)
// so parsing the stream does not take CPU from the publishing process, as with
// a real client elsewhere. One receiver (bench/grip/receiver.js) at a time.
//
// parent -> { cmd: 'open', url, expected } | { cmd: 'verify' } | { cmd: 'close' } | { cmd: 'exit' }
// child  -> { type: 'opened' } | { type: 'open-failed', message } | { type: 'warm' }
//           | { type: 'progress', received, at } (at most every 50 ms while events arrive)
//           | { type: 'done', at } when the expected number of events has arrived
//           | { type: 'verify', result, clientErrors } | { type: 'closed' }
// Times are `performance.timeOrigin + performance.now()` (ms since the epoch, sub-ms resolution).
import { performance } from 'node:perf_hooks';
import { openReceiver } from './receiver.js';

const wallNow = () => performance.timeOrigin + performance.now();
/** @param {object} message */
const send = (message) => {
  if (process.connected) process.send?.(message);
};

/** @type {ReturnType<typeof openReceiver> | null} */
let receiver = null;
/** @type {NodeJS.Timeout | null} */
let progressTimer = null;

function stopReceiver() {
  clearInterval(progressTimer ?? undefined);
  progressTimer = null;
  receiver?.close();
  receiver = null;
}

process.on('message', (received) => {
  const message = /** @type {{ cmd: string, url: string, expected: number }} */ (received);
  switch (message?.cmd) {
    case 'open': {
      stopReceiver();
      const current = openReceiver(message.url, message.expected);
      receiver = current;
      current.opened.then(
        () => send({ type: 'opened' }),
        (error) => send({ type: 'open-failed', message: error.message }),
      );
      let warmSent = 0;
      let reported = 0;
      progressTimer = setInterval(() => {
        while (warmSent < current.state.warm) {
          warmSent++;
          send({ type: 'warm' });
        }
        if (current.received !== reported) {
          reported = current.received;
          send({ type: 'progress', received: reported, at: performance.timeOrigin + current.state.lastProgressAt });
        }
      }, 50);
      current.done.then(() => send({ type: 'done', at: performance.timeOrigin + (current.state.doneAt ?? NaN) }));
      break;
    }
    case 'verify':
      send({ type: 'verify', result: receiver?.verify() ?? null, clientErrors: receiver?.state.errors ?? 0 });
      break;
    case 'close':
      stopReceiver();
      send({ type: 'closed' });
      break;
    case 'exit':
      stopReceiver();
      process.disconnect();
      break;
  }
});

// The parent gone means nobody needs this client any more.
process.on('disconnect', () => {
  stopReceiver();
  process.exit(0);
});

send({ type: 'ready', at: wallNow() });
