import { readdirSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

/**
 * Where the CPU time of a pass went: this process, the backend's server processes (found by
 * name in /proc) and the whole machine. Linux only; elsewhere the /proc figures are undefined.
 * Read outside the timed windows (a /proc walk costs a few ms).
 */
export interface CpuSample {
  /** This process, user + system, µs. */
  readonly selfUs: number;
  /** Server processes (summed over every process with one of the names), µs; undefined off Linux. */
  readonly serverUs: number | undefined;
  /** Machine-wide busy and total jiffies (every CPU), from /proc/stat. */
  readonly machine: { busy: number; total: number } | undefined;
  readonly at: number;
}

/** Clock ticks per second of /proc times (USER_HZ): 100 on every Linux we run on. */
const TICKS_PER_SEC = 100;

/**
 * Takes a sample. `edge` orders the reads so that the /proc walk (a few ms of this process's
 * CPU) stays outside the measured interval: before a pass, /proc first, then this process and
 * the clock; after it, this process and the clock first, then /proc.
 */
export function sampleCpu(serverNames: readonly string[], edge: 'before' | 'after'): CpuSample {
  const proc = (): Pick<CpuSample, 'serverUs' | 'machine'> => ({
    serverUs: serverNames.length === 0 ? undefined : serverCpuUs(serverNames),
    machine: machineJiffies(),
  });
  const own = (): Pick<CpuSample, 'selfUs' | 'at'> => {
    const u = process.cpuUsage();
    return { selfUs: u.user + u.system, at: performance.now() };
  };
  if (edge === 'before') {
    const p = proc();
    return { ...p, ...own() };
  }
  const o = own();
  return { ...o, ...proc() };
}

export interface CpuDelta {
  /** This process's CPU time per operation (µs). */
  selfUsPerOp: number;
  /** The server's CPU time per operation (µs), when its processes were found. */
  serverUsPerOp: number | undefined;
  /** This process's CPU time / wall time: 1 = one core saturated. */
  selfCores: number;
  /** Machine-wide busy CPUs over the pass (of `cores`), any process. */
  machineBusyCores: number | undefined;
}

export function cpuDelta(before: CpuSample, after: CpuSample, ops: number): CpuDelta {
  const wallUs = (after.at - before.at) * 1000;
  const self = after.selfUs - before.selfUs;
  const server =
    before.serverUs === undefined || after.serverUs === undefined
      ? undefined
      : after.serverUs - before.serverUs;
  let busyCores: number | undefined;
  if (before.machine !== undefined && after.machine !== undefined) {
    const total = after.machine.total - before.machine.total;
    const cores = total / ((wallUs / 1e6) * TICKS_PER_SEC);
    busyCores = total > 0 ? ((after.machine.busy - before.machine.busy) / total) * cores : 0;
  }
  return {
    selfUsPerOp: ops > 0 ? self / ops : 0,
    serverUsPerOp: server === undefined || ops === 0 ? undefined : server / ops,
    selfCores: wallUs > 0 ? self / wallUs : 0,
    machineBusyCores: busyCores,
  };
}

/** utime + stime of every process whose command name is one of `names`, in µs. */
function serverCpuUs(names: readonly string[]): number | undefined {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return undefined;
  }
  let ticks = 0;
  for (const pid of entries) {
    if (pid.charCodeAt(0) < 48 || pid.charCodeAt(0) > 57) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    } catch {
      continue; // exited meanwhile
    }
    const open = stat.indexOf('(');
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(open + 1, close);
    if (!names.some((n) => comm.startsWith(n))) continue;
    // Fields after the command: state is field 3; utime and stime are fields 14 and 15.
    const fields = stat.slice(close + 2).split(' ');
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return (ticks / TICKS_PER_SEC) * 1e6;
}

function machineJiffies(): { busy: number; total: number } | undefined {
  try {
    const line = readFileSync('/proc/stat', 'latin1').split('\n', 1)[0] as string;
    // cpu user nice system idle iowait irq softirq steal (guest time is inside user)
    const v = line.trim().split(/\s+/).slice(1, 9).map(Number);
    const total = v.reduce((a, b) => a + b, 0);
    // Busy = run by this VM's CPUs; idle, iowait and steal (the host ran someone else) are not.
    const notBusy = (v[3] ?? 0) + (v[4] ?? 0) + (v[7] ?? 0);
    return { busy: total - notBusy, total };
  } catch {
    return undefined;
  }
}
