import { describe, expect, it } from 'vitest';
import { parseHistory, pruneHistory, sessionStateKey, type ChatMessage } from './session.js';

const u = (n: number): ChatMessage => ({ role: 'user', content: `u${n}` });
const a = (n: number): ChatMessage => ({ role: 'assistant', content: `a${n}` });

describe('pruneHistory', () => {
  it('keeps everything up to maxMessages', () => {
    expect(pruneHistory([u(1), a(1)], 2)).toEqual([u(1), a(1)]);
    expect(pruneHistory([], 3)).toEqual([]);
  });

  it('keeps the last maxMessages, starting at a user message', () => {
    expect(pruneHistory([u(1), a(1), u(2), a(2), u(3), a(3)], 4)).toEqual([u(2), a(2), u(3), a(3)]);
  });

  it('drops a leading assistant reply cut from its question (fewer than maxMessages)', () => {
    expect(pruneHistory([u(1), a(1), u(2), a(2), u(3), a(3)], 5)).toEqual([u(2), a(2), u(3), a(3)]);
    expect(pruneHistory([u(1), a(1), u(2), a(2)], 3)).toEqual([u(2), a(2)]);
  });

  it('keeps the window as it is when it holds no user message', () => {
    expect(pruneHistory([u(1), a(1)], 1)).toEqual([a(1)]);
  });
});

describe('parseHistory', () => {
  it('reads a list of messages and refuses anything else', () => {
    expect(parseHistory('[{"role":"user","content":"x"}]')).toEqual([
      { role: 'user', content: 'x' },
    ]);
    expect(parseHistory('{"role":"user"}')).toBeUndefined();
    expect(parseHistory('[1]')).toBeUndefined();
    expect(parseHistory('not json')).toBeUndefined();
  });
});

describe('sessionStateKey', () => {
  it('keeps tenants apart even when names hold ":"', () => {
    expect(sessionStateKey('gpt', 'acme', 's1')).toBe('llm:session:gpt:acme:s1');
    expect(sessionStateKey('gpt', 'a', 'b:c')).not.toBe(sessionStateKey('gpt', 'a:b', 'c'));
  });
});
