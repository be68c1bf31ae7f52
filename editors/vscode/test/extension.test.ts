// The extension as VS Code runs it: activated, with the real vscode-languageclient
// starting a server process over stdio. The server is ./fixtures/fakeServer,
// which logs what it receives; the editor is the mock `vscode` module.

import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import * as vscode from 'vscode';
import * as extension from '../src/extension';
import * as mock from './mock/vscode';
import { editor, StatusBarItem } from './mock/vscode';

const FAKE_SERVER = path.join(__dirname, 'fixtures', 'fakeServer.js');

const COMMANDS = [
  'coda.editor.rewriteSelection',
  'coda.editor.implementFunction',
  'coda.editor.toggleInlineCompletions',
  'coda.editor.showServerLog',
  'coda.editor.restartServer',
];
const SERVER_COMMANDS = ['coda.regenerateSelection', 'coda.rewriteWithInstruction', 'coda.implementFunction', 'coda.fillHoles'];

interface Workspace {
  folder: string;
  /** Where the fake server logs what it receives. */
  log: string;
  context: { subscriptions: { dispose(): unknown }[] };
}

interface Message {
  id?: number;
  method?: string;
  params?: any;
}

let workspace: Workspace | undefined;

/** A script that runs the fake server, standing in for coda-lsp or python. */
function writeServerScript(file: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `#!/bin/sh\nexec "${process.execPath}" "${FAKE_SERVER}" "$@"\n`, { mode: 0o755 });
}

/**
 * Activates the extension in a new workspace folder that has a `.venv` with
 * the fake server as its coda-lsp, unless `venv` is false.
 */
async function activate(settings: { [key: string]: unknown } = {}, venv = true): Promise<Workspace> {
  editor.reset();
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'coda-workspace-'));
  const log = path.join(folder, 'server.log');
  if (venv) {
    writeServerScript(path.join(folder, '.venv', 'bin', 'coda-lsp'));
  }
  mock.workspace.workspaceFolders = [{ uri: mock.Uri.file(folder), name: 'project', index: 0 }];
  const all: { [key: string]: unknown } = {
    'coda.model': 'models/tiny',
    'coda.server.extraArgs': ['--log-file', log],
    ...settings,
  };
  for (const [key, value] of Object.entries(all)) {
    editor.settings.set(key, value);
  }
  workspace = { folder, log, context: { subscriptions: [] } };
  await extension.activate(workspace.context as unknown as vscode.ExtensionContext);
  return workspace;
}

afterEach(async () => {
  if (workspace === undefined) {
    return;
  }
  const ws = workspace;
  workspace = undefined;
  await extension.deactivate();
  ws.context.subscriptions.forEach((disposable) => disposable.dispose());
  // A server left running would also keep this test process from ever exiting.
  const started = fs.existsSync(`${ws.log}.pids`) ? pids(ws) : [];
  const deadline = Date.now() + 2000;
  while (started.some(isAlive) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const leaked = started.filter(isAlive);
  leaked.forEach((pid) => process.kill(pid, 'SIGKILL'));
  fs.rmSync(ws.folder, { recursive: true, force: true });
  assert.deepEqual(leaked, [], 'servers still running after deactivation');
});

/** What the server process that is running now was started with and has received. */
function server(ws: Workspace): { argv: string[]; pid: number; messages: Message[] } {
  const [first, ...rest] = fs
    .readFileSync(ws.log, 'utf8')
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line));
  return { argv: first.argv, pid: first.pid, messages: rest };
}

