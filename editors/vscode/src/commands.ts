// The commands in the palette.
//
// The rewriting ones prepare arguments and send the server's own commands
// under a cancellable notification: Cancel sends $/cancelRequest, which stops
// the decode. (The light bulb's actions run the same server commands through
// the ones vscode-languageclient registers under the server's ids, and the
// middleware.) Our ids are therefore distinct from the server's: `coda.editor.*`.

import * as vscode from 'vscode';
import { ExecuteCommandRequest, type LanguageClient } from 'vscode-languageclient/node';
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
  status: Status;
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
    return { editor, client, status };
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
    await runServerCommand(target, 'Regenerating the selection', SERVER_COMMANDS.regenerateSelection, [uri, range]);
  } else {
    await runServerCommand(target, 'Rewriting the selection', SERVER_COMMANDS.rewriteWithInstruction, [
      uri,
      range,
      instruction.trim(),
    ]);
  }
}

async function implementFunction(target: Target | undefined): Promise<void> {
  if (target === undefined) {
    return;
  }
  const { editor, client } = target;
  const implemented = await runServerCommand(target, 'Implementing the function', SERVER_COMMANDS.implementFunction, [
    client.code2ProtocolConverter.asUri(editor.document.uri),
    client.code2ProtocolConverter.asPosition(editor.selection.active),
  ]);
  if (implemented === false) {
    void vscode.window.showInformationMessage(
      'CoDA: nothing implemented. Put the cursor in a function whose body is a placeholder ' +
        '(pass, ..., todo!(), a TODO comment or nothing).',
    );
  }
}

/**
 * Sends a server command under a cancellable notification, busy in the status bar meanwhile.
 * Its result is the server's (whether it changed the document); undefined when cancelled or failed.
 */
async function runServerCommand(target: Target, title: string, command: string, args: unknown[]): Promise<unknown> {
  const done = target.status.begin();
  try {
    return await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `CoDA: ${title}`, cancellable: true },
      async (_progress, token) => {
        try {
          return await target.client.sendRequest(ExecuteCommandRequest.type, { command, arguments: args }, token);
        } catch (error) {
          if (!token.isCancellationRequested) {
            void vscode.window.showErrorMessage(`CoDA: ${error instanceof Error ? error.message : String(error)}`);
          }
          return undefined;
        }
      },
    );
  } finally {
    done();
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
