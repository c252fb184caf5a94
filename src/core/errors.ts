/**
 * The one error registry. Every error Switchyard reports — over HTTP, in an outcome, from the
 * CLI or from the config loader — has a stable `SY_ERR_*` code defined here, an HTTP status and a
 * one-line description. Tests assert codes, never message text; `docs/errors.md` lists every code
 * (a test keeps the two in sync). Codes are never reused or renamed.
 */
export interface ErrorDefinition {
  /** HTTP status used when the error crosses the HTTP boundary. */
  readonly status: number;
  /** What the code means, as documented in docs/errors.md. */
  readonly description: string;
}

export const ERRORS = {
  // Request / input validation
  SY_ERR_VALIDATION: {
    status: 400,
    description:
      'The request body or an action does not match the schema; `details.field` names the field.',
  },
  SY_ERR_MALFORMED_JSON: {
    status: 400,
    description: 'The request body is not valid JSON.',
  },
  SY_ERR_UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    description: 'The request body has a content type other than application/json.',
  },
  SY_ERR_BODY_TOO_LARGE: {
    status: 413,
    description: 'The request body exceeds `server.bodyLimit`.',
  },
  SY_ERR_BATCH_TOO_LARGE: {
    status: 413,
    description: 'A batch holds more actions than `server.batchMaxSize`.',
  },
  SY_ERR_UNKNOWN_PROVIDER: {
    status: 400,
    description: 'The action names a provider that is not configured; `details.provider` names it.',
  },
  SY_ERR_UNAUTHORIZED: {
    status: 401,
    description:
      'The /v1 API needs an API key (`server.apiKeys`) and none or a wrong one was sent.',
  },
  SY_ERR_NOT_FOUND: {
    status: 404,
    description: 'No route or resource matches the request.',
  },
  SY_ERR_METHOD_NOT_ALLOWED: {
    status: 405,
    description: 'The route exists but not for this HTTP method.',
  },
  // Gateway lifecycle
  SY_ERR_SHUTTING_DOWN: {
    status: 503,
    description: 'The gateway is closing and accepts no new actions.',
  },
  SY_ERR_INTERNAL: {
    status: 500,
    description:
      'An unexpected error inside Switchyard; the log holds the cause under the request id.',
  },
  // Provider execution (reported inside a "failed" outcome)
  SY_ERR_PROVIDER_HTTP_STATUS: {
    status: 502,
    description: 'The provider answered with a non-2xx HTTP status; `status` holds it.',
  },
  SY_ERR_PROVIDER_TIMEOUT: {
    status: 504,
    description: 'The provider did not answer within its configured timeout.',
  },
  SY_ERR_PROVIDER_NETWORK: {
    status: 502,
    description: 'The provider could not be reached (connection refused, reset, DNS failure).',
  },
  SY_ERR_PROVIDER_FAILED: {
    status: 502,
    description: 'The provider failed for another reason; the message says why.',
  },
  SY_ERR_PROVIDER_REJECTED: {
    status: 502,
    description:
      'The destination refused the action for good (SMTP 5xx, an LLM API 4xx other than 408/429): retrying will not help.',
  },
  SY_ERR_DESTINATION_BLOCKED: {
    status: 502,
    description:
      'The destination resolves to a private, loopback or link-local address and the provider does not allow it (SSRF guard: set `allowPrivateNetworks`).',
  },
  SY_ERR_TEMPLATE: {
    status: 422,
    description:
      'A provider template (URL, header, body, subject) could not be rendered for this action; the message names the template.',
  },
  SY_ERR_BUDGET_EXCEEDED: {
    status: 429,
    description:
      "A provider's own budget (e.g. LLM tokens per minute) is used up: the action was not sent; retry after `retryAfterMs`.",
  },
  SY_ERR_CIRCUIT_OPEN: {
    status: 503,
    description:
      "The provider's circuit breaker is open after repeated failures and no fallback could take the action; retry after `retryAfterMs`.",
  },
  SY_ERR_OVERLOADED: {
    status: 503,
    description:
      "The executor's queue (global or the provider's) is full: nothing was executed; retry after `retryAfterMs`.",
  },
  SY_ERR_RETRIES_EXHAUSTED: {
    status: 502,
    description:
      "The provider's `actionTimeout` passed before an attempt succeeded; the action is in the dead-letter queue with each attempt's error.",
  },
  SY_ERR_DLQ_NOT_FOUND: {
    status: 404,
    description: 'No dead-letter entry has this id (it was replayed, discarded or never existed).',
  },
  SY_ERR_AUDIT_UNAVAILABLE: {
    status: 503,
    description:
      'Strict audit mode: the decision could not be written to the audit store, so the outcome is not returned; retry after `retryAfterMs`.',
  },
  SY_ERR_AUDIT_DISABLED: {
    status: 404,
    description:
      'The audit trail is off on this server (`audit.backend: none`): there is nothing to query.',
  },
  SY_ERR_PROVIDER_NOT_FOUND: {
    status: 404,
    description: 'No provider of this name is configured.',
  },
  // Configuration (CLI exit code 2)
  SY_ERR_CONFIG_INVALID: {
    status: 500,
    description:
      'The config file has an unknown key, a wrong type or a bad value; the message names file, line and key.',
  },
  SY_ERR_CONFIG_PARSE: {
    status: 500,
    description: 'The config file is not valid YAML; the message names file, line and column.',
  },
  SY_ERR_CONFIG_READ: {
    status: 500,
    description: 'The config file cannot be read (missing, unreadable).',
  },
  SY_ERR_CONFIG_ENV: {
    status: 500,
    description: 'The config references `${VAR}` without a default and VAR is not set.',
  },
  // Rules
  SY_ERR_RULE_PARSE: {
    status: 422,
    description: 'A rule file is not valid YAML; the message names file, line and column.',
  },
  SY_ERR_RULE_INVALID: {
    status: 422,
    description:
      'A rule has an unknown key, a wrong type, a bad condition, an unsafe regex, a bad CEL expression or a duplicate name; the message names file, line, rule and key.',
  },
  SY_ERR_RULE_READ: {
    status: 422,
    description: 'The rules directory or a rule file cannot be read.',
  },
  SY_ERR_RULE_NOT_FOUND: {
    status: 404,
    description: 'No loaded rule has this name.',
  },
  // State store
  SY_ERR_STATE_UNAVAILABLE: {
    status: 503,
    description:
      'The state store did not answer (down, unreachable, timed out). Nothing was executed; retry after `retryAfterMs`.',
  },
  // CLI
  SY_ERR_CLI_USAGE: {
    status: 400,
    description: 'A CLI command was called with missing or conflicting arguments.',
  },
  SY_ERR_CLIENT_CONNECT: {
    status: 503,
    description: 'The CLI or client could not reach the Switchyard server at `--url`.',
  },
} as const satisfies Record<string, ErrorDefinition>;

export type ErrorCode = keyof typeof ERRORS;

/**
 * The error type Switchyard throws across module boundaries. `details` is JSON-safe and ends up
 * in the HTTP error body; `cause` keeps the underlying error for logs, never for clients.
 */
export class SyError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    details?: Record<string, unknown>,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'SyError';
    this.code = code;
    this.status = ERRORS[code].status;
    this.details = details;
  }

  toJSON(): { code: ErrorCode; message: string; details?: Record<string, unknown> } {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }
}

export function isSyError(err: unknown): err is SyError {
  return err instanceof SyError;
}
