import { strict as assert } from 'node:assert';
import { beforeEach, describe, it } from 'node:test';
import * as vscode from 'vscode';
import { clientOptions, middleware, serverOptions } from '../src/client';
import type { Feature } from '../src/settings';
import { Status } from '../src/status';
import { editor } from './mock/vscode';

const document = {} as vscode.TextDocument;
const position = new vscode.Position(3, 4);
const inlineContext = { triggerKind: vscode.InlineCompletionTriggerKind.Automatic } as vscode.InlineCompletionContext;
const completionContext = { triggerKind: vscode.CompletionTriggerKind.Invoke } as vscode.CompletionContext;
const ITEMS = [new vscode.InlineCompletionItem('return a + b')];

function token(cancelled = false): vscode.CancellationToken {
  return { isCancellationRequested: cancelled } as vscode.CancellationToken;
}

/** A clock that moves only when told. */
function clock() {
  let now = 0;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

function readyStatus(): Status {
  const status = new Status();
  status.reported({ state: 'ready', model: 'models/tiny' });
  return status;
}

const allOn = (_feature: Feature) => true;

describe('middleware: inline completions', () => {
  it('returns nothing without asking the server when turned off', async () => {
    const status = readyStatus();
    let asked = false;
    const result = await middleware(status, (feature) => feature !== 'inlineCompletions').provideInlineCompletionItems!(
      document,
      position,
      inlineContext,
      token(),
      () => {
        asked = true;
        return ITEMS;
      },
    );
    assert.equal(result, null);
    assert.equal(asked, false);
  });

  it("passes the server's items on, busy meanwhile, and records the round trip", async () => {
    const status = readyStatus();
    const time = clock();
    const states: string[] = [];
    const result = await middleware(status, allOn, time.now).provideInlineCompletionItems!(
      document,
      position,
      inlineContext,
      token(),
      async () => {
        states.push(status.state);
        time.advance(120);
        return ITEMS;
      },
    );
    assert.equal(result, ITEMS);
    assert.deepEqual(states, ['busy']);
    assert.equal(status.state, 'ready');
    assert.equal(status.latencyMs, 120);
  });

  it('records no latency for a request overtaken by typing', async () => {
    const status = readyStatus();
    const time = clock();
    await middleware(status, allOn, time.now).provideInlineCompletionItems!(document, position, inlineContext, token(true), () => {
      time.advance(5);
      return null;
    });
    assert.equal(status.latencyMs, undefined);
    assert.equal(status.state, 'ready');
  });

  it('is no longer busy when the request fails', async () => {
    const status = readyStatus();
    const request = middleware(status, allOn).provideInlineCompletionItems!(document, position, inlineContext, token(), () =>
      Promise.reject(new Error('connection closed')),
    );
    await assert.rejects(Promise.resolve(request), /connection closed/);
    assert.equal(status.state, 'ready');
  });
});

describe('middleware: completion items', () => {
  it('returns nothing without asking the server when turned off', async () => {
    let asked = false;
    const result = await middleware(readyStatus(), (feature) => feature !== 'completionItems').provideCompletionItem!(
      document,
      position,
      completionContext,
      token(),
      () => {
        asked = true;
        return [];
      },
    );
    assert.equal(result, null);
    assert.equal(asked, false);
  });

  it("passes the server's items on when turned on, busy meanwhile", async () => {
    const status = readyStatus();
    const items = [new vscode.CompletionItem('return a + b')];
    let state = '';
    const result = await middleware(status, allOn).provideCompletionItem!(document, position, completionContext, token(), () => {
      state = status.state;
      return items;
    });
    assert.equal(result, items);
    assert.equal(state, 'busy');
    assert.equal(status.latencyMs, undefined, 'only inline completions are timed');
  });
});

describe('middleware: commands', () => {
  it('is busy while a server command runs', async () => {
    const status = readyStatus();
    let state = '';
    const result = await middleware(status, allOn).executeCommand!('coda.fillHoles', ['file:///a.py'], async () => {
      state = status.state;
      return true;
    });
    assert.equal(result, true);
    assert.equal(state, 'busy');
    assert.equal(status.state, 'ready');
  });
});

describe('middleware: rewrite with instruction', () => {
  const selection = ['file:///a.py', { start: { line: 1, character: 0 }, end: { line: 3, character: 0 } }];

  beforeEach(() => editor.reset());

  it('asks for the instruction the light bulb\'s action does not carry, and sends it', async () => {
    editor.inputBoxAnswers = ['  handle the empty list '];
    let sent: unknown[] | undefined;
    await middleware(readyStatus(), allOn).executeCommand!('coda.rewriteWithInstruction', selection, async (_c, args) => {
      sent = args;
      return true;
    });
    assert.deepEqual(sent, [...selection, 'handle the empty list']);
  });

  it('sends nothing when the box is dismissed', async () => {
    editor.inputBoxAnswers = [undefined];
    let called = false;
    const result = await middleware(readyStatus(), allOn).executeCommand!('coda.rewriteWithInstruction', selection,
      async () => (called = true));
    assert.equal(called, false);
    assert.equal(result, false);
  });

  it('does not ask when the palette command already gave one', async () => {
    editor.inputBoxAnswers = ['not this'];
    let sent: unknown[] | undefined;
    await middleware(readyStatus(), allOn).executeCommand!('coda.rewriteWithInstruction', [...selection, 'given'],
      async (_c, args) => (sent = args));
    assert.deepEqual(sent, [...selection, 'given']);
    assert.deepEqual(editor.inputBoxAnswers, ['not this']);
  });
});

describe('serverOptions', () => {
  it('runs the resolved command as is: no transport, which would add a second --stdio', () => {
    assert.deepEqual(serverOptions({ command: 'coda-lsp', args: ['--stdio'], cwd: '/p' }), {
      command: 'coda-lsp',
      args: ['--stdio'],
      options: { cwd: '/p' },
    });
  });
});

describe('clientOptions', () => {
  beforeEach(() => editor.reset());

  it('sends the settings as they are when the server starts', () => {
    const options = clientOptions(new Status(), vscode.window.createOutputChannel('CoDA', { log: true }));
    const initializationOptions = options.initializationOptions as () => { [key: string]: unknown };
    editor.settings.set('coda.model', 'models/tiny');
    editor.settings.set('coda.maxNewTokens', 16);
    assert.equal(initializationOptions().model, 'models/tiny');
    assert.equal(initializationOptions().maxNewTokens, 16);
    editor.settings.set('coda.model', 'models/small');
    assert.equal(initializationOptions().model, 'models/small');
  });

  it('syncs every file, whatever its language: the server decides where to complete', () => {
    const options = clientOptions(new Status(), vscode.window.createOutputChannel('CoDA', { log: true }));
    assert.deepEqual(options.documentSelector, [{ scheme: 'file' }, { scheme: 'untitled' }]);
  });

  it('reads the toggles from the settings at each request', async () => {
    const options = clientOptions(readyStatus(), vscode.window.createOutputChannel('CoDA', { log: true }));
    const provide = () =>
      Promise.resolve(options.middleware!.provideInlineCompletionItems!(document, position, inlineContext, token(), () => ITEMS));
    assert.equal(await provide(), ITEMS);
    editor.settings.set('coda.inlineCompletions.enabled', false);
    assert.equal(await provide(), null);
  });
});
