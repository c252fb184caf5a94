import { afterEach, describe, expect, it } from 'vitest';
import { createGateway, type Gateway } from '../gateway/gateway.js';
import { ProviderError, ProviderThrottledError, type Provider } from '../providers/provider.js';
import type { ProviderResponse, Outcome } from '../core/outcome.js';
import type { ConfigInput } from '../config/schema.js';
import { MemoryStateStore } from '../state/memory/store.js';

/** A provider whose answers follow a script: 'ok', a status (transient >= 500, 429...), 'hang'. */
function scripted(name: string, script: (number | 'ok' | 'hang')[], retryAfterMs?: number) {
  const calls: number[] = [];
  let i = 0;
  const provider: Provider = {
    name,
    type: 'scripted',
    execute: (_a, ctx) => {
      calls.push(Date.now());
      const step = script[Math.min(i++, script.length - 1)];
      if (step === 'ok') return Promise.resolve({ status: 200 } as ProviderResponse);
      if (step === 'hang') {
        return new Promise((_resolve, reject) => {
          ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error));
        });
      }
      const status = step as number;
      const transient = status === 429 || status >= 500;
      return Promise.reject(
        new ProviderError('SY_ERR_PROVIDER_HTTP_STATUS', `answered HTTP ${status}`, {
          transient,
          response: { status },
          ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
        }),
      );
    },
  };
  return { provider, calls };
}

const action = (provider: string, extra: Record<string, unknown> = {}) => ({
  namespace: 'test',
  tenant: 'acme',
  provider,
  actionType: 'notify',
  payload: { message: 'hi' },
  ...extra,
});

let gateways: Gateway[] = [];
afterEach(async () => {
  await Promise.all(gateways.map((g) => g.close(100)));
  gateways = [];
});

function gateway(
  providers: Record<string, Provider>,
  config: ConfigInput['providers'],
  extra: Omit<ConfigInput, 'providers'> = {},
  state = new MemoryStateStore(),
): Gateway {
  const g = createGateway(
    { providers: config, executor: { pollInterval: 20, ...extra.executor }, ...extra },
    { providers, state },
  );
  gateways.push(g);
  return g;
}

const fast = { retry: { attempts: 3, baseMs: 5, maxMs: 20 } };

