// Activation: the pieces, wired together.

import * as vscode from 'vscode';
import { Session } from './client';
import { COMMANDS, registerCommands } from './commands';
import { affectsServerSettings, featureEnabled, SECTION } from './settings';
import { Status } from './status';
import { showStatus } from './statusBar';

let session: Session | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const outputChannel = vscode.window.createOutputChannel('CoDA', { log: true });
  const status = new Status();
  status.setInlineEnabled(featureEnabled(vscode.workspace.getConfiguration(SECTION), 'inlineCompletions'));
  const current = new Session(outputChannel, status);
  session = current;
  context.subscriptions.push(
    outputChannel,
    showStatus(status, COMMANDS.showServerLog),
    ...registerCommands(current, status, outputChannel),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration(`${SECTION}.server`)) {
        // Another command line needs another process; it reads every other setting as it starts.
        void current.restart();
      } else if (affectsServerSettings((section) => event.affectsConfiguration(section))) {
        current.settingsChanged();
      }
      if (event.affectsConfiguration(`${SECTION}.inlineCompletions.enabled`)) {
        status.setInlineEnabled(featureEnabled(vscode.workspace.getConfiguration(SECTION), 'inlineCompletions'));
      }
    }),
  );
  await current.start();
}

export function deactivate(): Promise<void> | undefined {
  return session?.stop();
}
