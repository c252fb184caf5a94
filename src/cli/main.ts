#!/usr/bin/env node
import { cac } from 'cac';
import { VERSION } from '../core/version.js';
import { fail, usage } from './output.js';

/*
 * The CLI entry point. It imports only cac and small helpers: each command loads what it needs
 * when it runs (`serve` pulls in fastify, `dispatch` the HTTP client), so `--version` and
 * `--help` cost little more than starting node.
 */
const cli = cac('switchyard');

/*
 * mri (cac's parser) reads a lone "-" as an option with an empty name and drops it, so
 * `dispatch -` would never see its stdin argument; it goes through the parser as this stand-in.
 */
const STDIN_ARG = '\u0000stdin';
const fromStdinArg = (arg: string): string => (arg === STDIN_ARG ? '-' : arg);

cli
  .command('serve', 'Run the gateway: HTTP API, metrics, docs')
  .option(
    '--config <file>',
    'Config file (default: ./switchyard.yaml when present, env SWITCHYARD_CONFIG)',
  )
  .option('--host <host>', 'Listen address (overrides server.host)')
  .option('--port <port>', 'Listen port (overrides server.port)')
  .option('--log-level <level>', 'Log level (overrides log.level)')
  .action(async (flags: Record<string, unknown>) => {
    const { serveCommand } = await import('./commands/serve.js');
    await serveCommand(flags);
  });

cli
  .command('dispatch [file]', 'Send an action to a running server (file, "-" for stdin, or flags)')
  .option('--provider <name>', 'Provider to run the action on')
  .option('--action-type <type>', 'Action type, e.g. send_email')
  .option('--namespace <ns>', 'Namespace')
  .option('--tenant <tenant>', 'Tenant')
  .option('--payload <json>', 'Payload as a JSON object')
  .option('--label <key=value>', 'Label (repeatable)')
  .option('--dedup-key <key>', 'Deduplication key')
  .option('--id <id>', 'Action id (default: assigned by the server)')
  .option('--url <url>', 'Server URL (env SWITCHYARD_URL)', { default: undefined })
  .option('--api-key <key>', 'API key (env SWITCHYARD_API_KEY)')
  .option('--json', 'Print the outcome as JSON')
  .example(
    'switchyard dispatch --provider log --action-type hello --namespace demo --tenant acme --payload \'{"to":"world"}\'',
  )
  .example(
    'echo \'{"namespace":"demo","tenant":"acme","provider":"log","actionType":"hello","payload":{}}\' | switchyard dispatch -',
  )
  .action(async (file: string | undefined, flags: Record<string, unknown>) => {
    const { dispatchCommand } = await import('./commands/dispatch.js');
    process.exitCode = await dispatchCommand(file === undefined ? file : fromStdinArg(file), flags);
  });

cli
  .command('rules lint <dir>', 'Check every rule file in a directory; report all errors')
  .option('--config <file>', "Also check reroute targets against this config's providers")
  .option('--json', 'Print { ok, files, rules, errors } as JSON')
  .example('switchyard rules lint examples/rules --config examples/with-rules.yaml')
  .action(async (dir: string, flags: Record<string, unknown>) => {
    const { rulesLintCommand } = await import('./commands/rules.js');
    process.exitCode = rulesLintCommand(dir, flags);
  });

cli
  .command('rules test <dir>', 'Run rule test cases (actions + expected outcomes) on a fake clock')
  .option('--cases <file>', 'YAML file of test cases (required)')
  .option('--config <file>', 'Config whose provider names the rules run with')
  .option('--json', 'Print the report as JSON')
  .example('switchyard rules test examples/rules --cases examples/rules.cases.yaml')
  .action(async (dir: string, flags: Record<string, unknown>) => {
    const { rulesTestCommand } = await import('./commands/rules.js');
    process.exitCode = await rulesTestCommand(dir, flags);
  });

/** --url, --api-key and --json: every command that talks to a server takes them. */
const serverOptions = <T extends ReturnType<typeof cli.command>>(command: T, json: string): T =>
  command
    .option('--url <url>', 'Server URL (env SWITCHYARD_URL, default http://127.0.0.1:8080)')
    .option('--api-key <key>', 'API key (env SWITCHYARD_API_KEY)')
    .option('--json', json);

serverOptions(
  cli.command('providers list', 'Providers with circuit state, concurrency and pauses'),
  'Print the providers as JSON',
)
  .example('switchyard providers list --url http://127.0.0.1:8080')
  .action(async (flags: Record<string, unknown>) => {
    const { providersListCommand } = await import('./commands/providers.js');
    process.exitCode = await providersListCommand(flags);
  });

serverOptions(
  cli.command('providers show <name>', "One provider's circuit, concurrency, pauses and policy"),
  'Print the provider as JSON',
)
  .example('switchyard providers show ops-hook')
  .action(async (name: string, flags: Record<string, unknown>) => {
    const { providersShowCommand } = await import('./commands/providers.js');
    process.exitCode = await providersShowCommand(name, flags);
  });

