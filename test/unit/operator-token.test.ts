import { ConfigError, createEventBus } from '../../src/index.js';
import { operatorOf } from '../../src/operate/operator-token.js';
import { quietLogger } from '../helpers/logger.js';

describe('operator tokens', () => {
  const tokens = { operator: 'tok-ops-1', alice: 'tok-alice-2' };

  it("answers the operator's name for its Bearer token, and nothing for anything else", () => {
    expect(operatorOf(tokens, 'Bearer tok-ops-1')).toBe('operator');
    expect(operatorOf(tokens, 'bearer  tok-alice-2')).toBe('alice');
    for (const wrong of [undefined, '', 'tok-ops-1', 'Basic tok-ops-1', 'Bearer tok-ops-', 'Bearer tok-ops-11', 'Bearer ', 'Bearer a b']) {
      expect(operatorOf(tokens, wrong)).toBeUndefined();
    }
    expect(operatorOf({}, 'Bearer tok-ops-1')).toBeUndefined();
  });

  it('comes from console.token or EVENTS_CONSOLE_TOKEN, and console.tokens; a blank or shared token is a ConfigError', () => {
    const bus = (options: object, env: Record<string, string> = {}) => createEventBus({ logger: quietLogger(), env, ...options });
    const config = (b: ReturnType<typeof bus>) => (b as unknown as { config: { operators: object } }).config.operators;
    expect({ ...config(bus({}, { EVENTS_CONSOLE_TOKEN: 'from-env' })) }).toEqual({ operator: 'from-env' });
    expect({ ...config(bus({ console: { token: 'from-option', tokens: { alice: 'a-token' } } }, { EVENTS_CONSOLE_TOKEN: 'from-env' })) }).toEqual({
      operator: 'from-option',
      alice: 'a-token',
    });
    expect({ ...config(bus({})) }).toEqual({});
    expect(() => bus({ console: { token: 'has space' } })).toThrow(ConfigError);
    expect(() => bus({ console: { tokens: { alice: '' } } })).toThrow(/console\.tokens\.alice must be a non-empty token/);
    expect(() => bus({ console: { token: 'same', tokens: { alice: 'same' } } })).toThrow(/a token of its own/);
  });
});
