import { PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';

export interface GcTotals {
  count: number;
  pauseMs: number;
}

/**
 * Records every GC pause of the process. Entries arrive asynchronously (after a sequential loop of
 * resolved promises yields), so pauses are attributed afterwards to the time windows they fell in.
 */
export class GcWatcher {
  private readonly entries: PerformanceEntry[] = [];
  private readonly observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) this.entries.push(e);
  });

  constructor() {
    this.observer.observe({ entryTypes: ['gc'] });
  }

  /** Lets pending entries be delivered, then stops observing. */
  async stop(): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, 10));
    this.observer.disconnect();
  }

  /** GC pauses that started inside any of the windows ([start, end] in performance.now() ms). */
  within(windows: readonly (readonly [number, number])[]): GcTotals {
    let count = 0;
    let pauseMs = 0;
    for (const e of this.entries) {
      if (windows.some(([start, end]) => e.startTime >= start && e.startTime <= end)) {
        count++;
        pauseMs += e.duration;
      }
    }
    return { count, pauseMs: Math.round(pauseMs * 100) / 100 };
  }
}
