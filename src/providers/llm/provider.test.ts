import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Action } from '../../core/action.js';
import { ManualClock, type Clock } from '../../core/clock.js';
import { silentLogger } from '../../core/logger.js';
import { ajv } from '../../core/validate.js';
import { MemoryStateStore } from '../../state/memory/store.js';
import { SqliteStateStore } from '../../state/sqlite/store.js';
import type { StateStore } from '../../state/store.js';
import {
  ProviderError,
  ProviderThrottledError,
  type ProviderCounter,
  type ProviderFactoryContext,
} from '../provider.js';
import { describeProvider, testAction, testContext } from '../testkit.js';
import {
  LlmProvider,
  LlmProviderConfigSchema,
  llmProviderType,
  type LlmProviderConfig,
} from './provider.js';
import { sessionStateKey } from './session.js';
import { startFakeLlmApi, type FakeLlmApi } from './test-server.js';

const T0 = Date.UTC(2026, 0, 5, 12, 0, 0);

interface Harness {
  provider: LlmProvider;
  counts: Partial<Record<ProviderCounter, number>>;
}

const tmp = mkdtempSync(join(tmpdir(), 'switchyard-llm-'));
let dbFiles = 0;
const openStores: StateStore[] = [];
const open: LlmProvider[] = [];
let api: FakeLlmApi;

beforeAll(async () => {
  api = await startFakeLlmApi();
});
afterEach(async () => {
  for (const p of open.splice(0)) await p.close();
  for (const s of openStores.splice(0)) await s.close();
  api.requests.length = 0;
  api.totalTokens = 30;
  api.holdUntil = 1;
});
afterAll(async () => {
  await api.close();
  rmSync(tmp, { recursive: true, force: true });
});

const STORES: [string, () => StateStore][] = [
  ['memory', () => new MemoryStateStore()],
  ['sqlite', () => new SqliteStateStore({ path: join(tmp, `state-${++dbFiles}.db`) })],
];

function store(kind: 'memory' | 'sqlite' = 'memory'): StateStore {
  const make = STORES.find(([k]) => k === kind)?.[1] as () => StateStore;
  const s = make();
  openStores.push(s);
  return s;
}

function llm(
  config: Partial<LlmProviderConfig> = {},
  options: { state?: StateStore; clock?: Clock; name?: string } = {},
): Harness {
  const counts: Harness['counts'] = {};
  const ctx: ProviderFactoryContext = {
    logger: silentLogger(),
    state: options.state ?? store(),
    clock: options.clock ?? new ManualClock(T0),
    count: (metric, _provider, n = 1) => {
      counts[metric] = (counts[metric] ?? 0) + n;
    },
  };
  const provider = llmProviderType.create(
    options.name ?? 'gpt',
    {
      type: 'llm',
      baseUrl: api.baseUrl('ok'),
      model: 'gpt-test',
      apiKey: 'sk-secret',
      allowPrivateNetworks: true,
      ...config,
    },
    ctx,
  ) as LlmProvider;
  open.push(provider);
  return { provider, counts };
}

function chat(payload: Record<string, unknown>, overrides: Partial<Action> = {}): Action {
  return testAction({ provider: 'gpt', payload, ...overrides });
}

async function failure(p: Promise<unknown>): Promise<ProviderError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ProviderError) return err;
    throw err;
  }
  throw new Error('expected a ProviderError');
}

async function throttled(p: Promise<unknown>): Promise<ProviderThrottledError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ProviderThrottledError) return err;
    throw err;
  }
  throw new Error('expected a ProviderThrottledError');
}

/**
 * A store whose reads of keys starting with `prefix` are held back until `batch` of them wait,
 * for the first `rounds` batches: concurrent read-modify-writes then all read the same version,
 * as they can against a remote store, and all but one must retry their compare-and-set.
 */
function contended(
  inner: StateStore,
  prefix: string,
  batch: number,
  rounds: number,
): { store: StateStore; conflicts: () => number } {
  let waiting: (() => void)[] = [];
  let left = rounds;
  let conflicts = 0;
  const store = new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'get') {
        return async (key: string, now: number) => {
          if (left > 0 && key.startsWith(prefix)) {
            await new Promise<void>((release) => {
              waiting.push(release);
              if (waiting.length === batch) {
                left--;
                const ready = waiting;
                waiting = [];
                for (const go of ready) go();
              }
            });
          }
          return target.get(key, now);
        };
      }
      if (prop === 'set') {
        return async (...args: Parameters<StateStore['set']>) => {
          const version = await target.set(...args);
          if (version === undefined) conflicts++;
          return version;
        };
      }
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? (value as () => unknown).bind(target) : value;
    },
  });
  return { store, conflicts: () => conflicts };
}

