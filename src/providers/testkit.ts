import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Action } from '../core/action.js';
import { ProviderError, type ExecuteContext, type Provider } from './provider.js';

/**
 * The shared provider test kit: the behaviour every provider owes the executor, run against real
 * destinations the provider's own test starts (loopback HTTP servers, an SMTP server, ...).
 *
 * @example
 * describeProvider({ name: 'webhook', setup: async () => { ... return { ok, transient, ... } } });
 */
export interface ProviderKitSetup {
  /** Against a destination that accepts the action. */
  ok: Provider;
  /** Against a destination that fails in a way a retry may fix (HTTP 503, SMTP 451, ...). */
  transient: Provider;
  /** Against a destination that refuses for good (HTTP 400, SMTP 550, ...). */
  terminal: Provider;
  /** Against a destination that accepts the connection and never answers. */
  hang: Provider;
  /** Requests the destinations have received so far (all four together). */
  received(): number;
  close(): Promise<void>;
}

export interface ProviderKitOptions {
  name: string;
  setup(): Promise<ProviderKitSetup>;
  /** Fields of the test action (payload, labels, ...) the provider needs. */
  action?: Partial<Action>;
}

/** A complete action for provider tests. */
export function testAction(overrides: Partial<Action> = {}): Action {
  return {
    id: '01900000-0000-7000-8000-000000000001',
    namespace: 'test',
    tenant: 'acme',
    provider: 'p',
    actionType: 'notify',
    payload: { message: 'hello' },
    labels: {},
    dedupKey: undefined,
    fingerprint: undefined,
    deliverAt: undefined,
    receivedAt: Date.UTC(2026, 0, 5, 12, 0, 0),
    ...overrides,
  };
}

/** A context whose signal never fires. */
export function testContext(attempt = 1): ExecuteContext {
  return { signal: new AbortController().signal, attempt };
}

async function failure(p: Promise<unknown>): Promise<ProviderError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ProviderError);
    return err as ProviderError;
  }
  throw new Error('expected the provider to fail');
}

export function describeProvider(options: ProviderKitOptions): void {
  describe(`provider kit: ${options.name}`, () => {
    let kit: ProviderKitSetup;
    const action = (): Action => testAction(options.action);
    beforeAll(async () => {
      kit = await options.setup();
    });
    afterAll(async () => {
      await kit.close();
    });

    it('resolves with the response when the destination accepts', async () => {
      const response = await kit.ok.execute(action(), testContext());
      expect(response).toBeTypeOf('object');
    });

    it('throws a transient ProviderError when a retry may help', async () => {
      const err = await failure(kit.transient.execute(action(), testContext()));
      expect(err.transient).toBe(true);
    });

    it('throws a terminal ProviderError when the destination refuses for good', async () => {
      const err = await failure(kit.terminal.execute(action(), testContext()));
      expect(err.transient).toBe(false);
    });

    it("gives up when the executor's signal fires with a timeout, with that reason", async () => {
      const abort = new AbortController();
      const reason = new ProviderError('SY_ERR_PROVIDER_TIMEOUT', 'attempt timed out', {
        transient: true,
      });
      const pending = failure(kit.hang.execute(action(), { signal: abort.signal, attempt: 1 }));
      setTimeout(() => abort.abort(reason), 100);
      const err = await pending;
      expect(err.code).toBe('SY_ERR_PROVIDER_TIMEOUT');
      expect(err.transient).toBe(true);
    });

    it('previews without sending anything', async () => {
      if (kit.ok.preview === undefined) return;
      const before = kit.received();
      const preview = await kit.ok.preview(action());
      expect(['http', 'email', 'log', 'none']).toContain(preview.kind);
      expect(kit.received()).toBe(before);
    });

    it('names a destination without secrets when it has one', () => {
      const d = kit.ok.destination?.(action());
      if (d !== undefined) expect(typeof d).toBe('string');
    });
  });
}
