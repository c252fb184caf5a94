import type { Clock } from '../core/clock.js';
import { SyError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { payloadHashOf, type AuditRecord } from './record.js';
import { compileRedaction, type Redactor } from './redact.js';
import type { AuditEvent, AuditSink } from './sink.js';
import type { AuditStore } from './store.js';

export interface AuditWriterOptions {
  store: AuditStore;
  /** batched: buffered, written off the hot path; strict: `record` waits for the commit. */
  mode: 'batched' | 'strict';
  /** Keep the (redacted) payload in the record; otherwise payload is undefined (its hash stays). */
  storePayload: boolean;
  /** Payload paths replaced by "[REDACTED]" (see compileRedaction). */
  redact: readonly string[];
  nodeId: string;
  /** Records per append. Default 500. */
  batchSize?: number;
  /** Batched mode: the longest a record waits in the buffer. Default 50 ms. */
  flushIntervalMs?: number;
  /** Batched mode: records buffered before `record` makes the caller wait. Default 50 000. */
  maxBuffer?: number;
  /** Batched mode: the first delay before retrying a failed append (doubles up to the max). */
  retryDelayMs?: number;
  maxRetryDelayMs?: number;
  /**
   * Batched mode: how many batches one append may carry when the buffer has a backlog (one
   * round trip and commit per append bound a remote store's drain rate). Default 10.
   */
  backlogFactor?: number;
  logger?: Logger;
  /** Accepted for symmetry with the other components; unused (every time comes from the event). */
  clock?: Clock;
}

export interface AuditWriterStats {
  /** Records not yet committed (buffered or in the append in flight). */
  buffered: number;
  /** Records committed. */
  written: number;
  /** Appends that failed (batched: retried; strict: their callers got an error). */
  failedAppends: number;
  /** Times `record` made its caller wait for room in the buffer (batched mode). */
  backpressureWaits: number;
}

/** Strict mode: records committed together, and the promise their callers wait on. */
interface Batch {
  readonly records: AuditRecord[];
  readonly promise: Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

interface FlushWaiter {
  /** Resolved once this many records (counted since the start) are done. */
  readonly target: number;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

/** A payload as stored (redacted) and its hash, for the action that had it. */
interface Hashed {
  readonly actionId: string;
  readonly original: unknown;
  readonly payload: unknown;
  readonly hash: string;
}

/** How many recently hashed payloads the writer remembers. */
const RECENT = 8;

/** Flush attempts `close()` makes before it gives the buffered records up. */
const CLOSE_ATTEMPTS = 3;

const noop = (): void => {};

/**
 * The audit sink in front of an AuditStore: turns gateway events into records, redacts and
 * hashes payloads, and writes the records in batches, one append at a time (so in order).
 *
 * - batched: `record` buffers and returns nothing; a batch goes out when `batchSize` records are
 *   waiting or every `flushIntervalMs`. A failed append is logged and retried with backoff (the
 *   records stay first in line). With `maxBuffer` records waiting, `record` returns a promise that
 *   resolves once the buffer is below it again: callers slow down, nothing is dropped.
 * - strict: `record` returns a promise that resolves when its record is committed (with the
 *   tenant's hash chain). Records that arrive while an append is in flight go together into the
 *   next one (group commit). A failed append rejects its records' promises with
 *   SY_ERR_AUDIT_UNAVAILABLE; they are not retried (the caller reports the failure).
 *
 * A record keeps an id across retries: stores should make a repeated append of the same ids
 * harmless (an append that timed out may have committed).
 */
export class AuditWriter implements AuditSink {
  private readonly store: AuditStore;
  private readonly strict: boolean;
  private readonly storePayload: boolean;
  private readonly redact: Redactor;
  private readonly nodeId: string;
  private readonly batchSize: number;
  private readonly maxBuffer: number;
  private readonly retryDelayMs: number;
  private readonly backlogFactor: number;
  private readonly maxRetryDelayMs: number;
  private readonly logger: Logger;

  /**
   * The last few payloads hashed, by action id and payload object: an action's attempts and its
   * decision usually come close together and share the payload, so it is redacted and hashed
   * once. (A WeakMap costs more than it saves for actions recorded only once.)
   */
  private readonly recent: (Hashed | undefined)[] = new Array<Hashed | undefined>(RECENT).fill(
    undefined,
  );
  private recentNext = 0;

  // Batched mode
  private buffer: AuditRecord[] = [];
  private readonly roomWaiters: (() => void)[] = [];
  private retryTimer: NodeJS.Timeout | undefined;
  private consecutiveFailures = 0;
  // Strict mode
  private open: Batch | undefined;
  private readonly sealed: Batch[] = [];
  // Both
  private appending = false;
  private inflight = 0;
  private kickQueued = false;
  private readonly kick = (): void => {
    this.kickQueued = false;
    this.pump();
  };
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly flushWaiters: FlushWaiter[] = [];
  /** Records accepted by `record` since the start. */
  private enqueued = 0;
  /** Records committed, or (strict mode) given up with an error to their callers. */
  private done = 0;
  private written = 0;
  private failedAppends = 0;
  private backpressureWaits = 0;
  private closing = false;
  private closed = false;
  private closePromise: Promise<void> | undefined;

  constructor(options: AuditWriterOptions) {
    this.store = options.store;
    this.strict = options.mode === 'strict';
    this.storePayload = options.storePayload;
    this.redact = compileRedaction(options.redact);
    this.nodeId = options.nodeId;
    this.batchSize = Math.max(1, options.batchSize ?? 500);
    this.maxBuffer = Math.max(1, options.maxBuffer ?? 50_000);
    this.retryDelayMs = options.retryDelayMs ?? 100;
    this.backlogFactor = Math.max(1, options.backlogFactor ?? 10);
    this.maxRetryDelayMs = options.maxRetryDelayMs ?? 10_000;
    this.logger = options.logger ?? silentLogger();
    if (!this.strict) {
      this.timer = setInterval(() => {
        if (this.buffer.length > 0) this.pump();
      }, options.flushIntervalMs ?? 50);
      this.timer.unref();
    }
  }

  record(event: AuditEvent): void | Promise<void> {
    if (this.closing) {
      return Promise.reject(
        new SyError('SY_ERR_SHUTTING_DOWN', 'the audit writer is closed: record not written'),
      );
    }
    const record = this.build(event);
    this.enqueued++;
    if (this.strict) return this.recordStrict(record);
    const buffer = this.buffer;
    buffer.push(record);
    if (buffer.length >= this.batchSize && !this.appending) this.queueKick();
    if (buffer.length + this.inflight >= this.maxBuffer) return this.waitForRoom();
    return undefined;
  }

  /** Writes every record accepted so far and waits for it (batched: skips a retry's backoff). */
  flush(): Promise<void> {
    const target = this.enqueued;
    if (this.done >= target) return Promise.resolve();
    const promise = new Promise<void>((resolve, reject) =>
      this.flushWaiters.push({ target, resolve, reject }),
    );
    if (this.retryTimer !== undefined) {
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
    }
    this.pump();
    return promise;
  }

  /**
   * Flushes (a few attempts when the store fails), stops the timers and closes the store. Records
   * that still could not be written are logged as lost and the error is rethrown.
   */
  close(): Promise<void> {
    this.closePromise ??= this.shutdown();
    return this.closePromise;
  }

  private async shutdown(): Promise<void> {
    this.closing = true;
    let failure: unknown;
    for (let attempt = 1; attempt <= CLOSE_ATTEMPTS; attempt++) {
      try {
        await this.flush();
        failure = undefined;
        break;
      } catch (err) {
        failure = err;
        if (attempt < CLOSE_ATTEMPTS) await sleep(this.backoff(attempt));
      }
    }
    this.closed = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (failure !== undefined) {
      const lost = this.enqueued - this.done;
      this.logger.error(
        { err: failure, lost },
        'audit records lost at shutdown: store unavailable',
      );
      for (const wake of this.roomWaiters.splice(0)) wake();
      this.buffer = [];
      await this.store.close();
      throw failure;
    }
    await this.store.close();
  }

  stats(): AuditWriterStats {
    let buffered = this.buffer.length + this.inflight + (this.open?.records.length ?? 0);
    for (const b of this.sealed) buffered += b.records.length;
    return {
      buffered,
      written: this.written,
      failedAppends: this.failedAppends,
      backpressureWaits: this.backpressureWaits,
    };
  }

  // ---------------------------------------------------------------------------------------------

  private build(event: AuditEvent): AuditRecord {
    const action = event.action;
    const labels = action.labels;
    // The hash of the (redacted) payload is kept even without the payload: it proves later
    // what was sent without keeping what it said.
    const known = this.hashPayload(action.id, action.payload);
    const payload: unknown = this.storePayload ? known.payload : undefined;
    const payloadHash = known.hash;
    return {
      id: newId(),
      kind: event.kind,
      actionId: action.id,
      namespace: action.namespace,
      tenant: action.tenant,
      provider: event.provider,
      originalProvider: event.originalProvider,
      destination: event.destination,
      actionType: action.actionType,
      labels,
      outcome: event.outcome,
      rules: event.rules.slice(),
      reason: event.reason,
      attempt: event.attempt,
      status: event.status,
      errorCode: event.errorCode,
      dedupKey: action.dedupKey,
      receivedAt: action.receivedAt,
      decidedAt: event.decidedAt,
      executedAt: event.executedAt,
      durationMs: event.durationMs,
      nodeId: this.nodeId,
      traceId: labels.traceId ?? labels.trace_id,
      payload,
      payloadHash,
      chainSeq: undefined,
      prevHash: undefined,
      hash: undefined,
    };
  }

  private hashPayload(actionId: string, original: unknown): Hashed {
    const recent = this.recent;
    for (let i = 0; i < RECENT; i++) {
      const h = recent[i];
      if (h !== undefined && h.original === original && h.actionId === actionId) return h;
    }
    const payload = this.redact(original);
    const h: Hashed = { actionId, original, payload, hash: payloadHashOf(payload) };
    recent[this.recentNext] = h;
    this.recentNext = (this.recentNext + 1) % RECENT;
    return h;
  }

  private recordStrict(record: AuditRecord): Promise<void> {
    let batch = this.open;
    if (batch === undefined) {
      batch = newBatch();
      this.open = batch;
      // Records recorded in the same tick join this batch: the append starts in a microtask.
      if (!this.appending) this.queueKick();
    }
    batch.records.push(record);
    if (batch.records.length >= this.batchSize) {
      this.sealed.push(batch);
      this.open = undefined;
    }
    return batch.promise;
  }

  private queueKick(): void {
    if (this.kickQueued) return;
    this.kickQueued = true;
    queueMicrotask(this.kick);
  }

  private waitForRoom(): Promise<void> {
    this.backpressureWaits++;
    if (!this.appending) this.queueKick(); // maxBuffer may be below batchSize
    return new Promise<void>((resolve) => this.roomWaiters.push(resolve));
  }

  /** Starts the next append unless one is in flight (or batched mode is backing off). */
  private pump(): void {
    if (this.appending || this.closed) return;
    if (this.strict) {
      const batch = this.sealed.shift() ?? this.open;
      if (batch === undefined) return;
      if (batch === this.open) this.open = undefined;
      this.startAppend(batch.records, batch);
      return;
    }
    if (this.buffer.length === 0 || this.retryTimer !== undefined) return;
    const take = Math.min(this.buffer.length, this.batchSize * this.backlogFactor);
    let records: AuditRecord[];
    if (this.buffer.length <= take) {
      records = this.buffer;
      this.buffer = [];
    } else {
      records = this.buffer.splice(0, take);
    }
    this.startAppend(records, undefined);
  }

  private startAppend(records: AuditRecord[], batch: Batch | undefined): void {
    this.appending = true;
    this.inflight = records.length;
    let appended: Promise<void>;
    try {
      appended = this.store.append(records, { chain: this.strict });
    } catch (err) {
      appended = Promise.reject(err);
    }
    appended.then(
      () => this.succeeded(records, batch),
      (err: unknown) => this.failed(records, batch, err),
    );
  }

  private succeeded(records: AuditRecord[], batch: Batch | undefined): void {
    this.appending = false;
    this.inflight = 0;
    this.consecutiveFailures = 0;
    this.written += records.length;
    this.done += records.length;
    batch?.resolve();
    this.settleFlushes();
    if (this.roomWaiters.length > 0 && this.buffer.length < this.maxBuffer) {
      for (const wake of this.roomWaiters.splice(0)) wake();
    }
    // Keep going while a batch is full, a flush waits, or (strict) callers wait.
    if (
      this.strict ||
      this.buffer.length >= this.batchSize ||
      (this.flushWaiters.length > 0 && this.buffer.length > 0)
    ) {
      this.pump();
    }
  }

  private failed(records: AuditRecord[], batch: Batch | undefined, err: unknown): void {
    this.appending = false;
    this.inflight = 0;
    this.failedAppends++;
    if (batch !== undefined) {
      // Strict: the callers answer 503; their records are not retried.
      this.logger.error({ err, records: records.length }, 'audit append failed (strict mode)');
      this.done += records.length;
      batch.reject(unavailable(this.store, err));
      this.settleFlushes();
      this.pump();
      return;
    }
    // Batched: keep the records first in line and retry after a backoff.
    this.buffer = this.buffer.length === 0 ? records : records.concat(this.buffer);
    const delay = this.backoff(++this.consecutiveFailures);
    this.logger.error(
      { err, records: records.length, buffered: this.buffer.length, retryInMs: delay },
      'audit append failed; retrying',
    );
    const error = unavailable(this.store, err);
    for (const w of this.flushWaiters.splice(0)) w.reject(error);
    if (this.closed || this.closing) return; // close() drives its own attempts
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.pump();
    }, delay);
    this.retryTimer.unref();
  }

  private settleFlushes(): void {
    const waiters = this.flushWaiters;
    while (waiters.length > 0 && (waiters[0] as FlushWaiter).target <= this.done) {
      (waiters.shift() as FlushWaiter).resolve();
    }
  }

  /** Exponential backoff with jitter (50-100% of the nominal delay). */
  private backoff(failures: number): number {
    const nominal = Math.min(this.maxRetryDelayMs, this.retryDelayMs * 2 ** (failures - 1));
    return Math.round(nominal * (0.5 + Math.random() / 2));
  }
}

function newBatch(): Batch {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Every caller gets the rejection; one that ignores it must not crash the process.
  promise.catch(noop);
  return { records: [], promise, resolve, reject };
}

function unavailable(store: AuditStore, err: unknown): SyError {
  const message = err instanceof Error ? err.message : String(err);
  return new SyError(
    'SY_ERR_AUDIT_UNAVAILABLE',
    `the ${store.backend} audit store is unavailable: ${message}`,
    { backend: store.backend, retryAfterMs: 1000 },
    { cause: err },
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
