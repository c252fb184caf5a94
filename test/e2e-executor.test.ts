import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  postJson,
  startServerProcess as startServer,
  stopServerProcess,
  type ServerProcess,
} from './helpers/process.js';
import {
  behave,
  startProgrammableReceiver,
  type ProgrammableReceiver,
} from './helpers/programmable-receiver.js';

/*
 * The resilient executor seen from outside: the real `switchyard serve` process (sqlite state in
 * its temp folder) calling real loopback receivers that fail on purpose — retries, the
 * dead-letter queue and its replay, timeouts, Retry-After, the circuit breaker and its fallback,
 * the sync deadline, the concurrency bulkheads, preview.
 */

interface Outcome {
  outcome: string;
  actionId: string;
  provider: string;
  durationMs: number;
  attempts?: number;
  fallbackFrom?: string;
  deadLetterId?: string;
  retryAfterMs?: number;
  nextAttemptAt?: string;
  response?: { status?: number; body?: unknown };
  error?: { code: string; message: string; status?: number; transient: boolean };
  errors?: { attempt: number; provider: string; code: string; status?: number }[];
}

interface ErrorBody {
  error: { code: string; message: string; details?: Record<string, unknown> };
}

interface ProviderView {
  name: string;
  circuit: { state: string; consecutiveFailures: number } | null;
  concurrency: { limit: number; running: number; queued: number; queue: number };
}

const action = (provider: string, payload: unknown = { n: 1 }): Record<string, unknown> => ({
  namespace: 'demo',
  tenant: 'acme',
  provider,
  actionType: 'notify',
  payload,
});

/** A webhook provider entry: loopback allowed, short backoff; `keys` add or replace policy keys. */
const hook = (name: string, url: string, keys: Record<string, string> = {}): string => {
  const all: Record<string, string> = {
    retry: '{ attempts: 3, baseMs: 20ms, maxMs: 50ms }',
    ...keys,
  };
  const lines = Object.entries(all).map(([k, v]) => `    ${k}: ${v}`);
  return `
  ${name}:
    type: webhook
    allowPrivateNetworks: true
    url: ${url}/hook
${lines.join('\n')}`;
};

async function get(url: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as unknown };
}

/** POST without a body (the reset and replay routes take none). */
async function postEmpty(url: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, { method: 'POST' });
  return { status: res.status, body: (await res.json()) as unknown };
}

function percentile(sorted: readonly number[], p: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] as number;
}

