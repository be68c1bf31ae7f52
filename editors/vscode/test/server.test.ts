import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { launchSettings, LaunchSettings, resolveLaunch, venvServer } from '../src/server';

const DEFAULT: LaunchSettings = { command: '', pythonPath: '', extraArgs: [] };
const FOLDER = '/home/me/project';
const VENV = '/home/me/project/.venv/bin/coda-lsp';

const only = (...files: string[]) => (file: string) => files.includes(file);

describe('resolveLaunch', () => {
  it("runs the workspace's .venv/bin/coda-lsp when there is one", () => {
    assert.deepEqual(resolveLaunch(DEFAULT, FOLDER, only(VENV), 'linux'), {
      command: VENV,
      args: ['--stdio'],
      cwd: FOLDER,
    });
  });

  it('runs coda-lsp from PATH without a .venv', () => {
    assert.deepEqual(resolveLaunch(DEFAULT, FOLDER, only(), 'linux'), {
      command: 'coda-lsp',
      args: ['--stdio'],
      cwd: FOLDER,
    });
  });

  it('runs coda-lsp from PATH without a workspace folder', () => {
    assert.deepEqual(resolveLaunch(DEFAULT, undefined, () => true, 'linux'), {
      command: 'coda-lsp',
      args: ['--stdio'],
      cwd: undefined,
    });
  });

  it('looks for the Windows layout of a venv on Windows', () => {
    const exe = venvServer('C:\\work\\project', 'win32');
    assert.equal(exe, 'C:\\work\\project\\.venv\\Scripts\\coda-lsp.exe');
    assert.equal(resolveLaunch(DEFAULT, 'C:\\work\\project', only(exe), 'win32').command, exe);
  });

  it('runs the configured command instead of the .venv', () => {
    const launch = resolveLaunch({ ...DEFAULT, command: '/opt/coda/bin/coda-lsp' }, FOLDER, only(VENV), 'linux');
    assert.deepEqual(launch, { command: '/opt/coda/bin/coda-lsp', args: ['--stdio'], cwd: FOLDER });
  });

  it('runs the server as a module of the configured Python, which wins over the command', () => {
    const settings = { ...DEFAULT, command: '/opt/coda/bin/coda-lsp', pythonPath: '/usr/bin/python3' };
    assert.deepEqual(resolveLaunch(settings, FOLDER, only(VENV), 'linux'), {
      command: '/usr/bin/python3',
      args: ['-m', 'coda_lsp.server', '--stdio'],
      cwd: FOLDER,
    });
  });

  it('appends the extra arguments after --stdio, whichever way the server is run', () => {
    const extraArgs = ['--log-file', '/tmp/coda.log'];
    assert.deepEqual(resolveLaunch({ ...DEFAULT, extraArgs }, FOLDER, only(VENV), 'linux').args, [
      '--stdio',
      '--log-file',
      '/tmp/coda.log',
    ]);
    assert.deepEqual(resolveLaunch({ ...DEFAULT, pythonPath: 'python3', extraArgs }, FOLDER, only(), 'linux').args, [
      '-m',
      'coda_lsp.server',
      '--stdio',
      '--log-file',
      '/tmp/coda.log',
    ]);
  });

  it('replaces ${workspaceFolder} in the settings', () => {
    const settings = {
      command: '',
      pythonPath: '${workspaceFolder}/.venv/bin/python',
      extraArgs: ['--log-file', '${workspaceFolder}/coda.log'],
    };
    assert.deepEqual(resolveLaunch(settings, FOLDER, only(), 'linux'), {
      command: '/home/me/project/.venv/bin/python',
      args: ['-m', 'coda_lsp.server', '--stdio', '--log-file', '/home/me/project/coda.log'],
      cwd: FOLDER,
    });
  });

  it('finds a real .venv on disk', () => {
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'coda-venv-'));
    try {
      assert.equal(resolveLaunch(DEFAULT, folder).command, 'coda-lsp');
      fs.mkdirSync(path.join(folder, '.venv', 'bin'), { recursive: true });
      assert.equal(resolveLaunch(DEFAULT, folder, undefined, 'linux').command, 'coda-lsp', 'a folder is not enough');
      fs.writeFileSync(venvServer(folder, 'linux'), '#!/bin/sh\n', { mode: 0o755 });
      assert.equal(resolveLaunch(DEFAULT, folder, undefined, 'linux').command, venvServer(folder, 'linux'));
    } finally {
      fs.rmSync(folder, { recursive: true, force: true });
    }
  });
});

describe('launchSettings', () => {
  it('reads the coda.server.* settings, trimmed', () => {
    const values: { [key: string]: unknown } = {
      'server.command': ' /opt/coda-lsp ',
      'server.pythonPath': '',
      'server.extraArgs': ['--log-file', 'x.log'],
    };
    assert.deepEqual(launchSettings({ get: <T>(key: string) => values[key] as T }), {
      command: '/opt/coda-lsp',
      pythonPath: '',
      extraArgs: ['--log-file', 'x.log'],
    });
  });

  it('has the defaults when nothing is set', () => {
    assert.deepEqual(launchSettings({ get: () => undefined }), DEFAULT);
  });
});
