import { Pool } from 'undici';
import type { Logger } from 'pino';
import { Type, type Static } from 'typebox';
import type { Action } from '../../core/action.js';
import type { Clock } from '../../core/clock.js';
import { SyError } from '../../core/errors.js';
import type { ProviderResponse } from '../../core/outcome.js';
import { Duration, Size } from '../../core/schema-types.js';
import { parseDuration, parseSize } from '../../core/units.js';
import { compileAssert } from '../../core/validate.js';
import type { StateStore } from '../../state/store.js';
import {
  maskHeaders,
  ProviderError,
  ProviderThrottledError,
  type ExecuteContext,
  type Provider,
  type ProviderFactoryContext,
  type ProviderPreview,
  type ProviderType,
} from '../provider.js';
import { compileText, renderOrThrow, templateView, type TextTemplate } from '../template.js';
import { DAY_MS, MINUTE_MS, TokenBudgets, type BudgetLimit, type BudgetRule } from './budget.js';
import { cacheKey, ResponseCache, type CachedAnswer } from './cache.js';
import { checkDestination } from './destination.js';
import { guardedConnector } from '../http/transport.js';
import { parseBody, readCapped, requestError, retryAfterMs, statusError } from './http.js';
import { appendSession, readSession, sessionStateKey, type ChatMessage } from './session.js';

