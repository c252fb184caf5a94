import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { resolveConfig } from '../src/config/load.js';
import { RETRY_QUEUE } from '../src/executor/jobs.js';
import { createStateStore } from '../src/state/create.js';
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
import {
  POSTGRES_URL,
  REDIS_URL,
  dropPostgresPrefix,
  serviceAvailable,
} from './helpers/services.js';

/*
 * Retries survive kill -9: 20 actions wait in the durable retry queue (each answered
 * "retrying"), the server is SIGKILLed, a new server on the same state finishes every one of
 * them — each exactly once — or dead-letters every one of them when the destination refuses.
 */

const N = 20;

interface Outcome {
  outcome: string;
  actionId: string;
}

const redis = await serviceAvailable('redis');
const postgres = await serviceAvailable('postgres');

interface Backend {
  name: string;
  available: boolean;
  /** The `state:` section (YAML flow) and a cleanup for what the run left in a shared server. */
  state: (dir: string) => { config: Record<string, unknown>; cleanup: () => Promise<void> };
}

async function dropRedisPrefix(prefix: string): Promise<void> {
  const { Redis } = await import('ioredis');
  const client = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await client.connect();
  try {
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) await client.del(...keys);
    } while (cursor !== '0');
  } finally {
    client.disconnect();
  }
}

const backends: Backend[] = [
  {
    name: 'sqlite',
    available: true,
    state: (dir) => ({
      config: { backend: 'sqlite', path: join(dir, 'state.db') },
      cleanup: async () => {},
    }),
  },
  {
    name: 'redis',
    available: redis,
    state: () => {
      const prefix = `sy-durable-${randomUUID()}:`;
      return {
        config: { backend: 'redis', url: REDIS_URL, prefix },
        cleanup: () => dropRedisPrefix(prefix),
      };
    },
  },
  {
    name: 'postgres',
    available: postgres,
    state: () => {
      const prefix = `sy_durable_${randomUUID().replace(/-/g, '').slice(0, 8)}_`;
      return {
        config: { backend: 'postgres', url: POSTGRES_URL, prefix },
        cleanup: () => dropPostgresPrefix(prefix),
      };
    },
  },
];

/**
 * The server under test. `log` and `noop` get a 1 s timeout too: the claim a node takes on a due
 * retry lasts the longest timeout of ANY provider + 10 s, and the built-ins default to 10 s (even
 * though they run inline, without a timer). A claim held at the moment of the kill would then
 * block that retry for 20 s after the restart; with these overrides, 11 s (inside the 15 s wait).
 */
function configYaml(state: Record<string, unknown>, receiverUrl: string): string {
  return `
executor: { deadline: 50ms, pollInterval: 100ms }
state: ${JSON.stringify(state)}
providers:
  log: { type: log, timeout: 1s }
  noop: { type: noop, timeout: 1s }
  hook:
    type: webhook
    allowPrivateNetworks: true
    url: ${receiverUrl}/hook
    timeout: 1s
    retry: { attempts: 5, baseMs: 1s, maxMs: 1s }
    # 20 failing actions would open a default breaker (5 failures) and later dispatches would
    # answer circuit_open instead of retrying: this test is about the retry queue.
    circuitBreaker: false
`;
}

/** The retry queue as the store sees it (a connection of the test's own). */
async function retryQueueLength(state: Record<string, unknown>): Promise<number> {
  const store = createStateStore(resolveConfig({ state }).state);
  try {
    await store.init?.();
    return await store.countDue(RETRY_QUEUE);
  } finally {
    await store.close();
  }
}

let server: ServerProcess | undefined;
let receiver: ProgrammableReceiver | undefined;
let cleanup: (() => Promise<void>) | undefined;

afterEach(async () => {
  await stopServerProcess(server);
  await receiver?.close();
  await cleanup?.();
  server = receiver = cleanup = undefined;
});

/** Starts a server, dispatches N actions that all answer "retrying", SIGKILLs it. */
async function parkAndKill(
  backend: Backend,
): Promise<{ dir: string; state: Record<string, unknown>; ids: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'sy-durable-'));
  const st = backend.state(dir);
  cleanup = st.cleanup;
  const rx = await startProgrammableReceiver(behave.always(503));
  receiver = rx;
  const proc = await startServer(configYaml(st.config, rx.url), {}, dir);
  server = proc;
  expect(proc.output()).toContain(`"state":"${backend.name}"`);

  // Concurrently: the sooner all are parked, the fewer worker attempts before the kill.
  const answers = await Promise.all(
    Array.from({ length: N }, (_, i) =>
      postJson(`${proc.url}/v1/dispatch`, {
        namespace: 'demo',
        tenant: 'acme',
        provider: 'hook',
        actionType: 'durable',
        payload: { i },
      }),
    ),
  );
  const outcomes = answers.map((a) => a.body as Outcome);
  expect(answers.map((a) => a.status)).toEqual(Array(N).fill(200));
  expect(outcomes.map((o) => o.outcome)).toEqual(Array(N).fill('retrying'));
  const ids = outcomes.map((o) => o.actionId);
  expect(new Set(ids).size).toBe(N);

  proc.kill('SIGKILL');
  expect(await proc.exited).toEqual({ code: null, signal: 'SIGKILL' });
  // Nothing succeeded before the kill.
  expect(rx.calls.every((c) => c.answered === 503)).toBe(true);
  return { dir, state: st.config, ids };
}

