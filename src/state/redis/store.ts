import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Redis as RedisClient, RedisOptions } from 'ioredis';
import { SyError } from '../../core/errors.js';
import {
  PASS,
  type DueItem,
  type GateOp,
  type GateResult,
  type Lease,
  type SettleOp,
  type StateStore,
  type Versioned,
} from '../store.js';
import { SCRIPTS, type ScriptName } from './scripts.js';

export interface RedisStateStoreOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://…` for TLS. */
  readonly url: string;
  /** Prepended to every key, so several gateways (or tests) can share one Redis. */
  readonly prefix?: string;
  /** A command that gets no answer within this time fails (and so does connecting). */
  readonly commandTimeoutMs?: number;
}

type Arg = string | number;
type ScriptedClient = RedisClient & {
  readonly [name in ScriptName]: (...args: Arg[]) => Promise<unknown>;
};
interface IoRedisModule {
  readonly Redis: new (url: string, options: RedisOptions) => RedisClient;
}

/** Reply of the gate script: 1, or the first blocker (see scripts.ts). */
type GateReply = 1 | [number, 'd' | 'i', 0 | 1, string, string | null] | [number, 't', ...number[]];

/**
 * The Redis state store: shared by every gateway process that points at the same Redis, exact
 * and atomic because each operation is one Lua script (one round trip; `gate` is one EVALSHA).
 *
 * Keys: gate keys are `<prefix>{<scope>}:d:<key>` (dedup), `…:i:<key>` (idempotency) and
 * `…:t:<windowMs>:<key>` (throttle window); the `{scope}` hash tag keeps all keys of one gate
 * call in one Redis Cluster slot. Key/values live at `<prefix>kv:<key>`, leases at
 * `<prefix>{lease:<name>}:…`, due items at `<prefix>{due:<queue>}:…`.
 *
 * Outages fail fast: once connected, commands are not queued while Redis is away (they fail
 * with SY_ERR_STATE_UNAVAILABLE at once), commands in flight when the connection drops fail
 * instead of being replayed (a replayed gate could count twice), and the client keeps
 * reconnecting in the background, so the store recovers by itself.
 *
 * @example
 * const state = new RedisStateStore({ url: 'redis://127.0.0.1:6379', prefix: 'sy:' });
 * await state.init(); // optional: fails fast when Redis is unreachable
 */
export class RedisStateStore implements StateStore {
  readonly backend = 'redis';
  private readonly client: ScriptedClient;
  private readonly prefix: string;
  private readonly timeoutMs: number;
  /** True once the client saw its first 'ready' or 'error': from then on, never wait for it. */
  private attempted = false;
  private lastError: Error | undefined;
  private connecting: Promise<void> | undefined;
  /** Throttle-set members must be unique across processes and calls. */
  private readonly nonce = randomBytes(6).toString('base64url');
  private seq = 0;
  private readonly onGateError: (err: unknown) => never;

  constructor(options: RedisStateStoreOptions) {
    this.prefix = options.prefix ?? 'sy:';
    this.timeoutMs = options.commandTimeoutMs ?? 2000;
    // Loaded here, not at import: only a gateway configured for Redis pays for ioredis.
    const { Redis } = createRequire(import.meta.url)('ioredis') as IoRedisModule;
    const client = new Redis(options.url, {
      lazyConnect: true,
      // While disconnected, fail commands at once instead of queueing them.
      enableOfflineQueue: false,
      // Commands in flight when the connection drops fail at the first reconnect attempt and
      // are never resent: a resent gate or claim could be applied twice.
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      commandTimeout: this.timeoutMs,
      connectTimeout: this.timeoutMs,
      // Keep reconnecting forever in the background, at most a second apart.
      retryStrategy: (times) => Math.min(times * 100, 1000),
    });
    for (const [name, { lua, ...rest }] of Object.entries(SCRIPTS)) {
      const numberOfKeys = 'numberOfKeys' in rest ? rest.numberOfKeys : undefined;
      client.defineCommand(name, numberOfKeys === undefined ? { lua } : { lua, numberOfKeys });
    }
    // Connection errors are reported through the commands that fail; the listener also keeps
    // an 'error' event from ever being unhandled.
    client.on('error', (err: Error) => {
      this.attempted = true;
      this.lastError = err;
    });
    client.on('ready', () => {
      this.attempted = true;
      this.lastError = undefined;
    });
    this.client = client as ScriptedClient;
    this.onGateError = (err) => {
      throw this.wrap('gate', err);
    };
  }

