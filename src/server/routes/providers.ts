import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { SyError } from '../../core/errors.js';
import { OutcomeSchema } from '../../core/outcome.js';
import type { Gateway } from '../../gateway/gateway.js';
import type { DeadLetter, DeadLetterFilter, ProviderStatus } from '../../executor/executor.js';
import { errorResponses } from '../schemas.js';

const viaGateway = () => () => true;
const iso = (ms: number | undefined): string | null =>
  ms === undefined ? null : new Date(ms).toISOString();

/** A provider's live state and policy, as GET /v1/providers shows it. */
export function providerView(p: ProviderStatus): Record<string, unknown> {
  const { policy } = p;
  return {
    name: p.name,
    type: p.type,
    circuit:
      p.circuit === undefined
        ? null
        : {
            state: p.circuit.state,
            consecutiveFailures: p.circuit.consecutiveFailures,
            openedAt: iso(p.circuit.openedAt),
            probeAt: iso(p.circuit.probeAt),
          },
    concurrency: p.concurrency,
    pauses: p.pauses.map((x) => ({ key: x.key, until: iso(x.until) })),
    timeoutMs: policy.timeoutMs,
    actionTimeoutMs: policy.actionTimeoutMs ?? null,
    retry: policy.retry,
    fallback: policy.fallback,
    rateLimit: policy.rateLimit ?? null,
    dlq: policy.dlq,
  };
}

/** A dead-letter entry as the API shows it (times as RFC 3339). */
export function deadLetterView(e: DeadLetter, full: boolean): Record<string, unknown> {
  const a = e.job.action;
  const view: Record<string, unknown> = {
    id: e.id,
    reason: e.reason,
    failedAt: iso(e.failedAt),
    provider: e.provider,
    error: e.error,
    attempts: e.job.attempts,
    replays: e.job.replays,
    action: {
      id: a.id,
      namespace: a.namespace,
      tenant: a.tenant,
      provider: a.provider,
      actionType: a.actionType,
      labels: a.labels,
      receivedAt: iso(a.receivedAt),
      ...(full ? { payload: a.payload, dedupKey: a.dedupKey, fingerprint: a.fingerprint } : {}),
    },
  };
  if (full) view.errors = e.job.errors;
  return view;
}

const Filter = {
  provider: Type.Optional(Type.String({ minLength: 1 })),
  tenant: Type.Optional(Type.String({ minLength: 1 })),
  namespace: Type.Optional(Type.String({ minLength: 1 })),
  actionType: Type.Optional(Type.String({ minLength: 1 })),
  reason: Type.Optional(Type.Enum(['exhausted', 'terminal', 'timeout'])),
};

function filterOf(q: Record<string, unknown>): DeadLetterFilter {
  return {
    provider: q.provider as string | undefined,
    tenant: q.tenant as string | undefined,
    namespace: q.namespace as string | undefined,
    actionType: q.actionType as string | undefined,
    reason: q.reason as string | undefined,
  };
}

const Loose = Type.Record(Type.String(), Type.Unknown());
const notFound = {
  404: { ...errorResponses[400], description: 'Unknown provider or dead letter' },
};

