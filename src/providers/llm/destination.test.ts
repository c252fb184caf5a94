import { describe, expect, it } from 'vitest';
import { checkDestination, privateHostReason } from './destination.js';

describe('llm destination guard', () => {
  it.each([
    'http://127.0.0.1:8080/v1',
    'http://127.8.9.10/v1',
    'http://localhost:11434/v1',
    'http://LOCALHOST./v1',
    'http://api.localhost/v1',
    'http://10.1.2.3/v1',
    'http://172.16.0.1/v1',
    'http://172.31.255.255/v1',
    'http://192.168.1.1/v1',
    'http://169.254.169.254/latest',
    'http://100.64.0.1/',
    'http://0.0.0.0/',
    'http://[::1]:8000/v1',
    'http://[::]/',
    'http://[fd12::1]/',
    'http://[fe80::1]/',
    'http://[::ffff:127.0.0.1]/',
    'http://[::ffff:10.0.0.1]/',
    'http://0x7f.1/', // the URL parser normalizes to 127.0.0.1
    'http://2130706433/',
  ])('refuses %s', (url) => {
    const err = checkDestination('gpt', new URL(url), false);
    expect([err?.code, err?.transient]).toEqual(['SY_ERR_DESTINATION_BLOCKED', false]);
    expect(checkDestination('gpt', new URL(url), true)).toBeUndefined();
  });

  it.each([
    'https://api.openai.com/v1',
    'https://8.8.8.8/v1',
    'http://172.32.0.1/',
    'http://[2606:4700::1111]/',
    'http://my-llm.internal/v1', // names are not resolved (the shared transport will)
  ])('allows %s', (url) => {
    expect(checkDestination('gpt', new URL(url), false)).toBeUndefined();
    expect(privateHostReason(new URL(url).hostname)).toBeUndefined();
  });
});
