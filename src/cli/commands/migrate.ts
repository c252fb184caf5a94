import { loadConfigFile, resolveConfig } from '../../config/load.js';
import { createStateStore } from '../../state/create.js';
import { createAuditStore } from '../../audit/create.js';
import { EXIT_OK } from '../output.js';
import { configPath } from '../config-path.js';

/** `switchyard migrate`: create or upgrade the state and audit stores' schemas (sqlite, postgres). */
export async function migrateCommand(flags: Record<string, unknown>): Promise<number> {
  const file = configPath(flags.config);
  const options = {
    env: process.env,
    defaultStateBackend: 'sqlite' as const,
    defaultAuditBackend: 'sqlite' as const,
  };
  const config = file === undefined ? resolveConfig({}, options) : loadConfigFile(file, options);
  const store = createStateStore(config.state, true) as ReturnType<typeof createStateStore> & {
    migrate?: () => string[] | Promise<string[]>;
  };
  const audit = createAuditStore(config.audit, true) as
    | (NonNullable<ReturnType<typeof createAuditStore>> & {
        migrate?: () => string[] | Promise<string[]>;
      })
    | undefined;
  try {
    const applied = store.migrate === undefined ? [] : await store.migrate();
    const auditApplied = audit?.migrate === undefined ? [] : await audit.migrate();
    const backend = config.state.backend;
    const lines = (name: string, has: boolean, done: string[]): string[] =>
      !has
        ? [`${name}: no schema to migrate`]
        : done.length === 0
          ? [`${name}: schema is up to date`]
          : done.map((m) => `${name}: applied ${m}`);
    if (flags.json) {
      process.stdout.write(
        JSON.stringify({
          backend,
          applied,
          audit: { backend: config.audit.backend, applied: auditApplied },
        }) + '\n',
      );
    } else {
      const out = [
        ...lines(backend, store.migrate !== undefined, applied),
        ...(audit === undefined
          ? []
          : lines(`audit ${config.audit.backend}`, audit.migrate !== undefined, auditApplied)),
      ];
      for (const line of out) process.stdout.write(line + '\n');
    }
    return EXIT_OK;
  } finally {
    await store.close();
    await audit?.close();
  }
}
