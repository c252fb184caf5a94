import { SwitchyardClient } from '../client/client.js';
import { usage } from './output.js';

function flagValue(flags: Record<string, unknown>, key: string, flag: string): string | undefined {
  const v = flags[key];
  if (v === undefined) return undefined;
  if (v === true || v === '' || Array.isArray(v)) usage(`${flag} needs exactly one value`);
  return String(v);
}

/**
 * The client for a command that talks to a server: `--url` (else SWITCHYARD_URL, else
 * http://127.0.0.1:8080) and `--api-key` (else SWITCHYARD_API_KEY).
 */
export function clientFrom(flags: Record<string, unknown>): SwitchyardClient {
  return new SwitchyardClient({
    url: flagValue(flags, 'url', '--url') ?? (process.env.SWITCHYARD_URL || undefined),
    apiKey:
      flagValue(flags, 'apiKey', '--api-key') ?? (process.env.SWITCHYARD_API_KEY || undefined),
  });
}
