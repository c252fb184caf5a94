import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  postJson,
  startReceiver,
  startServerProcess,
  stopServerProcess,
  type Receiver,
  type ServerProcess,
} from './helpers/process.js';

/*
 * GET /metrics of the real `switchyard serve` process after a known mix of traffic: the text is
 * valid Prometheus exposition and the counters match what was sent, exactly.
 */

interface MetricFamily {
  name: string;
  help: string;
  type: string;
  metrics: { value?: string; labels?: Record<string, string> }[];
}

// The package ships CommonJS without type declarations.
const parsePrometheusTextFormat = createRequire(import.meta.url)(
  'parse-prometheus-text-format',
) as (text: string) => MetricFamily[];

const EXECUTED_ON_LOG = 4;
const FAILED_ON_WEBHOOK = 3;

function action(provider: string, n: number): Record<string, unknown> {
  return { namespace: 'demo', tenant: 'acme', provider, actionType: 'metric', payload: { n } };
}

/** The value of the sample whose labels are exactly `labels`, or undefined when absent. */
function sample(
  families: MetricFamily[],
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const family = families.find((f) => f.name === name);
  const found = family?.metrics.find(
    (m) => JSON.stringify(sorted(m.labels ?? {})) === JSON.stringify(sorted(labels)),
  );
  return found?.value === undefined ? undefined : Number(found.value);
}

function sorted(labels: Record<string, string>): [string, string][] {
  return Object.entries(labels).sort(([a], [b]) => a.localeCompare(b));
}

describe('GET /metrics on the server process', () => {
  let failing: Receiver | undefined;
  let server: ServerProcess | undefined;
  let contentType: string | null;
  let families: MetricFamily[];

  beforeAll(async () => {
    failing = await startReceiver((_req, res) => {
      res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":"boom"}');
    });
    server = await startServerProcess(`
providers:
  failing:
    type: webhook
    allowPrivateNetworks: true
    retry: { attempts: 1 }
    url: ${failing.url}/hook
    timeout: 2s
`);
    const dispatch = `${server.url}/v1/dispatch`;
    for (let n = 0; n < EXECUTED_ON_LOG; n++) {
      const res = await postJson(dispatch, action('log', n));
      expect((res.body as { outcome: string }).outcome).toBe('executed');
    }
    for (let n = 0; n < FAILED_ON_WEBHOOK; n++) {
      const res = await postJson(dispatch, action('failing', n));
      expect((res.body as { outcome: string }).outcome).toBe('failed');
    }
    // Rejected before dispatch: 2 schema violations, 1 unknown provider, 1 malformed body.
    const rejections = [
      await postJson(dispatch, { ...action('log', 0), tenant: undefined }),
      await postJson(dispatch, { ...action('log', 0), surprise: true }),
      await postJson(dispatch, action('nope', 0)),
      await postJson(dispatch, '{"namespace":'),
    ];
    expect(rejections.map((r) => (r.body as { error: { code: string } }).error.code)).toEqual([
      'SY_ERR_VALIDATION',
      'SY_ERR_VALIDATION',
      'SY_ERR_UNKNOWN_PROVIDER',
      'SY_ERR_MALFORMED_JSON',
    ]);

    const res = await fetch(`${server.url}/metrics`);
    expect(res.status).toBe(200);
    contentType = res.headers.get('content-type');
    families = parsePrometheusTextFormat(await res.text());
  });

  afterAll(async () => {
    await stopServerProcess(server);
    await failing?.close();
  });

  it('is served as Prometheus text format 0.0.4 and parses', () => {
    expect(contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(families.length).toBeGreaterThan(0);
    expect(families.find((f) => f.name === 'switchyard_dispatches_total')?.type).toBe('COUNTER');
  });

  it('switchyard_dispatches_total counts executed and failed dispatches by provider', () => {
    expect(
      sample(families, 'switchyard_dispatches_total', { outcome: 'executed', provider: 'log' }),
    ).toBe(EXECUTED_ON_LOG);
    expect(
      sample(families, 'switchyard_dispatches_total', { outcome: 'failed', provider: 'failing' }),
    ).toBe(FAILED_ON_WEBHOOK);
    expect(
      families
        .find((f) => f.name === 'switchyard_dispatches_total')
        ?.metrics.map((m) => m.labels)
        .sort((a, b) => (a?.provider ?? '').localeCompare(b?.provider ?? '')),
    ).toEqual([
      { outcome: 'failed', provider: 'failing' },
      { outcome: 'executed', provider: 'log' },
    ]);
  });

  it('switchyard_rejected_requests_total counts rejections by error code', () => {
    const rejected = families.find((f) => f.name === 'switchyard_rejected_requests_total');
    expect(rejected?.type).toBe('COUNTER');
    const byCode = Object.fromEntries(
      (rejected?.metrics ?? []).map((m) => [m.labels?.code, Number(m.value)]),
    );
    expect(byCode).toEqual({
      SY_ERR_VALIDATION: 2,
      SY_ERR_UNKNOWN_PROVIDER: 1,
      SY_ERR_MALFORMED_JSON: 1,
    });
  });

  it('nothing is left in flight once every dispatch has answered', () => {
    expect(sample(families, 'switchyard_actions_in_flight')).toBe(0);
  });

  it('process and Node.js runtime metrics are exported', () => {
    const names = new Set(families.map((f) => f.name));
    expect(names.has('process_cpu_user_seconds_total')).toBe(true);
    expect(names.has('process_resident_memory_bytes')).toBe(true);
    expect(names.has('nodejs_heap_size_used_bytes')).toBe(true);
    expect(names.has('nodejs_eventloop_lag_seconds')).toBe(true);
    expect(sample(families, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
  });
});
