/** Where the gateway gets the time (epoch ms). Tests use a ManualClock; nothing sleeps. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: Date.now };

/** A clock that moves only when told to. */
export class ManualClock implements Clock {
  constructor(private t = Date.UTC(2026, 0, 5, 12, 0, 0)) {}

  now(): number {
    return this.t;
  }

  advance(ms: number): void {
    this.t += ms;
  }

  set(epochMs: number): void {
    this.t = epochMs;
  }
}
