/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test', '<rootDir>/examples'],
  // test/node-test/ runs under node:test (`npm test` runs it after jest).
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/node-test/'],
  testMatch: ['**/*.test.ts'],
  transform: {
    // *.legacy.test.ts: compiled with experimentalDecorators, as NestJS projects are (legacy decorators).
    '^.+\\.legacy\\.test\\.ts$': '<rootDir>/test/helpers/legacy-decorators-transform.js',
    '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }],
  },
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  testTimeout: 30000,
  // Two workers on the 2-core CI machine: the broker, Kafka and PostgreSQL files mostly wait on
  // their servers (the Kafka mock's rebalances above all), so a second worker halves the run
  // (511 s → 265 s on one machine) without loading the CPU past what the timing-sensitive files take.
  maxWorkers: 2,
};