describe('retries', () => {
  it('retries transient failures with backoff and succeeds on the third attempt', async () => {
    const s = scripted('flaky', [503, 500, 'ok']);
    const g = gateway({ flaky: s.provider }, { flaky: { type: 'noop', ...fast } });
    const out = await g.dispatch(action('flaky'));
    expect(out.outcome).toBe('executed');
    expect(out.outcome === 'executed' && out.attempts).toBe(3);
    expect(s.calls).toHaveLength(3);
  });

  it('does not retry a terminal failure and dead-letters it', async () => {
    const s = scripted('strict', [400]);
    const g = gateway({ strict: s.provider }, { strict: { type: 'noop', ...fast } });
    const out = await g.dispatch(action('strict'));
    expect(out.outcome).toBe('failed');
    if (out.outcome !== 'failed') return;
    expect(out.error.code).toBe('SY_ERR_PROVIDER_HTTP_STATUS');
    expect(out.error.transient).toBe(false);
    expect(out.attempts).toBe(1);
    expect(out.deadLetterId).toBeTypeOf('string');
    expect(s.calls).toHaveLength(1);
  });

  it('exhausts retries into the DLQ with every error, and a replay after the fix executes', async () => {
    const script: (number | 'ok')[] = [500, 500, 500];
    const s = scripted('down', script);
    const g = gateway({ down: s.provider }, { down: { type: 'noop', ...fast } });
    const out = await g.dispatch(action('down'));
    expect(out.outcome).toBe('failed');
    if (out.outcome !== 'failed') return;
    expect(out.error.code).toBe('SY_ERR_PROVIDER_HTTP_STATUS');
    expect(out.attempts).toBe(3);
    expect(out.errors?.map((e) => e.status)).toEqual([500, 500, 500]);
    const id = out.deadLetterId as string;
    const entry = await g.executor.getDeadLetter(id);
    expect(entry.job.errors).toHaveLength(3);
    expect(entry.reason).toBe('exhausted');
    // The receiver is fixed.
    script.push('ok');
    const replayed = await g.executor.replayDeadLetter(id);
    expect(replayed.outcome).toBe('executed');
    await expect(g.executor.getDeadLetter(id)).rejects.toMatchObject({
      code: 'SY_ERR_DLQ_NOT_FOUND',
    });
  });

  it('actionTimeout bounds the whole action: it is dead-lettered when the next retry would pass it', async () => {
    const s = scripted('slowfail', [503]);
    const g = gateway(
      { slowfail: s.provider },
      {
        slowfail: {
          type: 'noop',
          actionTimeout: 120,
          retry: { attempts: 100, baseMs: 50, maxMs: 50 },
          circuitBreaker: false,
        },
      },
    );
    const out = await g.dispatch(action('slowfail'));
    expect(out.outcome).toBe('failed');
    if (out.outcome !== 'failed') return;
    expect(out.error.code).toBe('SY_ERR_RETRIES_EXHAUSTED');
    expect(out.deadLetterId).toBeTypeOf('string');
    expect(s.calls.length).toBeGreaterThan(1);
    expect(s.calls.length).toBeLessThan(100);
    expect((await g.executor.getDeadLetter(out.deadLetterId as string)).reason).toBe('timeout');
  });

  it('times out a hanging attempt and retries it', async () => {
    const s = scripted('slow', ['hang', 'ok']);
    const g = gateway({ slow: s.provider }, { slow: { type: 'noop', timeout: 50, ...fast } });
    const out = await g.dispatch(action('slow'));
    expect(out.outcome).toBe('executed');
    expect(out.outcome === 'executed' && out.attempts).toBe(2);
  });

  it('honours Retry-After on 429 before the next attempt', async () => {
    const s = scripted('limited', [429, 'ok'], 150);
    const g = gateway({ limited: s.provider }, { limited: { type: 'noop', ...fast } });
    const out = await g.dispatch(action('limited'));
    expect(out.outcome).toBe('executed');
    const gap = (s.calls[1] as number) - (s.calls[0] as number);
    expect(gap).toBeGreaterThanOrEqual(140);
  });

  it('answers retrying past the deadline, and the retry queue finishes the action', async () => {
    const s = scripted('later', [503, 'ok'], 300);
    const g = gateway(
      { later: s.provider },
      { later: { type: 'noop', ...fast } },
      { executor: { deadline: 50, pollInterval: 20 } },
    );
    const done = new Promise<Outcome>((resolve) =>
      g.subscribe((o) => {
        if (o.outcome === 'executed') resolve(o);
      }),
    );
    const out = await g.dispatch(action('later'));
    expect(out.outcome).toBe('retrying');
    if (out.outcome !== 'retrying') return;
    expect(out.attempts).toBe(1);
    expect(Date.parse(out.nextAttemptAt)).toBeGreaterThan(Date.now());
    const final = await done;
    expect(final.actionId).toBe(out.actionId);
    expect(s.calls).toHaveLength(2);
  });

  it('keeps a dedup reservation while retrying and commits it on success', async () => {
    const s = scripted('later', [503, 'ok'], 200);
    const g = gateway(
      { later: s.provider },
      { later: { type: 'noop', ...fast } },
      {
        executor: { deadline: 20, pollInterval: 20 },
        rules: {
          inline: [
            {
              name: 'once',
              condition: { field: 'provider', eq: 'later' },
              effects: { deduplicate: { key: 'k', ttl: '1h' } },
            },
          ],
        },
      },
    );
    const first = await g.dispatch(action('later'));
    expect(first.outcome).toBe('retrying');
    const dup = await g.dispatch(action('later'));
    expect(dup.outcome).toBe('deduplicated');
    await new Promise<void>((resolve) => g.subscribe((o) => o.outcome === 'executed' && resolve()));
    const again = await g.dispatch(action('later'));
    expect(again.outcome).toBe('deduplicated');
    expect(again.outcome === 'deduplicated' && again.inFlight).toBe(false);
  });

  it('reports a provider budget refusal as throttled, with no retry', async () => {
    const provider: Provider = {
      name: 'llm',
      type: 'x',
      execute: () =>
        Promise.reject(
          new ProviderThrottledError('budget used up', {
            budget: 'tokensPerMinute',
            retryAfterMs: 1234,
            limit: 100,
            windowMs: 60_000,
          }),
        ),
    };
    const g = gateway({ llm: provider }, { llm: { type: 'noop' } });
    const out = await g.dispatch(action('llm'));
    expect(out).toMatchObject({
      outcome: 'throttled',
      budget: 'tokensPerMinute',
      retryAfterMs: 1234,
    });
  });
});