  async init(): Promise<void> {
    try {
      if (this.client.status !== 'ready') await this.connect();
      await Promise.all(Object.values(SCRIPTS).map(({ lua }) => this.client.script('LOAD', lua)));
    } catch (err) {
      throw this.wrap('init', err);
    }
  }

  gate(ops: readonly GateOp[], now: number, dryRun = false): GateResult | Promise<GateResult> {
    if (ops.length === 0) return PASS;
    if (this.mustWait()) {
      return this.connect().then(() => this.gate(ops, now, dryRun), this.onGateError);
    }
    const dry = dryRun ? '1' : '0';
    const first = ops[0] as GateOp;
    // The common case (one dedup or idempotency key) without intermediate arrays.
    if (ops.length === 1 && first.kind !== 'throttle') {
      const kind = first.kind === 'dedup' ? 'd' : 'i';
      const key = `${this.prefix}{${first.scope || '_'}}:${kind}:${first.key}`;
      return (
        this.client.syGate(
          1,
          key,
          now,
          dry,
          '',
          kind,
          first.ttlMs,
          first.actionId,
        ) as Promise<GateReply>
      ).then(gateResult, this.onGateError);
    }
    const keys: Arg[] = [0];
    const args: Arg[] = [now, dry, ''];
    for (const op of ops) {
      const base = `${this.prefix}{${op.scope || '_'}}:`;
      if (op.kind === 'throttle') {
        args.push('t', op.limits.length);
        for (const { limit, windowMs } of op.limits) {
          keys.push(`${base}t:${windowMs}:${op.key}`);
          args.push(limit, windowMs);
        }
        args[2] = `${this.nonce}.${++this.seq}`;
      } else {
        const kind = op.kind === 'dedup' ? 'd' : 'i';
        keys.push(`${base}${kind}:${op.key}`);
        args.push(kind, op.ttlMs, op.actionId);
      }
    }
    keys[0] = keys.length - 1;
    return (this.client.syGate(...keys, ...args) as Promise<GateReply>).then(
      gateResult,
      this.onGateError,
    );
  }

  async settle(ops: readonly SettleOp[], _now: number): Promise<void> {
    if (ops.length === 0) return;
    const keys: string[] = [];
    const args: Arg[] = [];
    for (const op of ops) {
      const kind = op.gate === 'dedup' ? 'd' : 'i';
      keys.push(`${this.prefix}{${op.scope || '_'}}:${kind}:${op.key}`);
      args.push(
        op.op === 'commit' ? 'c' : 'r',
        op.actionId,
        op.outcome === undefined ? '0' : '1',
        op.outcome ?? '',
      );
    }
    await this.run('settle', (c) => c.sySettle(keys.length, ...keys, ...args));
  }

  async get(key: string, now: number): Promise<Versioned | undefined> {
    const [value, version, exp] = await this.run('get', (c) =>
      c.hmget(this.kvKey(key), 'v', 'ver', 'exp'),
    );
    if (value == null || version == null) return undefined;
    const expiresAt = exp == null || exp === '' ? null : Number(exp);
    if (expiresAt !== null && expiresAt <= now) return undefined;
    return { value, version: Number(version), expiresAt };
  }

  async set(
    key: string,
    value: string,
    options: { ttlMs?: number; ifVersion?: number },
    now: number,
  ): Promise<number | undefined> {
    const version = await this.run('set', (c) =>
      c.syKvSet(this.kvKey(key), value, now, options.ttlMs ?? '', options.ifVersion ?? ''),
    );
    return version === null ? undefined : (version as number);
  }

  async delete(key: string, options: { ifVersion?: number }, now: number): Promise<boolean> {
    const deleted = await this.run('delete', (c) =>
      c.syKvDelete(this.kvKey(key), now, options.ifVersion ?? ''),
    );
    return deleted === 1;
  }

