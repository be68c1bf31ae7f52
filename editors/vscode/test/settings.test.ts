import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import {
  affectsServerSettings,
  configurationParams,
  ConfigurationReader,
  featureEnabled,
  serverSettings,
} from '../src/settings';

/** A configuration section holding only the given values, as `getConfiguration('coda')` returns. */
function section(values: { [key: string]: unknown }): ConfigurationReader {
  return { get: <T>(key: string) => values[key] as T | undefined };
}

describe('serverSettings', () => {
  it('sends every server option under its camelCase name', () => {
    const settings = serverSettings(
      section({
        model: 'models/tiny',
        device: 'cuda:1',
        dtype: 'bfloat16',
        quantize: 'int8',
        maxNewTokens: 128,
        threshold: 0.5,
        blockSize: 16,
        contextBefore: 1000,
        contextAfter: 200,
        contextFiles: 0,
        contextOpenFiles: false,
        contextImports: false,
        contextRecentEdits: false,
        candidates: 2,
        languages: ['python', 'rust'],
        completeInComments: true,
      }),
    );
    assert.deepEqual(settings, {
      model: 'models/tiny',
      device: 'cuda:1',
      dtype: 'bfloat16',
      quantize: 'int8',
      maxNewTokens: 128,
      threshold: 0.5,
      blockSize: 16,
      contextBefore: 1000,
      contextAfter: 200,
      contextFiles: 0,
      contextOpenFiles: false,
      contextImports: false,
      contextRecentEdits: false,
      candidates: 2,
      languages: ['python', 'rust'],
      completeInComments: true,
    });
  });

  it("falls back to the server's defaults", () => {
    assert.deepEqual(serverSettings(section({})), {
      model: null,
      device: 'auto',
      dtype: 'auto',
      quantize: 'none',
      maxNewTokens: 64,
      threshold: 0.9,
      blockSize: 32,
      contextBefore: 1536,
      contextAfter: 512,
      contextFiles: 512,
      contextOpenFiles: true,
      contextImports: true,
      contextRecentEdits: true,
      candidates: 3,
      languages: null,
      completeInComments: false,
    });
  });

  it('leaves out the settings that belong to the extension', () => {
    const settings = serverSettings(
      section({ 'server.command': 'coda-lsp', 'inlineCompletions.enabled': false, 'trace.server': 'verbose' }),
    );
    assert.deepEqual(Object.keys(settings).sort(), [
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
  });

  it("sends an empty or blank model as null: the server keeps its default (coda-mini)", () => {
    assert.equal(serverSettings(section({ model: '' })).model, null);
    assert.equal(serverSettings(section({ model: '  ' })).model, null);
    assert.equal(serverSettings(section({ model: ' models/tiny ' })).model, 'models/tiny');
  });
});

describe('configurationParams', () => {
  it('nests the settings under "coda", where the server looks', () => {
    const settings = serverSettings(section({ maxNewTokens: 8 }));
    assert.deepEqual(configurationParams(settings), { settings: { coda: settings } });
  });
});

describe('affectsServerSettings', () => {
  it('is true for the settings the server reads and false for the others', () => {
    const changed = (key: string) => (section: string) => section === key;
    assert.equal(affectsServerSettings(changed('coda.threshold')), true);
    assert.equal(affectsServerSettings(changed('coda.languages')), true);
    assert.equal(affectsServerSettings(changed('coda.inlineCompletions.enabled')), false);
    assert.equal(affectsServerSettings(changed('coda.server.command')), false);
    assert.equal(affectsServerSettings(changed('editor.fontSize')), false);
  });
});

describe('featureEnabled', () => {
  it('has inline completions on and completion items off by default', () => {
    assert.equal(featureEnabled(section({}), 'inlineCompletions'), true);
    assert.equal(featureEnabled(section({}), 'completionItems'), false);
  });

  it('follows the settings', () => {
    const config = section({ 'inlineCompletions.enabled': false, 'completionItems.enabled': true });
    assert.equal(featureEnabled(config, 'inlineCompletions'), false);
    assert.equal(featureEnabled(config, 'completionItems'), true);
  });
});
