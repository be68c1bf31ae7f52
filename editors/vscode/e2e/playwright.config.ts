// The extension's end-to-end suite: a real VS Code (code-server, e2e/codeServer.ts)
// driven from Debian's Chromium. Playwright's own browser downloads are not used:
// this machine reaches package registries only.

import { defineConfig } from '@playwright/test';

export default defineConfig({
  testDir: '.',
  // One window at a time: each runs a language server and a model, and CI has 2 cores.
  workers: 1,
  fullyParallel: false,
  forbidOnly: true,
  retries: 0,
  timeout: 180_000,
  // Deadlines, not pauses: a wait ends as soon as the page shows what it waits for. Generous,
  // so that a busy 2-core machine is slow rather than red.
  expect: { timeout: 20_000 },
  reporter: [['list']],
  outputDir: 'test-results',
  use: {
    viewport: { width: 1280, height: 800 },
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
    launchOptions: {
      executablePath: process.env.CODA_E2E_CHROMIUM ?? '/usr/bin/chromium',
      // As root Chromium needs --no-sandbox; the rest keeps it from calling out of a closed network.
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    },
  },
  projects: [
    { name: 'e2e', testMatch: 'extension.e2e.ts' },
    { name: 'screenshots', testMatch: 'screenshots.e2e.ts' },
  ],
});
