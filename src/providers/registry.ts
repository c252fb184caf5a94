import { SyError } from '../core/errors.js';
import { splitPolicy } from '../executor/policy.js';
import type { Provider, ProviderFactoryContext, ProviderType } from './provider.js';
import { logProviderType, LogProvider } from './log/provider.js';
import { noopProviderType, NoopProvider } from './noop/provider.js';
import { webhookProviderType } from './webhook/provider.js';
import { slackProviderType } from './slack/provider.js';
import { emailProviderType } from './email/provider.js';
import { llmProviderType } from './llm/provider.js';

/** The provider types Switchyard ships; a library user may add more via `providerTypes`. */
export const BUILTIN_PROVIDER_TYPES: readonly ProviderType<never>[] = [
  logProviderType,
  noopProviderType,
  webhookProviderType,
  slackProviderType,
  emailProviderType,
  llmProviderType,
];

export function providerTypeMap(
  extra: readonly ProviderType<never>[] = [],
): Map<string, ProviderType<never>> {
  const map = new Map<string, ProviderType<never>>();
  for (const t of [...BUILTIN_PROVIDER_TYPES, ...extra]) map.set(t.type, t);
  return map;
}

/**
 * The named providers of one gateway. `log` and `noop` always exist (the quickstart needs no
 * provider config); a config entry of the same name replaces them.
 */
export class ProviderRegistry {
  private readonly byName = new Map<string, Provider>();

  constructor() {
    this.byName.set('log', new LogProvider('log', {}));
    this.byName.set('noop', new NoopProvider('noop'));
  }

  static fromConfig(
    configs: Record<string, { type: string }>,
    types: Map<string, ProviderType<never>>,
    ctx: ProviderFactoryContext,
    instances: Record<string, Provider> = {},
  ): ProviderRegistry {
    const registry = new ProviderRegistry();
    for (const [name, config] of Object.entries(configs)) {
      // An instance passed in code replaces the config entry: do not build (and leak) both.
      if (Object.hasOwn(instances, name)) continue;
      const type = types.get(config.type);
      if (type === undefined) {
        // The config loader already rejects unknown types; this guards library callers.
        throw new SyError(
          'SY_ERR_CONFIG_INVALID',
          `providers.${name}.type "${config.type}" is not a known provider type`,
        );
      }
      // The executor's policy keys are not the provider's business.
      const { own } = splitPolicy(config);
      registry.byName.set(
        name,
        type.create(name, own as never, { ...ctx, logger: ctx.logger.child({ provider: name }) }),
      );
    }
    for (const [name, provider] of Object.entries(instances)) registry.byName.set(name, provider);
    return registry;
  }

  get(name: string): Provider | undefined {
    return this.byName.get(name);
  }

  names(): string[] {
    return [...this.byName.keys()].sort();
  }

  async closeAll(): Promise<void> {
    const results = await Promise.allSettled([...this.byName.values()].map((p) => p.close?.()));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }
}
