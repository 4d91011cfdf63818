import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EventStream, getEventStreamSingleton } from '../../../src/index.js';

test('getEventStreamSingleton returns one instance per name, with and without new', () => {
  const first = getEventStreamSingleton();
  const again = getEventStreamSingleton();
  assert.ok(first instanceof EventStream);
  assert.equal(first, again);
  assert.equal(typeof first('some-channel'), 'function');

  // As the README writes it: `new getEventStreamSingleton({}, name)`.
  const Singleton = getEventStreamSingleton as unknown as new (options: object, name: string) => EventStream;
  const eventStream1 = new Singleton({}, 'eventStream1');
  const eventStream2 = new Singleton({}, 'eventStream2');
  assert.ok(eventStream1 instanceof EventStream);
  assert.notEqual(eventStream1, eventStream2);
  assert.notEqual(eventStream1, first);
  assert.equal(new Singleton({}, 'eventStream1'), eventStream1);
  assert.equal(getEventStreamSingleton({}, 'eventStream2'), eventStream2);
});

test('the singleton lives on globalThis, so a reloaded copy of the module finds it', async () => {
  const original = getEventStreamSingleton({}, 'reload-check');
  // A fresh module instance, as the Next.js dev server creates after a file change.
  const reloaded = (await import(
    `../../../src/api/singleton.js?reload=${Date.now()}`
  )) as typeof import('../../../src/api/singleton.js');
  assert.notEqual(reloaded.getEventStreamSingleton, getEventStreamSingleton);
  assert.equal(reloaded.getEventStreamSingleton({}, 'reload-check'), original);
});

test('later calls with different options get the existing instance and a warning', async () => {
  const first = getEventStreamSingleton({ keepAliveInterval: 1000 }, 'options-check');
  const warning = new Promise<Error>((resolve) => process.once('warning', resolve));
  const second = getEventStreamSingleton({ keepAliveInterval: 2000 }, 'options-check');
  assert.equal(second, first);
  const emitted = await warning;
  assert.equal((emitted as Error & { code?: string }).code, 'EVENTSTREAM_SINGLETON_OPTIONS');
});
