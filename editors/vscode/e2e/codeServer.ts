// A real VS Code for the tests: code-server from the npm registry, with this
// extension in its extensions folder and a fresh user profile and workspace.
//
// code-server is VS Code's own workbench and extension host, served to a
// browser; it is the build of VS Code that installs from a registry this
// project can reach (the desktop builds and @vscode/test-web download VS Code
// from update.code.visualstudio.com at run time).

import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';

/** editors/vscode: the extension, built (`npm run build`) before the suite runs. */
const EXTENSION = path.resolve(__dirname, '..');
const CODE_SERVER = path.join(__dirname, 'node_modules', '.bin', 'code-server');
const WORKSPACE_FILES = path.join(__dirname, 'workspace');

/** The coda-lsp the extension starts: the project's venv, as `make test` passes it. */
export function codaLsp(): string {
  const server = process.env.CODA_LSP_SERVER;
  if (server === undefined || !fs.existsSync(server)) {
    throw new Error(`CODA_LSP_SERVER must name the coda-lsp executable (got ${server}); make test-vscode-e2e sets it`);
  }
  return server;
}

/**
 * The remote machine's settings every run starts from: the project's server. (A remote window,
 * code-server's included, takes machine-scoped settings such as `coda.server.command` from
 * here, not from the user's settings; and its extension host's PATH comes from a login shell.)
 */
export function machineSettings(): Record<string, unknown> {
  return { 'coda.server.command': codaLsp() };
}

/** User settings every run starts from: no editor features that race with ours. */
export function baseSettings(): Record<string, unknown> {
  return {
    // The extension declares untrusted workspaces unsupported; a test has no one to click "Trust".
    'security.workspace.trust.enabled': false,
    'workbench.startupEditor': 'none',
    'workbench.tips.enabled': false,
    'telemetry.telemetryLevel': 'off',
    'update.mode': 'none',
    'extensions.autoCheckUpdates': false,
    'extensions.ignoreRecommendations': true,
    // The word-based suggestion list would take Tab from the ghost text.
    'editor.quickSuggestions': { other: false, comments: false, strings: false },
    'editor.suggestOnTriggerCharacters': false,
    'editor.wordBasedSuggestions': 'off',
    'editor.inlineSuggest.showToolbar': 'always',
    'files.autoSave': 'off',
    'python.languageServer': 'None',
  };
}

export class CodeServer {
  private constructor(
    readonly root: string,
    readonly workspace: string,
    readonly url: string,
    private readonly process: ChildProcess,
  ) {}

  /** Starts code-server on a free port of 127.0.0.1, serving a copy of e2e/workspace. */
  static async start(): Promise<CodeServer> {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'coda-e2e-'));
    const userData = path.join(root, 'user-data');
    const extensions = path.join(root, 'extensions');
    const workspace = path.join(root, 'workspace');
    const settingsFile = path.join(userData, 'User', 'settings.json');
    fs.mkdirSync(path.join(userData, 'Machine'), { recursive: true });
    fs.mkdirSync(path.dirname(settingsFile), { recursive: true });
    fs.mkdirSync(extensions);
    // The extension as a user's VS Code holds it: a folder named publisher.name-version.
    const manifest = JSON.parse(fs.readFileSync(path.join(EXTENSION, 'package.json'), 'utf8'));
    fs.symlinkSync(EXTENSION, path.join(extensions, `${manifest.publisher}.${manifest.name}-${manifest.version}`));
    fs.cpSync(WORKSPACE_FILES, workspace, { recursive: true });
    fs.writeFileSync(settingsFile, JSON.stringify(baseSettings(), null, 2));
    fs.writeFileSync(path.join(userData, 'Machine', 'settings.json'), JSON.stringify(machineSettings(), null, 2));

    const child = spawn(
      CODE_SERVER,
      [
        '--bind-addr', '127.0.0.1:0',
        '--auth', 'none',
        '--config', path.join(root, 'config.yaml'),
        '--user-data-dir', userData,
        '--extensions-dir', extensions,
        '--disable-workspace-trust',
        '--disable-telemetry',
        '--disable-update-check',
        '--disable-getting-started-override',
        '--ignore-last-opened',
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, HOME: root },
      },
    );
    child.stderr?.on('data', (chunk) => process.stderr.write(`[code-server] ${chunk}`));
    const port = await listeningPort(child);
    const url = `http://127.0.0.1:${port}/?folder=${encodeURIComponent(workspace)}`;
    return new CodeServer(root, workspace, url, child);
  }

  /**
   * A settings file as it is on disk, parsed: `User` (the user's), or `Machine`, the remote
   * machine's, where a remote window such as code-server's reads machine-scoped settings
   * (`coda.server.*`) from; it ignores the user's values of those.
   */
  settingsOnDisk(scope: 'User' | 'Machine'): unknown {
    return JSON.parse(fs.readFileSync(path.join(this.root, 'user-data', scope, 'settings.json'), 'utf8'));
  }

  file(name: string): string {
    return path.join(this.workspace, name);
  }

  read(name: string): string {
    return fs.readFileSync(this.file(name), 'utf8');
  }

  /** Puts a workspace file back as e2e/workspace has it. */
  restore(name: string): void {
    fs.copyFileSync(path.join(WORKSPACE_FILES, name), this.file(name));
  }

  /** The process ids of the coda-lsp servers this code-server's extension host runs. */
  serverPids(): number[] {
    return descendants(this.process.pid ?? -1).filter((pid) => commandLine(pid).some((arg) => arg.endsWith('coda-lsp')));
  }

  async stop(): Promise<void> {
    if (this.process.exitCode === null && this.process.signalCode === null) {
      const exited = new Promise((resolve) => this.process.once('exit', resolve));
      this.process.kill('SIGTERM');
      await exited;
    }
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}

/** The port code-server prints once it listens ("HTTP server listening on http://127.0.0.1:PORT/"). */
function listeningPort(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    const lines = readline.createInterface({ input: child.stdout! });
    const printed: string[] = [];
    lines.on('line', (line) => {
      printed.push(line);
      const match = /HTTP server listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(line);
      if (match) {
        resolve(Number(match[1]));
      }
    });
    child.once('exit', (code) => reject(new Error(`code-server exited with ${code} before listening:\n${printed.join('\n')}`)));
  });
}

function commandLine(pid: number): string[] {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return []; // gone meanwhile
  }
}

/** Every process below `root`, read from /proc (Linux, where the suite runs). */
function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of fs.readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) {
      continue;
    }
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue;
    }
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so read after the last ')'.
    const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    children.set(parent, [...(children.get(parent) ?? []), pid]);
  }
  const found: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    for (const child of children.get(queue.shift()!) ?? []) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}