describe('circuit breaker and fallback', () => {
  it('opens after the threshold, routes to the fallback, and closes after recovery', async () => {
    const script: (number | 'ok')[] = [500];
    const primary = scripted('primary', script);
    const backup = scripted('backup', ['ok']);
    const g = gateway(
      { primary: primary.provider, backup: backup.provider },
      {
        primary: {
          type: 'noop',
          retry: { attempts: 1 },
          circuitBreaker: { failures: 3, openFor: 100 },
          fallback: ['backup'],
          dlq: { enabled: false },
        },
        backup: { type: 'noop' },
      },
    );
    // Each failure on primary falls back to backup (attempts: 1 = no retry on primary).
    for (let i = 0; i < 3; i++) {
      const out = await g.dispatch(action('primary'));
      expect(out).toMatchObject({
        outcome: 'executed',
        provider: 'backup',
        fallbackFrom: 'primary',
      });
    }
    expect(primary.calls).toHaveLength(3);
    const status = () => g.executor.status().find((p) => p.name === 'primary');
    expect(status()?.circuit?.state).toBe('open');
    // Open: primary is not called at all.
    const out = await g.dispatch(action('primary'));
    expect(out).toMatchObject({ outcome: 'executed', provider: 'backup' });
    expect(primary.calls).toHaveLength(3);
    // Recovery: after openFor a probe goes to primary, succeeds, and the breaker closes.
    script.push('ok');
    await new Promise((r) => setTimeout(r, 120));
    const probe = await g.dispatch(action('primary'));
    expect(probe).toMatchObject({ outcome: 'executed', provider: 'primary' });
    expect(status()?.circuit?.state).toBe('closed');
    const text = await g.metrics.registry.metrics();
    expect(text).toContain('switchyard_circuit_transitions_total{provider="primary",to="open"} 1');
    expect(text).toContain('switchyard_circuit_state{provider="primary"} 0');
  });

  it('fails fast with circuit_open when there is no fallback; reset closes it', async () => {
    const s = scripted('solo', [500]);
    const g = gateway(
      { solo: s.provider },
      {
        solo: {
          type: 'noop',
          retry: { attempts: 1 },
          circuitBreaker: { failures: 2, openFor: '1h' },
        },
      },
    );
    await g.dispatch(action('solo'));
    await g.dispatch(action('solo'));
    const out = await g.dispatch(action('solo'));
    expect(out.outcome).toBe('circuit_open');
    expect(out.outcome === 'circuit_open' && out.retryAfterMs).toBeGreaterThan(0);
    expect(s.calls).toHaveLength(2);
    g.executor.resetCircuit('solo');
    await g.dispatch(action('solo'));
    expect(s.calls).toHaveLength(3);
  });

  it('replays a provider DLQ automatically when its breaker closes (autoReplay)', async () => {
    const script: (number | 'ok')[] = [500];
    const s = scripted('auto', script);
    const g = gateway(
      { auto: s.provider },
      {
        auto: {
          type: 'noop',
          retry: { attempts: 1 },
          circuitBreaker: { failures: 2, openFor: 50 },
          dlq: { autoReplay: true },
        },
      },
    );
    const a = await g.dispatch(action('auto'));
    const b = await g.dispatch(action('auto'));
    expect([a.outcome, b.outcome]).toEqual(['failed', 'failed']);
    expect(await g.executor.countDeadLetters()).toBe(2);
    script.push('ok');
    await new Promise((r) => setTimeout(r, 70));
    const executed = new Set<string>();
    const both = new Promise<void>((resolve) =>
      g.subscribe((o) => {
        if (o.outcome === 'executed') executed.add(o.actionId);
        if (executed.has(a.actionId) && executed.has(b.actionId)) resolve();
      }),
    );
    await g.dispatch(action('auto')); // the probe: closes the breaker
    await both;
    expect(await g.executor.countDeadLetters()).toBe(0);
  });
});

