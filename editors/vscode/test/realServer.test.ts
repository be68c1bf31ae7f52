// The extension against the real coda-lsp: the Python server the project builds
// (`make test` puts it in .venv), with its bundled coda-mini model. The other
// tests run against ./fixtures/fakeServer, which has its own copy of the
// server's commands and settings; these prove that the two still agree.
//
// One server for the whole file: it is started once, by the extension's own
// activation and launch code, and the tests below run in order against it.
// The server is found by $CODA_LSP_SERVER (the Makefile's test-vscode sets
// it), else ../../.venv/bin/coda-lsp from editors/vscode. Without one the
// tests fail: `make test` always builds the venv first.
//
// What the client and the server said is read from the client's own trace
// (`coda.trace.server: verbose`, with the output channel at the Trace level).

import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import * as vscode from 'vscode';
import { COMMANDS, SERVER_COMMANDS } from '../src/commands';
import * as extension from '../src/extension';
import { SECTION, serverSettings } from '../src/settings';
import * as mock from './mock/vscode';
import { editor } from './mock/vscode';

const REPO = path.resolve(__dirname, '..', '..', '..', '..');
const SERVER = process.env.CODA_LSP_SERVER || path.join(REPO, '.venv', 'bin', 'coda-lsp');
const MANIFEST = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8'));
const PROPERTIES: { [key: string]: { type: string | string[]; default: unknown; minimum?: number; maximum?: number } } =
  MANIFEST.contributes.configuration.properties;

/** How long the model may take to load, and a request or command to come back (coda-mini on a CPU). */
const LOAD_MS = 60_000;
const REQUEST_MS = 30_000;

interface Workspace {
  folder: string;
  /** The server's own log (--log-file), shown when a test fails. */
  log: string;
  context: { subscriptions: { dispose(): unknown }[] };
}

let ws: Workspace | undefined;
/** The settings the extension is activated with; the tests change others. */
const STARTED_WITH = ['coda.server.extraArgs', 'coda.trace.server'];
/** A document open throughout, for requests that only have to be answered. */
let barrier: mock.TextDocument | undefined;

function statusBar(): mock.StatusBarItem {
  return editor.statusBarItems[0];
}

function channel(): mock.OutputChannel {
  return editor.outputChannels[0];
}

/** What went on, for the message of a failed assertion. */
function diagnosis(): string {
  const serverLog = ws !== undefined && fs.existsSync(ws.log) ? fs.readFileSync(ws.log, 'utf8').slice(-3000) : '(none)';
  const clientLog = (channel()?.lines ?? []).filter((line) => !line.startsWith('[trace]')).slice(-20);
  return [
    `status bar: ${JSON.stringify(statusBar()?.history)}`,
    `messages: ${JSON.stringify(editor.messages)}`,
    `client log: ${clientLog.join('\n')}`,
    `server log: ${serverLog}`,
  ].join('\n');
}

/** Waits for `condition`; fails at once when the server is reported down (nothing here expects it). */
async function waitFor(condition: () => boolean, what: string, ms = REQUEST_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (statusBar()?.text.includes(': error')) {
      assert.fail(`the server failed while waiting for ${what}\n${diagnosis()}`);
    }
    if (Date.now() > deadline) {
      assert.fail(`timed out after ${ms} ms waiting for ${what}\n${diagnosis()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** `promise`, or a failure naming `what` once `ms` have passed. */
async function within<T>(promise: Thenable<T>, what: string, ms = REQUEST_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}\n${diagnosis()}`)), ms);
  });
  try {
    return await Promise.race([Promise.resolve(promise), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

interface Traced {
  /** e.g. "Sending request", "Received notification". */
  event: string;
  method: string;
  /** The params or result, when the trace has them. */
  data: any;
}

/** The messages the client traced, oldest first. */
function traced(): Traced[] {
  const out: Traced[] = [];
  for (const entry of channel().lines) {
    const [first, ...rest] = entry.split('\n');
    const match = /^\[trace\] (Sending|Received) (request|notification|response) '([^']+?)(?: - \([^)]*\))?'/.exec(first);
    if (match === null) {
      continue;
    }
    const body = rest.join('\n').trim();
    const json = /^(?:Params|Result): ([\s\S]*)$/.exec(body);
    out.push({ event: `${match[1]} ${match[2]}`, method: match[3], data: json === null ? body || undefined : JSON.parse(json[1]) });
  }
  return out;
}