const user = (content: string) => ({ role: 'user', content });
const assistant = (content: string) => ({ role: 'assistant', content });

describeProvider({
  name: 'llm',
  action: { payload: { prompt: 'hello' } },
  async setup() {
    const kitApi = await startFakeLlmApi();
    const state = new MemoryStateStore();
    const ctx: ProviderFactoryContext = {
      logger: silentLogger(),
      state,
      clock: new ManualClock(T0),
      count: () => undefined,
    };
    const make = (mode: string): LlmProvider =>
      new LlmProvider(
        'gpt',
        {
          type: 'llm',
          baseUrl: kitApi.baseUrl(mode),
          model: 'gpt-test',
          apiKey: 'sk-secret',
          allowPrivateNetworks: true,
        },
        ctx,
      );
    const providers = {
      ok: make('ok'),
      transient: make('503'),
      terminal: make('400'),
      hang: make('hang'),
    };
    return {
      ...providers,
      received: () => kitApi.requests.length,
      async close() {
        await kitApi.close();
        for (const p of Object.values(providers)) await p.close();
      },
    };
  },
});

describe('llm provider: requests and answers', () => {
  it('POSTs model, system prompt, messages and parameters with the bearer key', async () => {
    const { provider } = llm({
      systemPrompt: 'You help {{tenant}}.',
      parameters: { temperature: 0.2, max_tokens: 100 },
      headers: { 'X-Org': 'o-1' },
    });
    const res = await provider.execute(
      chat({
        messages: [{ role: 'user', content: 'first' }],
        prompt: 'second',
        parameters: { temperature: 0.7 },
      }),
      testContext(),
    );
    expect(res).toEqual({
      status: 200,
      body: {
        content: 're: second',
        model: 'gpt-test',
        usage: { prompt_tokens: 20, completion_tokens: 10, total_tokens: 30 },
        finishReason: 'stop',
        cached: false,
      },
    });
    expect(api.requests).toHaveLength(1);
    const [req] = api.requests;
    expect(req?.path).toBe('/ok/v1/chat/completions');
    expect(req?.headers['authorization']).toBe('Bearer sk-secret');
    expect(req?.headers['content-type']).toBe('application/json');
    expect(req?.headers['x-org']).toBe('o-1');
    expect(req?.body).toEqual({
      temperature: 0.7,
      max_tokens: 100,
      model: 'gpt-test',
      messages: [{ role: 'system', content: 'You help acme.' }, user('first'), user('second')],
    });
  });

  it('payload.model overrides the model; destination names it', async () => {
    const { provider } = llm();
    const action = chat({ prompt: 'hi', model: 'gpt-big' });
    await provider.execute(action, testContext());
    expect(api.requests[0]?.body.model).toBe('gpt-big');
    expect(provider.destination(action)).toBe('gpt-big');
    expect(provider.destination(chat({ prompt: 'hi' }))).toBe('gpt-test');
  });

  it('keeps the base URL path and query (Azure-style endpoints)', async () => {
    const { provider } = llm({ baseUrl: `${api.baseUrl('ok')}/?api-version=2024-06-01` });
    expect(provider.endpoint).toBe(`${api.url}/ok/v1/chat/completions?api-version=2024-06-01`);
    await provider.execute(chat({ prompt: 'hi' }), testContext());
    expect(api.requests[0]?.path).toBe('/ok/v1/chat/completions?api-version=2024-06-01');
  });

  it('previews the exact request with the key masked, sending and writing nothing', async () => {
    const state = store();
    const key = sessionStateKey('gpt', 'acme', 's1');
    await state.set(key, JSON.stringify([user('before'), assistant('re: before')]), {}, T0);
    const { provider } = llm(
      { systemPrompt: 'Be brief.', parameters: { temperature: 0 } },
      { state },
    );
    const preview = await provider.preview(chat({ prompt: 'now', sessionKey: 's1' }));
    expect(preview).toEqual({
      kind: 'http',
      method: 'POST',
      url: `${api.url}/ok/v1/chat/completions`,
      headers: {
        'content-type': 'application/json',
        accept: 'application/json',
        authorization: '***',
      },
      body: {
        temperature: 0,
        model: 'gpt-test',
        messages: [
          { role: 'system', content: 'Be brief.' },
          user('before'),
          assistant('re: before'),
          user('now'),
        ],
      },
    });
    expect(api.requests).toHaveLength(0);
    expect((await state.get(key, T0))?.version).toBe(1);
  });

  it.each([
    [{}, 'payload.messages'],
    [{ prompt: 'x', sesionKey: 'typo' }, 'payload'],
    [{ messages: [{ role: 'robot', content: 'x' }] }, 'payload.messages[0].role'],
    [{ prompt: 'x', parameters: { model: 'other' } }, 'payload.parameters.model'],
    [{ prompt: 'x', parameters: { stream: true } }, 'payload.parameters.stream'],
  ])('refuses payload %j for good (SY_ERR_VALIDATION), sending nothing', async (payload, field) => {
    const { provider } = llm();
    const err = await failure(provider.execute(chat(payload), testContext()));
    expect([err.code, err.transient]).toEqual(['SY_ERR_VALIDATION', false]);
    expect(err.message).toContain(field);
    expect(api.requests).toHaveLength(0);
  });
});

