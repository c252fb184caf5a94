import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request the fake API received. */
export interface ReceivedRequest {
  mode: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** The parsed JSON body. */
  body: { model?: string; messages?: { role: string; content: unknown }[] } & Record<
    string,
    unknown
  >;
}

export interface FakeLlmApi {
  /** `http://127.0.0.1:<port>`; use `${url}/<mode>/v1` as a provider's baseUrl. */
  readonly url: string;
  readonly requests: ReceivedRequest[];
  /** total_tokens reported per answer (prompt 2/3, completion 1/3). Default 30. */
  totalTokens: number;
  /** Hold every "ok" answer until this many are waiting, then answer them all. Default 1. */
  holdUntil: number;
  baseUrl(mode: string): string;
  close(): Promise<void>;
}

/**
 * A real HTTP server on 127.0.0.1 that speaks the OpenAI chat-completions API, for provider
 * tests. The first path segment picks the behaviour:
 *   ok         200 with `re: <last user message>` as the assistant's content
 *   <status>   that status with an OpenAI error body (429 and 503 add `retry-after: 7`)
 *   ratems     429 with `retry-after-ms: 1500`
 *   notchat    200 with a JSON body that is not a chat completion
 *   hang       reads the request and never answers
 */
export async function startFakeLlmApi(): Promise<FakeLlmApi> {
  const requests: ReceivedRequest[] = [];
  let held: (() => void)[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '/';
      const mode = path.split('/')[1] ?? '';
      let body: ReceivedRequest['body'];
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as ReceivedRequest['body'];
      } catch {
        body = {};
      }
      requests.push({ mode, path, headers: req.headers, body });
      if (!(path.split('?')[0] ?? '').endsWith('/chat/completions'))
        return json(res, 404, apiError('no such route'));
      if (mode === 'hang') return;
      if (mode === 'notchat') return json(res, 200, { hello: 'world' });
      if (mode === 'ratems') {
        return json(res, 429, apiError('slow down'), { 'retry-after-ms': '1500' });
      }
      const status = Number(mode);
      if (Number.isInteger(status) && status >= 300) {
        const extra: Record<string, string> =
          status === 429 || status === 503 ? { 'retry-after': '7' } : {};
        return json(res, status, apiError(`fake error ${status}`), extra);
      }
      const answer = (): void => json(res, 200, completion(body, api.totalTokens));
      held.push(answer);
      if (held.length >= api.holdUntil) {
        const ready = held;
        held = [];
        for (const send of ready) send();
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  const api: FakeLlmApi = {
    url,
    requests,
    totalTokens: 30,
    holdUntil: 1,
    baseUrl: (mode) => `${url}/${mode}/v1`,
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
  return api;
}

function apiError(message: string): unknown {
  return { error: { message, type: 'invalid_request_error', code: null } };
}

function json(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

function completion(body: ReceivedRequest['body'], total: number): unknown {
  const lastUser = [...(body.messages ?? [])].reverse().find((m) => m.role === 'user');
  const prompt = Math.round((total * 2) / 3);
  return {
    id: 'chatcmpl-test',
    object: 'chat.completion',
    created: 1_767_614_400,
    model: body.model ?? 'unknown',
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: `re: ${String(lastUser?.content ?? '')}` },
        finish_reason: 'stop',
      },
    ],
    usage: { prompt_tokens: prompt, completion_tokens: total - prompt, total_tokens: total },
  };
}
