import type { Clock } from '../../core/clock.js';
import type { StateStore } from '../../state/store.js';
import { compareAndSet } from './cas.js';

/** One chat message as the chat-completions API takes it; extra fields pass through. */
export interface ChatMessage {
  role: string;
  content?: unknown;
  [field: string]: unknown;
}

/**
 * The state key of a conversation: per provider, per tenant, per client-chosen session key.
 * Provider and tenant names may hold ":", so they are percent-encoded (names without ":" or
 * other reserved characters are unchanged): tenant "a" with session "b:c" and tenant "a:b" with
 * session "c" must never share a history.
 */
export function sessionStateKey(provider: string, tenant: string, sessionKey: string): string {
  return `llm:session:${encodeURIComponent(provider)}:${encodeURIComponent(tenant)}:${sessionKey}`;
}

/**
 * Keeps the last `maxMessages` messages of a history. When that would start the history with
 * something other than a user message (an assistant reply cut from its question), the leading
 * non-user messages are dropped too, as long as a user message remains; so a pruned history may
 * hold fewer than `maxMessages` messages, and holds more only never.
 */
export function pruneHistory(messages: readonly ChatMessage[], maxMessages: number): ChatMessage[] {
  let start = Math.max(0, messages.length - maxMessages);
  if (start === 0) return messages.slice();
  let first = start;
  while (first < messages.length && messages[first]?.role !== 'user') first++;
  if (first < messages.length) start = first;
  return messages.slice(start);
}

/** Parses a stored history; undefined when the stored text is not a list of messages. */
export function parseHistory(text: string): ChatMessage[] | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!Array.isArray(value)) return undefined;
  const ok = value.every(
    (m) =>
      m !== null && typeof m === 'object' && typeof (m as { role?: unknown }).role === 'string',
  );
  return ok ? (value as ChatMessage[]) : undefined;
}

/** The stored history of a session ([] when none); `corrupt` when it could not be read. */
export async function readSession(
  store: StateStore,
  key: string,
  now: number,
): Promise<{ history: ChatMessage[]; corrupt: boolean }> {
  const stored = await store.get(key, now);
  if (stored === undefined) return { history: [], corrupt: false };
  const history = parseHistory(stored.value);
  return history === undefined ? { history: [], corrupt: true } : { history, corrupt: false };
}

/**
 * Appends one turn (the new messages and the reply) to a session's stored history, prunes it to
 * `maxMessages` and refreshes its TTL, with compare-and-set so concurrent turns of one session
 * all land (in the order their appends win). A stored value that is not a history is replaced.
 * Returns the history as stored.
 */
export async function appendSession(
  store: StateStore,
  clock: Clock,
  key: string,
  turn: readonly ChatMessage[],
  maxMessages: number,
  ttlMs: number,
): Promise<ChatMessage[]> {
  let result: ChatMessage[] = [];
  await compareAndSet(store, clock, key, ttlMs, (current) => {
    const history = current === undefined ? [] : (parseHistory(current) ?? []);
    result = pruneHistory([...history, ...turn], maxMessages);
    return JSON.stringify(result);
  });
  return result;
}
