// Property-based: random appends and reads against the memory store, checked against what was appended.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { MemoryEventStore } from '../../../src/stores/memory-store.js';

type Op = { kind: 'append'; channel: number; sizes: number[] } | { kind: 'read'; channel: number; back: number; limit: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('append' as const),
      channel: fc.nat(11),
      sizes: fc.array(fc.nat(3000), { minLength: 1, maxLength: 6 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('read' as const),
      channel: fc.nat(13),
      back: fc.nat(40),
      limit: fc.integer({ min: 1, max: 50 }),
    }),
  },
);

test('property: ids never repeat, reads return exactly what was kept, a client at the head is never told of a gap, bounds hold', () => {
  fc.assert(
    fc.property(
      fc.record({
        maxEvents: fc.integer({ min: 0, max: 20 }),
        maxBytes: fc.integer({ min: 2000, max: 60_000 }),
        maxChannels: fc.integer({ min: 1, max: 16 }),
      }),
      fc.array(op, { maxLength: 150 }),
      (options, ops) => {
        const store = new MemoryEventStore(options);
        /** Per channel, every event ever appended, by seq. */
        const appended = new Map<string, Map<number, string>>();
        const everyId = new Set<string>();
        const unpublishedHead = store.head('never');
        let counter = 0;
        for (const step of ops) {
          const channel = `c${step.channel}`;
          const history = appended.get(channel) ?? new Map<number, string>();
          const lastSeq = history.size === 0 ? -1 : Math.max(...history.keys());
          if (step.kind === 'append') {
            const bodies = step.sizes.map((size) => `data: ${++counter} ${'x'.repeat(size)}\n`);
            const headBefore = store.head(channel);
            const first = store.append(channel, bodies);
            assert.ok(first > lastSeq, 'a seq is never handed out twice for a channel');
            assert.equal(first, headBefore + 1, 'the next event follows the head a client was told: no false reset');
            bodies.forEach((body, i) => {
              const id = `${channel}:${first + i}`;
              assert.ok(!everyId.has(id), `${id} named two events`);
              everyId.add(id);
              history.set(first + i, body);
            });
            appended.set(channel, history);
            assert.ok(store.bytes <= options.maxBytes, `${store.bytes} > maxBytes ${options.maxBytes}`);
            assert.ok(store.channelCount <= options.maxChannels);
            continue;
          }
          const head = store.head(channel);
          if (history.size === 0) assert.equal(head, unpublishedHead, 'a channel never published to stands at the store origin');
          assert.ok(head >= lastSeq);
          const after = head - step.back;
          const page = store.readSince(channel, after, step.limit);
          assert.equal(page.head, head);
          if (after >= head) {
            assert.deepEqual(page, { events: [], gap: false, head }, 'a client at the head missed nothing');
            continue;
          }
          assert.ok(page.events.length <= step.limit);
          assert.ok(page.events.length <= options.maxEvents);
          page.events.forEach((event, i) => {
            assert.ok(event.seq > after);
            assert.equal(event.body, history.get(event.seq), `${channel}:${event.seq} is the event appended with that id`);
            if (i > 0) assert.equal(event.seq, page.events[i - 1]!.seq + 1, 'no hole inside a page');
          });
          const firstReturned = page.events[0]?.seq;
          assert.equal(
            page.gap,
            firstReturned === undefined ? true : firstReturned > after + 1,
            'gap says whether events after the position are missing',
          );
          // A page that is not cut by the limit reaches the head.
          if (page.events.length > 0 && page.events.length < step.limit) assert.equal(page.events.at(-1)!.seq, head);
        }
      },
    ),
    { numRuns: 1000 },
  );
});