function tracedCount(event: string, method: string): number {
  return traced().filter((message) => message.event === event && message.method === method).length;
}

function ready(): boolean {
  return statusBar().text.includes(': ready');
}

/** The server's warnings, as it words them for settings and commands. */
function codaWarnings(): string[] {
  return editor.messages.filter((message) => message.level !== 'info' && message.text.startsWith('CoDA:')).map((message) => message.text);
}

function provider<T>(registration: string): T {
  const registered = editor.providers.get(registration) as { provider: T }[] | undefined;
  assert.equal(registered?.length, 1, `one ${registration}`);
  return registered![0].provider;
}

/** A file in the workspace, opened as VS Code opens it, and synced to the server. */
async function openDocument(name: string, text: string): Promise<mock.TextDocument> {
  const file = path.join(ws!.folder, name);
  fs.writeFileSync(file, text);
  const opens = tracedCount('Sending notification', 'textDocument/didOpen');
  const document = await vscode.workspace.openTextDocument(vscode.Uri.file(file));
  await waitFor(() => tracedCount('Sending notification', 'textDocument/didOpen') > opens, `didOpen of ${name}`);
  return document as unknown as mock.TextDocument;
}

function codeActions(document: mock.TextDocument, range: vscode.Range): Promise<vscode.CodeAction[]> {
  const codeActionProvider = provider<vscode.CodeActionProvider>('registerCodeActionsProvider');
  return within(
    Promise.resolve(
      codeActionProvider.provideCodeActions(
        document as unknown as vscode.TextDocument,
        range,
        { diagnostics: [], only: undefined, triggerKind: vscode.CodeActionTriggerKind.Invoke },
        new vscode.CancellationTokenSource().token,
      ),
    ),
    'code actions',
  ) as Promise<vscode.CodeAction[]>;
}

/**
 * Waits until the server has had every didChangeConfiguration sent so far: a request sent after
 * them is answered after them, and the warnings they cause come before its answer.
 */
async function settingsTaken(notifications: number): Promise<void> {
  await waitFor(() => tracedCount('Sending notification', 'workspace/didChangeConfiguration') >= notifications, 'the settings to be sent');
  await codeActions(barrier!, new vscode.Range(0, 0, 0, 0));
}

/** The server settings the extension contributes, by key under `coda.`: those serverSettings sends. */
function serverKeys(): string[] {
  return Object.keys(serverSettings({ get: () => undefined }));
}

/** Processes whose command line names `file` (the server's log file: unique to this test's server). */
function processesWith(file: string): number[] {
  if (!fs.existsSync('/proc')) {
    return [];
  }
  return fs
    .readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(file);
      } catch {
        return false; // gone meanwhile
      }
    })
    .map(Number);
}