/** Providers (state, breaker reset, preview) and the dead-letter queue. */
export function providerRoutes(app: FastifyInstance, gateway: Gateway): void {
  const provider = (name: string): void => {
    if (gateway.providers.get(name) === undefined) {
      throw new SyError(
        'SY_ERR_PROVIDER_NOT_FOUND',
        `provider "${name}" is not configured (configured: ${gateway.providers.names().join(', ')})`,
        { provider: name },
      );
    }
  };

  app.get(
    '/v1/providers',
    {
      schema: {
        summary: 'Providers with their circuit breaker, concurrency, pauses and policy',
        tags: ['providers'],
        response: {
          200: Type.Object({ items: Type.Array(Loose), nextCursor: Type.Null() }),
        },
      },
    },
    () => ({ items: gateway.executor.status().map(providerView), nextCursor: null }),
  );

  app.get(
    '/v1/providers/:name',
    {
      schema: {
        summary: 'One provider with its circuit breaker, concurrency, pauses and policy',
        tags: ['providers'],
        params: Type.Object({ name: Type.String() }),
        response: { 200: Loose, ...notFound },
      },
    },
    (request) => {
      const { name } = request.params as { name: string };
      provider(name);
      return providerView(gateway.executor.status().find((p) => p.name === name) as ProviderStatus);
    },
  );

  app.post(
    '/v1/providers/:name/circuit/reset',
    {
      schema: {
        summary: "Close a provider's circuit breaker on this node and forget its pauses",
        tags: ['providers'],
        params: Type.Object({ name: Type.String() }),
        response: { 200: Loose, ...notFound },
      },
    },
    (request) => {
      const { name } = request.params as { name: string };
      provider(name);
      gateway.executor.resetCircuit(name);
      return providerView(gateway.executor.status().find((p) => p.name === name) as ProviderStatus);
    },
  );

  app.post(
    '/v1/providers/:name/preview',
    {
      schema: {
        summary: 'Render exactly what the provider would send for an action, without sending it',
        description:
          'The body is an action; `provider` may be omitted. Rule transforms (modify, label) apply; secrets are masked.',
        tags: ['providers'],
        params: Type.Object({ name: Type.String() }),
        body: Loose,
        response: { 200: Loose, ...notFound, ...errorResponses },
      },
      validatorCompiler: viaGateway,
    },
    async (request) => {
      const { name } = request.params as { name: string };
      provider(name);
      const result = await gateway.preview(name, request.body);
      return { ...result, action: { ...result.action, receivedAt: iso(result.action.receivedAt) } };
    },
  );

  app.get(
    '/v1/dlq',
    {
      schema: {
        summary: 'Dead letters, oldest first, with filters',
        tags: ['dlq'],
        querystring: Type.Object({
          ...Filter,
          limit: Type.Optional(Type.String({ pattern: '^[0-9]+$' })),
          cursor: Type.Optional(Type.String({ maxLength: 1024 })),
        }),
        response: {
          200: Type.Object({
            items: Type.Array(Loose),
            nextCursor: Type.Union([Type.String(), Type.Null()]),
            total: Type.Integer({ description: 'Entries in the whole queue, unfiltered.' }),
          }),
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const q = request.query as Record<string, string | undefined>;
      const limit = Math.min(Math.max(Number(q.limit ?? 50), 1), 1000);
      const page = await gateway.executor.listDeadLetters(filterOf(q), limit, q.cursor);
      return {
        items: page.items.map((e) => deadLetterView(e, false)),
        nextCursor: page.nextCursor,
        total: await gateway.executor.countDeadLetters(),
      };
    },
  );

  app.get(
    '/v1/dlq/:id',
    {
      schema: {
        summary: 'One dead letter with its action and every attempt error',
        tags: ['dlq'],
        params: Type.Object({ id: Type.String() }),
        response: { 200: Loose, ...notFound },
      },
    },
    async (request) => {
      const { id } = request.params as { id: string };
      return deadLetterView(await gateway.executor.getDeadLetter(id), true);
    },
  );

  app.post(
    '/v1/dlq/:id/replay',
    {
      schema: {
        summary: 'Replay one dead letter now; answers its new outcome',
        tags: ['dlq'],
        params: Type.Object({ id: Type.String() }),
        response: { 200: OutcomeSchema, ...notFound, ...errorResponses },
      },
    },
    async (request) => {
      const { id } = request.params as { id: string };
      return gateway.executor.replayDeadLetter(id);
    },
  );

  app.post(
    '/v1/dlq/replay',
    {
      schema: {
        summary: 'Replay every dead letter matching a filter (through the retry queue)',
        tags: ['dlq'],
        body: Type.Object(Filter, { additionalProperties: false }),
        response: { 200: Type.Object({ replayed: Type.Integer() }), ...errorResponses },
      },
    },
    async (request) => ({
      replayed: await gateway.executor.replayDeadLetters(
        filterOf(request.body as object as Record<string, unknown>),
      ),
    }),
  );

  app.delete(
    '/v1/dlq/:id',
    {
      schema: {
        summary: 'Discard one dead letter',
        tags: ['dlq'],
        params: Type.Object({ id: Type.String() }),
        response: { 200: Type.Object({ discarded: Type.Integer() }), ...notFound },
      },
    },
    async (request) => {
      const { id } = request.params as { id: string };
      await gateway.executor.discardDeadLetter(id);
      return { discarded: 1 };
    },
  );

  app.post(
    '/v1/dlq/discard',
    {
      schema: {
        summary: 'Discard every dead letter matching a filter (`all: true` for the whole queue)',
        tags: ['dlq'],
        body: Type.Object(
          { ...Filter, all: Type.Optional(Type.Boolean()) },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ discarded: Type.Integer() }), ...errorResponses },
      },
    },
    async (request) => {
      const body = request.body as Record<string, unknown>;
      const filter = filterOf(body);
      if (body.all !== true && Object.values(filter).every((v) => v === undefined)) {
        throw new SyError(
          'SY_ERR_VALIDATION',
          'give a filter (provider, tenant, namespace, actionType, reason) or all: true to discard the whole queue',
          { field: 'all' },
        );
      }
      return { discarded: await gateway.executor.discardDeadLetters(filter) };
    },
  );
}
