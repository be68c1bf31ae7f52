// The README's picture of VS Code: ghost text from coda-mini while typing.
// `make screenshots` runs this project (CODA_SCREENSHOTS names the folder).

import * as path from 'node:path';
import { baseSettings } from './codeServer';
import { expect, test } from './fixtures';
import { ANSWER_MS } from './workbench';

test('ghost text in VS Code', async ({ window }) => {
  const { workbench } = window;
  const folder = process.env.CODA_SCREENSHOTS;
  expect(folder, 'CODA_SCREENSHOTS names the folder for the pictures').toBeTruthy();
  await workbench.page.setViewportSize({ width: 900, height: 420 });
  await workbench.waitForReady();
  await workbench.writeSettings('User', { ...baseSettings(), 'editor.inlineSuggest.showToolbar': 'onHover' });
  await workbench.open('circle.py');
  await workbench.page.keyboard.press('Control+B'); // the side bar away: the code is the picture
  await workbench.goTo(9, 32);
  await workbench.page.keyboard.press('Enter');
  await workbench.page.keyboard.press('Enter');
  await workbench.page.keyboard.press('Enter');
  await workbench.page.keyboard.press('Shift+Tab');
  await workbench.page.keyboard.type('def diameter(radius):', { delay: 60 });
  await workbench.page.keyboard.press('Enter');
  await expect(workbench.ghost.first()).toBeVisible({ timeout: ANSWER_MS });
  await workbench.waitForReady();
  await workbench.page.screenshot({ path: path.join(folder!, 'vscode-ghost-text.png') });
});
