import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  POSTGRES_URL,
  REDIS_URL,
  dropPostgresPrefix,
  serviceAvailable,
} from './helpers/services.js';

/*
 * S13, across processes: 3 OS processes, each with its own gateway on one shared store, send 20
 * concurrent duplicates per round for 100 rounds. Every round executes exactly once.
 */
const CHILD = resolve(import.meta.dirname, 'fixtures/dedup-child.ts');
const ROUNDS = 100;
const CONCURRENCY = 20;

function runChild(state: object): Promise<number[]> {
  return new Promise((done, fail) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', CHILD, JSON.stringify(state), String(ROUNDS), String(CONCURRENCY)],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('exit', (code) => {
      if (code !== 0) return fail(new Error(`child exited ${code}: ${err}`));
      const line = out.trim().split('\n').pop() ?? '';
      done((JSON.parse(line) as { executed: number[] }).executed);
    });
  });
}

async function race(state: object): Promise<void> {
  const results = await Promise.all([runChild(state), runChild(state), runChild(state)]);
  const perRound = Array.from({ length: ROUNDS }, (_, r) =>
    results.reduce((sum, executed) => sum + (executed[r] ?? 0), 0),
  );
  expect(perRound).toEqual(Array(ROUNDS).fill(1));
}

const redis = await serviceAvailable('redis');
const postgres = await serviceAvailable('postgres');

describe('exactly one execution per key across 3 processes (100 rounds x 20 concurrent)', () => {
  it('sqlite: one shared database file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sy-race-'));
    await race({ backend: 'sqlite', path: join(dir, 'state.db') });
  }, 120_000);

  it.skipIf(!redis)(
    'redis: one shared server',
    async () => {
      await race({ backend: 'redis', url: REDIS_URL, prefix: `sy-race-${randomUUID()}:` });
    },
    120_000,
  );

  it.skipIf(!postgres)(
    'postgres: one shared database',
    async () => {
      const prefix = `sy_race_${randomUUID().replace(/-/g, '').slice(0, 8)}_`;
      try {
        await race({ backend: 'postgres', url: POSTGRES_URL, prefix });
      } finally {
        await dropPostgresPrefix(prefix);
      }
    },
    120_000,
  );
});

const THROTTLE_CHILD = resolve(import.meta.dirname, 'fixtures/throttle-child.ts');
const CLAIM_CHILD = resolve(import.meta.dirname, 'fixtures/claim-child.ts');

function runScript(
  script: string,
  args: string[],
): { done: Promise<string>; kill: () => void; firstLine: Promise<string> } {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  let resolveLine: (line: string) => void = () => {};
  const firstLine = new Promise<string>((r) => (resolveLine = r));
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
    if (out.includes('\n')) resolveLine(out.split('\n')[0] as string);
  });
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const done = new Promise<string>((ok, fail) =>
    child.on('exit', (code, signal) =>
      code === 0 || signal === 'SIGKILL'
        ? ok(out)
        : fail(new Error(`child exited ${code}: ${err}`)),
    ),
  );
  return { done, firstLine, kill: () => child.kill('SIGKILL') };
}

interface Backend {
  name: string;
  available: boolean;
  state: () => { config: Record<string, unknown>; cleanup: () => Promise<void> };
}

const backends: Backend[] = [
  {
    name: 'sqlite',
    available: true,
    state: () => ({
      config: { backend: 'sqlite', path: join(mkdtempSync(join(tmpdir(), 'sy-mp-')), 'state.db') },
      cleanup: async () => {},
    }),
  },
  {
    name: 'redis',
    available: redis,
    state: () => ({
      config: { backend: 'redis', url: REDIS_URL, prefix: `sy-mp-${randomUUID()}:` },
      cleanup: async () => {},
    }),
  },
  {
    name: 'postgres',
    available: postgres,
    state: () => {
      const prefix = `sy_mp_${randomUUID().replace(/-/g, '').slice(0, 8)}_`;
      return {
        config: { backend: 'postgres', url: POSTGRES_URL, prefix },
        cleanup: () => dropPostgresPrefix(prefix),
      };
    },
  },
];

describe.each(backends)('$name shared by 3 processes', ({ available, state }) => {
  it.skipIf(!available)(
    'a throttle of L lets exactly L of 4xL concurrent attempts through, with retryAfterMs ~ the window',
    async () => {
      const { config, cleanup } = state();
      try {
        const L = 12;
        const key = `k-${randomUUID()}`;
        const outs = await Promise.all(
          [0, 1, 2].map(
            () =>
              runScript(THROTTLE_CHILD, [JSON.stringify(config), String(16), String(L), key]).done,
          ),
        );
        const results = outs.map(
          (o) =>
            JSON.parse(o.trim().split('\n').pop() as string) as {
              executed: number;
              retryAfterMs: number[];
            },
        );
        expect(results.reduce((n, r) => n + r.executed, 0)).toBe(L);
        // The window is 1 h and every pass happened within seconds: the true wait is ~1 h.
        for (const ms of results.flatMap((r) => r.retryAfterMs)) {
          expect(Math.abs(ms - 3_600_000) / 3_600_000).toBeLessThan(0.05);
        }
      } finally {
        await cleanup();
      }
    },
    120_000,
  );

  it.skipIf(!available)(
    'due items claimed by a process killed with SIGKILL are picked up by another after the lease',
    async () => {
      const { config, cleanup } = state();
      const { createStateStore } = await import('../src/state/create.js');
      const { resolveConfig } = await import('../src/config/load.js');
      const store = createStateStore(resolveConfig({ state: config }).state);
      try {
        await store.init?.();
        const queue = `q-${randomUUID()}`;
        for (let i = 0; i < 20; i++) await store.putDue(queue, `item-${i}`, Date.now(), `p${i}`);
        const doomed = runScript(CLAIM_CHILD, [JSON.stringify(config), queue, '1500']);
        const claimed = (JSON.parse(await doomed.firstLine) as { claimed: string[] }).claimed;
        expect(claimed).toHaveLength(20);
        doomed.kill();
        await doomed.done;
        // While the dead worker's lease lasts, nobody gets its items; afterwards, all of them.
        expect(await store.claimDue(queue, 100, 'survivor', 60_000, Date.now())).toHaveLength(0);
        // Time is an argument of the store: look 1.6 s ahead instead of sleeping.
        const recovered = await store.claimDue(queue, 100, 'survivor', 60_000, Date.now() + 1600);
        expect(recovered.map((i) => i.id).sort()).toEqual([...claimed].sort());
        expect(recovered.every((i) => i.attempts === 2)).toBe(true);
      } finally {
        await store.close();
        await cleanup();
      }
    },
    60_000,
  );
});
