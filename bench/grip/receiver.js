// One real `eventsource` client for the GRIP benchmark. It records the `seq`
// of every `tick` event in arrival order, notes when the expected number has
// arrived, and afterwards reports whether each event came exactly once and in
// order. `warm` events (published before timing starts, to prove the
// subscription is live) and reconnects are counted separately.
import { performance } from 'node:perf_hooks';
import { EventSource } from 'eventsource';

/**
 * @param {string} url
 * @param {number} expected
 */
export function openReceiver(url, expected) {
  const source = new EventSource(url);
  /** @type {number[]} */
  const seqs = [];
  const state = {
    opens: 0,
    warm: 0,
    errors: 0,
    unparsable: 0,
    lastProgressAt: performance.now(),
    doneAt: /** @type {number | null} */ (null),
  };

  /** @type {() => void} */
  let resolveOpened = () => {};
  /** @type {(error: Error) => void} */
  let rejectOpened = () => {};
  /** @type {Promise<void>} */
  const opened = new Promise((resolve, reject) => {
    resolveOpened = resolve;
    rejectOpened = reject;
  });
  opened.catch(() => {}); // observed by whoever awaits it; never an unhandled rejection
  /** @type {() => void} */
  let resolveDone = () => {};
  /** @type {Promise<void>} */
  const done = new Promise((resolve) => {
    resolveDone = resolve;
  });

  source.addEventListener('stream-open', () => {
    state.opens++;
    resolveOpened();
  });
  source.addEventListener('warm', () => {
    state.warm++;
  });
  source.addEventListener('tick', (event) => {
    let seq;
    try {
      seq = JSON.parse(event.data).seq;
    } catch {
      seq = undefined;
    }
    if (!Number.isSafeInteger(seq)) {
      state.unparsable++;
      seq = -1;
    }
    seqs.push(seq);
    state.lastProgressAt = performance.now();
    if (seqs.length === expected) {
      state.doneAt = state.lastProgressAt;
      resolveDone();
    }
  });
  source.addEventListener('error', (error) => {
    state.errors++;
    if (source.readyState === EventSource.CLOSED) {
      rejectOpened(new Error(`EventSource to ${url} failed: ${String(error?.message ?? error?.code ?? 'closed')}`));
    }
  });

  return {
    opened,
    done,
    state,
    get received() {
      return seqs.length;
    },
    close() {
      source.close();
    },
    /** Exactly once and in order means: the sequence received is 0, 1, ..., expected - 1 and nothing else. */
    verify() {
      const seen = new Uint32Array(expected);
      let outOfRange = 0;
      let outOfOrder = 0;
      let firstBadIndex = -1;
      for (let i = 0; i < seqs.length; i++) {
        const seq = seqs[i];
        if (seq !== i && firstBadIndex === -1) firstBadIndex = i;
        if (seq >= 0 && seq < expected) seen[seq]++;
        else outOfRange++;
        if (i > 0 && seq !== seqs[i - 1] + 1) outOfOrder++;
      }
      let missing = 0;
      let duplicates = 0;
      for (let i = 0; i < expected; i++) {
        if (seen[i] === 0) missing++;
        else duplicates += seen[i] - 1;
      }
      const exactlyOnceInOrder = seqs.length === expected && firstBadIndex === -1;
      return {
        received: seqs.length,
        expected,
        exactlyOnceInOrder,
        missing,
        duplicates,
        outOfRange,
        outOfOrder,
        firstBadIndex,
        reconnects: Math.max(0, state.opens - 1),
      };
    },
  };
}
