import { readFileSync } from 'node:fs';
import { SyError, type ErrorCode } from './errors.js';

/**
 * Reads a UTF-8 file, or throws `code` with a sentence naming what it is (`config file`,
 * `rule file`, ...) and the OS reason: the one way files given by users are read.
 */
export function readText(file: string, code: ErrorCode, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new SyError(
      code,
      `cannot read ${what} ${file}: ${(err as Error).message}`,
      { file },
      { cause: err },
    );
  }
}
