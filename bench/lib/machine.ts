import os from 'node:os';

/** Where a benchmark ran: absolute figures mean little without it (shared 2-vCPU VMs move ±30%). */
export interface Machine {
  cpuModel: string;
  cpuMHz: number | undefined;
  cores: number;
  availableParallelism: number;
  totalMemoryMB: number;
  os: string;
  node: string;
  v8: string;
  /** 1-minute load average when the benchmark started: a busy neighbour shows here. */
  loadAverage1m: number;
}

export function describeMachine(): Machine {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cpuMHz: cpus[0]?.speed || undefined,
    cores: cpus.length,
    availableParallelism: os.availableParallelism(),
    totalMemoryMB: Math.round(os.totalmem() / 2 ** 20),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    v8: process.versions.v8,
    loadAverage1m: Math.round((os.loadavg()[0] ?? 0) * 100) / 100,
  };
}