describe('executor in a real server process, against failing receivers', () => {
  const rx: Record<string, ProgrammableReceiver> = {};
  let server: ServerProcess | undefined;
  const base = (): string => (server as ServerProcess).url;
  const dispatch = async (provider: string, payload?: unknown) => {
    const res = await postJson(`${base()}/v1/dispatch`, action(provider, payload));
    return { status: res.status, body: res.body as Outcome };
  };
  const providerView = async (name: string): Promise<ProviderView> => {
    const { body } = await get(`${base()}/v1/providers`);
    const found = (body as { items: ProviderView[] }).items.find((p) => p.name === name);
    if (found === undefined) throw new Error(`provider ${name} not listed`);
    return found;
  };

  beforeAll(async () => {
    const names = [
      'flaky',
      'broken',
      'refusing',
      'hanging',
      'limited',
      'primary',
      'backup',
      'lonely',
      'single',
      'templated',
      'slow',
      'fast',
    ];
    for (const n of names) rx[n] = await startProgrammableReceiver();
    const r = (n: string): string => (rx[n] as ProgrammableReceiver).url;
    server = await startServer(`
providers:${hook('flaky', r('flaky'))}${hook('broken', r('broken'))}${hook('refusing', r('refusing'))}${hook(
      'hanging',
      r('hanging'),
      { timeout: '300ms', retry: '{ attempts: 2, baseMs: 20ms, maxMs: 50ms }' },
    )}${hook('limited', r('limited'))}${hook('primary', r('primary'), {
      retry: '{ attempts: 1 }',
      circuitBreaker: '{ failures: 3, openFor: 500ms }',
      fallback: '[backup]',
    })}${hook('backup', r('backup'))}${hook('lonely', r('lonely'), {
      retry: '{ attempts: 1 }',
      circuitBreaker: '{ failures: 1, openFor: 30s }',
    })}${hook('single', r('single'), { concurrency: '{ limit: 1, queue: 0 }' })}${hook(
      'slow',
      r('slow'),
      { concurrency: '{ limit: 2, queue: 100 }' },
    )}${hook('fast', r('fast'))}
  templated:
    type: webhook
    allowPrivateNetworks: true
    url: '${r('templated')}/orders/{{payload.order}}?tenant={{tenant}}'
    headers:
      authorization: 'Bearer not-for-your-eyes'
      x-order: 'order-{{payload.order}}'
    body:
      text: 'Order {{payload.order}} for {{payload.to}}'
      tenant: '{{tenant}}'
    signing:
      secret: 'a-signing-secret-of-enough-length'
`);
  });

  afterAll(async () => {
    await stopServerProcess(server);
    await Promise.all(Object.values(rx).map((r) => r.close()));
  });

  it('fails twice then succeeds: executed with attempts 3, one action id, x-switchyard-attempt 1,2,3', async () => {
    const flaky = rx.flaky as ProgrammableReceiver;
    flaky.set(behave.failFirst(2, 500));
    const { status, body } = await dispatch('flaky');
    expect(status).toBe(200);
    expect(body).toMatchObject({ outcome: 'executed', provider: 'flaky', attempts: 3 });
    expect(body.response?.status).toBe(200);
    expect(flaky.calls).toHaveLength(3);
    expect(new Set(flaky.calls.map((c) => c.headers['x-switchyard-action-id']))).toEqual(
      new Set([body.actionId]),
    );
    expect(flaky.calls.map((c) => c.headers['x-switchyard-attempt'])).toEqual(['1', '2', '3']);
    expect(flaky.calls.map((c) => c.answered)).toEqual([500, 500, 200]);
  });

  it('always 500: failed and dead-lettered with 3 errors; replayed once fixed; then gone from the DLQ', async () => {
    const broken = rx.broken as ProgrammableReceiver;
    broken.set(behave.always(500));
    const { status, body } = await dispatch('broken');
    expect(status).toBe(200);
    expect(body).toMatchObject({
      outcome: 'failed',
      provider: 'broken',
      attempts: 3,
      error: { code: 'SY_ERR_PROVIDER_HTTP_STATUS', status: 500, transient: true },
    });
    expect(body.deadLetterId).toEqual(expect.any(String));
    expect(broken.calls).toHaveLength(3);
    const id = body.deadLetterId as string;

    const entry = await get(`${base()}/v1/dlq/${id}`);
    expect(entry.status).toBe(200);
    const dl = entry.body as {
      reason: string;
      action: { id: string };
      errors: { status?: number; code: string; attempt: number }[];
    };
    expect(dl.reason).toBe('exhausted');
    expect(dl.action.id).toBe(body.actionId);
    expect(dl.errors).toHaveLength(3);
    expect(dl.errors.map((e) => [e.attempt, e.code, e.status])).toEqual([
      [1, 'SY_ERR_PROVIDER_HTTP_STATUS', 500],
      [2, 'SY_ERR_PROVIDER_HTTP_STATUS', 500],
      [3, 'SY_ERR_PROVIDER_HTTP_STATUS', 500],
    ]);

    broken.set(behave.ok());
    const replay = await postEmpty(`${base()}/v1/dlq/${id}/replay`);
    expect(replay.status).toBe(200);
    expect(replay.body).toMatchObject({
      outcome: 'executed',
      provider: 'broken',
      actionId: body.actionId,
    });
    expect(broken.calls).toHaveLength(4);
    expect(broken.calls[3]?.headers['x-switchyard-action-id']).toBe(body.actionId);

    const gone = await get(`${base()}/v1/dlq/${id}`);
    expect(gone.status).toBe(404);
    expect((gone.body as ErrorBody).error.code).toBe('SY_ERR_DLQ_NOT_FOUND');
  });

  it('400: failed after exactly one call, not transient (no retry)', async () => {
    const refusing = rx.refusing as ProgrammableReceiver;
    refusing.set(behave.always(400));
    const { status, body } = await dispatch('refusing');
    expect(status).toBe(200);
    expect(body).toMatchObject({
      outcome: 'failed',
      error: { code: 'SY_ERR_PROVIDER_HTTP_STATUS', status: 400, transient: false },
    });
    expect(body.attempts ?? 1).toBe(1);
    expect(refusing.calls).toHaveLength(1);
  });

  it('a receiver that hangs: each attempt times out at 300ms, failed with SY_ERR_PROVIDER_TIMEOUT after 2 calls', async () => {
    const hanging = rx.hanging as ProgrammableReceiver;
    hanging.set(behave.hang());
    const t0 = performance.now();
    const { status, body } = await dispatch('hanging');
    const took = performance.now() - t0;
    expect(status).toBe(200);
    expect(body).toMatchObject({
      outcome: 'failed',
      attempts: 2,
      error: { code: 'SY_ERR_PROVIDER_TIMEOUT', transient: true },
    });
    expect(body.errors?.map((e) => e.code)).toEqual([
      'SY_ERR_PROVIDER_TIMEOUT',
      'SY_ERR_PROVIDER_TIMEOUT',
    ]);
    expect(hanging.calls).toHaveLength(2);
    // Two 300 ms attempts and a backoff of at most 50 ms; generous upper bound for slow CI.
    expect(took).toBeGreaterThanOrEqual(590);
    expect(took).toBeLessThan(3_000);
  });

  it('429 with Retry-After: 1, then 200: executed, the second call comes >= ~1 s after the first', async () => {
    const limited = rx.limited as ProgrammableReceiver;
    limited.set(behave.failFirst(1, 429, { 'retry-after': '1' }));
    const { status, body } = await dispatch('limited');
    expect(status).toBe(200);
    expect(body).toMatchObject({ outcome: 'executed', provider: 'limited', attempts: 2 });
    expect(limited.calls.map((c) => c.answered)).toEqual([429, 200]);
    const [first, second] = limited.calls;
    const gap = (second?.at ?? 0) - (first?.at ?? 0);
    expect(gap).toBeGreaterThanOrEqual(950);
    expect(gap).toBeLessThan(3_000);
  });

  it('circuit breaker: 3 failures open it, the fallback takes over, it closes after openFor; reset by hand', async () => {
    const primary = rx.primary as ProgrammableReceiver;
    const backup = rx.backup as ProgrammableReceiver;
    primary.set(behave.always(500));
    backup.set(behave.ok());

    for (let i = 0; i < 3; i++) {
      const { status, body } = await dispatch('primary');
      expect(status).toBe(200);
      expect(body).toMatchObject({
        outcome: 'executed',
        provider: 'backup',
        fallbackFrom: 'primary',
        attempts: 2,
      });
    }
    expect(primary.calls).toHaveLength(3);
    expect(backup.calls).toHaveLength(3);
    expect((await providerView('primary')).circuit?.state).toBe('open');

    // Open: the 4th goes straight to the fallback, primary's receiver sees nothing.
    const fourth = await dispatch('primary');
    expect(fourth.body).toMatchObject({
      outcome: 'executed',
      provider: 'backup',
      fallbackFrom: 'primary',
    });
    expect(fourth.body.attempts ?? 1).toBe(1);
    expect(primary.calls).toHaveLength(3);

    // Fixed, and openFor (500 ms) passes: the next dispatch is the probe, on primary.
    primary.set(behave.ok());
    await vi.waitFor(
      async () => expect((await providerView('primary')).circuit?.state).toBe('half_open'),
      { timeout: 3_000, interval: 50 },
    );
    const probe = await dispatch('primary');
    expect(probe.body).toMatchObject({ outcome: 'executed', provider: 'primary' });
    expect(probe.body.fallbackFrom).toBeUndefined();
    expect(primary.calls).toHaveLength(4);
    expect((await providerView('primary')).circuit?.state).toBe('closed');

    // Open it again, then close it by hand: the next call runs on primary right away.
    primary.set(behave.always(500));
    for (let i = 0; i < 3; i++) await dispatch('primary');
    expect((await providerView('primary')).circuit?.state).toBe('open');
    const metricsOpen = await (await fetch(`${base()}/metrics`)).text();
    expect(metricsOpen).toMatch(/^switchyard_circuit_state\{provider="primary"\} 2$/m);

    const reset = await postEmpty(`${base()}/v1/providers/primary/circuit/reset`);
    expect(reset.status).toBe(200);
    expect((reset.body as ProviderView).circuit?.state).toBe('closed');
    primary.set(behave.ok());
    const after = await dispatch('primary');
    expect(after.body).toMatchObject({ outcome: 'executed', provider: 'primary' });
    expect(after.body.fallbackFrom).toBeUndefined();

    const metrics = await (await fetch(`${base()}/metrics`)).text();
    expect(metrics).toMatch(/^switchyard_circuit_state\{provider="primary"\} 0$/m);
    expect(metrics).toMatch(
      /^switchyard_circuit_transitions_total\{provider="primary",to="open"\} 2$/m,
    );

    const unknown = await postEmpty(`${base()}/v1/providers/nope/circuit/reset`);
    expect(unknown.status).toBe(404);
    expect((unknown.body as ErrorBody).error.code).toBe('SY_ERR_PROVIDER_NOT_FOUND');
  });

  it('an open breaker without fallback: outcome circuit_open with retryAfterMs, HTTP 200, nothing sent', async () => {
    const lonely = rx.lonely as ProgrammableReceiver;
    lonely.set(behave.always(500));
    const first = await dispatch('lonely');
    expect(first.body.outcome).toBe('failed');
    expect(lonely.calls).toHaveLength(1);

    const { status, body } = await dispatch('lonely');
    expect(status).toBe(200);
    expect(body).toMatchObject({
      outcome: 'circuit_open',
      provider: 'lonely',
      error: { code: 'SY_ERR_CIRCUIT_OPEN', transient: true },
    });
    expect(body.retryAfterMs).toBeGreaterThan(0);
    expect(body.retryAfterMs).toBeLessThanOrEqual(30_000);
    expect(lonely.calls).toHaveLength(1);

    // openFor is 30 s: only the reset by hand lets the next call through now.
    const reset = await postEmpty(`${base()}/v1/providers/lonely/circuit/reset`);
    expect(reset.status).toBe(200);
    expect((reset.body as ProviderView).circuit?.state).toBe('closed');
    lonely.set(behave.ok());
    const after = await dispatch('lonely');
    expect(after.body).toMatchObject({ outcome: 'executed', provider: 'lonely' });
    expect(lonely.calls).toHaveLength(2);
  });

  it('concurrency {limit: 1, queue: 0}: of two concurrent dispatches one runs, the other is 503 SY_ERR_OVERLOADED', async () => {
    const single = rx.single as ProgrammableReceiver;
    single.set(behave.ok(300));
    const results = await Promise.all([
      postJson(`${base()}/v1/dispatch`, action('single', { n: 1 })),
      postJson(`${base()}/v1/dispatch`, action('single', { n: 2 })),
    ]);
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 503]);
    const ok = results.find((r) => r.status === 200);
    const refused = results.find((r) => r.status === 503);
    expect((ok?.body as Outcome).outcome).toBe('executed');
    const err = (refused?.body as ErrorBody).error;
    expect(err.code).toBe('SY_ERR_OVERLOADED');
    expect(err.details?.retryAfterMs).toEqual(expect.any(Number));
    expect(refused?.headers.get('retry-after')).not.toBeNull();
    // Nothing ran for the refused one.
    expect(single.calls).toHaveLength(1);
  });

  it('preview renders URL, headers and body with secrets masked, and sends nothing', async () => {
    const templated = rx.templated as ProgrammableReceiver;
    const res = await postJson(`${base()}/v1/providers/templated/preview`, {
      namespace: 'demo',
      tenant: 'acme',
      actionType: 'order',
      payload: { order: 42, to: 'world' },
    });
    expect(res.status).toBe(200);
    const body = res.body as {
      provider: string;
      preview: {
        kind: string;
        method: string;
        url: string;
        headers: Record<string, string>;
        body: unknown;
      };
    };
    expect(body.provider).toBe('templated');
    expect(body.preview).toMatchObject({
      kind: 'http',
      method: 'POST',
      url: `${templated.url}/orders/42?tenant=acme`,
      body: { text: 'Order 42 for world', tenant: 'acme' },
    });
    expect(body.preview.headers).toMatchObject({
      authorization: '***',
      'x-order': 'order-42',
      'x-switchyard-signature': '***',
      'content-type': 'application/json',
    });
    expect(JSON.stringify(body)).not.toContain('not-for-your-eyes');
    expect(JSON.stringify(body)).not.toContain('a-signing-secret');
    expect(templated.calls).toHaveLength(0);
  });

  it('isolation: a slow provider at its limit with 20 queued does not slow another provider', async () => {
    const slow = rx.slow as ProgrammableReceiver;
    const fast = rx.fast as ProgrammableReceiver;
    slow.set(behave.ok(500));
    fast.set(behave.ok());
    const backlog = Array.from({ length: 20 }, (_, i) => dispatch('slow', { i }));
    // The bulkhead is full: 2 running at the receiver, 18 queued in the gateway.
    await vi.waitFor(
      async () => {
        expect(slow.held).toBe(2);
        expect((await providerView('slow')).concurrency).toMatchObject({ running: 2, queued: 18 });
      },
      { timeout: 5_000, interval: 20 },
    );

    const ms: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      const { body } = await dispatch('fast', { i });
      ms.push(performance.now() - t0);
      expect(body.outcome).toBe('executed');
    }
    // Still backed up while we measured (else the test proves nothing).
    expect(slow.calls.length).toBeLessThan(20);
    const sorted = [...ms].sort((a, b) => a - b);
    const p50 = percentile(sorted, 50);
    const p99 = percentile(sorted, 99);
    console.log(
      `isolation: 20 sequential dispatches to "fast" with "slow" at its limit (2 running, 18 queued): ` +
        `p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms, max ${(sorted.at(-1) ?? 0).toFixed(2)} ms`,
    );
    expect(p50).toBeLessThan(100);

    // Drain the backlog quickly: answer at once from now on.
    slow.set(behave.ok());
    slow.release();
    const outcomes = await Promise.all(backlog);
    expect(outcomes.map((o) => o.body.outcome)).toEqual(Array(20).fill('executed'));
  });
});