  async acquireLease(
    name: string,
    holder: string,
    ttlMs: number,
    now: number,
  ): Promise<Lease | undefined> {
    const base = `${this.prefix}{lease:${name}}:`;
    const token = await this.run('acquireLease', (c) =>
      c.syLeaseAcquire(`${base}holder`, `${base}token`, holder, ttlMs, now),
    );
    if (token === null) return undefined;
    return { name, holder, token: token as number, expiresAt: now + ttlMs };
  }

  async renewLease(
    name: string,
    holder: string,
    token: number,
    ttlMs: number,
    now: number,
  ): Promise<boolean> {
    const key = `${this.prefix}{lease:${name}}:holder`;
    const renewed = await this.run('renewLease', (c) =>
      c.syLeaseRenew(key, holder, token, ttlMs, now),
    );
    return renewed === 1;
  }

  async releaseLease(name: string, holder: string, token: number): Promise<boolean> {
    const key = `${this.prefix}{lease:${name}}:holder`;
    const released = await this.run('releaseLease', (c) => c.syLeaseRelease(key, holder, token));
    return released === 1;
  }

  async putDue(queue: string, id: string, dueAt: number, payload: string): Promise<void> {
    const [ready, claimed, items] = this.dueKeys(queue);
    await this.run('putDue', (c) => c.syDuePut(ready, claimed, items, id, dueAt, payload));
  }

  async claimDue(
    queue: string,
    limit: number,
    holder: string,
    leaseMs: number,
    now: number,
  ): Promise<DueItem[]> {
    const [ready, claimed, items] = this.dueKeys(queue);
    const flat = (await this.run('claimDue', (c) =>
      c.syDueClaim(ready, claimed, items, now, limit, holder, leaseMs),
    )) as (string | number)[];
    const out: DueItem[] = [];
    for (let i = 0; i < flat.length; i += 4) {
      out.push({
        queue,
        id: String(flat[i]),
        dueAt: Number(flat[i + 1]),
        payload: String(flat[i + 2]),
        attempts: Number(flat[i + 3]),
      });
    }
    return out;
  }

  async ackDue(queue: string, id: string, holder: string): Promise<boolean> {
    const [ready, claimed, items] = this.dueKeys(queue);
    const acked = await this.run('ackDue', (c) => c.syDueAck(ready, claimed, items, id, holder));
    return acked === 1;
  }

  async rescheduleDue(
    queue: string,
    id: string,
    holder: string,
    dueAt: number,
    payload?: string,
  ): Promise<boolean> {
    const [ready, claimed, items] = this.dueKeys(queue);
    const moved = await this.run('rescheduleDue', (c) =>
      c.syDueReschedule(
        ready,
        claimed,
        items,
        id,
        holder,
        dueAt,
        payload === undefined ? '0' : '1',
        payload ?? '',
      ),
    );
    return moved === 1;
  }

  async listDue(
    queue: string,
    options: { limit: number; after?: { dueAt: number; id: string } },
  ): Promise<DueItem[]> {
    if (options.limit <= 0) return [];
    const [ready, claimed, items] = this.dueKeys(queue);
    const { after } = options;
    const flat = (await this.run('listDue', (c) =>
      c.syDueList(
        ready,
        claimed,
        items,
        Math.floor(options.limit),
        after === undefined ? '0' : '1',
        after?.dueAt ?? 0,
        after?.id ?? '',
      ),
    )) as string[];
    const out: DueItem[] = [];
    for (let i = 0; i < flat.length; i += 4) {
      out.push({
        queue,
        id: flat[i] as string,
        dueAt: Number(flat[i + 1]),
        payload: flat[i + 2] as string,
        attempts: Number(flat[i + 3]),
      });
    }
    return out;
  }

  async getDue(queue: string, id: string): Promise<DueItem | undefined> {
    const [, , items] = this.dueKeys(queue);
    // One HMGET: the fields of one item are read atomically.
    const [dueAt, payload, attempts] = await this.run('getDue', (c) =>
      c.hmget(items, `d:${id}`, `p:${id}`, `a:${id}`),
    );
    if (dueAt == null) return undefined;
    return { queue, id, dueAt: Number(dueAt), payload: payload ?? '', attempts: Number(attempts) };
  }

  async removeDue(queue: string, id: string): Promise<boolean> {
    const [ready, claimed, items] = this.dueKeys(queue);
    const removed = await this.run('removeDue', (c) => c.syDueRemove(ready, claimed, items, id));
    return removed === 1;
  }

