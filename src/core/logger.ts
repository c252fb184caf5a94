import { pino, type Logger, type LoggerOptions } from 'pino';

/**
 * The process logger: pino JSON, one event per line, a short constant `msg` and the context in
 * fields. Secrets and payloads never go to info level.
 */
export function createLogger(level: string, options: LoggerOptions = {}): Logger {
  return pino({
    level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    ...options,
  });
}

/** A logger that writes nothing (library default). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

export type { Logger };
