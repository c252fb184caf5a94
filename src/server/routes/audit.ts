import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { SyError } from '../../core/errors.js';
import { newId } from '../../core/ids.js';
import type { Gateway } from '../../gateway/gateway.js';
import type { AuditRecord } from '../../audit/record.js';
import type { AuditQuery, AuditStore } from '../../audit/store.js';
import { verifyChains } from '../../audit/verify.js';
import { errorResponses } from '../schemas.js';

const iso = (ms: number | undefined): string | null =>
  ms === undefined ? null : new Date(ms).toISOString();

/** A record as the API shows it: times as RFC 3339, absent values as null. */
export function auditView(r: AuditRecord): Record<string, unknown> {
  return {
    id: r.id,
    kind: r.kind,
    actionId: r.actionId,
    namespace: r.namespace,
    tenant: r.tenant,
    provider: r.provider,
    originalProvider: r.originalProvider,
    destination: r.destination ?? null,
    actionType: r.actionType,
    labels: r.labels,
    outcome: r.outcome,
    rules: r.rules,
    reason: r.reason ?? null,
    attempt: r.attempt ?? null,
    status: r.status ?? null,
    errorCode: r.errorCode ?? null,
    dedupKey: r.dedupKey ?? null,
    receivedAt: iso(r.receivedAt),
    decidedAt: iso(r.decidedAt),
    executedAt: iso(r.executedAt),
    durationMs: r.durationMs,
    nodeId: r.nodeId,
    traceId: r.traceId ?? null,
    payload: r.payload ?? null,
    payloadHash: r.payloadHash,
    chainSeq: r.chainSeq ?? null,
    prevHash: r.prevHash ?? null,
    hash: r.hash ?? null,
  };
}

const Loose = Type.Record(Type.String(), Type.Unknown());
const ERASE_FIELD =
  '^(actionId|tenant|namespace|dedupKey|labels\\.[A-Za-z0-9_.:-]{1,128}|payload\\.[A-Za-z0-9_-]{1,128})$';

function time(value: string | undefined, field: string): number | undefined {
  if (value === undefined) return undefined;
  const t = Date.parse(value);
  if (Number.isNaN(t)) {
    throw new SyError(
      'SY_ERR_VALIDATION',
      `${field} must be an RFC 3339 time, e.g. 2026-12-01T00:00:00Z`,
      {
        field,
      },
    );
  }
  return t;
}

