import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { ActionInputSchema } from '../../core/action.js';
import type { Gateway } from '../../gateway/gateway.js';
import type { CompiledRule } from '../../rules/load.js';
import { errorResponses } from '../schemas.js';

const viaGateway = () => () => true;

function summary(gateway: Gateway, rule: CompiledRule): Record<string, unknown> {
  return {
    name: rule.name,
    description: rule.description,
    priority: rule.priority,
    enabled: gateway.rules.isEnabled(rule),
    final: rule.final,
    timezone: rule.timeZone ?? null,
    source: rule.source ?? null,
    effects: rule.effects.map((e) => e.kind),
    definition: rule.definition,
  };
}

const RuleSummary = Type.Object({
  name: Type.String(),
  description: Type.String(),
  priority: Type.Integer(),
  enabled: Type.Boolean(),
  final: Type.Boolean(),
  timezone: Type.Union([Type.String(), Type.Null()]),
  source: Type.Union([Type.String({ description: 'file:line:col' }), Type.Null()]),
  effects: Type.Array(Type.String()),
  definition: Type.Record(Type.String(), Type.Unknown(), { description: 'The rule as written.' }),
});

/**
 * The rules API: list (with the status of the last reload), toggle, reload, and the dry run —
 * what the rules would do with an action, why, and the outcome, with no side effects.
 */
export function rulesRoutes(app: FastifyInstance, gateway: Gateway): void {
  app.get(
    '/v1/rules',
    {
      schema: {
        summary: 'Loaded rules in evaluation order, and the status of the last (re)load',
        tags: ['rules'],
        querystring: Type.Object({
          limit: Type.Optional(Type.String({ pattern: '^[0-9]+$' })),
          cursor: Type.Optional(Type.String({ pattern: '^[0-9]+$' })),
        }),
        response: {
          200: Type.Object({
            items: Type.Array(RuleSummary),
            nextCursor: Type.Union([Type.String(), Type.Null()]),
            status: Type.Record(Type.String(), Type.Unknown()),
          }),
        },
      },
    },
    (request) => {
      const q = request.query as { limit?: string; cursor?: string };
      const limit = Math.min(Math.max(Number(q.limit ?? 50), 1), 1000);
      const start = Number(q.cursor ?? 0);
      const all = gateway.rules.allRules;
      const items = all.slice(start, start + limit).map((r) => summary(gateway, r));
      const next = start + limit < all.length ? String(start + limit) : null;
      return { items, nextCursor: next, status: gateway.rules.status() };
    },
  );

  app.put(
    '/v1/rules/:name/enabled',
    {
      schema: {
        summary: 'Enable or disable a rule at runtime (kept across reloads, not restarts)',
        tags: ['rules'],
        params: Type.Object({ name: Type.String() }),
        body: Type.Object({ enabled: Type.Boolean() }, { additionalProperties: false }),
        response: { 200: RuleSummary, 404: errorResponses[400] },
      },
    },
    (request) => {
      const { name } = request.params as { name: string };
      const { enabled } = request.body as { enabled: boolean };
      return summary(gateway, gateway.rules.setEnabled(name, enabled));
    },
  );

  app.post(
    '/v1/rules/reload',
    {
      schema: {
        summary: 'Reload rule files now; a broken file keeps the current rules (422)',
        tags: ['rules'],
        response: { 200: Type.Object({ reloaded: Type.Boolean(), count: Type.Integer() }) },
      },
    },
    () => {
      const result = gateway.rules.reload();
      if (!result.ok) throw result.error;
      return { reloaded: true, count: result.count };
    },
  );

  app.post(
    '/v1/rules/evaluate',
    {
      schema: {
        summary: 'Dry run: which rules match an action, why, and the outcome it would get',
        tags: ['rules'],
        body: ActionInputSchema,
        response: { 200: Type.Record(Type.String(), Type.Unknown()), ...errorResponses },
      },
      validatorCompiler: viaGateway,
    },
    async (request) => {
      const input = gateway.validate(request.body);
      return gateway.evaluate(input);
    },
  );
}
