import type { StateStore } from '../state/store.js';

const REFRESH_MS = 1000;
const MAX_ENTRIES = 10_000;

/**
 * "The destination asked us to wait": a 429/503 with Retry-After pauses a provider (or one key of
 * it, e.g. one recipient) until a time, for every node. The pause is written to the state store;
 * each node keeps a local copy and re-reads a key at most once a second, so a pause set on one
 * node holds on the others within a second, at the cost of one read per key per second.
 */
export class PauseBoard {
  private readonly local = new Map<string, { until: number; checkedAt: number }>();

  constructor(private readonly state: StateStore) {}

  /** Epoch ms until which `provider`/`key` is paused (0 = not paused). */
  async until(provider: string, key: string, now: number): Promise<number> {
    const id = storeKey(provider, key);
    const cached = this.local.get(id);
    if (cached !== undefined && now - cached.checkedAt < REFRESH_MS) {
      return cached.until > now ? cached.until : 0;
    }
    let until = cached?.until ?? 0;
    try {
      const got = await this.state.get(id, now);
      until = Math.max(until, got === undefined ? 0 : Number(got.value));
    } catch {
      // A store hiccup does not stop dispatch: keep the local view.
    }
    this.remember(id, until, now);
    return until > now ? until : 0;
  }

  /** Pauses `provider`/`key` until `until` (extends, never shortens, a pause). */
  async pause(provider: string, key: string, until: number, now: number): Promise<void> {
    const id = storeKey(provider, key);
    const prev = this.local.get(id)?.until ?? 0;
    if (until <= prev) return;
    this.remember(id, until, now);
    try {
      await this.state.set(id, String(until), { ttlMs: Math.max(1, until - now) }, now);
    } catch {
      // Local pause still applies.
    }
  }

  /** Local pauses still in force, for GET /v1/providers. */
  active(provider: string, now: number): { key: string; until: number }[] {
    const prefix = storeKey(provider, '');
    const out: { key: string; until: number }[] = [];
    for (const [id, e] of this.local) {
      if (id.startsWith(prefix) && e.until > now)
        out.push({ key: id.slice(prefix.length), until: e.until });
    }
    return out;
  }

  clear(provider: string): void {
    const prefix = storeKey(provider, '');
    for (const id of [...this.local.keys()]) if (id.startsWith(prefix)) this.local.delete(id);
  }

  private remember(id: string, until: number, now: number): void {
    this.local.delete(id);
    this.local.set(id, { until, checkedAt: now });
    if (this.local.size > MAX_ENTRIES) {
      const oldest = this.local.keys().next().value;
      if (oldest !== undefined) this.local.delete(oldest);
    }
  }
}

function storeKey(provider: string, key: string): string {
  return `pause|${provider}|${key}`;
}
