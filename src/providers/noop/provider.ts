import { Type } from 'typebox';
import type { ProviderResponse } from '../../core/outcome.js';
import type { Provider, ProviderType } from '../provider.js';

const RESPONSE: ProviderResponse = {};
const DONE: Promise<ProviderResponse> = Promise.resolve(RESPONSE);

/** Does nothing and succeeds at once: for benchmarks and for measuring pipeline overhead. */
export class NoopProvider implements Provider {
  readonly type = 'noop';
  readonly inline = true;
  constructor(readonly name: string) {}

  execute(): Promise<ProviderResponse> {
    return DONE;
  }
}

export const noopProviderType: ProviderType = {
  type: 'noop',
  description: 'Accepts every action and does nothing (benchmarks, dry runs).',
  configSchema: Type.Object({ type: Type.Literal('noop') }, { additionalProperties: false }),
  create: (name) => new NoopProvider(name),
};
