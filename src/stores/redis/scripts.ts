import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

/** A Lua script and its SHA1, the name EVALSHA knows it by. */
export interface Script {
  readonly lua: string;
  readonly sha: string;
}

function script(lua: string): Script {
  return { lua, sha: createHash('sha1').update(lua).digest('hex') };
}

/*
 * Lua numbers are doubles and `tostring` prints them with 14 significant
 * digits, so every sequence number crosses into a string through
 * string.format('%d') (exact below 2^53).
 *
 * Numbering starts from the epoch: Redis's clock in microseconds, taken
 * when the first script needs it and kept in `<prefix>epoch`. A channel
 * never published to stands at the epoch, and its counter starts from it.
 * When Redis loses its data, the epoch goes with the counters and the next
 * one is taken from the clock again: every id handed out since is above
 * every id of the lost generation (while no channel averages a million
 * events a second), so those are recognised as lost history, never reused.
 */
const NUMBERING = `
if redis.replicate_commands then redis.replicate_commands() end
local function clock()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000000 + tonumber(time[2])
end
local function epoch(key)
  local value = redis.call('GET', key)
  if value then return tonumber(value) end
  value = clock()
  redis.call('SET', key, string.format('%d', value))
  return value
end
local function headOf(seqKey, epochKey)
  local value = redis.call('GET', seqKey)
  if value then return tonumber(value) end
  return epoch(epochKey)
end
`;

/*
 * A caller that has seen seqs up to `floor` on this channel and finds the
 * counter below it knows Redis rolled back (a restore from an older snapshot,
 * an AOF that had not reached the disk, an evicted counter): the counter then
 * jumps to the clock, above anything the rolled-back generation handed out.
 *
 * KEYS: seq, log, epoch. ARGV: maxEvents, maxAge, pubsub channel, floor, body...
 */
export const APPEND = script(`${NUMBERING}
local n = #ARGV - 4
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local current = headOf(KEYS[1], KEYS[3])
local floor = tonumber(ARGV[4])
if current < floor then current = math.max(floor, clock()) end
redis.call('SET', KEYS[1], string.format('%d', current + n))
local first = current + 1
local maxEvents = tonumber(ARGV[1])
if maxEvents > 0 then
  local stamp = string.format('%d', now)
  for i = 1, n do
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], string.format('0-%d', first + i - 1), 't', stamp, 'b', ARGV[4 + i])
  end
  -- Every event is past maxAge by then: an idle channel's log vanishes, its counter stays.
  redis.call('PEXPIRE', KEYS[2], string.format('%d', 2 * tonumber(ARGV[2])))
end
local bodies = {}
for i = 1, n do bodies[i] = ARGV[4 + i] end
redis.call('PUBLISH', ARGV[3], '[' .. string.format('%d', first) .. ',' .. cjson.encode(bodies) .. ']')
return string.format('%d', first)
`);

/*
 * The head and the page come from one script, so they agree. MAXLEN ~ keeps
 * somewhat more than maxEvents; the window [head - maxEvents, head] makes the
 * limit exact. Expired events form a prefix of the log (their times only
 * grow), so the scan skips until the first live one and takes the rest.
 *
 * KEYS: seq, log, epoch. ARGV: after, limit, maxEvents, maxAge.
 * Returns { head, id1, body1, id2, body2, ... }.
 */
export const READ = script(`${NUMBERING}
local head = headOf(KEYS[1], KEYS[3])
local reply = { string.format('%d', head) }
local start = math.max(tonumber(ARGV[1]), head - tonumber(ARGV[3]))
if start >= head then return reply end
local limit = tonumber(ARGV[2])
local time = redis.call('TIME')
local oldest = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000) - tonumber(ARGV[4])
local cursor = string.format('(0-%d', start)
local size = 1 + 2 * limit
while #reply < size do
  local batch = redis.call('XRANGE', KEYS[2], cursor, '+', 'COUNT', limit)
  for _, entry in ipairs(batch) do
    if #reply > 1 or tonumber(entry[2][2]) >= oldest then
      reply[#reply + 1] = entry[1]
      reply[#reply + 1] = entry[2][4]
      if #reply >= size then break end
    end
  end
  if #batch < limit then break end
  cursor = '(' .. batch[#batch][1]
end
return reply
`);

/* KEYS: seq, epoch. */
export const HEAD = script(`${NUMBERING}
return string.format('%d', headOf(KEYS[1], KEYS[2]))
`);

/*
 * Moves a rolled-back counter (below `floor`, what the caller has seen) up to
 * the clock, so ids the lost part of the history used are not handed out again.
 *
 * KEYS: seq, epoch. ARGV: floor. Returns the head.
 */
export const REPAIR = script(`${NUMBERING}
local current = headOf(KEYS[1], KEYS[2])
local floor = tonumber(ARGV[1])
if current >= floor then return string.format('%d', current) end
current = math.max(floor, clock())
redis.call('SET', KEYS[1], string.format('%d', current))
return string.format('%d', current)
`);

/** EVALSHA, falling back to EVAL when Redis does not have the script (first use, or after a restart). */
export async function evalScript(
  redis: Redis,
  { lua, sha }: Script,
  keys: readonly string[],
  args: readonly (string | number)[],
): Promise<unknown> {
  try {
    return await redis.evalsha(sha, keys.length, ...keys, ...args);
  } catch (error) {
    if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
    return redis.eval(lua, keys.length, ...keys, ...args);
  }
}
