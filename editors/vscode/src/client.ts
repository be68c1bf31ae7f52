// One language server process at a time, and the client options it is run with.
//
// A restart makes a new LanguageClient rather than restarting the old one: the
// server's command line comes from settings that may have changed since.

import * as vscode from 'vscode';
import {
  DidChangeConfigurationNotification,
  LanguageClient,
  LanguageClientOptions,
  Middleware,
  ServerOptions,
  State,
} from 'vscode-languageclient/node';
import { SERVER_COMMANDS } from './commands';
import { Launch, launchSettings, resolveLaunch } from './server';
import { configurationParams, Feature, featureEnabled, SECTION, serverSettings } from './settings';
import { ServerStatus, Status, STATUS_NOTIFICATION } from './status';

/** The client's id; vscode-languageclient also reads `coda.trace.server` by it. */
export const CLIENT_ID = 'coda';

function configuration(): vscode.WorkspaceConfiguration {
  return vscode.workspace.getConfiguration(SECTION);
}

/** The first workspace folder: where `.venv` is looked for and the server runs. */
function workspaceFolder(): string | undefined {
  return vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
}

export function serverOptions(launch: Launch): ServerOptions {
  // No `transport`: the client would append a second `--stdio`.
  return { command: launch.command, args: launch.args, options: { cwd: launch.cwd } };
}

export function clientOptions(status: Status, outputChannel: vscode.LogOutputChannel): LanguageClientOptions {
  return {
    // Every language: the server decides, from `coda.languages`, where it completes.
    documentSelector: [{ scheme: 'file' }, { scheme: 'untitled' }],
    outputChannel,
    // A function, so that each (re)start sends the settings as they are then.
    initializationOptions: () => serverSettings(configuration()),
    middleware: middleware(status, (feature) => featureEnabled(configuration(), feature)),
  };
}

/**
 * Gates the two completion features on their settings and feeds the status bar.
 *
 * Inline completions are timed here, on the client, because the latency a
 * user feels includes the transport and the queue in the server.
 */
export function middleware(
  status: Status,
  enabled: (feature: Feature) => boolean,
  now: () => number = () => performance.now(),
): Middleware {
  return {
    provideInlineCompletionItems: async (document, position, context, token, next) => {
      if (!enabled('inlineCompletions')) {
        return null;
      }
      // Without a model the server answers at once, and with nothing: no latency to show.
      const modelLoaded = status.state === 'ready' || status.state === 'busy';
      const done = status.begin();
      const started = now();
      try {
        const items = await next(document, position, context, token);
        // A cancelled request was overtaken by typing; its time says nothing.
        if (modelLoaded && !token.isCancellationRequested) {
          status.completed(now() - started);
        }
        return items;
      } finally {
        done();
      }
    },
    provideCompletionItem: async (document, position, context, token, next) => {
      if (!enabled('completionItems')) {
        return null;
      }
      const done = status.begin();
      try {
        return await next(document, position, context, token);
      } finally {
        done();
      }
    },
    // Every server command passes here, from the light bulb or from our own commands.
    executeCommand: async (command, args, next) => {
      if (command === SERVER_COMMANDS.rewriteWithInstruction && typeof args[2] !== 'string') {
        // The light bulb's "Rewrite selection with instruction" carries no instruction: ask for it.
        const instruction = await askInstruction();
        if (instruction === undefined) {
          return false; // dismissed
        }
        // Empty: the server takes the instruction from a comment line above the selection.
        args = instruction === '' ? args.slice(0, 2) : [...args.slice(0, 2), instruction];
      }
      const done = status.begin();
      try {
        return await next(command, args);
      } finally {
        done();
      }
    },
  };
}

/** The instruction, trimmed; undefined when the box was dismissed. */
async function askInstruction(): Promise<string | undefined> {
  const answer = await vscode.window.showInputBox({
    title: 'CoDA: Rewrite Selection with Instruction',
    prompt: 'How should the selection change?',
    placeHolder: 'e.g. handle the empty list',
  });
  return answer?.trim();
}

export class Session {
  private client: LanguageClient | undefined;
  /** The start or stop under way; the next one waits for it, so two quick restarts leave one server. */
  private pending: Promise<void> = Promise.resolve();

  constructor(
    private readonly outputChannel: vscode.LogOutputChannel,
    private readonly status: Status,
  ) {}

  /** The client when its server is up, for commands that talk to it. */
  running(): LanguageClient | undefined {
    return this.client?.isRunning() ? this.client : undefined;
  }

  start(): Promise<void> {
    return this.inTurn(() => this.launch());
  }

  stop(): Promise<void> {
    return this.inTurn(() => this.shutdown());
  }

  restart(): Promise<void> {
    return this.inTurn(async () => {
      await this.shutdown();
      await this.launch();
    });
  }

  private inTurn(work: () => Promise<void>): Promise<void> {
    const turn = this.pending.then(work);
    this.pending = turn.catch(() => undefined); // the next turn runs whatever became of this one
    return turn;
  }

  /** A server that cannot be started is reported in the status bar, not thrown. */
  private async launch(): Promise<void> {
    const config = configuration();
    const launch = resolveLaunch(launchSettings(config), workspaceFolder());
    this.status.starting(serverSettings(config).model);
    this.outputChannel.info(`Starting ${[launch.command, ...launch.args].join(' ')} in ${launch.cwd ?? process.cwd()}`);
    try {
      const client = new LanguageClient(CLIENT_ID, 'CoDA', serverOptions(launch), clientOptions(this.status, this.outputChannel));
      this.client = client;
      client.onNotification(STATUS_NOTIFICATION, (params: ServerStatus) => this.status.reported(params));
      client.onDidChangeState(({ newState }) => {
        if (this.client !== client) {
          return; // a client being stopped on purpose
        }
        if (newState === State.Starting) {
          // vscode-languageclient restarting a server that crashed
          this.status.starting(this.status.model);
        } else if (newState === State.Stopped) {
          this.status.failed('The server stopped; see CoDA: Show Server Log, then CoDA: Restart Server.');
        }
      });
      await client.start();
    } catch (error) {
      this.status.failed(
        `Could not start ${launch.command}: ${errorMessage(error)}. ` +
          'Install the project (make test) or set coda.server.command or coda.server.pythonPath.',
      );
    }
  }

  private async shutdown(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    try {
      await client?.dispose();
    } catch (error) {
      // A server that never started or already died cannot be shut down cleanly; nothing is left to do.
      this.outputChannel.warn(`Stopping the server: ${errorMessage(error)}`);
    }
  }

  /** Tell the server about changed settings; it applies them to the next request, or reloads the model. */
  settingsChanged(): void {
    const client = this.client;
    // A client that is not up reads the settings when it starts.
    if (client === undefined || (client.state !== State.Running && client.state !== State.Starting)) {
      return;
    }
    client
      .sendNotification(DidChangeConfigurationNotification.type, configurationParams(serverSettings(configuration())))
      .catch((error) => this.outputChannel.error(`Sending settings: ${errorMessage(error)}`));
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
