// Machine load (Linux /proc): how much CPU went to things other than the
// benchmark's own processes, and how much the hypervisor stole. Both skew
// results on a shared 2-core machine, so they are reported with them.

import { readFileSync } from 'node:fs';

/** USER_HZ: /proc counts CPU time in these ticks per second. */
const TICKS_PER_SECOND = 100;

/**
 * CPU ticks of one process, all threads (utime + stime).
 * @param {number} pid
 */
function procTicks(pid) {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/**
 * @typedef {{ at: number, busy: number, ours: number, steal: number }} MachineSnapshot
 */

/**
 * Busy and stolen CPU of the machine and CPU of `pids` now, or null where /proc is missing.
 * @param {Iterable<number>} pids
 * @returns {MachineSnapshot | null}
 */
export function machineSnapshot(pids) {
  try {
    const [user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8')
      .split('\n')[0]
      .trim()
      .split(/\s+/)
      .slice(1)
      .map(Number);
    let ours = 0;
    for (const pid of pids) ours += procTicks(pid);
    return { at: performance.now(), busy: user + nice + system + irq + softirq, ours, steal };
  } catch {
    return null;
  }
}

/**
 * CPU of other processes and stolen CPU, in % of one core, between two snapshots.
 * @param {MachineSnapshot | null} a
 * @param {MachineSnapshot | null} b
 */
export function machineLoad(a, b) {
  if (a === null || b === null) return { otherPct: NaN, stealPct: NaN };
  const seconds = (b.at - a.at) / 1000;
  const other = b.busy - a.busy - (b.ours - a.ours);
  return {
    otherPct: (Math.max(0, other) / TICKS_PER_SECOND / seconds) * 100,
    stealPct: ((b.steal - a.steal) / TICKS_PER_SECOND / seconds) * 100,
  };
}
