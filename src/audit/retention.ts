import { systemClock, type Clock } from '../core/clock.js';
import { silentLogger, type Logger } from '../core/logger.js';
import type { Lease, StateStore } from '../state/store.js';
import type { AuditStore } from './store.js';

/** The state-store lease that lets one node at a time delete old records. */
export const RETENTION_LEASE = 'audit-retention';

export interface RetentionOptions {
  store: AuditStore;
  state: StateStore;
  /** Records with decidedAt older than now - retentionMs are deleted. */
  retentionMs: number;
  /** This node's id (the lease holder). */
  holder: string;
  /** How often a run starts (the first one after this long). Default 60 s. */
  everyMs?: number;
  /** Records per deleteBefore call. Default 10 000. */
  batch?: number;
  /**
   * How long the lease lasts without renewal (renewed between batches; kept between runs, so the
   * same node keeps the work until it stops or dies). Default max(3 × everyMs, 60 s).
   */
  leaseMs?: number;
  clock?: Clock;
  logger?: Logger;
}

export interface Retention {
  /** Stops the timer, lets a run in progress end after its current batch, gives the lease up. */
  stop(): Promise<void>;
  /**
   * One run now: deletes every record older than the retention, in batches, if this node gets
   * the lease (0 when another node holds it). Rejects when a store fails.
   */
  runOnce(): Promise<number>;
}

/** Deletes old audit records in the background, one node at a time (see RetentionOptions). */
export function startRetention(options: RetentionOptions): Retention {
  const { store, state, retentionMs, holder } = options;
  const everyMs = options.everyMs ?? 60_000;
  const batch = Math.max(1, options.batch ?? 10_000);
  const leaseMs = options.leaseMs ?? Math.max(3 * everyMs, 60_000);
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? silentLogger();

  let stopped = false;
  let lease: Lease | undefined;
  /** The run in progress: runs never overlap (a second caller waits and then runs). */
  let running: Promise<number> | undefined;

  const run = async (): Promise<number> => {
    lease = await state.acquireLease(RETENTION_LEASE, holder, leaseMs, clock.now());
    if (lease === undefined) return 0;
    const token = lease.token;
    const before = clock.now() - retentionMs;
    let total = 0;
    for (;;) {
      const n = await store.deleteBefore(before, batch);
      total += n;
      if (n < batch || stopped) break;
      const renewed = await state.renewLease(RETENTION_LEASE, holder, token, leaseMs, clock.now());
      if (!renewed) {
        logger.warn({ deleted: total }, 'audit retention lease lost; another node takes over');
        lease = undefined;
        break;
      }
    }
    if (total > 0) logger.info({ deleted: total, before }, 'audit retention deleted old records');
    return total;
  };

  const runOnce = async (): Promise<number> => {
    while (running !== undefined) await running.catch(() => undefined);
    if (stopped) return 0;
    const current = run();
    running = current;
    try {
      return await current;
    } finally {
      running = undefined;
    }
  };

  const timer = setInterval(() => {
    if (running !== undefined || stopped) return;
    runOnce().catch((err: unknown) => logger.warn({ err }, 'audit retention run failed'));
  }, everyMs);
  timer.unref();

  return {
    runOnce,
    async stop(): Promise<void> {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      await running?.catch(() => undefined);
      const held = lease;
      lease = undefined;
      if (held !== undefined) {
        try {
          await state.releaseLease(RETENTION_LEASE, holder, held.token);
        } catch (err) {
          logger.warn({ err }, 'audit retention could not release its lease');
        }
      }
    },
  };
}
