import { Type } from 'typebox';
import { ajv } from './validate.js';
import { parseDuration, parseSize } from './units.js';

/*
 * Config-friendly schema types. Durations and sizes are validated by custom ajv keywords so that
 * an error says "must be a duration like ..." at the right field, instead of ajv's anyOf noise.
 */
ajv.addKeyword({
  keyword: 'x-duration',
  schemaType: 'boolean',
  errors: true,
  validate: function validateDuration(this: unknown, _schema: boolean, data: unknown): boolean {
    if (parseDuration(data) !== undefined) return true;
    (validateDuration as unknown as { errors: unknown[] }).errors = [
      {
        keyword: 'x-duration',
        message:
          'must be a duration such as "250ms", "30s", "5m", "1h", "7d" or a number of milliseconds',
        params: {},
      },
    ];
    return false;
  },
});

ajv.addKeyword({
  keyword: 'x-size',
  schemaType: 'boolean',
  errors: true,
  validate: function validateSize(this: unknown, _schema: boolean, data: unknown): boolean {
    if (parseSize(data) !== undefined) return true;
    (validateSize as unknown as { errors: unknown[] }).errors = [
      {
        keyword: 'x-size',
        message: 'must be a size such as "64KiB", "1MiB" or a number of bytes',
        params: {},
      },
    ];
    return false;
  },
});

/** A duration in config: "30s" or a number of milliseconds. */
export const Duration = (description: string) =>
  Type.Unsafe<string | number>({ 'x-duration': true, description });

/** A size in config: "1MiB" or a number of bytes. */
export const Size = (description: string) =>
  Type.Unsafe<string | number>({ 'x-size': true, description });
