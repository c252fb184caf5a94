import { isScalar, parseDocument, visit, type Document, type Scalar } from 'yaml';

const REF = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * Replaces `${VAR}` and `${VAR:-default}` in every string scalar of the document, in place, so
 * that validation errors still point at the original line. `$${` is a literal `${`. A plain
 * (unquoted) scalar that was interpolated is re-read as YAML, so `port: ${PORT}` is a number.
 */
export function interpolateDocument(
  doc: Document,
  env: NodeJS.ProcessEnv,
  fail: (node: Scalar, message: string) => never,
): void {
  visit(doc, {
    Scalar(_key, node) {
      if (typeof node.value !== 'string' || !node.value.includes('$')) return;
      const original = node.value;
      let replaced = false;
      const value = original.replace(
        REF,
        (match, name: string | undefined, fallback: string | undefined) => {
          if (match === '$${') return '${';
          replaced = true;
          const v = env[name as string];
          if (v !== undefined && v !== '') return v;
          if (fallback !== undefined) return fallback;
          return fail(
            node,
            `environment variable ${name} is not set (referenced as ${match}; use \${${name}:-default} for a default)`,
          );
        },
      );
      if (!replaced) {
        node.value = value;
        return;
      }
      node.value = node.type === 'PLAIN' ? reread(value) : value;
    },
  });
}

function reread(text: string): unknown {
  const parsed = parseDocument(text);
  if (parsed.errors.length > 0 || !isScalar(parsed.contents)) return text;
  return parsed.contents.value;
}