describe('the synchronous deadline', () => {
  let server: ServerProcess | undefined;
  let later: ProgrammableReceiver | undefined;

  afterAll(async () => {
    await stopServerProcess(server);
    await later?.close();
  });

  it('a retry due after the deadline answers "retrying"; the retry queue runs it about 1 s later', async () => {
    later = await startProgrammableReceiver(behave.failFirst(1, 503, { 'retry-after': '1' }));
    server = await startServer(`
executor: { deadline: 100ms, pollInterval: 50ms }
providers:${hook('later', later.url)}
`);
    const sent = Date.now();
    const res = await postJson(`${server.url}/v1/dispatch`, action('later'));
    const body = res.body as Outcome;
    expect(res.status).toBe(200);
    expect(body).toMatchObject({
      outcome: 'retrying',
      provider: 'later',
      attempts: 1,
      error: { code: 'SY_ERR_PROVIDER_HTTP_STATUS', status: 503, transient: true },
    });
    const dueIn = Date.parse(body.nextAttemptAt as string) - sent;
    expect(dueIn).toBeGreaterThanOrEqual(900);
    expect(dueIn).toBeLessThan(1_600);
    expect(body.durationMs).toBeLessThan(1_000);

    const receiver = later;
    await vi.waitFor(() => expect(receiver.calls).toHaveLength(2), {
      timeout: 3_000,
      interval: 25,
    });
    expect(receiver.calls.map((c) => c.answered)).toEqual([503, 200]);
    expect(receiver.calls[1]?.headers['x-switchyard-action-id']).toBe(body.actionId);
    expect(receiver.calls[1]?.headers['x-switchyard-attempt']).toBe('2');
    expect((receiver.calls[1]?.at ?? 0) - (receiver.calls[0]?.at ?? 0)).toBeGreaterThanOrEqual(950);

    // Its final outcome is counted by the node that ran the retry; nothing dead-lettered.
    const url = server.url;
    await vi.waitFor(
      async () =>
        expect(await (await fetch(`${url}/metrics`)).text()).toMatch(
          /^switchyard_dispatches_total\{outcome="executed",provider="later"\} 1$/m,
        ),
      { timeout: 3_000, interval: 50 },
    );
    const dlq = await get(`${url}/v1/dlq`);
    expect((dlq.body as { total: number }).total).toBe(0);
  });
});