export const LlmProviderConfigSchema = Type.Object(
  {
    type: Type.Literal('llm'),
    baseUrl: Type.String({
      pattern: '^https?://',
      description:
        'API base URL, e.g. https://api.openai.com/v1; requests go to {baseUrl}/chat/completions.',
    }),
    model: Type.String({ minLength: 1, description: 'Model name sent with every request.' }),
    apiKey: Type.Optional(
      Type.String({
        description: 'Sent as `authorization: Bearer <apiKey>`; use ${OPENAI_API_KEY}.',
      }),
    ),
    headers: Type.Optional(
      Type.Record(Type.String(), Type.String(), {
        description: 'Extra request headers; use ${ENV_VAR} for secrets.',
      }),
    ),
    parameters: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), {
        description:
          'Request fields passed through (temperature, max_tokens, ...); the payload may override them.',
      }),
    ),
    systemPrompt: Type.Optional(
      Type.String({ description: 'A template sent as the first (system) message of every call.' }),
    ),
    connections: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 1024, description: 'Pooled connections. Default 16.' }),
    ),
    maxResponseSize: Type.Optional(Size('Largest API answer accepted. Default 1MiB.')),
    allowPrivateNetworks: Type.Optional(
      Type.Boolean({
        description:
          'Allow a loopback or private literal IP (or localhost) in baseUrl. Default false.',
      }),
    ),
    session: Type.Optional(
      Type.Object(
        {
          maxMessages: Type.Optional(
            Type.Integer({
              minimum: 1,
              maximum: 10_000,
              description: 'Messages kept per session history. Default 20.',
            }),
          ),
          ttl: Type.Optional(
            Duration('How long a session is kept after its last turn. Default 24h.'),
          ),
        },
        { additionalProperties: false },
      ),
    ),
    cache: Type.Optional(
      Type.Object(
        {
          ttl: Type.Optional(Duration('How long an answer is reused. Default 0 (no cache).')),
          maxEntries: Type.Optional(
            Type.Integer({
              minimum: 0,
              maximum: 1_000_000,
              description: 'Answers kept in process memory (LRU). Default 1000.',
            }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
    budgets: Type.Optional(
      Type.Array(
        Type.Object(
          {
            key: Type.String({
              minLength: 1,
              maxLength: 512,
              description: 'A key template, e.g. "{{tenant}}": one budget per rendered key.',
            }),
            tokensPerMinute: Type.Optional(Type.Integer({ minimum: 1 })),
            tokensPerDay: Type.Optional(Type.Integer({ minimum: 1 })),
          },
          { additionalProperties: false },
        ),
        { maxItems: 16, description: 'Token budgets, checked before each call.' },
      ),
    ),
  },
  { additionalProperties: false },
);
export type LlmProviderConfig = Static<typeof LlmProviderConfigSchema>;

const MessageSchema = Type.Object(
  {
    role: Type.Enum(['system', 'developer', 'user', 'assistant', 'tool']),
    content: Type.Union([Type.String(), Type.Array(Type.Unknown()), Type.Null()]),
  },
  // Other fields (name, tool_call_id, ...) pass through to the API as given.
  { additionalProperties: true },
);

/** What an action sent to an `llm` provider carries in its payload. */
export const LlmPayloadSchema = Type.Object(
  {
    messages: Type.Optional(Type.Array(MessageSchema, { maxItems: 1000 })),
    prompt: Type.Optional(Type.String({ minLength: 1 })),
    sessionKey: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
    model: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
    parameters: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  { additionalProperties: false },
);
export type LlmPayload = Static<typeof LlmPayloadSchema>;

const payloadCheck = compileAssert<LlmPayload>(LlmPayloadSchema);

/** Request fields that `parameters` may not set: they have their own keys (or break parsing). */
const RESERVED_PARAMETERS = ['model', 'messages', 'stream'];

const DEFAULT_CONNECTIONS = 16;
const DEFAULT_MAX_RESPONSE = 1024 * 1024;
const DEFAULT_MAX_MESSAGES = 20;
const DEFAULT_SESSION_TTL_MS = 24 * 3_600_000;
const DEFAULT_CACHE_ENTRIES = 1000;

/** The request one action makes, before it is sent. */
interface ChatRequest {
  model: string;
  /** Every message sent: system prompt, session history, this turn. */
  messages: ChatMessage[];
  /** This turn's new messages (appended to the session after the answer). */
  turn: ChatMessage[];
  parameters: Record<string, unknown>;
  /** The JSON body: parameters, then model and messages. */
  body: Record<string, unknown>;
}

/**
 * Calls an OpenAI-compatible chat-completions API (`POST {baseUrl}/chat/completions`) over a
 * pooled keep-alive connection, with server-side conversation sessions, a response cache and
 * token budgets kept in the state store. The executor owns timeouts and retries: the request is
 * aborted through `ctx.signal`.
 */
export class LlmProvider implements Provider {
  readonly type = 'llm';
  /** The full chat-completions URL. */
  readonly endpoint: string;
  private readonly pool: Pool;
  private readonly path: string;
  private readonly headers: Record<string, string>;
  private readonly model: string;
  private readonly parameters: Record<string, unknown>;
  private readonly systemPrompt: TextTemplate | undefined;
  private readonly maxResponseSize: number;
  private readonly blocked: ProviderError | undefined;
  private readonly maxMessages: number;
  private readonly sessionTtlMs: number;
  private readonly cache: ResponseCache | undefined;
  private readonly budgets: TokenBudgets;
  private readonly state: StateStore;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly count: ProviderFactoryContext['count'];

  constructor(
    readonly name: string,
    config: LlmProviderConfig,
    ctx: ProviderFactoryContext,
  ) {
    const where = `providers.${name}`;
    this.state = ctx.state;
    this.clock = ctx.clock;
    this.logger = ctx.logger;
    this.count = ctx.count;

    const base = new URL(config.baseUrl);
    this.path = `${base.pathname.replace(/\/+$/, '')}/chat/completions${base.search}`;
    this.endpoint = `${base.origin}${this.path}`;
    this.blocked = checkDestination(name, base, config.allowPrivateNetworks ?? false);
    this.model = config.model;
    this.parameters = { ...(config.parameters ?? {}) };
    const reserved = RESERVED_PARAMETERS.find((k) => Object.hasOwn(this.parameters, k));
    if (reserved !== undefined) {
      throw new SyError(
        'SY_ERR_CONFIG_INVALID',
        `${where}.parameters.${reserved} is not allowed${reserved === 'model' ? ' (use model)' : ''}`,
        { field: `${where}.parameters.${reserved}` },
      );
    }
    this.systemPrompt =
      config.systemPrompt === undefined
        ? undefined
        : compileText(config.systemPrompt, `${where}.systemPrompt`);
    this.maxResponseSize = parseSize(config.maxResponseSize) ?? DEFAULT_MAX_RESPONSE;
    this.maxMessages = config.session?.maxMessages ?? DEFAULT_MAX_MESSAGES;
    this.sessionTtlMs = parseDuration(config.session?.ttl) ?? DEFAULT_SESSION_TTL_MS;
    if (this.sessionTtlMs <= 0) {
      throw new SyError('SY_ERR_CONFIG_INVALID', `${where}.session.ttl must be more than 0`, {
        field: `${where}.session.ttl`,
      });
    }
    const cacheTtl = parseDuration(config.cache?.ttl) ?? 0;
    this.cache =
      cacheTtl > 0
        ? new ResponseCache(
            ctx.state,
            ctx.clock,
            cacheTtl,
            config.cache?.maxEntries ?? DEFAULT_CACHE_ENTRIES,
          )
        : undefined;
    this.budgets = new TokenBudgets(
      name,
      (config.budgets ?? []).map((b, i) => budgetRule(b, `${where}.budgets[${i}]`)),
      ctx.state,
      ctx.clock,
    );

    // The key is a header value only: it is never logged, and previews mask it.
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: 'application/json',
    };
    for (const [k, v] of Object.entries(config.headers ?? {})) headers[k.toLowerCase()] = v;
    if (config.apiKey !== undefined && config.apiKey !== '') {
      headers['authorization'] = `Bearer ${config.apiKey}`;
    }
    this.headers = headers;
    // Host names are checked by the SSRF guard on the addresses DNS returns (checkDestination
    // above judged literal IPs and localhost at load).
    this.pool = new Pool(base.origin, {
      connections: config.connections ?? DEFAULT_CONNECTIONS,
      connect: guardedConnector({
        name,
        allowPrivateNetworks: config.allowPrivateNetworks === true,
      }),
    });
  }

  async execute(action: Action, ctx: ExecuteContext): Promise<ProviderResponse> {
    try {
      return await this.run(action, ctx);
    } catch (err) {
      throw this.failure(err);
    }
  }

  async preview(action: Action): Promise<ProviderPreview> {
    const input = parsePayload(action);
    // Reads the session (the request includes its history) but writes nothing.
    const history =
      input.sessionKey === undefined
        ? []
        : await this.history(sessionStateKey(this.name, action.tenant, input.sessionKey), action);
    const request = this.request(action, input, history, 1);
    return {
      kind: 'http',
      method: 'POST',
      url: this.endpoint,
      headers: maskHeaders(this.headers),
      body: request.body,
    };
  }

  destination(action: Action): string {
    const model = action.payload['model'];
    return typeof model === 'string' && model !== '' ? model : this.model;
  }

  close(): Promise<void> {
    return this.pool.close();
  }

  private async run(action: Action, ctx: ExecuteContext): Promise<ProviderResponse> {
    if (this.blocked !== undefined) throw this.blocked;
    const input = parsePayload(action);
    const now = this.clock.now();
    const sessionKey = input.sessionKey;
    const stateKey =
      sessionKey === undefined ? undefined : sessionStateKey(this.name, action.tenant, sessionKey);
    const history = stateKey === undefined ? [] : await this.history(stateKey, action);
    const request = this.request(action, input, history, ctx.attempt);

    let answer: CachedAnswer | undefined;
    let hash: string | undefined;
    if (this.cache !== undefined) {
      hash = cacheKey({
        endpoint: this.endpoint,
        model: request.model,
        messages: request.messages,
        parameters: request.parameters,
      });
      // The cache only saves calls: a store that cannot answer makes it a miss, not a failure.
      answer = await this.cache.get(hash).catch((err: unknown) => {
        this.logger.warn({ err, actionId: action.id }, 'llm cache not read');
        return undefined;
      });
      this.count(answer === undefined ? 'llm_cache_misses' : 'llm_cache_hits', this.name);
    }
    const cached = answer !== undefined;
    if (answer === undefined) {
      // A cache hit spends no tokens, so only a real call is checked against the budgets.
      const windows = this.budgets.empty
        ? []
        : await this.budgets.check(templateView(action, ctx.attempt), now);
      answer = await this.call(request, ctx.signal);
      const tokens = totalTokens(answer.usage);
      if (tokens > 0) {
        this.count('llm_tokens', this.name, tokens);
        if (windows.length > 0) {
          await this.budgets.charge(windows, tokens).catch((err: unknown) => {
            this.logger.error({ err, actionId: action.id, tokens }, 'llm budget not charged');
          });
        }
      }
      if (this.cache !== undefined && hash !== undefined) {
        await this.cache.set(hash, answer).catch((err: unknown) => {
          this.logger.warn({ err, actionId: action.id }, 'llm answer not cached');
        });
      }
    }
    if (stateKey !== undefined) {
      // The turn is recorded whether the answer came from the API or the cache. A failure here
      // fails the action (transient): a retry then sees the history without this turn.
      await appendSession(
        this.state,
        this.clock,
        stateKey,
        [...request.turn, { role: 'assistant', content: answer.content }],
        this.maxMessages,
        this.sessionTtlMs,
      );
    }
    const body: Record<string, unknown> = {
      content: answer.content,
      model: answer.model,
      usage: answer.usage,
      finishReason: answer.finishReason,
      cached,
    };
    if (sessionKey !== undefined) body['sessionKey'] = sessionKey;
    return { status: answer.status, body };
  }

  private async history(stateKey: string, action: Action): Promise<ChatMessage[]> {
    const { history, corrupt } = await readSession(this.state, stateKey, this.clock.now());
    if (corrupt) {
      this.logger.warn({ actionId: action.id }, 'llm session history unreadable; starting anew');
    }
    return history;
  }

  private request(
    action: Action,
    input: LlmPayload,
    history: readonly ChatMessage[],
    attempt: number,
  ): ChatRequest {
    const turn: ChatMessage[] = [...((input.messages ?? []) as ChatMessage[])];
    if (input.prompt !== undefined) turn.push({ role: 'user', content: input.prompt });
    const messages: ChatMessage[] = [];
    if (this.systemPrompt !== undefined) {
      const render = this.systemPrompt;
      const view = templateView(action, attempt);
      const system = renderOrThrow(() => render(view), `providers.${this.name}.systemPrompt`);
      if (system !== '') messages.push({ role: 'system', content: system });
    }
    messages.push(...history, ...turn);
    const model = input.model ?? this.model;
    const parameters = { ...this.parameters, ...(input.parameters ?? {}) };
    return { model, messages, turn, parameters, body: { ...parameters, model, messages } };
  }

  private async call(request: ChatRequest, signal: AbortSignal): Promise<CachedAnswer> {
    let res;
    try {
      res = await this.pool.request({
        path: this.path,
        method: 'POST',
        headers: this.headers,
        body: JSON.stringify(request.body),
        signal,
      });
    } catch (err) {
      throw requestError(this.name, err, signal);
    }
    let raw;
    try {
      raw = await readCapped(res.body, this.maxResponseSize);
    } catch (err) {
      throw requestError(this.name, err, signal);
    }
    const status = res.statusCode;
    const parsed = parseBody(raw);
    const response: ProviderResponse = { status };
    if (parsed !== undefined) response.body = parsed;
    if (raw.truncated) response.truncated = true;
    if (status < 200 || status >= 300) {
      throw statusError(this.name, status, response, retryAfterMs(res.headers, this.clock.now()));
    }
    if (raw.truncated) {
      throw new ProviderError(
        'SY_ERR_PROVIDER_FAILED',
        `provider "${this.name}" answered more than maxResponseSize (${this.maxResponseSize} bytes)`,
        { transient: false, response },
      );
    }
    const choice = firstChoice(parsed);
    if (choice === undefined) {
      throw new ProviderError(
        'SY_ERR_PROVIDER_FAILED',
        `provider "${this.name}" answered HTTP ${status} without a chat completion (no choices[0].message)`,
        { transient: false, response },
      );
    }
    const completion = parsed as { model?: unknown; usage?: unknown };
    return {
      status,
      content: choice.message.content ?? null,
      model: completion.model ?? request.model,
      usage: completion.usage ?? null,
      finishReason: choice.finish_reason ?? null,
    };
  }

  /** Every failure leaves as a ProviderError (or the budget's ProviderThrottledError). */
  private failure(err: unknown): Error {
    if (err instanceof ProviderError || err instanceof ProviderThrottledError) return err;
    if (err instanceof SyError) {
      // A state store that did not answer may answer next time; a bad payload or template not.
      const transient = err.code === 'SY_ERR_STATE_UNAVAILABLE';
      return new ProviderError(err.code, err.message, { transient, cause: err });
    }
    return new ProviderError(
      'SY_ERR_PROVIDER_FAILED',
      `provider "${this.name}" failed: ${err instanceof Error ? err.message : String(err)}`,
      { transient: false, cause: err },
    );
  }
}

function budgetRule(
  config: NonNullable<LlmProviderConfig['budgets']>[number],
  where: string,
): BudgetRule {
  const limits: BudgetLimit[] = [];
  if (config.tokensPerMinute !== undefined) {
    limits.push({
      budget: 'tokensPerMinute',
      limit: config.tokensPerMinute,
      windowMs: MINUTE_MS,
      tag: 'm',
    });
  }
  if (config.tokensPerDay !== undefined) {
    limits.push({ budget: 'tokensPerDay', limit: config.tokensPerDay, windowMs: DAY_MS, tag: 'd' });
  }
  if (limits.length === 0) {
    throw new SyError(
      'SY_ERR_CONFIG_INVALID',
      `${where} needs tokensPerMinute or tokensPerDay (or both)`,
      { field: where },
    );
  }
  return { key: compileText(config.key, `${where}.key`), where: `${where}.key`, limits };
}

/** Validates an action's payload; throws SY_ERR_VALIDATION naming the field. */
function parsePayload(action: Action): LlmPayload {
  const input = payloadCheck.assert(action.payload, 'payload');
  if ((input.messages === undefined || input.messages.length === 0) && input.prompt === undefined) {
    throw new SyError(
      'SY_ERR_VALIDATION',
      'payload.messages (not empty) or payload.prompt is required',
      {
        field: 'payload.messages',
      },
    );
  }
  const reserved = RESERVED_PARAMETERS.find((k) => Object.hasOwn(input.parameters ?? {}, k));
  if (reserved !== undefined) {
    throw new SyError(
      'SY_ERR_VALIDATION',
      `payload.parameters.${reserved} is not allowed${reserved === 'model' ? ' (use payload.model)' : ''}`,
      { field: `payload.parameters.${reserved}` },
    );
  }
  return input;
}

function firstChoice(
  body: unknown,
): { message: { content?: unknown }; finish_reason?: unknown } | undefined {
  if (body === null || typeof body !== 'object') return undefined;
  const choices = (body as { choices?: unknown }).choices;
  if (!Array.isArray(choices)) return undefined;
  const first: unknown = choices[0];
  if (first === null || typeof first !== 'object') return undefined;
  const message = (first as { message?: unknown }).message;
  if (message === null || typeof message !== 'object') return undefined;
  return first as { message: { content?: unknown }; finish_reason?: unknown };
}

function totalTokens(usage: unknown): number {
  if (usage === null || typeof usage !== 'object') return 0;
  const total = (usage as { total_tokens?: unknown }).total_tokens;
  return typeof total === 'number' && Number.isFinite(total) && total > 0 ? total : 0;
}

export const llmProviderType: ProviderType<LlmProviderConfig> = {
  type: 'llm',
  description:
    'Calls an OpenAI-compatible chat-completions API, with sessions, a response cache and token budgets.',
  configSchema: LlmProviderConfigSchema,
  create: (name, config, ctx) => new LlmProvider(name, config, ctx),
};
