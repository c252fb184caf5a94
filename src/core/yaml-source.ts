import {
  LineCounter,
  parseDocument,
  isMap,
  isPair,
  isScalar,
  isSeq,
  type Document,
  type Node,
} from 'yaml';
import type { ErrorObject } from 'ajv';
import { SyError, type ErrorCode } from './errors.js';
import { describe, formatPath, segmentsOf } from './validate.js';

/** Where a value sits in its source: "file:line:col: " (or "file: " when unknown). */
export type Locate = (path: readonly (string | number)[], key?: boolean) => string;

export const NO_LOCATION: Locate = () => '';

export interface YamlSource {
  readonly doc: Document;
  readonly file: string;
  /** Location prefix for a byte offset. */
  at(offset: number): string;
  /** Location prefix for the value at a path; with `key`, for the key of its last segment. */
  locate: Locate;
}

/**
 * Parses YAML text keeping positions, so that later validation errors can name file:line:col.
 * Syntax errors (and duplicate keys) are raised at once with `parseCode`.
 */
export function parseYamlSource(text: string, file: string, parseCode: ErrorCode): YamlSource {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number): string => {
    const pos = lineCounter.linePos(offset);
    return `${file}:${pos.line}:${pos.col}: `;
  };
  const yamlError = doc.errors[0];
  if (yamlError !== undefined) {
    throw new SyError(parseCode, `${at(yamlError.pos[0])}${yamlError.message}`, { file });
  }
  const locate: Locate = (path, key = false) => {
    const node = nodeAt(doc, path, key);
    return node?.range ? at(node.range[0]) : `${file}: `;
  };
  return { doc, file, at, locate };
}

/** The YAML node at a path (or the deepest existing ancestor); `key` picks the key node. */
function nodeAt(doc: Document, path: readonly (string | number)[], key: boolean): Node | undefined {
  let node: unknown = doc.contents;
  for (let i = 0; i < path.length; i++) {
    const segment = path[i];
    if (isSeq(node)) {
      const item = node.items[Number(segment)];
      if (item === undefined) return node as Node;
      node = item;
      continue;
    }
    if (!isMap(node)) return (node as Node | null) ?? undefined;
    const pair = node.items.find(
      (p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(segment),
    );
    if (pair === undefined) return node as Node;
    if (key && i === path.length - 1) return pair.key as Node;
    node = pair.value;
  }
  return (node as Node | null) ?? undefined;
}

/**
 * A schema violation (the first ajv error) as a SyError whose message starts with the location
 * and names the dotted field, e.g. `sw.yaml:4:5: providers.hook.url is required`.
 */
export function schemaError(
  code: ErrorCode,
  error: ErrorObject | undefined,
  base: readonly (string | number)[],
  locate: Locate,
  extra: Record<string, unknown> = {},
): SyError {
  if (error === undefined) return new SyError(code, `${locate(base)}invalid value`, extra);
  const segments = [...base, ...segmentsOf(error)];
  const field = formatPath(segments);
  const missing = error.keyword === 'required';
  // A missing key has no node of its own: point at the mapping that should hold it.
  const where = locate(
    missing ? segments.slice(0, -1) : segments,
    error.keyword === 'additionalProperties',
  );
  return new SyError(code, `${where}${describe(error, field)}`, {
    ...extra,
    field,
    keyword: error.keyword,
  });
}
