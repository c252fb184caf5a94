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