/** Every server process started in this workspace, oldest first. */
function pids(ws: Workspace): number[] {
  return fs.readFileSync(`${ws.log}.pids`, 'utf8').trim().split('\n').map(Number);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function received(ws: Workspace, method: string): Message[] {
  return fs.existsSync(ws.log) ? server(ws).messages.filter((message) => message.method === method) : [];
}

function statusBar(): StatusBarItem {
  return editor.statusBarItems[0];
}

/** The states the status bar went through, each once per stretch. */
function states(): string[] {
  const words = statusBar().history.map((text) => /: (starting|loading model|ready|busy|error)/.exec(text)![1]);
  return words.filter((word, i) => i === 0 || word !== words[i - 1]);
}

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) {
      assert.fail(`timed out waiting for ${what}; status bar: ${JSON.stringify(statusBar()?.history)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const ready = () => statusBar().text.includes(': ready');

function openEditor(ws: Workspace, anchor: [number, number], active: [number, number]): string {
  const uri = mock.Uri.file(path.join(ws.folder, 'app.py'));
  mock.window.activeTextEditor = {
    document: { uri, languageId: 'python', version: 1 },
    selection: new mock.Selection(new mock.Position(...anchor), new mock.Position(...active)),
  };
  return uri.toString();
}

function provider<T>(registration: string): T {
  const [{ provider }] = editor.providers.get(registration) as { provider: T }[];
  return provider;
}

function document(ws: Workspace): vscode.TextDocument {
  const uri = vscode.Uri.file(path.join(ws.folder, 'app.py'));
  return { uri, languageId: 'python', version: 1 } as unknown as vscode.TextDocument;
}

/** Asks for an inline completion at line 2, column 4, as VS Code does while you type. */
function inlineCompletion(ws: Workspace) {
  return provider<vscode.InlineCompletionItemProvider>('registerInlineCompletionItemProvider').provideInlineCompletionItems(
    document(ws),
    new vscode.Position(2, 4),
    { triggerKind: vscode.InlineCompletionTriggerKind.Automatic, selectedCompletionInfo: undefined },
    new vscode.CancellationTokenSource().token,
  );
}

function completionItems(ws: Workspace) {
  return provider<vscode.CompletionItemProvider>('registerCompletionItemProvider').provideCompletionItems(
    document(ws),
    new vscode.Position(2, 4),
    new vscode.CancellationTokenSource().token,
    { triggerKind: vscode.CompletionTriggerKind.Invoke, triggerCharacter: undefined },
  );
}

describe('activation', () => {
  it("starts the workspace's .venv/bin/coda-lsp with --stdio and the extra arguments", async () => {
    const ws = await activate();
    await waitFor(ready, 'the model to be ready');
    assert.deepEqual(server(ws).argv, ['--stdio', '--log-file', ws.log]);
  });

  it('sends the settings as initializationOptions, under camelCase keys', async () => {
    const ws = await activate({ 'coda.maxNewTokens': 16, 'coda.languages': ['python'], 'coda.threshold': 0.7 });
    await waitFor(ready, 'the model to be ready');
    const [initialize] = received(ws, 'initialize');
    assert.deepEqual(initialize.params.initializationOptions, {
      model: 'models/tiny',
      device: 'auto',
      dtype: 'auto',
      quantize: 'none',
      maxNewTokens: 16,
      threshold: 0.7,
      blockSize: 32,
      contextBefore: 1536,
      contextAfter: 512,
      contextFiles: 512,
      contextOpenFiles: true,
      contextImports: true,
      contextRecentEdits: true,
      candidates: 3,
      languages: ['python'],
      completeInComments: false,
    });
  });

  it("registers its commands, and vscode-languageclient the server's", async () => {
    await activate();
    await waitFor(ready, 'the model to be ready');
    for (const command of [...COMMANDS, ...SERVER_COMMANDS]) {
      assert.ok(editor.commands.has(command), command);
    }
  });

  it('offers inline completions, code actions and completion items through the client', async () => {
    await activate();
    await waitFor(ready, 'the model to be ready');
    for (const registration of [
      'registerInlineCompletionItemProvider',
      'registerCodeActionsProvider',
      'registerCompletionItemProvider',
    ]) {
      assert.equal(editor.providers.get(registration)?.length, 1, registration);
    }
  });

  it('runs the server as a module of the configured Python', async () => {
    const python = path.join(os.tmpdir(), `coda-python-${process.pid}`, 'python');
    writeServerScript(python);
    try {
      const ws = await activate({ 'coda.server.pythonPath': python });
      await waitFor(ready, 'the model to be ready');
      assert.deepEqual(server(ws).argv, ['-m', 'coda_lsp.server', '--stdio', '--log-file', ws.log]);
    } finally {
      fs.rmSync(path.dirname(python), { recursive: true, force: true });
    }
  });
});

describe('status bar', () => {
  it('goes starting → loading → ready → busy → ready, with the latency of the inline completion', async () => {
    const ws = await activate();
    await waitFor(ready, 'the model to be ready');
    const result = (await inlineCompletion(ws)) as vscode.InlineCompletionList;
    assert.equal(result.items.length, 1);
    assert.equal(result.items[0].insertText, 'return a + b');
    assert.deepEqual(result.items[0].range, new vscode.Range(new vscode.Position(2, 4), new vscode.Position(2, 4)));
    assert.deepEqual(received(ws, 'textDocument/inlineCompletion')[0].params.position, { line: 2, character: 4 });
    assert.deepEqual(states(), ['starting', 'loading model', 'ready', 'busy', 'ready']);
    assert.match(statusBar().text, /^\$\(sparkle\) CoDA tiny: ready · \d+ ms$/);
    assert.equal(statusBar().command, 'coda.editor.showServerLog');
    assert.equal(statusBar().visible, true);
  });

  it("with coda.model empty, sends a null model and shows the server's default, coda-mini", async () => {
    const ws = await activate({ 'coda.model': '' });
    await waitFor(ready, 'the model to be ready');
    assert.equal(received(ws, 'initialize')[0].params.initializationOptions.model, null);
    assert.deepEqual(states(), ['starting', 'loading model', 'ready']);
    assert.equal(statusBar().text, '$(sparkle) CoDA coda-mini: ready');
    assert.match(String(statusBar().tooltip), /Model: coda-mini/);
  });

  it("shows the server's error when the model cannot be loaded", async () => {
    await activate({ 'coda.model': 'models/missing' });
    await waitFor(() => statusBar().text.includes(': error'), 'the error');
    assert.deepEqual(states(), ['starting', 'loading model', 'error']);
    assert.match(String(statusBar().tooltip), /could not load the model models\/missing/);
    assert.equal((statusBar().backgroundColor as mock.ThemeColor).id, 'statusBarItem.errorBackground');
  });

  it('shows an error when the server cannot be started', async () => {
    await activate({ 'coda.server.command': '/nonexistent/coda-lsp' });
    assert.equal(states().at(-1), 'error');
    assert.match(String(statusBar().tooltip), /Could not start \/nonexistent\/coda-lsp/);
  });

  it('falls back to coda-lsp on PATH without a .venv', async () => {
    await activate({ 'coda.server.extraArgs': [] }, false);
    // Whether this machine has a coda-lsp on PATH or not, the log says which command was chosen.
    assert.match(editor.outputChannels[0].lines[0], /^\[info\] Starting coda-lsp --stdio in /);
  });
});

describe('settings', () => {
  it('are pushed to the running server as {coda: {...}} with camelCase keys, without a restart', async () => {
    const ws = await activate();
    await waitFor(ready, 'the model to be ready');
    const { pid } = server(ws);

    await editor.configure('coda.contextBefore', 1000);
    await waitFor(() => received(ws, 'workspace/didChangeConfiguration').length === 1, 'the settings');
    const [change] = received(ws, 'workspace/didChangeConfiguration');
    assert.equal(change.params.settings.coda.contextBefore, 1000);
    assert.deepEqual(Object.keys(change.params.settings.coda).sort(), [
      'blockSize',
      'candidates',
      'completeInComments',
      'contextAfter',
      'contextBefore',
      'contextFiles',
      'contextImports',
      'contextOpenFiles',
      'contextRecentEdits',
      'device',
      'dtype',
      'languages',
      'maxNewTokens',
      'model',
      'quantize',
      'threshold',
    ]);
    assert.equal(server(ws).pid, pid);
    assert.equal(received(ws, 'initialize').length, 1);
  });

  it('load another model when the model changes', async () => {
    const ws = await activate();
    await waitFor(ready, 'the model to be ready');
    await editor.configure('coda.model', 'models/small');
    await waitFor(() => statusBar().text.includes('CoDA small: ready'), 'the new model');
    assert.deepEqual(states(), ['starting', 'loading model', 'ready', 'loading model', 'ready']);
    assert.equal(received(ws, 'initialize').length, 1);
  });

  it('of the extension itself are not sent to the server', async () => {
    const ws = await activate();
    await waitFor(ready, 'the model to be ready');
    await editor.configure('coda.inlineCompletions.enabled', false);
    await editor.configure('coda.trace.server', 'messages');
    await editor.configure('coda.maxNewTokens', 8);
    await waitFor(() => received(ws, 'workspace/didChangeConfiguration').length > 0, 'the settings');
    assert.deepEqual(
      received(ws, 'workspace/didChangeConfiguration').map((message) => message.params.settings.coda.maxNewTokens),
      [8],
    );
  });

  it('for the server command restart the server with the new command line', async () => {
    const ws = await activate();
    await waitFor(ready, 'the model to be ready');
    const { pid } = server(ws);
    await editor.configure('coda.server.extraArgs', ['--log-file', ws.log, '--device', 'cpu']);
    await waitFor(() => server(ws).pid !== pid && ready(), 'a new server');
    assert.deepEqual(server(ws).argv, ['--stdio', '--log-file', ws.log, '--device', 'cpu']);
    // The client does not wait for the old process to exit after `exit`; it only has to.
    await waitFor(() => !isAlive(pid), 'the old server to exit');
  });
});

describe('commands', () => {
  it('Rewrite Selection with an empty instruction regenerates the selection', async () => {
    const ws = await activate();
    await waitFor(ready, 'the model to be ready');
    const uri = openEditor(ws, [1, 4], [2, 10]);
    editor.inputBoxAnswers.push('');
    await vscode.commands.executeCommand('coda.editor.rewriteSelection');
    const [command] = received(ws, 'workspace/executeCommand');
    assert.deepEqual(command.params, {
      command: 'coda.regenerateSelection',
      arguments: [uri, { start: { line: 1, character: 4 }, end: { line: 2, character: 10 } }],
    });
    assert.deepEqual(states().slice(-2), ['busy', 'ready']);
  });

  it('Rewrite Selection with an instruction passes it on', async () => {
    const ws = await activate();
    await waitFor(ready, 'the model to be ready');
    const uri = openEditor(ws, [3, 0], [1, 2]);
    editor.inputBoxAnswers.push('  handle the empty list ');
    await vscode.commands.executeCommand('coda.editor.rewriteSelection');
    const [command] = received(ws, 'workspace/executeCommand');
    assert.deepEqual(command.params, {
      command: 'coda.rewriteWithInstruction',
      arguments: [uri, { start: { line: 3, character: 0 }, end: { line: 1, character: 2 } }, 'handle the empty list'],
    });
  });

  it('Rewrite Selection does nothing when the prompt is dismissed', async () => {
    const ws = await activate();
    await waitFor(ready, 'the model to be ready');
    openEditor(ws, [1, 4], [2, 10]);
    editor.inputBoxAnswers.push(undefined);
    await vscode.commands.executeCommand('coda.editor.rewriteSelection');
    assert.deepEqual(received(ws, 'workspace/executeCommand'), []);
  });

  it('Implement Function runs the server command at the cursor', async () => {
    const ws = await activate();
    await waitFor(ready, 'the model to be ready');
    const uri = openEditor(ws, [1, 8], [1, 8]);
    await vscode.commands.executeCommand('coda.editor.implementFunction');
    const [command] = received(ws, 'workspace/executeCommand');
    assert.deepEqual(command.params, { command: 'coda.implementFunction', arguments: [uri, { line: 1, character: 8 }] });
    assert.deepEqual(editor.messages, []);
  });

  it('run under a cancellable notification, and Cancel sends $/cancelRequest for the command', async () => {
    const ws = await activate();
    await waitFor(ready, 'the model to be ready');
    openEditor(ws, [1, 8], [1, 8]);
    const running = vscode.commands.executeCommand('coda.editor.implementFunction');
    await waitFor(() => editor.progress.length === 1, 'the progress notification');
    const [{ options, cancel }] = editor.progress;
    assert.deepEqual(options, {
      location: vscode.ProgressLocation.Notification,
      title: 'CoDA: Implementing the function',
      cancellable: true,
    });
    await waitFor(() => received(ws, 'workspace/executeCommand').length === 1, 'the command');
    cancel.cancel(); // the fake server answers commands after 300 ms: the request is still open
    await running;
    await waitFor(() => received(ws, '$/cancelRequest').length === 1, 'the cancel');
    const [command] = received(ws, 'workspace/executeCommand');
    assert.equal(received(ws, '$/cancelRequest')[0].params.id, command.id);
    assert.deepEqual(editor.messages, [], 'a cancelled command is not reported as a failure');
  });

  it('Implement Function says so when there was nothing to implement', async () => {
    const ws = await activate();
    await waitFor(ready, 'the model to be ready');
    openEditor(ws, [5, 0], [5, 0]);
    await vscode.commands.executeCommand('coda.editor.implementFunction');
    assert.equal(received(ws, 'workspace/executeCommand').length, 1);
    assert.match(editor.messages[0].text, /nothing implemented/);
  });

  it('refuse to run before the model is loaded, and say why', async () => {
    const ws = await activate({ 'coda.model': 'models/missing' });
    await waitFor(() => statusBar().text.includes(': error'), 'the error');
    openEditor(ws, [1, 8], [1, 8]);
    await vscode.commands.executeCommand('coda.editor.implementFunction');
    assert.deepEqual(received(ws, 'workspace/executeCommand'), []);
    assert.equal(editor.messages[0].level, 'warning');
    assert.match(editor.messages[0].text, /not available.*could not load the model models\/missing/);
  });

  it('Toggle Inline Completions turns them off and on again', async () => {
    const ws = await activate();
    await waitFor(ready, 'the model to be ready');
    await vscode.commands.executeCommand('coda.editor.toggleInlineCompletions');
    assert.equal(editor.settings.get('coda.inlineCompletions.enabled'), false);
    assert.match(statusBar().text, /inline off$/);
    assert.equal(await inlineCompletion(ws), null);
    assert.deepEqual(received(ws, 'textDocument/inlineCompletion'), []);

    await vscode.commands.executeCommand('coda.editor.toggleInlineCompletions');
    assert.equal(editor.settings.get('coda.inlineCompletions.enabled'), true);
    assert.doesNotMatch(statusBar().text, /inline off/);
    assert.notEqual(await inlineCompletion(ws), null);
    assert.equal(received(ws, 'textDocument/inlineCompletion').length, 1);
  });

  it('Completion items come only once turned on in the settings', async () => {
    const ws = await activate();
    await waitFor(ready, 'the model to be ready');
    assert.equal(await completionItems(ws), null);
    assert.deepEqual(received(ws, 'textDocument/completion'), []);

    await editor.configure('coda.completionItems.enabled', true);
    const list = (await completionItems(ws)) as vscode.CompletionList;
    assert.deepEqual(
      list.items.map((item) => item.label),
      ['return a + b'],
    );
    assert.equal(received(ws, 'textDocument/completion').length, 1);
  });

  it('Toggle Inline Completions changes a workspace setting where there is one', async () => {
    await activate();
    await editor.configure('coda.inlineCompletions.enabled', true, mock.ConfigurationTarget.Workspace);
    await vscode.commands.executeCommand('coda.editor.toggleInlineCompletions');
    assert.equal(editor.workspaceSettings.get('coda.inlineCompletions.enabled'), false);
    assert.equal(editor.settings.has('coda.inlineCompletions.enabled'), false);
  });

  it('Show Server Log shows the output channel the client logs to', async () => {
    await activate();
    await vscode.commands.executeCommand('coda.editor.showServerLog');
    assert.equal(editor.outputChannels.length, 1);
    assert.equal(editor.outputChannels[0].name, 'CoDA');
    assert.equal(editor.outputChannels[0].shown, 1);
  });

  it('Restart Server starts a new server process', async () => {
    const ws = await activate();
    await waitFor(ready, 'the model to be ready');
    const { pid } = server(ws);
    await vscode.commands.executeCommand('coda.editor.restartServer');
    await waitFor(() => server(ws).pid !== pid && ready(), 'a new server');
    assert.equal(received(ws, 'initialize').length, 1);
    assert.deepEqual(states(), ['starting', 'loading model', 'ready', 'starting', 'loading model', 'ready']);
  });

  it('Restart Server twice in a row leaves one server running', async () => {
    const ws = await activate();
    await waitFor(ready, 'the model to be ready');
    await Promise.all([
      vscode.commands.executeCommand('coda.editor.restartServer'),
      vscode.commands.executeCommand('coda.editor.restartServer'),
    ]);
    await waitFor(ready, 'the model to be ready');
    const [first, second, third, ...more] = pids(ws);
    assert.deepEqual(more, []);
    await waitFor(() => !isAlive(first) && !isAlive(second), 'the first two servers to exit');
    assert.equal(isAlive(third), true);
  });
});

describe('a server that dies', () => {
  it('is started again by the client, and the status bar follows', async () => {
    const ws = await activate();
    await waitFor(ready, 'the model to be ready');
    const { pid } = server(ws);
    process.kill(pid, 'SIGKILL');
    await waitFor(() => pids(ws).length === 2 && ready(), 'a new server');
    assert.deepEqual(states().slice(-3), ['starting', 'loading model', 'ready']);
  });
});
