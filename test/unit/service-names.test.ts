import { ConfigError, defineServices } from '../../src/index.js';

describe('defineServices', () => {
  test('returns each name under its own name, frozen', () => {
    const Services = defineServices(['payments', 'orders', '__proto__']);
    expect(Services).toEqual({ payments: 'payments', orders: 'orders', ['__proto__']: '__proto__' });
    expect(Object.isFrozen(Services)).toBe(true);
    expect(Object.getPrototypeOf(Services)).toBe(Object.prototype); // an own key, not a prototype
  });

  test('refuses an empty or repeated name', () => {
    expect(() => defineServices(['payments', ' '])).toThrow(ConfigError);
    expect(() => defineServices(['payments', 1 as unknown as string])).toThrow(/non-empty strings/);
    expect(() => defineServices(['payments', 'orders', 'payments'])).toThrow(/"payments" is listed twice/);
  });
});