describe('llm provider: errors', () => {
  it.each([
    ['500', 'SY_ERR_PROVIDER_HTTP_STATUS', true],
    ['502', 'SY_ERR_PROVIDER_HTTP_STATUS', true],
    ['408', 'SY_ERR_PROVIDER_HTTP_STATUS', true],
    ['409', 'SY_ERR_PROVIDER_HTTP_STATUS', true],
    ['400', 'SY_ERR_PROVIDER_REJECTED', false],
    ['401', 'SY_ERR_PROVIDER_REJECTED', false],
    ['403', 'SY_ERR_PROVIDER_REJECTED', false],
    ['404', 'SY_ERR_PROVIDER_REJECTED', false],
    ['422', 'SY_ERR_PROVIDER_REJECTED', false],
  ])(
    'HTTP %s fails with %s, transient=%s, carrying the API message',
    async (mode, code, transient) => {
      const { provider } = llm({ baseUrl: api.baseUrl(mode) });
      const err = await failure(provider.execute(chat({ prompt: 'x' }), testContext()));
      expect([err.code, err.transient, err.retryAfterMs]).toEqual([code, transient, undefined]);
      expect(err.message).toContain(`fake error ${mode}`);
      expect(err.response).toEqual({
        status: Number(mode),
        body: {
          error: { message: `fake error ${mode}`, type: 'invalid_request_error', code: null },
        },
      });
    },
  );

  it.each([
    ['429', 7000],
    ['503', 7000],
    ['ratems', 1500],
  ])('%s is transient with retryAfterMs %d from the retry headers', async (mode, retryAfterMs) => {
    const { provider } = llm({ baseUrl: api.baseUrl(mode) });
    const err = await failure(provider.execute(chat({ prompt: 'x' }), testContext()));
    expect([err.code, err.transient, err.retryAfterMs]).toEqual([
      'SY_ERR_PROVIDER_HTTP_STATUS',
      true,
      retryAfterMs,
    ]);
  });

  it('a 200 that is not a chat completion fails for good', async () => {
    const { provider } = llm({ baseUrl: api.baseUrl('notchat') });
    const err = await failure(provider.execute(chat({ prompt: 'x' }), testContext()));
    expect([err.code, err.transient]).toEqual(['SY_ERR_PROVIDER_FAILED', false]);
  });

  it('an answer over maxResponseSize fails for good', async () => {
    const { provider } = llm({ maxResponseSize: 64 });
    const err = await failure(provider.execute(chat({ prompt: 'x' }), testContext()));
    expect([err.code, err.transient, err.response?.truncated]).toEqual([
      'SY_ERR_PROVIDER_FAILED',
      false,
      true,
    ]);
  });

  it('a closed port is a transient network error', async () => {
    const other = await startFakeLlmApi();
    const baseUrl = other.baseUrl('ok');
    await other.close();
    const { provider } = llm({ baseUrl });
    const err = await failure(provider.execute(chat({ prompt: 'x' }), testContext()));
    expect([err.code, err.transient]).toEqual(['SY_ERR_PROVIDER_NETWORK', true]);
  });

  it('refuses a loopback baseUrl unless allowPrivateNetworks, sending nothing', async () => {
    const { provider } = llm({ allowPrivateNetworks: false });
    const err = await failure(provider.execute(chat({ prompt: 'x' }), testContext()));
    expect([err.code, err.transient]).toEqual(['SY_ERR_DESTINATION_BLOCKED', false]);
    expect(api.requests).toHaveLength(0);
  });
});