describe('concurrency limits', () => {
  it('answers 503 SY_ERR_OVERLOADED when the provider queue is full, and frees the slot', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow: Provider = {
      name: 'slow',
      type: 'x',
      execute: () => gate.then(() => ({ status: 200 })),
    };
    const g = gateway({ slow }, { slow: { type: 'noop', concurrency: { limit: 1, queue: 1 } } });
    const running = g.dispatch(action('slow'));
    const queued = g.dispatch(action('slow'));
    await new Promise((r) => setTimeout(r, 10));
    await expect(g.dispatch(action('slow'))).rejects.toMatchObject({
      code: 'SY_ERR_OVERLOADED',
      status: 503,
    });
    release();
    expect((await running).outcome).toBe('executed');
    expect((await queued).outcome).toBe('executed');
  });

  it('a slow provider at its limit does not delay another provider', async () => {
    const slow: Provider = {
      name: 'slow',
      type: 'x',
      execute: () => new Promise((r) => setTimeout(() => r({ status: 200 }), 300)),
    };
    const quick: Provider = {
      name: 'quick',
      type: 'x',
      execute: () => new Promise((r) => setImmediate(() => r({ status: 200 }))),
    };
    const g = gateway(
      { slow, quick },
      {
        slow: { type: 'noop', concurrency: { limit: 2, queue: 100 } },
        quick: { type: 'noop' },
      },
      { executor: { concurrency: 4 } },
    );
    const backlog = Array.from({ length: 10 }, () => g.dispatch(action('slow')));
    const t0 = performance.now();
    for (let i = 0; i < 20; i++)
      expect((await g.dispatch(action('quick'))).outcome).toBe('executed');
    // Generous bound: 20 quick dispatches finish long before one slow call (300 ms) would.
    expect(performance.now() - t0).toBeLessThan(250);
    await Promise.all(backlog);
  }, 20_000);

  it('a backlog past the deadline waits in the retry queue and every action runs exactly once', async () => {
    const runs = new Map<string, number>();
    let calls = 0;
    const slow: Provider = {
      name: 'slow',
      type: 'x',
      execute: (a) =>
        new Promise((resolve, reject) =>
          setTimeout(() => {
            // The first call fails, so one action also takes an inline retry.
            if (++calls === 1) {
              reject(new ProviderError('SY_ERR_PROVIDER_HTTP_STATUS', '500', { transient: true }));
              return;
            }
            runs.set(a.id, (runs.get(a.id) ?? 0) + 1);
            resolve({ status: 200 });
          }, 40),
        ),
    };
    const g = gateway(
      { slow },
      {
        slow: {
          type: 'noop',
          timeout: 200,
          concurrency: { limit: 1, queue: 100 },
          retry: { attempts: 3, baseMs: 5, maxMs: 10 },
        },
      },
      { executor: { deadline: 150, pollInterval: 20 } },
    );
    const final = new Map<string, string>();
    g.subscribe((o) => {
      if (o.outcome !== 'retrying') final.set(o.actionId, o.outcome);
    });
    const outs = await Promise.all(Array.from({ length: 12 }, () => g.dispatch(action('slow'))));
    const parked = outs.filter((o) => o.outcome === 'retrying');
    expect(parked.length).toBeGreaterThan(0); // the backlog outlived the deadline
    const ids = outs.map((o) => o.actionId);
    for (let i = 0; i < 200 && ids.some((id) => final.get(id) !== 'executed'); i++) {
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(ids.map((id) => final.get(id))).toEqual(ids.map(() => 'executed'));
    expect(ids.map((id) => runs.get(id))).toEqual(ids.map(() => 1));
  }, 20_000);
});

describe('rate limits and pauses', () => {
  it('a declared rateLimit makes the call over the limit wait for the window, not fail', async () => {
    const s = scripted('limited', ['ok']);
    const g = gateway(
      { limited: s.provider },
      { limited: { type: 'noop', rateLimit: { limit: 2, window: 300 } } },
    );
    const outs = [];
    for (let i = 0; i < 3; i++) outs.push(await g.dispatch(action('limited')));
    expect(outs.map((o) => o.outcome)).toEqual(['executed', 'executed', 'executed']);
    // The third call waited for the first one to leave the window.
    expect((s.calls[2] as number) - (s.calls[0] as number)).toBeGreaterThanOrEqual(250);
  });

  it('rateLimit.key limits per key: another recipient is not held up', async () => {
    const s = scripted('mail', ['ok']);
    const g = gateway(
      { mail: s.provider },
      { mail: { type: 'noop', rateLimit: { limit: 1, window: '1h', key: '{{payload.to}}' } } },
      { executor: { deadline: 50 } },
    );
    const to = (who: string) => action('mail', { payload: { to: who } });
    expect((await g.dispatch(to('a'))).outcome).toBe('executed');
    expect((await g.dispatch(to('b'))).outcome).toBe('executed');
    // The same recipient again: its window is full for an hour → parked, not failed.
    const again = await g.dispatch(to('a'));
    expect(again.outcome).toBe('retrying');
    expect(s.calls).toHaveLength(2);
  });

  it('a 429 with Retry-After pauses the provider for the next actions too', async () => {
    const s = scripted('api', [429, 'ok'], 200);
    const g = gateway(
      { api: s.provider },
      { api: { type: 'noop', retry: { attempts: 1 }, dlq: { enabled: false } } },
    );
    const first = await g.dispatch(action('api'));
    expect(first.outcome).toBe('failed'); // one attempt only: the 429 is its answer
    expect(g.executor.status().find((p) => p.name === 'api')?.pauses).toHaveLength(1);
    const t0 = Date.now();
    const second = await g.dispatch(action('api'));
    expect(second.outcome).toBe('executed');
    // It waited for the pause the destination asked for instead of calling at once.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(150);
    expect(s.calls).toHaveLength(2);
  });
});
