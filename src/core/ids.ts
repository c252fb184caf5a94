import { randomFillSync } from 'node:crypto';

/*
 * UUIDv7 (RFC 9562), written for the dispatch hot path: 48-bit Unix ms timestamp, a 12-bit
 * counter in rand_a that keeps ids monotonic within a millisecond (RFC 9562 §6.2 method 1), and
 * 62 random bits from a pooled CSPRNG buffer. The `uuid` package measured ~0.9 µs and ~1.1 KB of
 * garbage per id here; this is a string concatenation over lookup tables.
 */
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
const POOL_SIZE = 4096;
const pool = Buffer.alloc(POOL_SIZE);
let poolIndex = POOL_SIZE;

function randomBytes(n: number): number {
  if (poolIndex + n > POOL_SIZE) {
    randomFillSync(pool);
    poolIndex = 0;
  }
  const at = poolIndex;
  poolIndex += n;
  return at;
}

let lastMs = -1;
let counter = 0;
let prefix = '';

function startCounter(): number {
  const at = randomBytes(2);
  // A random start with the top bit clear leaves at least 2048 ids before the counter overflows.
  return (((pool[at] as number) << 8) | (pool[at + 1] as number)) & 0x7ff;
}

function timestampPrefix(ms: number): string {
  const hi = Math.floor(ms / 0x10000); // upper 32 bits of the 48-bit timestamp
  const lo = ms % 0x10000;
  return (
    HEX[(hi >>> 24) & 0xff]! +
    HEX[(hi >>> 16) & 0xff]! +
    HEX[(hi >>> 8) & 0xff]! +
    HEX[hi & 0xff]! +
    '-' +
    HEX[(lo >>> 8) & 0xff]! +
    HEX[lo & 0xff]! +
    '-7'
  );
}

/** A new UUIDv7: time-ordered (and strictly increasing within this process). */
export function newId(): string {
  const now = Date.now();
  if (now > lastMs) {
    lastMs = now;
    counter = startCounter();
    prefix = timestampPrefix(lastMs);
  } else if (++counter > 0xfff) {
    // 4096 ids in one millisecond: borrow the next millisecond rather than repeat or reorder.
    lastMs++;
    counter = startCounter();
    prefix = timestampPrefix(lastMs);
  }
  const r = randomBytes(8);
  return (
    prefix +
    HEX[counter >>> 8]!.slice(1) +
    HEX[counter & 0xff]! +
    '-' +
    HEX[((pool[r] as number) & 0x3f) | 0x80]! +
    HEX[pool[r + 1] as number]! +
    '-' +
    HEX[pool[r + 2] as number]! +
    HEX[pool[r + 3] as number]! +
    HEX[pool[r + 4] as number]! +
    HEX[pool[r + 5] as number]! +
    HEX[pool[r + 6] as number]! +
    HEX[pool[r + 7] as number]!
  );
}