describe.each(STORES.map(([kind]) => kind as 'memory' | 'sqlite'))(
  'llm provider sessions (%s store)',
  (kind) => {
    it('a 5-turn conversation sends the history each time, pruned to maxMessages', async () => {
      const state = store(kind);
      const { provider } = llm({ systemPrompt: 'S', session: { maxMessages: 4 } }, { state });
      const sent: unknown[] = [];
      for (let i = 1; i <= 5; i++) {
        const res = await provider.execute(
          chat({ prompt: `u${i}`, sessionKey: 'conv-1' }),
          testContext(),
        );
        expect(res.body).toMatchObject({ content: `re: u${i}`, sessionKey: 'conv-1' });
        sent.push(api.requests[i - 1]?.body.messages);
      }
      const S = { role: 'system', content: 'S' };
      const u = (i: number) => user(`u${i}`);
      const a = (i: number) => assistant(`re: u${i}`);
      expect(sent).toEqual([
        [S, u(1)],
        [S, u(1), a(1), u(2)],
        [S, u(1), a(1), u(2), a(2), u(3)],
        [S, u(2), a(2), u(3), a(3), u(4)],
        [S, u(3), a(3), u(4), a(4), u(5)],
      ]);
      const stored = await state.get(sessionStateKey('gpt', 'acme', 'conv-1'), T0);
      expect(JSON.parse(stored?.value ?? 'null')).toEqual([u(4), a(4), u(5), a(5)]);
    });

    it('keeps sessions apart per tenant and expires them after session.ttl', async () => {
      const state = store(kind);
      const clock = new ManualClock(T0);
      const { provider } = llm({ session: { ttl: '1h' } }, { state, clock });
      await provider.execute(chat({ prompt: 'a1', sessionKey: 's' }), testContext());
      await provider.execute(
        chat({ prompt: 'b1', sessionKey: 's' }, { tenant: 'globex' }),
        testContext(),
      );
      expect(api.requests[1]?.body.messages).toEqual([user('b1')]);
      clock.advance(3_600_000 - 1);
      await provider.execute(chat({ prompt: 'a2', sessionKey: 's' }), testContext());
      expect(api.requests[2]?.body.messages).toEqual([user('a1'), assistant('re: a1'), user('a2')]);
      // The last turn refreshed the TTL; an hour of silence ends the session.
      clock.advance(3_600_000);
      await provider.execute(chat({ prompt: 'a3', sessionKey: 's' }), testContext());
      expect(api.requests[3]?.body.messages).toEqual([user('a3')]);
    });

    it('5 parallel turns of one session all land in the history (compare-and-set)', async () => {
      const state = store(kind);
      // Every turn reads the history before the call and again before its append, all at once.
      const probe = contended(state, 'llm:session:', 5, 2);
      const { provider } = llm({}, { state: probe.store });
      const results = await Promise.all(
        [1, 2, 3, 4, 5].map((i) =>
          provider.execute(chat({ prompt: `p${i}`, sessionKey: 'par' }), testContext()),
        ),
      );
      expect(results.map((r) => (r.body as { content: string }).content)).toEqual(
        [1, 2, 3, 4, 5].map((i) => `re: p${i}`),
      );
      for (const req of api.requests) expect(req.body.messages).toHaveLength(1);
      const stored = await state.get(sessionStateKey('gpt', 'acme', 'par'), T0);
      const history = JSON.parse(stored?.value ?? '[]') as { role: string; content: string }[];
      expect(history).toHaveLength(10);
      // Each turn's question is followed by its own answer; every turn is there once.
      const pairs = [];
      for (let i = 0; i < history.length; i += 2) {
        const [q, r] = [history[i], history[i + 1]];
        expect(q?.role).toBe('user');
        expect(r).toEqual(assistant(`re: ${q?.content}`));
        pairs.push(q?.content);
      }
      expect(pairs.sort()).toEqual(['p1', 'p2', 'p3', 'p4', 'p5']);
      expect(probe.conflicts()).toBeGreaterThanOrEqual(4);
    });
  },
);

