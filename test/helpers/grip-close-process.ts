/**
 * A process that publishes to a GRIP control API (argv[2]) that never
 * answers, then closes its EventStream when the parent says so. It holds
 * nothing else, so it exits on its own as soon as close() has let go of
 * every handle; the parent watches for that exit.
 *
 * IPC: sends 'ready' once the first publish is under way. On 'queue' it
 * publishes a second event (queued behind the first, whose request the
 * control API holds) and answers 'queued'. On 'close' it publishes a third,
 * closes at once, sends { settled: [each publish's error code, or
 * 'resolved'] } and disconnects.
 */
import { EventStream } from '../../src/index.js';

const eventStream = new EventStream({ grip: { control_uri: process.argv[2]!, verify_key: 'k' }, gripPublishTimeout: 120_000 });

function outcome(promise: Promise<void>): Promise<string> {
  return promise.then(
    () => 'resolved',
    (error: unknown) => String((error as { code?: unknown }).code ?? error),
  );
}

const outcomes: Array<Promise<string>> = [outcome(eventStream.publishEvent('closing', { data: 'in flight' }))];

process.on('message', (message: string) => {
  if (message === 'queue') {
    outcomes.push(outcome(eventStream.publishEvent('closing', { data: 'queued behind it' })));
    process.send!('queued');
    return;
  }
  outcomes.push(outcome(eventStream.publishEvent('closing', { data: 'just before close' })));
  void eventStream.close();
  void Promise.all(outcomes).then((settled) => {
    process.send!({ settled }, () => process.disconnect());
  });
});
process.send!('ready');
