import Mustache from 'mustache';
import type { Action } from '../core/action.js';
import { SyError } from '../core/errors.js';

/**
 * Provider templates (URLs, headers, bodies, subjects): Mustache, logic-less, parsed once when
 * the provider is built. A template sees the action as
 * `{ id, namespace, tenant, provider, actionType, payload, labels, dedupKey, fingerprint,
 * receivedAt, attempt }` (receivedAt as RFC 3339). `{{x}}` inserts a value without HTML
 * escaping (objects as JSON); sections (`{{#payload.items}}...{{/payload.items}}`) loop or test.
 * A variable whose first segment is not one of those names is rejected when the template is
 * compiled, so a typo fails at config load, not at 3 a.m.
 */
export type TextTemplate = (view: TemplateView) => string;

export interface TemplateView {
  id: string;
  namespace: string;
  tenant: string;
  provider: string;
  actionType: string;
  payload: unknown;
  labels: Record<string, string>;
  dedupKey: string | undefined;
  fingerprint: string | undefined;
  receivedAt: string;
  attempt: number;
}

const ROOTS = new Set([
  'id',
  'namespace',
  'tenant',
  'provider',
  'actionType',
  'payload',
  'labels',
  'dedupKey',
  'fingerprint',
  'receivedAt',
  'attempt',
  '.',
]);

/** The view a template renders against. */
export function templateView(action: Action, attempt = 1): TemplateView {
  return {
    id: action.id,
    namespace: action.namespace,
    tenant: action.tenant,
    provider: action.provider,
    actionType: action.actionType,
    payload: action.payload,
    labels: action.labels,
    dedupKey: action.dedupKey,
    fingerprint: action.fingerprint,
    receivedAt: new Date(action.receivedAt).toISOString(),
    attempt,
  };
}

function stringify(value: unknown): string {
  if (value === null || value === undefined) return '';
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

const RENDER_CONFIG = { escape: stringify };

type Token = [string, string, number, number, Token[]?, ...unknown[]];

function checkTokens(tokens: Token[], where: string): void {
  for (const token of tokens) {
    const [kind, name] = token;
    if (kind === 'name' || kind === '&' || kind === '#' || kind === '^') {
      const root = name.split('.')[0] ?? '';
      if (!ROOTS.has(root) && !ROOTS.has(name)) {
        throw new SyError(
          'SY_ERR_CONFIG_INVALID',
          `${where}: {{${name}}} is not an action field (use one of ${[...ROOTS].filter((r) => r !== '.').join(', ')}, e.g. {{payload.to}})`,
          { field: where },
        );
      }
    }
    if (kind === '>') {
      throw new SyError(
        'SY_ERR_CONFIG_INVALID',
        `${where}: partials ({{> ...}}) are not supported`,
        {
          field: where,
        },
      );
    }
    const children = token[4];
    // Inside a section the context is the section's value: its fields are not checked.
    if (Array.isArray(children) && kind !== '#' && kind !== '^') checkTokens(children, where);
  }
}

/**
 * Compiles a text template. `where` names it in errors (e.g. "providers.hook.url").
 * Throws SY_ERR_CONFIG_INVALID on a syntax error or an unknown variable.
 */
export function compileText(template: string, where: string): TextTemplate {
  let tokens: Token[];
  try {
    tokens = Mustache.parse(template) as unknown as Token[];
  } catch (err) {
    throw new SyError(
      'SY_ERR_CONFIG_INVALID',
      `${where}: template does not parse: ${(err as Error).message}`,
      { field: where },
    );
  }
  checkTokens(tokens, where);
  // A template without tags renders to itself: skip Mustache entirely.
  if (tokens.every((t) => t[0] === 'text')) return () => template;
  return (view) => Mustache.render(template, view, undefined, RENDER_CONFIG);
}

/** A compiled structured value: a JSON body or a map of headers with templates in its strings. */
export type ValueTemplate = (view: TemplateView) => unknown;

const WHOLE = /^\{\{\{?\s*([^{}\s#^/!>&]+)\s*\}?\}\}$/;

function lookup(view: TemplateView, path: string): unknown {
  let v: unknown = view;
  for (const part of path.split('.')) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

/**
 * Compiles a JSON-like value whose strings are templates. A string that is exactly one
 * placeholder (`"{{payload.count}}"`) keeps the value's type (a number stays a number, an object
 * stays an object); any other string renders as text.
 */
export function compileValue(value: unknown, where: string): ValueTemplate {
  if (typeof value === 'string') {
    const whole = WHOLE.exec(value);
    if (whole !== null) {
      const path = whole[1] as string;
      compileText(value, where); // checks the variable
      return (view) => lookup(view, path);
    }
    const t = compileText(value, where);
    return (view) => t(view);
  }
  if (Array.isArray(value)) {
    const items = value.map((v, i) => compileValue(v, `${where}[${i}]`));
    return (view) => items.map((f) => f(view));
  }
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).map(
      ([k, v]) => [k, compileValue(v, `${where}.${k}`)] as const,
    );
    return (view) => {
      const out: Record<string, unknown> = {};
      for (const [k, f] of entries) out[k] = f(view);
      return out;
    };
  }
  return () => value;
}

/** Renders a template, turning an unexpected throw into SY_ERR_TEMPLATE naming `where`. */
export function renderOrThrow<T>(render: () => T, where: string): T {
  try {
    return render();
  } catch (err) {
    if (err instanceof SyError) throw err;
    throw new SyError(
      'SY_ERR_TEMPLATE',
      `${where} could not be rendered: ${(err as Error).message}`,
      {
        template: where,
      },
    );
  }
}