describe.each(backends)('retry queue on $name survives SIGKILL', (backend) => {
  it.skipIf(!backend.available)(
    'a new server finishes all 20 pending retries, each exactly once',
    async () => {
      const { dir, state, ids } = await parkAndKill(backend);
      const rx = receiver as ProgrammableReceiver;
      rx.set(behave.ok());
      const before = rx.calls.length;

      const proc = await startServer(configYaml(state, rx.url), {}, dir);
      server = proc;
      const t0 = Date.now();
      await vi.waitFor(
        () => {
          const done = ids.filter((id) => rx.callsFor(id).some((c) => c.answered === 200));
          expect(done.length).toBe(N);
        },
        { timeout: 15_000, interval: 100 },
      );
      console.log(
        `${backend.name}: all ${N} retries done ${Date.now() - t0} ms after the restart ` +
          `(${rx.calls.length - before} calls after the restart)`,
      );

      // Queue drained: no copy is left that could run an action a second time.
      await vi.waitFor(async () => expect(await retryQueueLength(state)).toBe(0), {
        timeout: 5_000,
        interval: 100,
      });
      for (const id of ids) {
        expect(rx.callsFor(id).filter((c) => c.answered === 200)).toHaveLength(1);
      }
      // Every 2xx the receiver wrote belongs to one of the 20 (nothing else was sent).
      expect(rx.calls.filter((c) => c.answered === 200)).toHaveLength(N);

      const dlq = (await getJson(`${proc.url}/v1/dlq`)) as { total: number };
      expect(dlq.total).toBe(0);
      await vi.waitFor(
        async () => {
          const metrics = await (await fetch(`${proc.url}/metrics`)).text();
          expect(metrics).toMatch(
            new RegExp(
              `^switchyard_dispatches_total\\{outcome="executed",provider="hook"\\} ${N}$`,
              'm',
            ),
          );
          expect(metrics).toMatch(
            new RegExp(
              `^switchyard_provider_attempts_total\\{provider="hook",result="success"\\} ${N}$`,
              'm',
            ),
          );
        },
        { timeout: 3_000, interval: 50 },
      );
    },
    40_000,
  );

  it.skipIf(!backend.available)(
    'when the destination answers 400 after the restart, all 20 land in the DLQ; none is lost',
    async () => {
      const { dir, state, ids } = await parkAndKill(backend);
      const rx = receiver as ProgrammableReceiver;
      rx.set(behave.always(400));

      const proc = await startServer(configYaml(state, rx.url), {}, dir);
      server = proc;
      await vi.waitFor(
        async () =>
          expect(((await getJson(`${proc.url}/v1/dlq`)) as { total: number }).total).toBe(N),
        { timeout: 15_000, interval: 100 },
      );
      const page = (await getJson(`${proc.url}/v1/dlq?limit=100`)) as {
        items: { reason: string; provider: string; action: { id: string } }[];
        total: number;
      };
      expect(page.items.map((e) => e.action.id).sort()).toEqual([...ids].sort());
      expect(new Set(page.items.map((e) => `${e.reason}/${e.provider}`))).toEqual(
        new Set(['terminal/hook']),
      );
      await vi.waitFor(async () => expect(await retryQueueLength(state)).toBe(0), {
        timeout: 5_000,
        interval: 100,
      });
      // Each was tried exactly once after the restart (a 400 is not retried); none succeeded.
      for (const id of ids) {
        expect(rx.callsFor(id).filter((c) => c.answered === 400)).toHaveLength(1);
      }
      expect(rx.calls.some((c) => c.answered === 200)).toBe(false);
      const metrics = await (await fetch(`${proc.url}/metrics`)).text();
      expect(metrics).toMatch(
        new RegExp(`^switchyard_dead_letters_total\\{provider="hook"\\} ${N}$`, 'm'),
      );
    },
    40_000,
  );
});

async function getJson(url: string): Promise<unknown> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  return res.json();
}
