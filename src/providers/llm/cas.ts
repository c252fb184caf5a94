import { setTimeout as sleep } from 'node:timers/promises';
import type { Clock } from '../../core/clock.js';
import { SyError } from '../../core/errors.js';
import type { StateStore } from '../../state/store.js';

/** Compare-and-set attempts before giving up with SY_ERR_STATE_UNAVAILABLE. */
export const CAS_ATTEMPTS = 16;

/**
 * Read-modify-write of one state key with compare-and-set on its version: `update` gets the
 * current value (undefined when absent or expired) and returns the new one. When another writer
 * changed the key in between, the update is recomputed from the fresh value (with a short,
 * growing, jittered pause), up to CAS_ATTEMPTS times. Every write sets `ttlMs` anew.
 */
export async function compareAndSet(
  store: StateStore,
  clock: Clock,
  key: string,
  ttlMs: number,
  update: (current: string | undefined) => string,
): Promise<string> {
  for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
    const now = clock.now();
    const current = await store.get(key, now);
    const next = update(current?.value);
    const version = await store.set(key, next, { ttlMs, ifVersion: current?.version ?? 0 }, now);
    if (version !== undefined) return next;
    // Lost the race: let the winner finish, then retry from its value.
    await sleep(Math.random() * Math.min(2 ** attempt, 50));
  }
  throw new SyError(
    'SY_ERR_STATE_UNAVAILABLE',
    `state key could not be updated after ${CAS_ATTEMPTS} compare-and-set attempts (too much contention)`,
    { operation: 'compareAndSet', retryAfterMs: 1000 },
  );
}
