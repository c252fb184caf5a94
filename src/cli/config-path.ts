import { existsSync } from 'node:fs';

/** Which config file `serve` and `migrate` use: --config, SWITCHYARD_CONFIG, ./switchyard.yaml. */
export function configPath(flag: unknown): string | undefined {
  if (typeof flag === 'string' && flag !== '') return flag;
  const env = process.env.SWITCHYARD_CONFIG;
  if (env !== undefined && env !== '') return env;
  return existsSync('switchyard.yaml') ? 'switchyard.yaml' : undefined;
}