describe('llm provider response cache', () => {
  it('serves a repeated request from memory, then another instance from the shared store', async () => {
    const state = store();
    const clock = new ManualClock(T0);
    const first = llm({ cache: { ttl: '10m' } }, { state, clock });
    const action = chat({ prompt: 'same question' });
    const a = await first.provider.execute(action, testContext());
    const b = await first.provider.execute(action, testContext());
    expect(api.requests).toHaveLength(1);
    expect(a.body).toMatchObject({ content: 're: same question', cached: false });
    expect(b).toEqual({ ...a, body: { ...(a.body as object), cached: true } });
    expect(first.counts).toEqual({ llm_cache_misses: 1, llm_cache_hits: 1, llm_tokens: 30 });

    const second = llm({ cache: { ttl: '10m' } }, { state, clock });
    const c = await second.provider.execute(action, testContext());
    expect(c.body).toMatchObject({ content: 're: same question', cached: true });
    expect(api.requests).toHaveLength(1);
    expect(second.counts).toEqual({ llm_cache_hits: 1 });

    // Other parameters are another request.
    await second.provider.execute(
      chat({ prompt: 'same question', parameters: { n: 1 } }),
      testContext(),
    );
    expect(api.requests).toHaveLength(2);

    clock.advance(10 * 60_000);
    const d = await first.provider.execute(action, testContext());
    expect(d.body).toMatchObject({ cached: false });
    expect(api.requests).toHaveLength(3);
  });

  it('a cache hit inside a session still appends the turn', async () => {
    const state = store();
    const { provider, counts } = llm({ cache: { ttl: '10m' } }, { state });
    await provider.execute(chat({ prompt: 'hi', sessionKey: 'one' }), testContext());
    // Another session with the same (empty) history asks the same: the cached answer serves it.
    const res = await provider.execute(chat({ prompt: 'hi', sessionKey: 'two' }), testContext());
    expect(res.body).toMatchObject({ content: 're: hi', cached: true, sessionKey: 'two' });
    expect(api.requests).toHaveLength(1);
    expect(counts.llm_cache_hits).toBe(1);
    const stored = await state.get(sessionStateKey('gpt', 'acme', 'two'), T0);
    expect(JSON.parse(stored?.value ?? 'null')).toEqual([user('hi'), assistant('re: hi')]);
    // The next turn of "two" has history, so it is a different request: a miss.
    await provider.execute(chat({ prompt: 'hi', sessionKey: 'two' }), testContext());
    expect(api.requests).toHaveLength(2);
    expect(api.requests[1]?.body.messages).toEqual([user('hi'), assistant('re: hi'), user('hi')]);
  });

  it('keeps at most cache.maxEntries answers in memory', async () => {
    const { provider } = llm({ cache: { ttl: '1h', maxEntries: 2 } });
    for (const q of ['a', 'b', 'c']) await provider.execute(chat({ prompt: q }), testContext());
    const cache = (provider as unknown as { cache: { memorySize: number } }).cache;
    expect(cache.memorySize).toBe(2);
  });

  it('is off by default', async () => {
    const { provider, counts } = llm();
    await provider.execute(chat({ prompt: 'q' }), testContext());
    await provider.execute(chat({ prompt: 'q' }), testContext());
    expect(api.requests).toHaveLength(2);
    expect(counts).toEqual({ llm_tokens: 60 });
  });
});

