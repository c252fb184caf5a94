import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let collect: (() => void) | undefined;

/**
 * A full, synchronous garbage collection, callable without `--expose-gc` on the command line (so
 * `npx tsx bench/…` keeps working). Run it between configurations, outside timed passes, so one
 * configuration's garbage (a memory store with 200k keys) is not collected during the next one.
 * Returns false when the runtime refused the flag.
 */
export function fullGc(): boolean {
  if (collect === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      collect = runInNewContext('gc') as () => void;
    } catch {
      return false;
    }
  }
  collect();
  return true;
}
