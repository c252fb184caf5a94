import { createHash } from 'node:crypto';
import type { Action } from '../core/action.js';
import { checkFieldPath, compileField } from './fields.js';
import { RulePathError } from './condition-error.js';

/** Renders a key for an action. */
export type KeyFn = (action: Action) => string;

const PLACEHOLDER = /\{\{\s*([^{}\s]+)\s*\}\}/g;
const MAX_TEMPLATE_LENGTH = 512;

function text(v: unknown): string {
  if (v === undefined || v === null) return '';
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

/**
 * Compiles `"{{tenant}}:{{payload.to}}"` into a function. Placeholders are field paths (the same
 * as in conditions); a missing field renders as an empty string. Compiled once at load.
 */
export function compileTemplate(
  template: string,
  timeZone: string | undefined,
  path: (string | number)[],
): KeyFn {
  if (template.length > MAX_TEMPLATE_LENGTH) {
    throw new RulePathError(path, `is longer than ${MAX_TEMPLATE_LENGTH} characters`);
  }
  const literals: string[] = [];
  const getters: ((a: Action) => unknown)[] = [];
  let last = 0;
  for (const m of template.matchAll(PLACEHOLDER)) {
    const field = m[1] as string;
    const problem = checkFieldPath(field);
    if (problem !== undefined) throw new RulePathError(path, `{{${field}}}: "${field}" ${problem}`);
    const literal = template.slice(last, m.index);
    if (literal.includes('{{') || literal.includes('}}')) {
      throw new RulePathError(path, 'has an unclosed or empty {{ }} placeholder');
    }
    literals.push(literal);
    getters.push(compileField(field, timeZone));
    last = (m.index ?? 0) + m[0].length;
  }
  const tail = template.slice(last);
  if (tail.includes('{{') || tail.includes('}}')) {
    throw new RulePathError(path, 'has an unclosed or empty {{ }} placeholder');
  }
  if (getters.length === 0) return () => template;
  if (getters.length === 1) {
    const [l0] = literals as [string];
    const [g0] = getters as [(a: Action) => unknown];
    return (a) => l0 + text(g0(a)) + tail;
  }
  return (a) => {
    let out = '';
    for (let i = 0; i < getters.length; i++) {
      out += (literals[i] as string) + text((getters[i] as (a: Action) => unknown)(a));
    }
    return out + tail;
  };
}

/** Canonical JSON (sorted keys) so equal payloads hash equally whatever their key order. */
function canonical(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  const keys = Object.keys(v).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`;
}

/**
 * The key used when a rule names none: the action's `dedupKey`, else a hash of provider,
 * actionType and payload (so the same message to the same place is the same key).
 */
export const defaultKey: KeyFn = (a) =>
  a.dedupKey ??
  createHash('sha256')
    .update(`${a.provider}\u0000${a.actionType}\u0000${canonical(a.payload)}`)
    .digest('base64url')
    .slice(0, 32);