describe('against the real coda-lsp', () => {
  before(async () => {
    const stat = fs.statSync(SERVER, { throwIfNoEntry: false });
    assert.ok(
      stat?.isFile() && (stat.mode & 0o111) !== 0,
      `no coda-lsp executable at ${SERVER}: run \`make test\` (or \`make .venv/.installed-stamp\`) from ${REPO} to build ` +
        'the venv, or set CODA_LSP_SERVER to a coda-lsp executable',
    );
    editor.reset();
    // The trace, in the output channel, is what the tests read the protocol from.
    editor.logLevel = mock.LogLevel.Trace;
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'coda-real-'));
    // The extension's default: the workspace's own .venv/bin/coda-lsp, no setting needed.
    fs.mkdirSync(path.join(folder, '.venv', 'bin'), { recursive: true });
    fs.symlinkSync(SERVER, path.join(folder, '.venv', 'bin', 'coda-lsp'));
    const log = path.join(folder, 'server.log');
    mock.workspace.workspaceFolders = [{ uri: mock.Uri.file(folder), name: 'project', index: 0 }];
    editor.settings.set('coda.server.extraArgs', ['--log-file', log]);
    editor.settings.set('coda.trace.server', 'verbose');
    ws = { folder, log, context: { subscriptions: [] } };
    await within(extension.activate(ws.context as unknown as vscode.ExtensionContext), 'activation', LOAD_MS);
    barrier = await openDocument('barrier.py', '');
  });

  after(async () => {
    if (ws === undefined) {
      return;
    }
    const { folder, log, context } = ws;
    // vscode-languageclient logs what went wrong between it and the server: nothing should have.
    const problems = channel().lines.filter((line) => /^\[(error|warning)\]/.test(line));
    const started = processesWith(log);
    await within(extension.deactivate() ?? Promise.resolve(), 'the server to stop', 10_000);
    context.subscriptions.forEach((disposable) => disposable.dispose());
    const deadline = Date.now() + 10_000;
    while (processesWith(log).length > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const leaked = processesWith(log);
    leaked.forEach((pid) => process.kill(pid, 'SIGKILL'));
    ws = undefined;
    barrier = undefined;
    fs.rmSync(folder, { recursive: true, force: true });
    if (fs.existsSync('/proc')) {
      assert.notDeepEqual(started, [], 'the server process was found while it ran');
    }
    assert.deepEqual(leaked, [], 'the server still ran 10 s after deactivation');
    assert.deepEqual(problems, [], 'the client logged problems');
  });

  // Each test starts from the settings activation had, and no messages: a failed one leaves nothing behind.
  beforeEach(() => {
    editor.messages.length = 0;
  });

  afterEach(async () => {
    let expected = tracedCount('Sending notification', 'workspace/didChangeConfiguration');
    for (const key of [...editor.settings.keys()]) {
      if (!STARTED_WITH.includes(key)) {
        await editor.configure(key, undefined);
        expected += serverKeys().some((name) => key === `${SECTION}.${name}`) ? 1 : 0;
      }
    }
    // What the server says of the settings on the way back belongs to this test, not the next.
    await settingsTaken(expected);
  });

  it("is started from the workspace's .venv, and loads its default model", async () => {
    const launched = `[info] Starting ${path.join(ws!.folder, '.venv', 'bin', 'coda-lsp')} --stdio --log-file ${ws!.log} in ${ws!.folder}`;
    assert.equal(channel().lines[0], launched);
    await waitFor(ready, 'the model to be ready', LOAD_MS);
    assert.match(statusBar().text, /CoDA coda-mini: ready/, diagnosis());
    const initialize = traced().find((message) => message.event === 'Received response' && message.method === 'initialize');
    assert.equal(initialize?.data.serverInfo.name, 'coda-lsp');
    assert.deepEqual(editor.messages, [], diagnosis());
  });

  it('advertises every server command the extension sends, and vscode-languageclient registers them', () => {
    const initialize = traced().find((message) => message.event === 'Received response' && message.method === 'initialize');
    const advertised: string[] = initialize!.data.capabilities.executeCommandProvider.commands;
    for (const command of Object.values(SERVER_COMMANDS)) {
      assert.ok(advertised.includes(command), `the server does not offer ${command}; it offers ${advertised.join(', ')}`);
    }
    for (const command of [...advertised, ...Object.values(COMMANDS)]) {
      assert.ok(editor.commands.has(command), `${command} is not registered`);
    }
    // What the extension's own commands are called must not clash with the server's (vscode-languageclient
    // registers those under their own names).
    assert.deepEqual(
      advertised.filter((command) => (Object.values(COMMANDS) as string[]).includes(command)),
      [],
    );
  });

  it('accepts the settings it was started with: the defaults in package.json', () => {
    const initialize = traced().find((message) => message.event === 'Sending request' && message.method === 'initialize');
    const sent = initialize!.data.initializationOptions;
    assert.deepEqual(Object.keys(sent).sort(), serverKeys().sort());
    for (const key of serverKeys()) {
      // An empty model is sent as null: the server's default.
      assert.deepEqual(sent[key], key === 'model' ? null : PROPERTIES[`${SECTION}.${key}`].default, key);
    }
    assert.deepEqual(codaWarnings(), [], diagnosis());
  });

  it('offers code actions on a selection that are all commands the extension can run', async () => {
    const document = await openDocument('actions.py', 'def f():\n    pass\n\n\ndef g(x):\n    return x\n');
    const actions = await codeActions(document, new vscode.Range(1, 4, 1, 8));
    const titles = actions.map((action) => action.title);
    assert.ok(titles.includes('Implement function body'), JSON.stringify(titles));
    assert.ok(titles.includes('Regenerate selection'), JSON.stringify(titles));
    for (const action of actions) {
      assert.ok(action instanceof vscode.CodeAction, `${action.title} is a CodeAction`);
      assert.equal(action.kind?.value, 'refactor.rewrite', action.title);
      assert.ok(action.command !== undefined, `${action.title} runs a command`);
      assert.ok(editor.commands.has(action.command.command), `${action.title}: ${action.command.command} is not registered`);
    }
    const ran = new Set(actions.map((action) => action.command!.command));
    for (const command of Object.values(SERVER_COMMANDS)) {
      assert.ok(ran.has(command), `no code action runs ${command}: ${[...ran].join(', ')}`);
    }
  });

  it('takes every setting at the bounds package.json declares, without a warning', async () => {
    let sent = tracedCount('Sending notification', 'workspace/didChangeConfiguration');
    const numeric = serverKeys().filter((key) => ['integer', 'number'].includes(PROPERTIES[`${SECTION}.${key}`].type as string));
    assert.ok(numeric.length >= 6, `numeric settings: ${numeric.join(', ')}`);
    for (const bound of ['minimum', 'maximum'] as const) {
      for (const key of numeric) {
        const value = PROPERTIES[`${SECTION}.${key}`][bound];
        assert.equal(typeof value, 'number', `${key} has a ${bound} in package.json`);
        await editor.configure(`${SECTION}.${key}`, value);
        sent++;
      }
      await settingsTaken(sent);
      assert.deepEqual(codaWarnings(), [], `at the ${bound}s:\n${diagnosis()}`);
    }
    await editor.configure(`${SECTION}.languages`, ['python', 'rust']);
    await editor.configure(`${SECTION}.completeInComments`, true);
    sent += 2;
    await settingsTaken(sent);
    assert.deepEqual(codaWarnings(), [], diagnosis());
    const last = traced().filter((message) => message.method === 'workspace/didChangeConfiguration').at(-1);
    assert.deepEqual(last!.data.settings.coda.languages, ['python', 'rust']);
    for (const key of numeric) {
      assert.equal(last!.data.settings.coda[key], PROPERTIES[`${SECTION}.${key}`].maximum, key);
    }
  });

  it('knows every setting the extension sends by its name: a wrong value of each is refused by name', async () => {
    // The model is left out: serverSettings calls .trim() on it, which throws for a value that is not a string.
    // The last test checks that the server reads it.
    const keys = serverKeys().filter((key) => key !== 'model');
    const wrong = (key: string): unknown => {
      const type = PROPERTIES[`${SECTION}.${key}`].type;
      return type === 'string' ? 42 : type === 'boolean' ? 'yes' : Array.isArray(type) ? 42 : 'many';
    };
    // As a settings.json edited by hand: every value wrong at once, then one change event.
    for (const key of keys) {
      editor.settings.set(`${SECTION}.${key}`, wrong(key));
    }
    const sent = tracedCount('Sending notification', 'workspace/didChangeConfiguration');
    await editor.configure(`${SECTION}.${keys[0]}`, wrong(keys[0]));
    await settingsTaken(sent + 1);
    const warnings = codaWarnings();
    assert.equal(warnings.length, 1, diagnosis());
    for (const key of keys) {
      assert.ok(warnings[0].includes(`setting ${key}:`), `the server does not know ${key}: ${warnings[0]}`);
    }
    // Back to the defaults in one change, which is taken without a word.
    for (const key of keys) {
      editor.settings.delete(`${SECTION}.${key}`);
    }
    await editor.configure(`${SECTION}.${keys[0]}`, undefined);
    await settingsTaken(sent + 2);
    assert.deepEqual(codaWarnings(), warnings, diagnosis());
  });

  it('completes inline through the provider, at the cursor', async (t) => {
    const document = await openDocument('add.py', 'def add(a, b):\n    return ');
    const inline = provider<vscode.InlineCompletionItemProvider>('registerInlineCompletionItemProvider');
    const cursor = new vscode.Position(1, 11);
    const result = (await within(
      Promise.resolve(
        inline.provideInlineCompletionItems(
          document as unknown as vscode.TextDocument,
          cursor,
          { triggerKind: vscode.InlineCompletionTriggerKind.Automatic, selectedCompletionInfo: undefined },
          new vscode.CancellationTokenSource().token,
        ),
      ),
      'an inline completion',
    )) as vscode.InlineCompletionList;
    assert.ok(result instanceof vscode.InlineCompletionList, diagnosis());
    assert.ok(result.items.length > 0, `no inline completion\n${diagnosis()}`);
    for (const item of result.items) {
      assert.equal(typeof item.insertText, 'string');
      assert.notEqual((item.insertText as string).trim(), '', 'an empty completion');
      assert.ok(item.range instanceof vscode.Range, 'a range');
      assert.deepEqual(item.range.start, cursor, `the range starts at the cursor: ${JSON.stringify(item.range)}`);
      assert.equal(item.range.end.line, 1);
      assert.ok(item.range.end.character >= 11, `the range ends after the cursor: ${JSON.stringify(item.range)}`);
    }
    assert.match(statusBar().text, /CoDA coda-mini: ready · \d+(\.\d)? m?s/, 'the latency is shown');
    t.diagnostic(`completions: ${JSON.stringify(result.items.map((item) => item.insertText))}`);
  });

  it('Implement Function runs end to end: the edit is applied at the version the command started on', async (t) => {
    // Short decodes: the command is about the round trip, not the code.
    await editor.configure(`${SECTION}.maxNewTokens`, 8);
    const document = await openDocument('implement.py', 'def f():\n    pass\n');
    await vscode.window.showTextDocument(document as unknown as vscode.TextDocument, { selection: new vscode.Range(1, 4, 1, 4) });
    const version = document.version;
    const edits = editor.appliedEdits.length;
    const progress = editor.progress.length;
    const implemented = await within(vscode.commands.executeCommand(COMMANDS.implementFunction), 'Implement Function');
    assert.equal(implemented, undefined, 'the palette command returns nothing');
    assert.deepEqual(editor.messages, [], diagnosis());

    const request = traced().filter((message) => message.event === 'Sending request' && message.method === 'workspace/executeCommand').at(-1)!;
    assert.deepEqual(request.data, {
      command: SERVER_COMMANDS.implementFunction,
      arguments: [document.uri.toString(), { line: 1, character: 4 }],
    });
    const applyEdit = traced().filter((message) => message.event === 'Received request' && message.method === 'workspace/applyEdit').at(-1);
    assert.ok(applyEdit !== undefined, `the server sent no workspace/applyEdit\n${diagnosis()}`);
    const [change, ...others] = applyEdit.data.edit.documentChanges;
    assert.deepEqual(others, []);
    assert.deepEqual(change.textDocument, { uri: document.uri.toString(), version });

    assert.equal(editor.appliedEdits.length, edits + 1);
    const { edit, applied } = editor.appliedEdits.at(-1)!;
    assert.equal(applied, true);
    const [[uri, textEdits], ...otherDocuments] = edit.entries();
    assert.deepEqual(otherDocuments, []);
    assert.equal(uri.toString(), document.uri.toString());
    assert.equal(textEdits.length, 1);
    // The placeholder body was replaced, and the function's line kept.
    assert.equal(document.version, version + 1);
    assert.match(document.getText(), /^def f\(\):\n/);
    assert.doesNotMatch(document.getText(), /^ {4}pass$/m, document.getText());
    t.diagnostic(`implemented: ${JSON.stringify(document.getText())}`);
    // The server heard of the change: its copy of the document is the editor's.
    const didChange = traced().filter((message) => message.method === 'textDocument/didChange').at(-1);
    assert.deepEqual(didChange?.data.textDocument, { uri: document.uri.toString(), version: version + 1 });
    // Ours, cancellable, and the server's own work-done progress.
    const [ours, servers, ...more] = editor.progress.slice(progress).map(({ options }) => options);
    assert.deepEqual(ours, { location: vscode.ProgressLocation.Notification, title: 'CoDA: Implementing the function', cancellable: true });
    assert.equal(servers?.location, vscode.ProgressLocation.Window);
    assert.equal(servers?.cancellable, true);
    assert.match(String(servers?.title), /^CoDA: /);
    assert.deepEqual(more, []);
  });

  it("runs the light bulb's Rewrite Selection with Instruction, asking for the instruction", async (t) => {
    await editor.configure(`${SECTION}.maxNewTokens`, 8);
    const text = 'def total(xs):\n    s = 0\n    for x in xs:\n        s += x\n    return s\n';
    const document = await openDocument('rewrite.py', text);
    const selection = new vscode.Range(3, 8, 3, 14); // s += x
    const actions = await codeActions(document, selection);
    const action = actions.find((candidate) => candidate.command?.command === SERVER_COMMANDS.rewriteWithInstruction);
    assert.ok(action !== undefined, JSON.stringify(actions.map((candidate) => candidate.title)));
    editor.inputBoxAnswers.push(' use sum ');
    const edits = editor.appliedEdits.length;
    const requests = tracedCount('Sending request', 'workspace/executeCommand');
    const version = document.version;
    // As VS Code runs a code action's command: by its id, with its arguments.
    const result = await within(
      vscode.commands.executeCommand(action.command!.command, ...(action.command!.arguments ?? [])),
      'the code action',
    );
    assert.equal(result, true, `the server did not apply the rewrite\n${diagnosis()}`);
    assert.deepEqual(editor.inputBoxAnswers, [], 'the instruction was asked for');
    const sent = traced().filter((message) => message.event === 'Sending request' && message.method === 'workspace/executeCommand');
    assert.equal(sent.length, requests + 1);
    assert.deepEqual(sent.at(-1)!.data, {
      command: SERVER_COMMANDS.rewriteWithInstruction,
      arguments: [document.uri.toString(), { start: { line: 3, character: 8 }, end: { line: 3, character: 14 } }, 'use sum'],
    });
    const applyEdit = traced().filter((message) => message.event === 'Received request' && message.method === 'workspace/applyEdit').at(-1);
    assert.deepEqual(applyEdit!.data.edit.documentChanges[0].textDocument, { uri: document.uri.toString(), version });
    assert.equal(editor.appliedEdits.length, edits + 1);
    assert.equal(editor.appliedEdits.at(-1)!.applied, true);
    assert.equal(document.version, version + 1);
    assert.match(document.getText(), /^def total\(xs\):\n/);
    assert.notEqual(document.getText(), text);
    t.diagnostic(`rewritten: ${JSON.stringify(document.getText())}`);
    assert.deepEqual(codaWarnings(), [], diagnosis());
  });

  // Last: the server keeps the missing model as its setting (an empty coda.model keeps the model in use).
  it('loads the model coda.model names: one that is not there is reported, and coda-mini stays', async () => {
    const statuses = tracedCount('Received notification', 'coda/status');
    await editor.configure(`${SECTION}.model`, './no-such-model');
    await waitFor(() => tracedCount('Received notification', 'coda/status') >= statuses + 2, 'the load to end');
    const [loading, done] = traced().filter((message) => message.method === 'coda/status').slice(statuses);
    assert.deepEqual(loading.data, { state: 'loading', model: './no-such-model' });
    assert.equal(done.data.state, 'ready');
    assert.equal(done.data.model, 'coda-mini');
    const errors = editor.messages.filter((message) => message.level === 'error');
    assert.equal(errors.length, 1, diagnosis());
    assert.match(errors[0].text, /could not load the model \.\/no-such-model/);
    assert.match(statusBar().text, /CoDA coda-mini: ready/);
    assert.match(String(statusBar().tooltip), /could not load the model \.\/no-such-model/);
  });
});