serverOptions(
  cli.command('providers reset <name>', "Close a provider's circuit breaker and clear its pauses"),
  'Print the provider after the reset as JSON',
)
  .example('switchyard providers reset ops-hook')
  .action(async (name: string, flags: Record<string, unknown>) => {
    const { providersResetCommand } = await import('./commands/providers.js');
    process.exitCode = await providersResetCommand(name, flags);
  });

serverOptions(
  cli
    .command(
      'providers preview <name> [file]',
      'What a provider would send for an action (file, "-" or flags); sends nothing',
    )
    .option('--action-type <type>', 'Action type, e.g. send_email')
    .option('--namespace <ns>', 'Namespace')
    .option('--tenant <tenant>', 'Tenant')
    .option('--payload <json>', 'Payload as a JSON object')
    .option('--label <key=value>', 'Label (repeatable)')
    .option('--dedup-key <key>', 'Deduplication key')
    .option('--id <id>', 'Action id'),
  'Print { provider, type, action, preview } as JSON',
)
  .example(
    'switchyard providers preview ops-hook --action-type page --namespace ops --tenant acme --payload \'{"text":"disk full"}\'',
  )
  .action(async (name: string, file: string | undefined, flags: Record<string, unknown>) => {
    const { providersPreviewCommand } = await import('./commands/providers.js');
    process.exitCode = await providersPreviewCommand(
      name,
      file === undefined ? file : fromStdinArg(file),
      flags,
    );
  });

/** The dead-letter filters: an entry matches when every given one is equal. */
const dlqFilters = <T extends ReturnType<typeof cli.command>>(command: T): T =>
  command
    .option('--provider <name>', 'Only entries of this provider (the last attempt or the action)')
    .option('--tenant <tenant>', 'Only this tenant')
    .option('--namespace <ns>', 'Only this namespace')
    .option('--action-type <type>', 'Only this action type')
    .option('--reason <reason>', 'Only this reason: exhausted, terminal or timeout');

serverOptions(
  dlqFilters(cli.command('dlq list', 'Dead letters, oldest first, with filters'))
    .option('--limit <n>', 'Entries per page, 1-1000 (default 50; 1000 with --all)')
    .option('--cursor <cursor>', 'Start after this cursor (printed when there are more)')
    .option('--all', 'Follow the cursor through every page'),
  'Print { items, nextCursor, total } as JSON',
)
  .example('switchyard dlq list --provider ops-hook --all')
  .action(async (flags: Record<string, unknown>) => {
    const { dlqListCommand } = await import('./commands/dlq.js');
    process.exitCode = await dlqListCommand(flags);
  });

serverOptions(
  cli.command('dlq show <id>', 'One dead letter with its action and every attempt error'),
  'Print the entry as JSON',
)
  .example('switchyard dlq show 01a209c5-9473-74bf-ad7f-9d703432448b')
  .action(async (id: string, flags: Record<string, unknown>) => {
    const { dlqShowCommand } = await import('./commands/dlq.js');
    process.exitCode = await dlqShowCommand(id, flags);
  });

serverOptions(
  dlqFilters(
    cli.command(
      'dlq replay [id]',
      'Replay one dead letter now (by id), or every one matching filters (or --all)',
    ),
  ).option('--all', 'Replay the whole queue'),
  'Print the outcome (by id) or { replayed } as JSON',
)
  .example('switchyard dlq replay 01a209c5-9473-74bf-ad7f-9d703432448b')
  .example('switchyard dlq replay --provider ops-hook')
  .action(async (id: string | undefined, flags: Record<string, unknown>) => {
    const { dlqReplayCommand } = await import('./commands/dlq.js');
    process.exitCode = await dlqReplayCommand(id, flags);
  });

serverOptions(
  dlqFilters(
    cli.command(
      'dlq discard [id]',
      'Discard one dead letter (by id), or every one matching filters (or --all)',
    ),
  ).option('--all', 'Discard the whole queue'),
  'Print { discarded } as JSON',
)
  .example('switchyard dlq discard --provider ops-hook --reason terminal')
  .action(async (id: string | undefined, flags: Record<string, unknown>) => {
    const { dlqDiscardCommand } = await import('./commands/dlq.js');
    process.exitCode = await dlqDiscardCommand(id, flags);
  });

/** The audit filters of `audit query` and `audit export`: a record matches every given one. */
const auditFilters = <T extends ReturnType<typeof cli.command>>(command: T): T =>
  command
    .option('--tenant <tenant>', 'Only this tenant')
    .option('--namespace <ns>', 'Only this namespace')
    .option('--provider <name>', 'Only this provider (the one that ran it, after reroute)')
    .option('--action-type <type>', 'Only this action type')
    .option('--outcome <outcome>', 'Only this outcome: executed, failed, suppressed, ...')
    .option('--kind <kind>', 'Only this kind: decision, attempt, replay or erasure')
    .option('--rule <name>', 'Only records this rule matched')
    .option('--label <key=value>', 'Only records with this label')
    .option('--from <time>', 'decidedAt at or after: RFC 3339, or a duration ago (24h, 7d)')
    .option('--to <time>', 'decidedAt before: RFC 3339, or a duration ago (24h, 7d)')
    .option('--q <text>', 'Text in the action id or the dedup key')
    .option('--order <order>', 'desc (newest first, default) or asc');

