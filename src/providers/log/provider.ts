import { createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { Type, type Static } from 'typebox';
import type { Action } from '../../core/action.js';
import type { ProviderResponse } from '../../core/outcome.js';
import type { Provider, ProviderType } from '../provider.js';

export const LogProviderConfigSchema = Type.Object(
  {
    type: Type.Literal('log'),
    path: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'Append JSON lines to this file instead of standard output.',
      }),
    ),
  },
  { additionalProperties: false },
);
export type LogProviderConfig = Static<typeof LogProviderConfigSchema>;

interface LineSink {
  write(line: string): unknown;
}

const RESPONSE: ProviderResponse = {};

/**
 * Writes each action as one JSON line: the simplest useful destination (a tail -f of what the
 * gateway would have sent) and the default provider of the quickstart.
 */
export class LogProvider implements Provider {
  readonly type = 'log';
  readonly inline = true;
  private readonly sink: LineSink;
  private readonly file: WriteStream | undefined;

  constructor(
    readonly name: string,
    config: { path?: string | undefined },
    sink?: LineSink,
  ) {
    if (sink !== undefined) {
      this.sink = sink;
    } else if (config.path !== undefined) {
      this.file = createWriteStream(config.path, { flags: 'a' });
      this.sink = this.file;
    } else {
      this.sink = process.stdout;
    }
  }

  execute(action: Action): Promise<ProviderResponse> {
    this.sink.write(
      JSON.stringify({
        time: new Date(action.receivedAt).toISOString(),
        provider: this.name,
        actionId: action.id,
        namespace: action.namespace,
        tenant: action.tenant,
        actionType: action.actionType,
        labels: action.labels,
        payload: action.payload,
      }) + '\n',
    );
    return Promise.resolve(RESPONSE);
  }

  async close(): Promise<void> {
    if (this.file === undefined) return;
    this.file.end();
    await once(this.file, 'close');
  }
}

export const logProviderType: ProviderType<LogProviderConfig> = {
  type: 'log',
  description: 'Writes each action as a JSON line to standard output or a file.',
  configSchema: LogProviderConfigSchema,
  create: (name, config) => new LogProvider(name, config),
};
