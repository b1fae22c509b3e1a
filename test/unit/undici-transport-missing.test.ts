import { ConfigError, createEventBus } from '../../src/index.js';
import { createCapturingLogger } from '../helpers/logger.js';
import { newSecret } from '../helpers/signing.js';

// As on an install without the optional peer: requiring undici fails.
jest.mock('undici', () => {
  throw Object.assign(new Error("Cannot find module 'undici'"), { code: 'MODULE_NOT_FOUND' });
});

const base = { service: 'users', secret: newSecret(), logger: createCapturingLogger('warn').logger };

describe('httpClient undici without the undici package', () => {
  test.each([
    ['the option', { ...base, httpClient: 'undici' as const, env: {} }],
    ['EVENTS_HTTP_CLIENT', { ...base, env: { EVENTS_HTTP_CLIENT: 'undici' } }],
  ])('%s: createEventBus fails at once and says what to install', (_, options) => {
    let error: unknown;
    try {
      createEventBus(options);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toContain('npm install undici');
    expect((error as ConfigError).variable).toBe('EVENTS_HTTP_CLIENT');
  });

  test('the default client never loads it', async () => {
    const bus = createEventBus({ ...base, env: {} });
    await bus.close();
  });
});