serverOptions(
  auditFilters(cli.command('audit query', 'Audit records, newest first, with filters'))
    .option('--limit <n>', 'Records per page, 1-1000 (default 50)')
    .option('--cursor <cursor>', 'Start after this cursor (printed when there are more)'),
  'Print { items, nextCursor } as JSON',
)
  .example('switchyard audit query --tenant acme --outcome failed --from 24h')
  .action(async (flags: Record<string, unknown>) => {
    const { auditQueryCommand } = await import('./commands/audit.js');
    process.exitCode = await auditQueryCommand(flags);
  });

serverOptions(
  cli
    .command('audit show <actionId>', "One action's history (decision, attempts) and its payload")
    .option('--namespace <ns>', 'Only records of this namespace (with --tenant)')
    .option('--tenant <tenant>', 'Only records of this tenant (with --namespace)'),
  'Print { actionId, items } as JSON',
)
  .example('switchyard audit show 01a209c5-9473-74bf-ad7f-9d703432448b')
  .action(async (actionId: string, flags: Record<string, unknown>) => {
    const { auditShowCommand } = await import('./commands/audit.js');
    process.exitCode = await auditShowCommand(actionId, flags);
  });

serverOptions(
  cli
    .command('audit verify', "Check every tenant's audit hash chain (strict mode)")
    .option('--tenant <tenant>', "Only this tenant's chain"),
  'Print { ok, tenants, records, problems } as JSON',
)
  .example('switchyard audit verify --tenant acme')
  .action(async (flags: Record<string, unknown>) => {
    const { auditVerifyCommand } = await import('./commands/audit.js');
    process.exitCode = await auditVerifyCommand(flags);
  });

auditFilters(
  cli.command('audit export', 'Every matching audit record, as JSON lines or CSV, page by page'),
)
  .option('--format <format>', 'jsonl (default) or csv')
  .option('--output <file>', 'Write to this file (default: standard output)')
  .option('--url <url>', 'Server URL (env SWITCHYARD_URL, default http://127.0.0.1:8080)')
  .option('--api-key <key>', 'API key (env SWITCHYARD_API_KEY)')
  .example('switchyard audit export --tenant acme --from 7d --format csv --output acme.csv')
  .action(async (flags: Record<string, unknown>) => {
    const { auditExportCommand } = await import('./commands/audit.js');
    process.exitCode = await auditExportCommand(flags);
  });

serverOptions(
  cli
    .command('audit erase', 'Erase the payloads of matching audit records (privacy requests)')
    .option(
      '--where <field=value>',
      'actionId, tenant, namespace, dedupKey, labels.<k>, payload.<k>',
    )
    .option('--reason <text>', 'Why (kept in the erasure record)')
    .option('--yes', 'Do not ask for confirmation (required when stdin is not a terminal)'),
  'Print { erased, recordId } as JSON',
)
  .example(
    'switchyard audit erase --where payload.email=alice@example.com --reason "GDPR request 42"',
  )
  .action(async (flags: Record<string, unknown>) => {
    const { auditEraseCommand } = await import('./commands/audit.js');
    process.exitCode = await auditEraseCommand(flags);
  });

cli
  .command('migrate', 'Create or upgrade the state store schema (sqlite, postgres)')
  .option(
    '--config <file>',
    'Config file (default: ./switchyard.yaml when present, env SWITCHYARD_CONFIG)',
  )
  .option('--json', 'Print the applied migrations as JSON')
  .action(async (flags: Record<string, unknown>) => {
    const { migrateCommand } = await import('./commands/migrate.js');
    process.exitCode = await migrateCommand(flags);
  });

/* cac matches a command by one word: `rules lint ...` reaches it as the argument "rules lint". */
const NOUN_VERBS = new Set(cli.commands.map((c) => c.name).filter((n) => n.includes(' ')));
const joinNounVerb = (argv: string[]): string[] =>
  NOUN_VERBS.has(`${argv[2]} ${argv[3]}`)
    ? [...argv.slice(0, 2), `${argv[2]} ${argv[3]}`, ...argv.slice(4)]
    : argv;

cli.help();
cli.version(VERSION);

async function main(): Promise<void> {
  try {
    cli.parse(
      joinNounVerb(process.argv.map((arg, i) => (i > 1 && arg === '-' ? STDIN_ARG : arg))),
      { run: false },
    );
    if (cli.matchedCommand === undefined && !cli.options.help && !cli.options.version) {
      if (cli.args.length > 0)
        usage(`unknown command "${cli.args.map(fromStdinArg).join(' ')}"; run switchyard --help`);
      cli.outputHelp();
      return;
    }
    await cli.runMatchedCommand();
  } catch (err) {
    fail(err);
  }
}

void main();
