import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { SyError } from './errors.js';

// ajv-formats is CommonJS; its default export arrives wrapped under ESM.
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

/**
 * One ajv instance for the whole process: the HTTP layer, the library entry points and the
 * config loader all compile their schemas here, so a schema is validated the same way everywhere.
 * No coercion and no silent removal of unknown properties: bad input is rejected, never repaired.
 */
export const ajv = addFormats(
  new Ajv({
    allErrors: false,
    coerceTypes: false,
    removeAdditional: false,
    useDefaults: false,
    strict: false,
  }),
);

/** The path of the value an ajv error is about, including a missing or unknown property. */
export function segmentsOf(error: ErrorObject): string[] {
  const parts =
    error.instancePath === ''
      ? []
      : error.instancePath
          .split('/')
          .slice(1)
          .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  const params = error.params as Record<string, unknown>;
  if (error.keyword === 'required' && typeof params.missingProperty === 'string') {
    parts.push(params.missingProperty);
  } else if (
    error.keyword === 'additionalProperties' &&
    typeof params.additionalProperty === 'string'
  ) {
    parts.push(params.additionalProperty);
  }
  return parts;
}

/** Dotted form of a path: `payload.to`, `items[3].provider`. */
export function formatPath(parts: readonly (string | number)[]): string {
  let out = '';
  for (const p of parts) {
    if (typeof p === 'number' || /^\d+$/.test(p)) out += `[${p}]`;
    else out += out === '' ? p : `.${p}`;
  }
  return out;
}

/** Turns ajv's JSON pointer (`/payload/to`) plus the missing property into `payload.to`. */
export function fieldOf(error: ErrorObject): string {
  return formatPath(segmentsOf(error));
}

/** A human sentence for one ajv error that names the field (as computed by fieldOf). */
export function describe(error: ErrorObject, field: string): string {
  return `${field === '' ? 'body' : field} ${predicate(error)}`;
}

/** What is wrong, without the subject: "is required", "must be a string". */
export function predicate(error: ErrorObject): string {
  const name = (error as { propertyName?: string }).propertyName;
  if (name !== undefined)
    return `has an invalid key "${name}": it ${error.message ?? 'is invalid'}`;
  switch (error.keyword) {
    case 'required':
      return 'is required';
    case 'additionalProperties':
      return 'is not a known field';
    case 'type':
      return `must be ${withArticle(String((error.params as { type: string }).type))}`;
    case 'enum':
      return `must be one of ${((error.params as { allowedValues: unknown[] }).allowedValues ?? []).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'const':
      return `must be ${JSON.stringify((error.params as { allowedValue: unknown }).allowedValue)}`;
    case 'propertyNames':
      return `has an invalid name "${String((error.params as { propertyName: unknown }).propertyName)}"`;
    case 'format': {
      const format = String((error.params as { format: string }).format);
      return format === 'date-time'
        ? 'must be an RFC 3339 date-time (e.g. 2026-11-23T18:00:00Z)'
        : `must be a valid ${format}`;
    }
    default:
      return error.message ?? 'is invalid';
  }
}

function withArticle(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

/** Builds the SY_ERR_VALIDATION error for the first ajv error, with the field in `details`. */
export function validationError(errors: ErrorObject[] | null | undefined, prefix = ''): SyError {
  const first = errors?.[0];
  if (first === undefined) return new SyError('SY_ERR_VALIDATION', 'input is invalid');
  const field = joinField(prefix, fieldOf(first));
  return new SyError('SY_ERR_VALIDATION', describe(first, field), {
    field: field === '' ? undefined : field,
    keyword: first.keyword,
  });
}

function joinField(prefix: string, field: string): string {
  if (prefix === '') return field;
  if (field === '') return prefix;
  return field.startsWith('[') ? prefix + field : `${prefix}.${field}`;
}

/** Compiles a schema once; the returned function throws SY_ERR_VALIDATION naming the field. */
export function compileAssert<T>(schema: object): {
  check: ValidateFunction<T>;
  assert: (value: unknown, prefix?: string) => T;
} {
  const check = ajv.compile<T>(schema);
  return {
    check,
    assert(value: unknown, prefix = ''): T {
      if (check(value)) return value;
      throw validationError(check.errors, prefix);
    },
  };
}
