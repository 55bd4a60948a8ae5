import { defineConfig } from 'vitest/config';

/** The integration files and settings, on the machine's Redis or (integration-redis-cluster) on a cluster of their own. */
const integration = {
  include: ['tests/**/*.test.ts'],
  exclude: ['tests/disruptive/**', 'tests/cluster/**', 'tests/sentinel/**', 'tests/redis-cluster/**'],
  globalSetup: ['tests/support/global-setup.ts'],
  testTimeout: 180_000,
  hookTimeout: 120_000,
};

export default defineConfig({
  test: {
    // Integration files start real service processes; two files at a time suits a 2-core machine.
    maxWorkers: 2,
    minWorkers: 1,
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['libs/**/src/**/*.test.ts', 'services/**/src/**/*.test.ts'],
          testTimeout: 20_000,
        },
      },
      {
        extends: true,
        test: { name: 'integration', ...integration },
      },
      {
        extends: true,
        test: {
          // The integration tests on a three-master Redis Cluster the global setup starts on loopback and stops after
          // (npm run test:integration-redis-cluster); every integration file runs there.
          name: 'integration-redis-cluster',
          ...integration,
        },
      },
      {
        extends: true,
        test: {
          // Takes the shared RabbitMQ and Redis away for seconds: run alone, after everything else (npm test).
          name: 'disruptive',
          include: ['tests/disruptive/**/*.test.ts'],
          globalSetup: ['tests/support/global-setup.ts'],
          testTimeout: 300_000,
          hookTimeout: 120_000,
        },
      },
      {
        extends: true,
        test: {
          // Starts its own three-node RabbitMQ cluster (ports 26300-26399 by default, CLUSTER_BASE_PORT) and the
          // suite on it: `npm run test:cluster`, not part of `npm test` (README, "RabbitMQ cluster").
          name: 'cluster',
          include: ['tests/cluster/**/*.test.ts'],
          testTimeout: 600_000,
          // Three nodes booting and joining, then seven processes: minutes on a loaded 2-core machine.
          hookTimeout: 600_000,
        },
      },
      {
        extends: true,
        test: {
          // Starts its own Redis master, replica and three Sentinels and fails the master over (npm run test:sentinel).
          name: 'sentinel',
          include: ['tests/sentinel/**/*.test.ts'],
          globalSetup: ['tests/support/global-setup.ts'],
          testTimeout: 300_000,
          hookTimeout: 120_000,
        },
      },
      {
        extends: true,
        test: {
          // Starts its own three-master Redis Cluster and runs the suite on it (npm run test:redis-cluster).
          name: 'redis-cluster',
          include: ['tests/redis-cluster/**/*.test.ts'],
          globalSetup: ['tests/support/global-setup.ts'],
          testTimeout: 180_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
