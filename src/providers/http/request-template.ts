import { SyError } from '../../core/errors.js';
import { ProviderError, maskHeaders } from '../provider.js';
import {
  compileText,
  compileValue,
  renderOrThrow,
  type TemplateView,
  type TextTemplate,
  type ValueTemplate,
} from '../template.js';

/**
 * Templates shared by the HTTP-based providers: the destination URL and the request headers.
 * Compiled (and checked) when the provider is built; rendered per attempt. A render failure is a
 * terminal ProviderError SY_ERR_TEMPLATE: the same action would fail the same way again.
 */

/** Runs `render`; any failure becomes ProviderError SY_ERR_TEMPLATE (terminal) naming `where`. */
export function renderTemplate<T>(render: () => T, where: string): T {
  try {
    return renderOrThrow(render, where);
  } catch (err) {
    if (err instanceof ProviderError) throw err;
    const message = err instanceof Error ? err.message : String(err);
    throw new ProviderError('SY_ERR_TEMPLATE', message, { transient: false, cause: err });
  }
}

/** A ProviderError SY_ERR_TEMPLATE for a rendered value that is not usable. */
export function templateError(where: string, why: string): ProviderError {
  return new ProviderError('SY_ERR_TEMPLATE', `${where} could not be rendered: ${why}`, {
    transient: false,
  });
}

function configError(where: string, why: string): SyError {
  return new SyError('SY_ERR_CONFIG_INVALID', `${where} ${why}`, { field: where });
}

/** Deep copy of a view value with every string percent-encoded (for URL templates). */
function encodeStrings(value: unknown): unknown {
  if (typeof value === 'string') return encodeURIComponent(value);
  if (Array.isArray(value)) return value.map(encodeStrings);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = encodeStrings(v);
    return out;
  }
  return value;
}

/** Checks a URL the way every rendered URL is checked; returns why it is unusable, or undefined. */
function urlProblem(url: URL): string | undefined {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return `must be an http or https URL (got ${url.protocol})`;
  }
  if (url.username !== '' || url.password !== '') {
    return 'must not carry credentials (user:password@); send them in a header instead';
  }
  return undefined;
}

export type UrlTemplate = (view: TemplateView) => URL;

/**
 * Compiles a URL template. The scheme must be written out (http:// or https://); when the host
 * is written out too it is checked now, else on every render. Values inserted by `{{...}}` are
 * percent-encoded (encodeURIComponent), so a payload value cannot add path segments, a query or
 * another host. Throws SY_ERR_CONFIG_INVALID naming `where`.
 */
export function compileUrl(template: string, where: string): UrlTemplate {
  if (!/^https?:\/\//i.test(template)) {
    throw configError(where, 'must start with http:// or https://');
  }
  const tag = template.indexOf('{{');
  const fixed = tag === -1 ? template : template.slice(0, tag);
  // The authority ends at the first / ? or # after the scheme.
  const afterScheme = fixed.indexOf('//') + 2;
  const end = fixed.slice(afterScheme).search(/[/?#]/);
  const checkable = tag === -1 ? fixed : end === -1 ? undefined : fixed.slice(0, afterScheme + end);
  if (checkable !== undefined) {
    let parsed: URL;
    try {
      parsed = new URL(checkable);
    } catch {
      throw configError(where, `is not a valid URL: ${template}`);
    }
    const problem = urlProblem(parsed);
    if (problem !== undefined) throw configError(where, problem);
  }
  const text = compileText(template, where);
  if (tag === -1) {
    const url = new URL(template);
    return () => new URL(url);
  }
  return (view) => {
    const rendered = renderTemplate(() => text(encodeStrings(view) as TemplateView), where);
    let url: URL;
    try {
      url = new URL(rendered);
    } catch {
      throw templateError(where, `"${rendered}" is not a valid URL`);
    }
    const problem = urlProblem(url);
    if (problem !== undefined) throw templateError(where, problem);
    return url;
  };
}

/**
 * The URL as a preview shows it: query values whose names look secret (token, key, signature,
 * ...) are replaced with "***" (same rule as maskHeaders).
 */
export function maskUrl(url: URL): string {
  if (url.search === '') return url.href;
  const masked = new URL(url);
  const params = new URLSearchParams();
  for (const [k, v] of url.searchParams) params.append(k, maskHeaders({ [k]: v })[k] ?? '***');
  masked.search = params.toString();
  return masked.href;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Set by the transport itself; a config value would break the framing or the connection. */
const RESERVED_HEADERS = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'upgrade',
  'te',
  'trailer',
  'expect',
  'proxy-connection',
]);

export type HeadersTemplate = (view: TemplateView) => Record<string, string>;

/**
 * Compiles request headers whose values are templates. Names are lower-cased; hop-by-hop and
 * framing headers (host, content-length, connection, ...) are refused at load.
 */
export function compileHeaders(headers: Record<string, string>, where: string): HeadersTemplate {
  const compiled: [string, TextTemplate][] = [];
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (!TOKEN.test(name)) throw configError(`${where}.${name}`, 'is not a valid header name');
    if (RESERVED_HEADERS.has(lower)) {
      throw configError(`${where}.${name}`, 'is set by the HTTP client and cannot be configured');
    }
    compiled.push([lower, compileText(value, `${where}.${name}`)]);
  }
  return (view) => {
    const out: Record<string, string> = {};
    for (const [name, t] of compiled) {
      const value = renderTemplate(() => t(view), `${where}.${name}`);
      // A CR or LF from a payload value would inject headers.
      if (/[\r\n\0]/.test(value)) {
        throw templateError(`${where}.${name}`, 'the value contains a line break or NUL');
      }
      out[name] = value;
    }
    return out;
  };
}

/** A compiled JSON value template that renders to a ProviderError on failure. */
export function compileJson(value: unknown, where: string): ValueTemplate {
  const t = compileValue(value, where);
  return (view) => renderTemplate(() => t(view), where);
}
