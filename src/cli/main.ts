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

/* cac matches a command by one word: `rules lint ...` reaches it as the argument "rules lint". */
const NOUN_VERBS = new Set(cli.commands.map((c) => c.name).filter((n) => n.includes(' ')));
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
