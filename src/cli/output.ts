import { isSyError, SyError } from '../core/errors.js';

/** Exit codes: 0 success, 1 the operation failed, 2 bad usage or config. */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

const USAGE_CODES = new Set([
  'SY_ERR_CLI_USAGE',
  'SY_ERR_CONFIG_INVALID',
  'SY_ERR_CONFIG_PARSE',
  'SY_ERR_CONFIG_READ',
  'SY_ERR_CONFIG_ENV',
  // Rule files are configuration too: `serve` with a broken one refuses to start.
  'SY_ERR_RULE_PARSE',
  'SY_ERR_RULE_INVALID',
  'SY_ERR_RULE_READ',
]);

const color = process.stderr.isTTY && !process.env.NO_COLOR;
const red = (s: string): string => (color ? `\u001b[31m${s}\u001b[39m` : s);

/** Prints an error as `error SY_ERR_…: message` and exits with the right code. */
export function fail(err: unknown): never {
  if (isSyError(err)) {
    process.stderr.write(`${red('error')} ${err.code}: ${err.message}\n`);
    process.exit(USAGE_CODES.has(err.code) ? EXIT_USAGE : EXIT_FAILED);
  }
  const message = err instanceof Error ? err.message : String(err);
  // cac reports unknown options and missing arguments as plain errors: bad usage.
  if (err instanceof Error && err.name === 'CACError') {
    process.stderr.write(`${red('error')} SY_ERR_CLI_USAGE: ${message}\n`);
    process.exit(EXIT_USAGE);
  }
  process.stderr.write(`${red('error')} ${message}\n`);
  process.exit(EXIT_FAILED);
}

export function usage(message: string): never {
  return fail(new SyError('SY_ERR_CLI_USAGE', message));
}