describe('llm provider token budgets', () => {
  it('refuses once tokensPerMinute is used up, until the next minute', async () => {
    const clock = new ManualClock(T0); // on a minute boundary
    const { provider, counts } = llm(
      { budgets: [{ key: '{{tenant}}', tokensPerMinute: 50 }] },
      { clock },
    );
    await provider.execute(chat({ prompt: '1' }), testContext());
    clock.advance(5_000);
    await provider.execute(chat({ prompt: '2' }), testContext()); // 30 < 50: admitted, now 60
    clock.advance(5_000);
    const err = await throttled(provider.execute(chat({ prompt: '3' }), testContext()));
    expect(err.code).toBe('SY_ERR_BUDGET_EXCEEDED');
    expect(err.throttle).toEqual({
      budget: 'tokensPerMinute',
      retryAfterMs: 50_000,
      limit: 50,
      windowMs: 60_000,
    });
    expect(api.requests).toHaveLength(2);
    expect(counts.llm_tokens).toBe(60);

    // Another key (tenant) has its own budget.
    await provider.execute(chat({ prompt: 'g' }, { tenant: 'globex' }), testContext());
    expect(api.requests).toHaveLength(3);

    clock.advance(49_999);
    await throttled(provider.execute(chat({ prompt: '3' }), testContext()));
    clock.advance(1);
    await provider.execute(chat({ prompt: '3' }), testContext());
    expect(api.requests).toHaveLength(4);
  });

  it('tokensPerDay waits for the next UTC day; the longest wait is reported', async () => {
    const clock = new ManualClock(T0); // 12:00 UTC
    const state = store();
    const { provider } = llm(
      { budgets: [{ key: 'all', tokensPerMinute: 1000, tokensPerDay: 40 }] },
      { clock, state },
    );
    await provider.execute(chat({ prompt: '1' }), testContext());
    await provider.execute(chat({ prompt: '2' }), testContext());
    const err = await throttled(provider.execute(chat({ prompt: '3' }), testContext()));
    expect(err.throttle).toEqual({
      budget: 'tokensPerDay',
      retryAfterMs: 12 * 3_600_000,
      limit: 40,
      windowMs: 86_400_000,
    });
    const day = Math.floor(T0 / 86_400_000);
    expect((await state.get(`llm:budget:gpt:all:d:${day}`, clock.now()))?.value).toBe('60');
  });

  it('parallel calls all count (compare-and-set)', async () => {
    const state = store();
    const probe = contended(state, 'llm:budget:', 4, 2);
    const { provider } = llm(
      { budgets: [{ key: 'k', tokensPerDay: 10_000 }] },
      { state: probe.store },
    );
    await Promise.all(
      [1, 2, 3, 4].map((i) => provider.execute(chat({ prompt: `${i}` }), testContext())),
    );
    const day = Math.floor(T0 / 86_400_000);
    expect((await state.get(`llm:budget:gpt:k:d:${day}`, T0))?.value).toBe('120');
    expect(probe.conflicts()).toBeGreaterThanOrEqual(3);
  });

  it('a cache hit is served even when the budget is used up', async () => {
    const { provider } = llm({
      cache: { ttl: '1h' },
      budgets: [{ key: '{{tenant}}', tokensPerMinute: 10 }],
    });
    await provider.execute(chat({ prompt: 'q' }), testContext());
    const res = await provider.execute(chat({ prompt: 'q' }), testContext());
    expect(res.body).toMatchObject({ cached: true });
    await throttled(provider.execute(chat({ prompt: 'other' }), testContext()));
  });
});

describe('llm provider config', () => {
  const check = ajv.compile(LlmProviderConfigSchema);

  it('accepts a full config and rejects unknown keys', () => {
    const full = {
      type: 'llm',
      baseUrl: 'https://api.openai.com/v1',
      model: 'gpt-4o-mini',
      apiKey: 'sk-x',
      headers: { 'OpenAI-Organization': 'org-1' },
      parameters: { temperature: 0.2, max_tokens: 500 },
      systemPrompt: 'You help {{tenant}}.',
      connections: 8,
      maxResponseSize: '2MiB',
      allowPrivateNetworks: false,
      session: { maxMessages: 30, ttl: '12h' },
      cache: { ttl: '10m', maxEntries: 500 },
      budgets: [{ key: '{{tenant}}', tokensPerMinute: 20_000, tokensPerDay: 1_000_000 }],
    };
    expect(check(full)).toBe(true);
    expect(check({ ...full, temperature: 1 })).toBe(false);
    expect(check({ ...full, session: { maxMessages: 5, max: 1 } })).toBe(false);
    expect(check({ ...full, cache: { ttl: 'soon' } })).toBe(false);
  });

  it.each([
    [{ systemPrompt: '{{nope}}' }, 'systemPrompt'],
    [{ budgets: [{ key: '{{tenant}}' }] }, 'budgets[0]'],
    [{ budgets: [{ key: '{{oops}}', tokensPerDay: 1 }] }, 'budgets[0].key'],
    [{ parameters: { messages: [] } }, 'parameters.messages'],
    [{ session: { ttl: 0 } }, 'session.ttl'],
  ])('refuses %j at build time (SY_ERR_CONFIG_INVALID)', (config, field) => {
    let err: unknown;
    try {
      llm(config as Partial<LlmProviderConfig>);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'SY_ERR_CONFIG_INVALID' });
    expect((err as Error).message).toContain(`providers.gpt.${field}`);
  });
});
