// The commands in the palette.
//
// The rewriting ones prepare arguments and run the server's own commands,
// which vscode-languageclient registers under the server's ids; going through
// them (instead of sending the request ourselves) puts our commands and the
// light bulb's on the same path, with the same busy indicator. Our ids are
// therefore distinct from the server's: `coda.editor.*`.

import * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';
import type { Session } from './client';
import { featureEnabled, SECTION } from './settings';
import type { Status } from './status';

export const COMMANDS = {
  rewriteSelection: 'coda.editor.rewriteSelection',
  implementFunction: 'coda.editor.implementFunction',
  toggleInlineCompletions: 'coda.editor.toggleInlineCompletions',
  showServerLog: 'coda.editor.showServerLog',
  restartServer: 'coda.editor.restartServer',
} as const;

/** The commands of coda-lsp's that the palette commands run (the light bulb offers them all). */
export const SERVER_COMMANDS = {
  regenerateSelection: 'coda.regenerateSelection',
  rewriteWithInstruction: 'coda.rewriteWithInstruction',
  implementFunction: 'coda.implementFunction',
} as const;

export function registerCommands(
  session: Session,
  status: Status,
  outputChannel: vscode.OutputChannel,
): vscode.Disposable[] {
  const target = () => editorAndServer(session, status, outputChannel);
  return [
    vscode.commands.registerCommand(COMMANDS.rewriteSelection, () => rewriteSelection(target())),
    vscode.commands.registerCommand(COMMANDS.implementFunction, () => implementFunction(target())),
    vscode.commands.registerCommand(COMMANDS.toggleInlineCompletions, toggleInlineCompletions),
    vscode.commands.registerCommand(COMMANDS.showServerLog, () => outputChannel.show()),
    vscode.commands.registerCommand(COMMANDS.restartServer, () => session.restart()),
  ];
}

interface Target {
  editor: vscode.TextEditor;
  client: LanguageClient;
}

/** The active editor and a server with its model loaded, or why there is none (told to the user). */
function editorAndServer(session: Session, status: Status, outputChannel: vscode.OutputChannel): Target | undefined {
  const editor = vscode.window.activeTextEditor;
  if (editor === undefined) {
    void vscode.window.showInformationMessage('CoDA: open a file and put the cursor where the code should change.');
    return undefined;
  }
  const client = session.running();
  if (client !== undefined && (status.state === 'ready' || status.state === 'busy')) {
    return { editor, client };
  }
  const reason =
    status.state === 'loading'
      ? 'the model is still loading.'
      : status.state === 'error'
        ? `the server is not available. ${status.message ?? ''}`
        : 'the server is still starting.';
  void vscode.window.showWarningMessage(`CoDA: ${reason}`, 'Show Server Log').then((choice) => {
    if (choice !== undefined) {
      outputChannel.show();
    }
  });
  return undefined;
}

/** Asks for an instruction; without one the selection is regenerated from its context alone. */
async function rewriteSelection(target: Target | undefined): Promise<void> {
  if (target === undefined) {
    return;
  }
  const { editor, client } = target;
  // Taken before the prompt, which may take a while to answer.
  const uri = client.code2ProtocolConverter.asUri(editor.document.uri);
  const range = client.code2ProtocolConverter.asRange(editor.selection);
  const instruction = await vscode.window.showInputBox({
    title: 'CoDA: Rewrite Selection',
    prompt: 'How should the selection change? Leave empty to regenerate it from the code around it.',
    placeHolder: 'e.g. handle the empty list',
  });
  if (instruction === undefined) {
    return; // dismissed
  }
  if (instruction.trim() === '') {
    await vscode.commands.executeCommand(SERVER_COMMANDS.regenerateSelection, uri, range);
  } else {
    await vscode.commands.executeCommand(SERVER_COMMANDS.rewriteWithInstruction, uri, range, instruction.trim());
  }
}

async function implementFunction(target: Target | undefined): Promise<void> {
  if (target === undefined) {
    return;
  }
  const { editor, client } = target;
  const implemented = await vscode.commands.executeCommand<boolean>(
    SERVER_COMMANDS.implementFunction,
    client.code2ProtocolConverter.asUri(editor.document.uri),
    client.code2ProtocolConverter.asPosition(editor.selection.active),
  );
  if (!implemented) {
    void vscode.window.showInformationMessage(
      'CoDA: nothing implemented. Put the cursor in a function whose body is a placeholder ' +
        '(pass, ..., todo!(), a TODO comment or nothing).',
    );
  }
}

/** Flips the setting where it is set, so that a workspace value does not hide the change. */
async function toggleInlineCompletions(): Promise<void> {
  const config = vscode.workspace.getConfiguration(SECTION);
  const setByWorkspace = config.inspect<boolean>('inlineCompletions.enabled')?.workspaceValue !== undefined;
  await config.update(
    'inlineCompletions.enabled',
    !featureEnabled(config, 'inlineCompletions'),
    setByWorkspace ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.Global,
  );
}
