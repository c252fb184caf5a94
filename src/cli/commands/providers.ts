import type { ActionInput } from '../../core/action.js';
import type { ProviderInfo, ProviderPreviewResult } from '../../client/client.js';
import { EXIT_OK, usage } from '../output.js';
import { clientFrom } from '../server-flags.js';
import { table } from '../table.js';
import { fromFlags, readInput } from './dispatch.js';

type Flags = Record<string, unknown>;

const print = (s: string): void => void process.stdout.write(s.endsWith('\n') ? s : `${s}\n`);
const json = (v: unknown): void => print(JSON.stringify(v, null, 2));

const circuitOf = (p: ProviderInfo): string => p.circuit?.state ?? 'disabled';

function pausesOf(p: ProviderInfo): string {
  if (p.pauses.length === 0) return '-';
  const until = p.pauses
    .map((x) => x.until ?? '')
    .sort()
    .at(-1);
  return `${p.pauses.length} (until ${until ?? '?'})`;
}

/** `switchyard providers list`. */
export async function providersListCommand(flags: Flags): Promise<number> {
  const providers = await clientFrom(flags).providers();
  if (flags.json) {
    json(providers);
    return EXIT_OK;
  }
  const rows = providers.map((p) => [
    p.name,
    p.type,
    circuitOf(p),
    `${p.concurrency.running}/${p.concurrency.limit}`,
    String(p.concurrency.queued),
    pausesOf(p),
  ]);
  print(table(['NAME', 'TYPE', 'CIRCUIT', 'RUNNING/LIMIT', 'QUEUED', 'PAUSES'], rows));
  return EXIT_OK;
}

const ms = (n: number): string => `${n}ms`;

/** The human view of one provider: one `key: value` line per field. */
function describeProvider(p: ProviderInfo): string {
  const c = p.circuit;
  const circuit =
    c === null
      ? 'disabled (circuitBreaker: false)'
      : `${c.state}, ${c.consecutiveFailures} consecutive failure${c.consecutiveFailures === 1 ? '' : 's'}` +
        (c.openedAt === null ? '' : `, opened ${c.openedAt}`) +
        (c.probeAt === null ? '' : `, probe at ${c.probeAt}`);
  const lines: [string, string][] = [
    ['name', p.name],
    ['type', p.type],
    ['circuit', circuit],
    [
      'concurrency',
      `${p.concurrency.running} running of ${p.concurrency.limit}, ${p.concurrency.queued} queued of ${p.concurrency.queue}`,
    ],
    [
      'pauses',
      p.pauses.length === 0
        ? 'none'
        : p.pauses.map((x) => `${x.key || '(all)'} until ${x.until ?? '?'}`).join('; '),
    ],
    ['timeout', ms(p.timeoutMs)],
    ['actionTimeout', p.actionTimeoutMs === null ? 'none' : ms(p.actionTimeoutMs)],
    [
      'retry',
      `${p.retry.attempts} attempt${p.retry.attempts === 1 ? '' : 's'}, base ${ms(p.retry.baseMs)}, max ${ms(p.retry.maxMs)}`,
    ],
    ['fallback', p.fallback.length === 0 ? 'none' : p.fallback.join(' → ')],
    [
      'rateLimit',
      p.rateLimit === null
        ? 'none'
        : `${p.rateLimit.limit} per ${ms(p.rateLimit.windowMs)}${p.rateLimit.key === undefined ? '' : ` by ${p.rateLimit.key}`}`,
    ],
    [
      'dlq',
      `${p.dlq.enabled ? 'enabled' : 'disabled'}, autoReplay ${p.dlq.autoReplay ? 'on' : 'off'}`,
    ],
  ];
  const width = Math.max(...lines.map(([k]) => k.length)) + 1;
  return lines.map(([k, v]) => `${`${k}:`.padEnd(width)}  ${v}`).join('\n');
}

/** `switchyard providers show <name>`. */
export async function providersShowCommand(name: string, flags: Flags): Promise<number> {
  const provider = await clientFrom(flags).provider(name);
  if (flags.json) json(provider);
  else print(describeProvider(provider));
  return EXIT_OK;
}

/** `switchyard providers reset <name>`: closes the breaker on the node that answers. */
export async function providersResetCommand(name: string, flags: Flags): Promise<number> {
  const provider = await clientFrom(flags).resetCircuit(name);
  if (flags.json) {
    json(provider);
  } else {
    const state =
      provider.circuit === null ? 'no circuit breaker (pauses cleared)' : provider.circuit.state;
    print(`reset ${provider.name}: circuit ${state}`);
  }
  return EXIT_OK;
}

const pretty = (body: unknown): string =>
  typeof body === 'string' ? body : JSON.stringify(body, null, 2);

/** What the provider would send, as it would go on the wire (roughly). */
export function describePreview(result: ProviderPreviewResult): string {
  const p = result.preview;
  const headers = (h: Record<string, string>): string[] =>
    Object.entries(h).map(([k, v]) => `${k}: ${v}`);
  switch (p.kind) {
    case 'http': {
      const lines = [`${p.method} ${p.url}`, ...headers(p.headers)];
      if (p.body !== undefined && p.body !== null && p.body !== '') lines.push('', pretty(p.body));
      return lines.join('\n');
    }
    case 'email': {
      const lines = [`From: ${p.from}`, `To: ${p.to.join(', ')}`];
      if (p.cc !== undefined && p.cc.length > 0) lines.push(`Cc: ${p.cc.join(', ')}`);
      if (p.bcc !== undefined && p.bcc.length > 0) lines.push(`Bcc: ${p.bcc.join(', ')}`);
      lines.push(`Subject: ${p.subject}`, ...headers(p.headers));
      if (p.text !== undefined) lines.push('', p.text);
      if (p.html !== undefined) lines.push('', '--- html ---', p.html);
      return lines.join('\n');
    }
    case 'log':
      return p.line;
    case 'none':
      return `(no preview: ${p.description})`;
  }
}

/**
 * `switchyard providers preview <name> [file|-]`: the action comes from a JSON file, standard
 * input or the dispatch flags; nothing is sent.
 */
export async function providersPreviewCommand(
  name: string,
  file: string | undefined,
  flags: Flags,
): Promise<number> {
  const overrides = fromFlags(flags);
  let action: Partial<ActionInput>;
  if (file !== undefined) {
    const input = await readInput(file);
    if (input === null || typeof input !== 'object' || Array.isArray(input)) {
      usage(
        `${file === '-' ? 'standard input' : file} must hold one action (a JSON object) to preview`,
      );
    }
    action = { ...(input as Partial<ActionInput>), ...overrides };
  } else {
    const missing = (['actionType', 'namespace', 'tenant'] as const)
      .filter((k) => overrides[k] === undefined)
      .map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
    if (missing.length > 0)
      usage(`missing ${missing.join(', ')} (or give a JSON file, or - for stdin)`);
    action = { payload: {}, ...overrides };
  }
  const result = await clientFrom(flags).preview(name, { ...action, provider: name });
  if (flags.json) json(result);
  else print(describePreview(result));
  return EXIT_OK;
}