/** The audit trail API: query, one action's history, chain verification, erasure. */
export function auditRoutes(app: FastifyInstance, gateway: Gateway): void {
  const store = (): AuditStore => {
    if (gateway.auditStore === undefined) {
      throw new SyError(
        'SY_ERR_AUDIT_DISABLED',
        'the audit trail is off on this server (audit.backend is none)',
      );
    }
    return gateway.auditStore;
  };

  app.get(
    '/v1/audit',
    {
      schema: {
        summary: 'Audit records, newest first, with filters and a stable cursor',
        tags: ['audit'],
        querystring: Type.Object(
          {
            tenant: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
            namespace: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
            provider: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
            actionType: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
            outcome: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
            kind: Type.Optional(Type.Enum(['decision', 'attempt', 'replay', 'erasure'])),
            rule: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
            label: Type.Optional(
              Type.String({ pattern: '^[^=]{1,128}=.{0,1024}$', description: 'key=value' }),
            ),
            from: Type.Optional(Type.String({ description: 'RFC 3339; decidedAt >= from' })),
            to: Type.Optional(Type.String({ description: 'RFC 3339; decidedAt < to' })),
            q: Type.Optional(
              Type.String({ minLength: 1, maxLength: 256, description: 'in actionId or dedupKey' }),
            ),
            order: Type.Optional(Type.Enum(['asc', 'desc'])),
            limit: Type.Optional(Type.String({ pattern: '^[0-9]+$' })),
            cursor: Type.Optional(Type.String({ maxLength: 1024 })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            items: Type.Array(Loose),
            nextCursor: Type.Union([Type.String(), Type.Null()]),
          }),
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const q = request.query as Record<string, string | undefined>;
      const label = q.label === undefined ? undefined : q.label.split('=');
      const query: AuditQuery = {
        tenant: q.tenant,
        namespace: q.namespace,
        provider: q.provider,
        actionType: q.actionType,
        outcome: q.outcome,
        kind: q.kind as AuditQuery['kind'],
        rule: q.rule,
        label:
          label === undefined
            ? undefined
            : { key: label[0] as string, value: label.slice(1).join('=') },
        from: time(q.from, 'from'),
        to: time(q.to, 'to'),
        text: q.q,
        order: q.order as AuditQuery['order'],
        limit: Math.min(Math.max(Number(q.limit ?? 50), 1), 1000),
        cursor: q.cursor,
      };
      const page = await store().query(query);
      return { items: page.items.map(auditView), nextCursor: page.nextCursor };
    },
  );

  app.get(
    '/v1/audit/verify',
    {
      schema: {
        summary:
          "Check every tenant's hash chain (strict mode); names each edited, deleted or reordered record",
        tags: ['audit'],
        querystring: Type.Object(
          { tenant: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })) },
          { additionalProperties: false },
        ),
        response: { 200: Loose, ...errorResponses },
      },
    },
    async (request) => {
      const { tenant } = request.query as { tenant?: string };
      return verifyChains(store(), tenant === undefined ? {} : { tenant });
    },
  );

  app.get(
    '/v1/audit/:actionId',
    {
      schema: {
        summary: "One action's history: its decisions, every attempt, replays; oldest first",
        tags: ['audit'],
        params: Type.Object({ actionId: Type.String({ minLength: 1, maxLength: 256 }) }),
        querystring: Type.Object(
          {
            namespace: Type.Optional(Type.String({ minLength: 1 })),
            tenant: Type.Optional(Type.String({ minLength: 1 })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ actionId: Type.String(), items: Type.Array(Loose) }),
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const { actionId } = request.params as { actionId: string };
      const { namespace, tenant } = request.query as { namespace?: string; tenant?: string };
      if ((namespace === undefined) !== (tenant === undefined)) {
        throw new SyError('SY_ERR_VALIDATION', 'give both namespace and tenant, or neither', {
          field: namespace === undefined ? 'namespace' : 'tenant',
        });
      }
      const items = await store().history(
        actionId,
        namespace === undefined ? undefined : { namespace, tenant: tenant as string },
      );
      if (items.length === 0) {
        throw new SyError('SY_ERR_NOT_FOUND', `no audit record has action id "${actionId}"`, {
          actionId,
        });
      }
      return { actionId, items: items.map(auditView) };
    },
  );

  app.post(
    '/v1/audit/erase',
    {
      schema: {
        summary:
          'Erase the payloads of matching records (privacy requests); the erasure is recorded',
        tags: ['audit'],
        body: Type.Object(
          {
            field: Type.String({ pattern: ERASE_FIELD }),
            value: Type.String({ minLength: 1, maxLength: 1024 }),
            reason: Type.Optional(Type.String({ maxLength: 1024 })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ erased: Type.Integer(), recordId: Type.String() }),
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const { field, value, reason } = request.body as {
        field: string;
        value: string;
        reason?: string;
      };
      const s = store();
      const erased = await s.erasePayloads(field, value);
      const now = Date.now();
      // The erasure itself is part of the trail (in the chain of the tenant it names, if any).
      const record: AuditRecord = {
        id: newId(),
        kind: 'erasure',
        actionId: field === 'actionId' ? value : '',
        namespace: field === 'namespace' ? value : '',
        tenant: field === 'tenant' ? value : '',
        provider: '',
        originalProvider: '',
        destination: undefined,
        actionType: '',
        labels: {},
        outcome: 'erased',
        rules: [],
        reason: `${field}=${value}: ${erased} payloads erased${reason === undefined ? '' : ` (${reason})`}`,
        attempt: undefined,
        status: undefined,
        errorCode: undefined,
        dedupKey: undefined,
        receivedAt: now,
        decidedAt: now,
        executedAt: undefined,
        durationMs: 0,
        nodeId: gateway.nodeId,
        traceId: undefined,
        payload: undefined,
        payloadHash: '',
        chainSeq: undefined,
        prevHash: undefined,
        hash: undefined,
      };
      await s.append([record], { chain: gateway.config.audit.mode === 'strict' });
      return { erased, recordId: record.id };
    },
  );
}
