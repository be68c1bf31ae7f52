// Which process to start as the language server.
//
// The project's `make test` (or `pip install -e .`) puts `coda-lsp` in the
// workspace's `.venv`, so that is the default when it exists: a new user gets
// a working server without touching any setting. The settings then allow for
// every other installation: a `coda-lsp` elsewhere, or only a Python
// interpreter that has the package.

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ConfigurationReader } from './settings';

export interface LaunchSettings {
  /** `coda.server.command`: the coda-lsp executable; empty for the default. */
  command: string;
  /** `coda.server.pythonPath`: run the server as a module of this interpreter instead. */
  pythonPath: string;
  /** `coda.server.extraArgs`: appended after `--stdio`, e.g. `--log-file`. */
  extraArgs: string[];
}

export interface Launch {
  command: string;
  args: string[];
  /** The workspace folder: relative model paths in the settings are resolved against it. */
  cwd: string | undefined;
}

export function launchSettings(config: ConfigurationReader): LaunchSettings {
  return {
    command: config.get<string>('server.command')?.trim() ?? '',
    pythonPath: config.get<string>('server.pythonPath')?.trim() ?? '',
    extraArgs: config.get<string[]>('server.extraArgs') ?? [],
  };
}

/** Where `python -m venv .venv` puts the console script on this platform. */
export function venvServer(folder: string, platform: NodeJS.Platform): string {
  return platform === 'win32'
    ? path.win32.join(folder, '.venv', 'Scripts', 'coda-lsp.exe')
    : path.posix.join(folder, '.venv', 'bin', 'coda-lsp');
}

/**
 * The server process for these settings in this workspace folder.
 *
 * A Python interpreter, when given, wins over a command: it is the more
 * specific choice, made when no console script is installed where it is run.
 * `${workspaceFolder}` in any setting stands for the folder, as in VS Code's
 * own settings for tools.
 */
export function resolveLaunch(
  settings: LaunchSettings,
  folder: string | undefined,
  isFile: (file: string) => boolean = isExistingFile,
  platform: NodeJS.Platform = process.platform,
): Launch {
  const expand = (value: string) => (folder === undefined ? value : value.replaceAll('${workspaceFolder}', folder));
  const serverArgs = ['--stdio', ...settings.extraArgs.map(expand)];
  if (settings.pythonPath) {
    return { command: expand(settings.pythonPath), args: ['-m', 'coda_lsp.server', ...serverArgs], cwd: folder };
  }
  if (settings.command) {
    return { command: expand(settings.command), args: serverArgs, cwd: folder };
  }
  const venv = folder === undefined ? undefined : venvServer(folder, platform);
  return { command: venv !== undefined && isFile(venv) ? venv : 'coda-lsp', args: serverArgs, cwd: folder };
}

function isExistingFile(file: string): boolean {
  return fs.statSync(file, { throwIfNoEntry: false })?.isFile() ?? false;
}
