// Minimal incremental reader of one HTTP/1.1 SSE response: skips the head,
// undoes chunked transfer encoding, splits the body into blank-line
// terminated blocks, and reports the blocks carrying a benchmark payload
// (`data: {"t":<ms>,...}`) with their timestamp.

/**
 * Buffer's latin1Slice is undocumented and missing from @types/node, but it
 * decodes without the argument checks of toString('latin1'), once per read.
 * @typedef {Buffer & { latin1Slice(start: number, end: number): string }} Latin1Buffer
 */

const NL = 10;
const CR = 13;
const BLANK = Buffer.from('\n\n');
const MARKER = Buffer.from('{"t":');
const HEAD_END = '\r\n\r\n';

const S_HEAD = 0;
const S_SIZE = 1;
const S_DATA = 2;
const S_DATA_END = 3;
const S_RAW = 4;
const S_DONE = 5;

/** @param {number} c a byte */
function hexValue(c) {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

export class SseCounter {
  /**
   * @param {{ onHead?: (status: number) => void, onBlock?: () => void,
   *           onEvent?: (t: number, now: number) => void, wantTimestamps?: () => boolean }} hooks
   */
  constructor(hooks = {}) {
    this.hooks = hooks;
    this.state = S_HEAD;
    this.head = '';
    this.size = 0;
    this.sizeSeen = false;
    this.inExtension = false;
    this.remaining = 0;
    this.dataEnd = 0;
    /**
     * Unterminated start of a block, copied out of an earlier read.
     * @type {Buffer | null}
     */
    this.tail = null;
    this.blocks = 0;
    this.events = 0;
    this.status = 0;
  }

  /**
   * Feeds one socket read; `now` is the receive time the events of this read
   * get. Nothing of `buf` is kept after the call returns (it may be reused).
   * @param {Buffer} buf
   * @param {number} now
   */
  feed(buf, now) {
    let pos = 0;
    const len = buf.length;
    if (this.state === S_HEAD) {
      this.head += /** @type {Latin1Buffer} */ (buf).latin1Slice(0, len);
      const end = this.head.indexOf(HEAD_END);
      if (end === -1) return;
      const head = this.head.slice(0, end);
      const bodyStart = len - (this.head.length - (end + HEAD_END.length));
      this.head = '';
      this.status = Number(head.slice(9, 12));
      this.hooks.onHead?.(this.status);
      this.state = /\r\ntransfer-encoding:[ \t]*chunked/i.test(head) ? S_SIZE : S_RAW;
      pos = bodyStart;
    }
    while (pos < len) {
      switch (this.state) {
        case S_RAW:
          this.payload(buf, pos, len, now);
          return;
        case S_SIZE: {
          const c = buf[pos++];
          if (c === NL) {
            if (!this.sizeSeen) throw new Error('bad chunk size line');
            if (this.size === 0) {
              this.state = S_DONE;
              return;
            }
            this.remaining = this.size;
            this.size = 0;
            this.sizeSeen = false;
            this.inExtension = false;
            this.state = S_DATA;
          } else if (c !== CR && !this.inExtension) {
            if (c === 59 /* ; */) {
              this.inExtension = true;
            } else {
              const v = hexValue(c);
              if (v < 0) throw new Error(`bad chunk size byte ${c}`);
              this.size = this.size * 16 + v;
              this.sizeSeen = true;
            }
          }
          break;
        }
        case S_DATA: {
          const n = Math.min(this.remaining, len - pos);
          this.payload(buf, pos, pos + n, now);
          pos += n;
          this.remaining -= n;
          if (this.remaining === 0) {
            this.state = S_DATA_END;
            this.dataEnd = 2;
          }
          break;
        }
        case S_DATA_END:
          pos++;
          if (--this.dataEnd === 0) this.state = S_SIZE;
          break;
        default:
          return;
      }
    }
  }

  /**
   * Body bytes buf[start, end).
   * @param {Buffer} buf
   * @param {number} start
   * @param {number} end
   * @param {number} now
   */
  payload(buf, start, end, now) {
    if (start >= end) return;
    let from = start;
    if (this.tail !== null) {
      const tail = this.tail;
      let blockEnd;
      if (tail[tail.length - 1] === NL && buf[start] === NL) {
        blockEnd = start + 1;
      } else {
        const i = buf.indexOf(BLANK, start);
        if (i === -1 || i + 2 > end) {
          this.tail = Buffer.concat([tail, buf.subarray(start, end)]);
          return;
        }
        blockEnd = i + 2;
      }
      this.tail = null;
      const block = Buffer.concat([tail, buf.subarray(start, blockEnd)]);
      this.block(block, 0, block.length, now);
      from = blockEnd;
    }
    for (;;) {
      const i = buf.indexOf(BLANK, from);
      if (i === -1 || i + 2 > end) break;
      this.block(buf, from, i + 2, now);
      from = i + 2;
    }
    if (from < end) this.tail = Buffer.from(buf.subarray(from, end));
  }

  /**
   * @param {Buffer} buf
   * @param {number} start
   * @param {number} end
   * @param {number} now
   */
  block(buf, start, end, now) {
    this.blocks++;
    this.hooks.onBlock?.();
    const m = buf.indexOf(MARKER, start);
    if (m === -1 || m >= end) return;
    this.events++;
    const onEvent = this.hooks.onEvent;
    if (onEvent === undefined) return;
    let t = NaN;
    if (this.hooks.wantTimestamps?.() ?? true) {
      const comma = buf.indexOf(44 /* , */, m + MARKER.length);
      t = Number(/** @type {Latin1Buffer} */ (buf).latin1Slice(m + MARKER.length, comma));
    }
    onEvent(t, now);
  }
}
