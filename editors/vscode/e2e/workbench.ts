// The VS Code workbench as a user works it: keys, the command palette, the
// status bar and what the editor shows. Every step waits on what the page
// shows (Playwright's locators and web-first assertions), never on a timer.

import { expect, type Locator, type Page } from '@playwright/test';

/** Long enough for coda-mini to load on a busy 2-core machine. */
export const MODEL_LOAD_MS = 120_000;
/** A completion or a rewrite with coda-mini on a busy 2-core machine (Implement Function took 42 s
 * with two CPU hogs beside it; 9 s on a quiet machine). */
export const ANSWER_MS = 120_000;

export class Workbench {
  constructor(readonly page: Page) {}

  /** The extension's status bar item ("CoDA coda-mini: ready · 40 ms"). */
  get status(): Locator {
    return this.page.locator('.statusbar-item').filter({ hasText: /CoDA/ });
  }

  async waitForReady(model = 'coda-mini'): Promise<void> {
    await expect(this.status).toHaveText(new RegExp(`CoDA ${model}: ready`), { timeout: MODEL_LOAD_MS });
  }

  /** The ghost text in the active editor, spaces as typed (the editor renders them as no-break spaces). */
  get ghost(): Locator {
    return this.page.locator('.editor-group-container.active .monaco-editor .ghost-text-decoration');
  }

  async ghostText(): Promise<string> {
    return (await this.ghost.allTextContents()).join('').replaceAll('\u00a0', ' ');
  }

  /**
   * Runs a command from the palette by its full title, e.g. "CoDA: Restart Server", or by the
   * start of it with `prefix` (titles that name the remote end in its name).
   */
  async runCommand(title: string, { prefix = false } = {}): Promise<void> {
    await this.quickInput('F1', `>${title}`);
    // The palette matches as it is typed: pick this command's own row, as a user clicks it.
    await this.page
      .locator('.quick-input-list .monaco-list-row')
      .and(this.page.locator(prefix ? `[aria-label^="${title}"]` : `[aria-label="${title}"], [aria-label^="${title}, "]`))
      .click();
  }

  /** Opens a workspace file with Quick Open and waits until its editor has the keyboard. */
  async open(name: string): Promise<void> {
    await this.quickInput('Control+P', name);
    await expect(this.page.locator('.quick-input-list .monaco-list-row.focused')).toHaveAttribute(
      'aria-label',
      new RegExp(`^${escape(name)}`),
    );
    await this.page.keyboard.press('Enter');
    await expect(this.page.locator('.tab.active')).toHaveAttribute('aria-label', new RegExp(`^${escape(name)}`));
    await expect(this.editorInput).toBeFocused();
  }

  /** Puts the cursor at 1-based `line`:`column` (Go to Line). */
  async goTo(line: number, column: number): Promise<void> {
    await this.quickInput('Control+G', `:${line}:${column}`);
    await this.page.keyboard.press('Enter');
    await expect(this.editorInput).toBeFocused();
    await expect(this.page.locator('.statusbar-item', { hasText: `Ln ${line}, Col ${column}` })).toBeVisible();
  }

  /** Saves the active editor and waits until the tab is clean, so the file on disk is what the editor holds. */
  async save(): Promise<void> {
    await this.page.keyboard.press('Control+S');
    await expect(this.page.locator('.tab.active')).not.toHaveClass(/\bdirty\b/);
  }

  /** Whether the active editor has changes not on disk. */
  get dirtyTab(): Locator {
    return this.page.locator('.tab.active.dirty');
  }

  /**
   * Replaces the User or the Remote (machine) settings as a user does: Preferences: Open ...
   * Settings (JSON), paste, save. (code-server does not notice a settings file written behind its back.)
   */
  async writeSettings(scope: 'User' | 'Remote', settings: Record<string, unknown>): Promise<void> {
    await this.runCommand(`Preferences: Open ${scope} Settings (JSON)`, { prefix: true });
    await expect(this.page.locator('.tab.active')).toHaveAttribute('aria-label', /^settings\.json/);
    await expect(this.editorInput).toBeFocused();
    await this.page.keyboard.press('Control+A');
    // Pasted, as typing would get brackets and quotes auto-closed and lines indented.
    await this.page.context().grantPermissions(['clipboard-read', 'clipboard-write']);
    await this.page.evaluate((text) => navigator.clipboard.writeText(text), JSON.stringify(settings, null, 2));
    await this.page.keyboard.press('Control+V');
    await this.save();
    await this.runCommand('View: Close Editor');
  }

  /** The active editor's text input: focused when keys go to the code. */
  private get editorInput(): Locator {
    return this.page.locator('.editor-group-container.active .monaco-editor textarea');
  }

  /** Opens the quick input with `key` (F1, Quick Open, Go to Line) and fills in `text`. */
  private async quickInput(key: string, text: string): Promise<void> {
    await this.page.keyboard.press(key);
    const input = this.page.locator('.quick-input-widget .quick-input-box input');
    await expect(input).toBeFocused();
    await input.fill(text);
  }

  /** The notifications on screen whose text names CoDA (toasts, not the notification center). */
  get codaToasts(): Locator {
    return this.page.locator('.notifications-toasts .notification-toast').filter({ hasText: /CoDA|coda-lsp/ });
  }
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
