import { defineConfig } from 'vitest/config';

// Real processes (a quorate cluster and three brokers) on a shared 2-core machine:
// one file at a time, generous deadlines.
export default defineConfig({
  resolve: { conditions: ['source'] },
  ssr: { resolve: { conditions: ['source'] } },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 180_000,
    hookTimeout: 120_000,
    fileParallelism: false,
  },
});
