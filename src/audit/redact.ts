import { SyError } from '../core/errors.js';

/** What a redacted value is replaced by. */
export const REDACTED = '[REDACTED]';

/** A compiled set of redaction paths: returns the payload with those paths replaced. */
export type Redactor = (payload: unknown) => unknown;

/**
 * One node of the compiled path tree. `redact`: the value here is replaced whole. `keys`: the
 * node for each key named explicitly (a `*` sibling already merged in, see build()); `any`: the
 * node for every other key or array index (from `*`).
 */
interface Node {
  readonly redact: boolean;
  readonly keys: ReadonlyMap<string, Node>;
  /** The explicit keys that are array indexes (`items.0.ssn`), as numbers. */
  readonly indexes: readonly (readonly [number, Node])[];
  readonly any: Node | undefined;
}

const identity: Redactor = (payload) => payload;

/**
 * Compiles redaction paths once: `payload.card.number`, `password`, `payload.items.*.ssn` (the
 * leading `payload.` is optional; `*` matches any array index or object key; a numeric segment
 * also matches that array index). Paths that do not exist in a payload change nothing; a path to
 * an object replaces the whole object.
 *
 * The result never mutates its input: objects and arrays on the way to a redacted value are
 * copied, everything else is shared with the input (payloads are treated as immutable throughout
 * the gateway: a rule that modifies one copies it first). A payload with nothing to redact comes
 * back as is.
 */
export function compileRedaction(paths: readonly string[]): Redactor {
  if (paths.length === 0) return identity;
  const split = paths.map(parsePath);
  const root = build(split);
  if (root.redact) return () => REDACTED;
  return (payload) => apply(root, payload);
}

function parsePath(path: string): string[] {
  const segments = path.split('.');
  if (segments[0] === 'payload') segments.shift();
  if (segments.some((s) => s === '')) {
    throw new SyError('SY_ERR_CONFIG_INVALID', `audit.redact: "${path}" is not a valid path`, {
      field: 'audit.redact',
    });
  }
  return segments;
}

const INDEX = /^(?:0|[1-9][0-9]{0,8})$/;

/**
 * The node for a set of remaining path suffixes. A key named explicitly gets every suffix that
 * starts with it or with `*`, so a value matched by both `a.*.x` and `a.0.y` gets both.
 */
function build(suffixes: readonly (readonly string[])[]): Node {
  let redact = false;
  const explicit = new Set<string>();
  const wildcard: (readonly string[])[] = [];
  for (const s of suffixes) {
    const head = s[0];
    if (head === undefined) redact = true;
    else if (head === '*') wildcard.push(s.slice(1));
    else explicit.add(head);
  }
  const keys = new Map<string, Node>();
  const indexes: [number, Node][] = [];
  if (!redact) {
    for (const key of explicit) {
      const rest = suffixes.filter((s) => s[0] === key || s[0] === '*').map((s) => s.slice(1));
      const node = build(rest);
      keys.set(key, node);
      if (INDEX.test(key)) indexes.push([Number(key), node]);
    }
  }
  const any = !redact && wildcard.length > 0 ? build(wildcard) : undefined;
  return { redact, keys, indexes, any };
}

function apply(node: Node, value: unknown): unknown {
  if (node.redact) return REDACTED;
  if (value === null || typeof value !== 'object') return value;
  return Array.isArray(value) ? applyArray(node, value) : applyObject(node, value);
}

function applyArray(node: Node, value: readonly unknown[]): unknown {
  let copy: unknown[] | undefined;
  if (node.any !== undefined) {
    for (let i = 0; i < value.length; i++) {
      const child = node.keys.size === 0 ? node.any : (node.keys.get(String(i)) ?? node.any);
      const before = value[i];
      const after = apply(child, before);
      if (after !== before) (copy ??= value.slice())[i] = after;
    }
  } else {
    for (const [i, child] of node.indexes) {
      if (i >= value.length) continue;
      const before = value[i];
      const after = apply(child, before);
      if (after !== before) (copy ??= value.slice())[i] = after;
    }
  }
  return copy ?? value;
}

function applyObject(node: Node, value: object): unknown {
  const source = value as Record<string, unknown>;
  let copy: Record<string, unknown> | undefined;
  if (node.any !== undefined) {
    const any = node.any;
    const explicit = node.keys.size > 0;
    for (const key of Object.keys(source)) {
      const child = explicit ? (node.keys.get(key) ?? any) : any;
      const before = source[key];
      const after = apply(child, before);
      if (after !== before) set((copy ??= { ...source }), key, after);
    }
  } else {
    for (const [key, child] of node.keys) {
      if (!Object.hasOwn(source, key)) continue;
      const before = source[key];
      const after = apply(child, before);
      if (after !== before) set((copy ??= { ...source }), key, after);
    }
  }
  return copy ?? value;
}

function set(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') {
    // A plain assignment would set the copy's prototype instead of the key.
    Object.defineProperty(target, key, {
      value,
      writable: true,
      enumerable: true,
      configurable: true,
    });
  } else {
    target[key] = value;
  }
}