  async countDue(queue: string): Promise<number> {
    const [ready, claimed, items] = this.dueKeys(queue);
    return (await this.run('countDue', (c) => c.syDueCount(ready, claimed, items))) as number;
  }

  /**
   * Redis expires keys by itself; this also removes what is expired at the caller's `now`
   * (which may run ahead of the Redis clock). Walks the prefix with SCAN, so it is a
   * background task, not something for the hot path.
   */
  async cleanup(now: number): Promise<number> {
    return this.run('cleanup', async (c) => {
      const pattern = `${this.prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
      let cursor = '0';
      let removed = 0;
      do {
        const [next, keys] = await c.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) removed += (await c.syCleanup(keys.length, ...keys, now)) as number;
      } while (cursor !== '0');
      return removed;
    });
  }

  async close(): Promise<void> {
    const c = this.client;
    if (c.status === 'end') return;
    if (c.status === 'ready') {
      try {
        await c.quit();
        return;
      } catch {
        // Could not say goodbye (connection lost meanwhile): just drop the socket.
      }
    }
    c.disconnect();
  }

  /** Runs one operation, waiting for the first connection if there has been none yet. */
  private async run<T>(operation: string, fn: (c: ScriptedClient) => Promise<T>): Promise<T> {
    try {
      if (this.mustWait()) await this.connect();
      return await fn(this.client);
    } catch (err) {
      throw this.wrap(operation, err);
    }
  }

  /** Before the first connection attempt finished, commands wait for it instead of failing. */
  private mustWait(): boolean {
    return !this.attempted && this.client.status !== 'ready';
  }

  /** Resolves on the next 'ready'; rejects on the next connection error or after the timeout. */
  private connect(): Promise<void> {
    const c = this.client;
    if (c.status === 'ready') return Promise.resolve();
    if (c.status === 'end') return Promise.reject(new Error('Connection is closed.'));
    this.connecting ??= new Promise<void>((resolve, reject) => {
      const done = (err?: Error): void => {
        clearTimeout(timer);
        c.off('ready', onReady);
        c.off('error', onError);
        c.off('end', onEnd);
        this.connecting = undefined;
        if (err === undefined) resolve();
        else reject(err);
      };
      const onReady = (): void => done();
      const onError = (err: Error): void => done(err);
      const onEnd = (): void => done(new Error('Connection is closed.'));
      const timer = setTimeout(
        () => done(new Error(`not connected within ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
      c.on('ready', onReady);
      c.on('error', onError);
      c.on('end', onEnd);
      // Failures arrive as 'error' events (handled above).
      if (c.status === 'wait') c.connect().catch(() => {});
    });
    return this.connecting;
  }

  private wrap(operation: string, err: unknown): SyError {
    if (err instanceof SyError) return err;
    let message = err instanceof Error ? err.message : String(err);
    const status = this.client.status;
    if (status !== 'ready') {
      // ioredis' "Stream isn't writeable and enableOfflineQueue options is false" means this.
      if (message.startsWith("Stream isn't writeable")) message = 'not connected';
      const last = this.lastError?.message;
      message += ` (connection ${status}${last !== undefined && last !== message ? `; last error: ${last}` : ''})`;
    }
    return new SyError(
      'SY_ERR_STATE_UNAVAILABLE',
      `redis ${operation} failed: ${message}`,
      { backend: 'redis', operation },
      { cause: err },
    );
  }

  private kvKey(key: string): string {
    return `${this.prefix}kv:${key}`;
  }

  private dueKeys(queue: string): [ready: string, claimed: string, items: string] {
    const base = `${this.prefix}{due:${queue}}:`;
    return [`${base}ready`, `${base}claimed`, `${base}items`];
  }
}

function gateResult(reply: GateReply): GateResult {
  if (reply === 1) return PASS;
  const index = reply[0];
  if (reply[1] === 't') {
    return {
      pass: false,
      index,
      kind: 'throttle',
      retryAfterMs: reply[2] as number,
      limit: reply[3] as number,
      windowMs: reply[4] as number,
    };
  }
  return {
    pass: false,
    index,
    kind: reply[1] === 'd' ? 'dedup' : 'idempotency',
    inFlight: reply[2] === 1,
    holder: reply[3],
    stored: reply[4] ?? undefined,
  };
}
