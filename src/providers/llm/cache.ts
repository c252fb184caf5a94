import { createHash } from 'node:crypto';
import type { Clock } from '../../core/clock.js';
import type { StateStore } from '../../state/store.js';

/** What the response cache keeps of an answer: the parts the outcome shows. */
export interface CachedAnswer {
  status: number;
  content: unknown;
  model: unknown;
  usage: unknown;
  finishReason: unknown;
}

/** JSON with object keys sorted, so equal values hash equally whatever their key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v ?? null)).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/**
 * The cache key of a request: sha256 (hex) of the endpoint, the model, every message sent
 * (system prompt and session history included) and the parameters.
 */
export function cacheKey(request: {
  endpoint: string;
  model: string;
  messages: unknown;
  parameters: unknown;
}): string {
  return createHash('sha256').update(canonicalJson(request)).digest('hex');
}

export function cacheStateKey(hash: string): string {
  return `llm:cache:${hash}`;
}

/**
 * Two-level response cache: an in-process LRU of at most `maxEntries` answers (0 = none), then
 * the state store (`llm:cache:<hash>`), so providers on other nodes (or other provider instances
 * on one store) share answers. Both levels expire after `ttlMs`.
 */
export class ResponseCache {
  private readonly memory = new Map<string, { answer: CachedAnswer; expiresAt: number }>();

  constructor(
    private readonly store: StateStore,
    private readonly clock: Clock,
    readonly ttlMs: number,
    private readonly maxEntries: number,
  ) {}

  /** The live answer for `hash`, or undefined. A store hit is copied into the memory level. */
  async get(hash: string): Promise<CachedAnswer | undefined> {
    const now = this.clock.now();
    const local = this.memory.get(hash);
    if (local !== undefined) {
      this.memory.delete(hash);
      if (local.expiresAt > now) {
        this.memory.set(hash, local); // most recently used goes last
        return local.answer;
      }
    }
    const stored = await this.store.get(cacheStateKey(hash), now);
    if (stored === undefined) return undefined;
    let answer: CachedAnswer;
    try {
      answer = JSON.parse(stored.value) as CachedAnswer;
    } catch {
      return undefined; // not ours or damaged: a miss, overwritten by the next answer
    }
    if (answer === null || typeof answer !== 'object') return undefined;
    this.remember(hash, answer, stored.expiresAt ?? now + this.ttlMs);
    return answer;
  }

  async set(hash: string, answer: CachedAnswer): Promise<void> {
    const now = this.clock.now();
    this.remember(hash, answer, now + this.ttlMs);
    await this.store.set(cacheStateKey(hash), JSON.stringify(answer), { ttlMs: this.ttlMs }, now);
  }

  private remember(hash: string, answer: CachedAnswer, expiresAt: number): void {
    if (this.maxEntries === 0) return;
    this.memory.delete(hash);
    this.memory.set(hash, { answer, expiresAt });
    while (this.memory.size > this.maxEntries) {
      const oldest = this.memory.keys().next();
      if (oldest.done === true) break;
      this.memory.delete(oldest.value);
    }
  }

  /** Entries held in memory (for tests). */
  get memorySize(): number {
    return this.memory.size;
  }
}
