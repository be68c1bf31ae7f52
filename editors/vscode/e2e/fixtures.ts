// One code-server and one browser page per Playwright worker, shared by its
// tests: a model load is the slow part of a start, so the tests run one after
// another against the same window. Playwright starts a fresh worker (a new
// code-server, profile and workspace) after a failed test, so one failure
// does not leave the next test a broken window.

import { test as base } from '@playwright/test';
import { CodeServer } from './codeServer';
import { Workbench } from './workbench';

export interface Window {
  server: CodeServer;
  workbench: Workbench;
}

export const test = base.extend<{}, { window: Window }>({
  window: [
    async ({ browser }, use) => {
      const server = await CodeServer.start();
      const page = await browser.newPage();
      try {
        await page.goto(server.url);
        await use({ server, workbench: new Workbench(page) });
      } finally {
        await page.close();
        await server.stop();
      }
    },
    { scope: 'worker', timeout: 120_000 },
  ],
});

export { expect } from '@playwright/test';
