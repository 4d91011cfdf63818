// The id a stream sends, read back: any position on allowlisted channels round-trips; anything else is a 400.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { parseGripLast } from '../../../src/adapters/grip/grip-last.js';
import { parseEventId } from '../../../src/admission/resume-position.js';
import { HttpRequestError } from '../../../src/index.js';
import { formatEventId } from '../../../src/sse/event-id.js';

const limits = { maxChannelNameLength: 128 };
const channelName = fc.stringMatching(/^[A-Za-z0-9\-_.:@/~+=!]{1,40}$/);
const sequence = fc.maxSafeInteger().filter((n) => n >= 0);

test('property: a position on any set of channels round-trips through its id', () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(channelName, { minLength: 1, maxLength: 16 }),
      fc.array(sequence, { minLength: 16, maxLength: 16 }),
      (channels, seqs) => {
        const positions = channels.map((_, i) => seqs[i]!);
        const parsed = parseEventId(formatEventId(channels, positions), limits);
        assert.deepEqual(
          [...parsed.entries()],
          channels.map((channel, i) => [channel, positions[i]]),
        );
      },
    ),
    { numRuns: 2000 },
  );
});

test('property: an id either parses to names and sequences that format back to it, or is a 400', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 60 }), (text) => {
      let parsed: ReturnType<typeof parseEventId>;
      try {
        parsed = parseEventId(text, limits);
      } catch (error) {
        assert.ok(error instanceof HttpRequestError);
        assert.equal(error.status, 400);
        return;
      }
      assert.equal(formatEventId([...parsed.keys()], [...parsed.values()]), text);
    }),
    { numRuns: 5000 },
  );
});

test("Pushpin's Grip-Last is read per prefixed channel; other channels and bad values are ignored", () => {
  const position = parseGripLast(
    'events-a; last-id=5, events-b:c;last-id=17, other-x; last-id=3, events-d; last-id=zz',
    'events-',
  );
  assert.deepEqual(
    [...position.entries()],
    [
      ['a', 5],
      ['b:c', 17],
    ],
  );
});
