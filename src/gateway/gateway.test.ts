import { afterEach, describe, expect, it } from 'vitest';
import { createGateway, type Gateway } from './gateway.js';
import { SyError } from '../core/errors.js';
import type { Provider } from '../providers/provider.js';
import type { ProviderResponse } from '../core/outcome.js';

const action = (over: Record<string, unknown> = {}) => ({
  namespace: 'demo',
  tenant: 'acme',
  provider: 'noop',
  actionType: 'hello',
  payload: { to: 'world' },
  ...over,
});

/** A provider whose calls stay pending until the test releases them. */
class GatedProvider implements Provider {
  readonly type = 'gated';
  readonly calls: { payload: unknown; release: () => void }[] = [];
  closed = false;
  constructor(readonly name: string) {}
  execute(a: { payload: unknown }): Promise<ProviderResponse> {
    return new Promise((resolve) => {
      this.calls.push({ payload: a.payload, release: () => resolve({ status: 200 }) });
    });
  }
  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}

async function rejection(p: Promise<unknown>): Promise<SyError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof SyError) return err;
    throw err;
  }
  throw new Error('expected a rejection');
}

let gw: Gateway | undefined;
afterEach(async () => {
  await gw?.close(100);
  gw = undefined;
});

describe('createGateway as a library', () => {
  it('dispatches to a provider and returns an executed outcome with a UUIDv7 id', async () => {
    gw = createGateway();
    const outcome = await gw.dispatch(action());
    expect(outcome.outcome).toBe('executed');
    expect(outcome.provider).toBe('noop');
    expect(outcome.actionId).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
    expect(Number.isInteger(outcome.durationMs)).toBe(true);
  });

  it('keeps a client-supplied id', async () => {
    gw = createGateway();
    expect((await gw.dispatch(action({ id: 'order-42' }))).actionId).toBe('order-42');
  });

  it('rejects bad input with a code naming the field, without calling the provider', async () => {
    const p = new GatedProvider('gated');
    gw = createGateway({}, { providers: { gated: p } });
    const cases: [Record<string, unknown>, string, string][] = [
      [{ ...action(), namespace: undefined }, 'SY_ERR_VALIDATION', 'namespace'],
      [action({ payload: 'text' }), 'SY_ERR_VALIDATION', 'payload'],
      [action({ labels: { team: 7 } }), 'SY_ERR_VALIDATION', 'labels.team'],
      [action({ dedup_key: 'x' }), 'SY_ERR_VALIDATION', 'dedup_key'],
      [action({ deliverAt: 'tomorrow' }), 'SY_ERR_VALIDATION', 'deliverAt'],
      [action({ tenant: 'has space' }), 'SY_ERR_VALIDATION', 'tenant'],
      [action({ provider: 'nope' }), 'SY_ERR_UNKNOWN_PROVIDER', 'provider'],
    ];
    for (const [input, code, field] of cases) {
      const err = await rejection(gw.dispatch(JSON.parse(JSON.stringify(input))));
      expect([err.code, err.details?.field]).toEqual([code, field]);
    }
    expect(p.calls).toHaveLength(0);
  });

  it('a batch with one bad action runs none of them', async () => {
    const p = new GatedProvider('gated');
    gw = createGateway({}, { providers: { gated: p } });
    const err = await rejection(
      gw.dispatchBatch([action({ provider: 'gated' }), action({ provider: 'gated', payload: 1 })]),
    );
    expect(err.code).toBe('SY_ERR_VALIDATION');
    expect(err.details?.field).toBe('[1].payload');
    expect(p.calls).toHaveLength(0);
  });

  it('a batch returns outcomes in input order', async () => {
    gw = createGateway();
    const outcomes = await gw.dispatchBatch([
      action({ id: 'a' }),
      action({ id: 'b' }),
      action({ id: 'c' }),
    ]);
    expect(outcomes.map((o) => o.actionId)).toEqual(['a', 'b', 'c']);
  });

  it('a throwing provider yields a failed outcome, not a rejection', async () => {
    const broken: Provider = {
      name: 'broken',
      type: 'custom',
      execute: () => Promise.reject(new Error('boom')),
    };
    gw = createGateway({}, { providers: { broken } });
    const outcome = await gw.dispatch(action({ provider: 'broken' }));
    expect(outcome).toMatchObject({
      outcome: 'failed',
      error: { code: 'SY_ERR_PROVIDER_FAILED', transient: false },
    });
  });

  it('publishes every outcome to subscribers; a throwing subscriber does not break dispatch', async () => {
    gw = createGateway();
    const seen: string[] = [];
    gw.subscribe(() => {
      throw new Error('bad listener');
    });
    const off = gw.subscribe((o, a) => seen.push(`${o.outcome}:${a.actionType}`));
    await gw.dispatch(action());
    off();
    await gw.dispatch(action());
    expect(seen).toEqual(['executed:hello']);
  });

  it('counts outcomes in its metrics registry', async () => {
    gw = createGateway();
    await gw.dispatch(action());
    await gw.dispatch(action());
    const text = await gw.metrics.registry.metrics();
    expect(text).toContain('switchyard_dispatches_total{outcome="executed",provider="noop"} 2');
  });
});

describe('close()', () => {
  it('waits for in-flight actions, then refuses new ones and closes providers', async () => {
    const p = new GatedProvider('gated');
    const g = createGateway({}, { providers: { gated: p } });
    const pending = g.dispatch(action({ provider: 'gated' }));
    await new Promise((r) => setImmediate(r));
    expect(p.calls).toHaveLength(1);
    const closed = g.close(5000);
    const late = await rejection(g.dispatch(action({ provider: 'gated' })));
    expect(late.code).toBe('SY_ERR_SHUTTING_DOWN');
    expect(p.closed).toBe(false);
    p.calls[0]?.release();
    expect((await pending).outcome).toBe('executed');
    await closed;
    expect(p.closed).toBe(true);
  });

  it('aborts what is still running when the timeout passes, and parks it for a retry', async () => {
    let aborted = false;
    const hanging: Provider = {
      name: 'hang',
      type: 'custom',
      execute: (_a, ctx) =>
        new Promise((_resolve, reject) => {
          ctx.signal.addEventListener('abort', () => {
            aborted = true;
            reject(ctx.signal.reason as Error);
          });
        }),
    };
    const g = createGateway({}, { providers: { hang: hanging } });
    const pending = g.dispatch(action({ provider: 'hang' }));
    await g.close(20);
    expect(aborted).toBe(true);
    // Aborted by shutdown is transient: the action waits in the retry queue for the next node.
    const outcome = await pending;
    expect(outcome.outcome).toBe('retrying');
    expect(outcome.outcome === 'retrying' && outcome.error?.code).toBe('SY_ERR_SHUTTING_DOWN');
  });
});
