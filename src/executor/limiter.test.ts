import { describe, expect, it } from 'vitest';
import { Limiter } from './limiter.js';

describe('Limiter', () => {
  it('hands slots out FIFO, refuses beyond the queue, and frees slots on release', async () => {
    const l = new Limiter('test', 1, 2);
    expect(l.acquire()).toBeUndefined();
    const order: number[] = [];
    const a = l.acquire()?.then((got) => got && order.push(1));
    const b = l.acquire()?.then((got) => got && order.push(2));
    expect(() => l.acquire()).toThrow(expect.objectContaining({ code: 'SY_ERR_OVERLOADED' }));
    expect(l.queued).toBe(2);
    l.release();
    l.release();
    await Promise.all([a, b]);
    expect(order).toEqual([1, 2]);
    l.release();
    expect(l.running).toBe(0);
  });

  it('gives up after maxWaitMs without taking a slot', async () => {
    const l = new Limiter('test', 1, 10);
    l.acquire();
    expect(await l.acquire(10)).toBe(false);
    expect(l.queued).toBe(0);
    const later = l.acquire(1000);
    l.release(); // passes to the live waiter, skipping the one that gave up
    expect(await later).toBe(true);
    expect(l.running).toBe(1);
    l.release();
    expect(l.running).toBe(0);
  });
});
