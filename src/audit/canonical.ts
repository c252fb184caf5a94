import { hash } from 'node:crypto';

/*
 * Canonical JSON (object keys sorted) and SHA-256 for audit hashes: the payload's hash and the
 * chain. canonicalJson is built by hand for plain JSON data (no replacer, no sorted copy of every
 * object) and is byte for byte the same as canonicalJsonReference, which it falls back to for
 * anything else (tests compare the two on generated values).
 */

/** The reference: JSON.stringify with a replacer that sorts object keys. */
export function canonicalJsonReference(value: unknown): string {
  if (value === undefined) return '';
  return JSON.stringify(value, (_k, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) sorted[k] = (v as Record<string, unknown>)[k];
    return sorted;
  });
}

export function sha256(text: string): string {
  return hash('sha256', text, 'hex');
}

/**
 * payloadHashOf (record.ts), faster: the same canonical JSON (byte for byte: a test compares the
 * two on generated values) built without JSON.stringify's replacer and its sorted copy of every
 * object, hashed with crypto.hash (one call, no Hash object). Candidates to replace canonicalJson
 * and sha256 in record.ts.
 */
export function payloadHashOf(payload: unknown): string {
  return payload === undefined ? '' : sha256(canonicalJson(payload));
}

/** canonicalJson (record.ts), faster; falls back to it for anything but plain JSON data. */
export function canonicalJson(value: unknown): string {
  try {
    return writeValue(value);
  } catch {
    // A value this does not handle (toJSON, boxed primitives, a bigint, a cycle, a Map...).
    return canonicalJsonReference(value);
  }
}

/** Thrown to fall back to canonicalJson. */
const UNSUPPORTED = new Error('unsupported by canonicalJsonFast');

/** Strings JSON.stringify leaves as they are (no quote, backslash, control char, surrogate). */
// eslint-disable-next-line no-control-regex -- control characters are exactly what must be found
const PLAIN = /^[^"\\\u0000-\u001f\ud800-\udfff]*$/;

function writeString(s: string): string {
  return PLAIN.test(s) ? `"${s}"` : JSON.stringify(s);
}

function writeValue(v: unknown): string {
  switch (typeof v) {
    case 'string':
      return writeString(v);
    case 'number':
      return Number.isFinite(v) ? String(v) : 'null';
    case 'boolean':
      return v ? 'true' : 'false';
    case 'object':
      if (v === null) return 'null';
      if (Array.isArray(v)) return writeArray(v);
      return writeObject(v);
    default:
      // undefined, a function or a symbol at the top; bigint anywhere.
      throw UNSUPPORTED;
  }
}

function writeArray(a: readonly unknown[]): string {
  if (Object.getPrototypeOf(a) !== Array.prototype) throw UNSUPPORTED;
  let out = '[';
  for (let i = 0; i < a.length; i++) {
    if (i > 0) out += ',';
    const v = a[i];
    // JSON.stringify writes null for these in arrays.
    out +=
      v === undefined || typeof v === 'function' || typeof v === 'symbol' ? 'null' : writeValue(v);
  }
  return out + ']';
}

function writeObject(o: object): string {
  const proto: unknown = Object.getPrototypeOf(o);
  if (proto !== Object.prototype && proto !== null) throw UNSUPPORTED;
  if (typeof (o as { toJSON?: unknown }).toJSON === 'function') throw UNSUPPORTED;
  const keys = canonicalKeys(o);
  let out = '{';
  let first = true;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i] as string;
    // canonicalJson copies keys into a new object: "__proto__" sets its prototype there and
    // never appears in the output.
    if (k === '__proto__') continue;
    const v = (o as Record<string, unknown>)[k];
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
    if (first) first = false;
    else out += ',';
    out += writeString(k) + ':' + writeValue(v);
  }
  return out + '}';
}

/**
 * The key order of canonicalJson: it inserts the sorted keys into a new object, where integer
 * keys ("0", "12") always come first in numeric order (as in Object.keys), then the others in the
 * sorted order.
 */
function canonicalKeys(o: object): string[] {
  const keys = Object.keys(o);
  let start = 0;
  while (start < keys.length && isArrayIndex(keys[start] as string)) start++;
  for (let i = start + 1; i < keys.length; i++) {
    if ((keys[i - 1] as string) > (keys[i] as string)) {
      const rest = keys.slice(start).sort();
      for (let j = 0; j < rest.length; j++) keys[start + j] = rest[j] as string;
      break;
    }
  }
  return keys;
}

const DIGITS = /^(?:0|[1-9][0-9]*)$/;

function isArrayIndex(k: string): boolean {
  const c = k.charCodeAt(0);
  return c >= 48 && c <= 57 && k.length <= 10 && DIGITS.test(k) && Number(k) < 4294967295;
}
