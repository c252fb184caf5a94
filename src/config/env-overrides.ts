import { parseDocument, isScalar } from 'yaml';
import { ConfigSchema } from './schema.js';

/** `bodyLimit` → `BODY_LIMIT`. */
function envName(key: string): string {
  return key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

interface Override {
  readonly section: string;
  readonly key: string;
  /** The key is an array in the schema: the variable holds a comma-separated list. */
  readonly list: boolean;
}

/** Every overridable key: SWITCHYARD_<SECTION>_<KEY>. */
const OVERRIDES: ReadonlyMap<string, Override> = (() => {
  const map = new Map<string, Override>();
  const sections = ConfigSchema.properties as Record<
    string,
    { properties?: Record<string, { type?: unknown; items?: { type?: unknown } }> }
  >;
  for (const [section, schema] of Object.entries(sections)) {
    if (schema.properties === undefined) continue;
    for (const [key, prop] of Object.entries(schema.properties)) {
      // Lists of strings take a comma-separated value; other lists (inline rules) cannot be set.
      if (prop.type === 'array' && prop.items?.type !== 'string') continue;
      map.set(`SWITCHYARD_${envName(section)}_${envName(key)}`, {
        section,
        key,
        list: prop.type === 'array',
      });
    }
  }
  return map;
})();

/** The names of every supported override variable (documented in docs/configuration.md). */
export function overrideVariables(): string[] {
  return [...OVERRIDES.keys()].sort();
}

/**
 * Applies SWITCHYARD_<SECTION>_<KEY> variables (returning "section.key" → variable name, so
 * errors can name the variable instead of the file) on top of the config object. Values are read as
 * YAML scalars (`8080` is a number, `true` a boolean), lists as comma-separated strings, and then
 * validated like the file itself.
 */
export function applyEnvOverrides(
  config: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
): Map<string, string> {
  const applied = new Map<string, string>();
  for (const [name, { section, key, list }] of OVERRIDES) {
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    applied.set(`${section}.${key}`, name);
    const current = config[section];
    const target =
      current !== null && typeof current === 'object' && !Array.isArray(current)
        ? (current as Record<string, unknown>)
        : (config[section] = {});
    if (list) {
      target[key] = raw.split(',').map((s) => s.trim());
      continue;
    }
    const doc = parseDocument(raw);
    target[key] = doc.errors.length === 0 && isScalar(doc.contents) ? doc.contents.value : raw;
  }
  return applied;
}
