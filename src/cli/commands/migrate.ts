import { loadConfigFile, resolveConfig } from '../../config/load.js';
import { createStateStore } from '../../state/create.js';
import { EXIT_OK } from '../output.js';
import { configPath } from '../config-path.js';

/** `switchyard migrate`: create or upgrade the state store's schema (sqlite, postgres). */
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
  try {
    const applied = store.migrate === undefined ? [] : await store.migrate();
    const backend = config.state.backend;
    if (flags.json) {
      process.stdout.write(JSON.stringify({ backend, applied }) + '\n');
    } else if (store.migrate === undefined) {
      process.stdout.write(`${backend}: no schema to migrate\n`);
    } else if (applied.length === 0) {
      process.stdout.write(`${backend}: schema is up to date\n`);
    } else {
      for (const m of applied) process.stdout.write(`${backend}: applied ${m}\n`);
    }
    return EXIT_OK;
  } finally {
    await store.close();
  }
}
