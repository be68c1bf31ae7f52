// The `vscode` module, outside VS Code: the API surface that this extension and
// vscode-languageclient use, working in memory, plus `editor`, a handle on the
// editor's state for tests to arrange and inspect.
//
// Settings come with the defaults declared in package.json, so that tests see
// what a user without settings gets.

import * as fs from 'node:fs';
import * as path from 'node:path';

export const version = '1.91.0';

type Listener<T> = (event: T) => unknown;

export class Disposable {
  constructor(private readonly callOnDispose: () => unknown) {}
  dispose(): void {
    this.callOnDispose();
  }
}

export class EventEmitter<T> {
  private listeners: Listener<T>[] = [];
  readonly event = (listener: Listener<T>, thisArg?: unknown, disposables?: Disposable[]): Disposable => {
    const bound: Listener<T> = (e) => listener.call(thisArg, e);
    this.listeners.push(bound);
    const disposable = new Disposable(() => (this.listeners = this.listeners.filter((l) => l !== bound)));
    disposables?.push(disposable);
    return disposable;
  };
  fire(event: T): void {
    this.listeners.forEach((listener) => listener(event));
  }
  dispose(): void {
    this.listeners = [];
  }
}

export class Position {
  constructor(
    readonly line: number,
    readonly character: number,
  ) {}
}

export class Range {
  readonly start: Position;
  readonly end: Position;
  constructor(start: Position, end: Position);
  constructor(startLine: number, startCharacter: number, endLine: number, endCharacter: number);
  constructor(...args: [Position, Position] | [number, number, number, number]) {
    if (args.length === 2) {
      [this.start, this.end] = args;
    } else {
      this.start = new Position(args[0], args[1]);
      this.end = new Position(args[2], args[3]);
    }
  }
}

export class Selection extends Range {
  constructor(
    readonly anchor: Position,
    readonly active: Position,
  ) {
    super(anchor, active);
  }
}

export class Uri {
  private constructor(
    readonly scheme: string,
    readonly fsPath: string,
  ) {}
  static file(file: string): Uri {
    return new Uri('file', file);
  }
  toString(): string {
    return `${this.scheme}://${this.fsPath}`;
  }
}

export class ThemeColor {
  constructor(readonly id: string) {}
}

export enum ProgressLocation {
  SourceControl = 1,
  Window = 10,
  Notification = 15,
}

export class CancellationTokenSource {
  private readonly emitter = new EventEmitter<void>();
  readonly token = {
    isCancellationRequested: false,
    onCancellationRequested: this.emitter.event,
  };
  cancel(): void {
    this.token.isCancellationRequested = true;
    this.emitter.fire();
  }
  dispose(): void {
    this.emitter.dispose();
  }
}

export class CancellationError extends Error {}

/** Classes vscode-languageclient extends or constructs; plain records are enough here. */
class Plain {
  constructor(...args: unknown[]) {
    Object.assign(this, { args });
  }
}
export class CallHierarchyItem extends Plain {}
export class CodeAction extends Plain {}
export class CodeLens extends Plain {}
export class Diagnostic extends Plain {}
export class DocumentLink extends Plain {}
export class InlayHint extends Plain {}
export class SymbolInformation extends Plain {}
export class TypeHierarchyItem extends Plain {}
export class CompletionItem {
  constructor(
    public label: string,
    public kind?: number,
  ) {}
}
export class CompletionList {
  constructor(
    readonly items: unknown[] = [],
    readonly isIncomplete = false,
  ) {}
}
export class InlineCompletionItem {
  constructor(
    readonly insertText: string,
    readonly range?: Range,
    readonly command?: unknown,
  ) {}
}
export class InlineCompletionList {
  constructor(readonly items: InlineCompletionItem[]) {}
}

export class CodeActionKind {
  static readonly Empty = new CodeActionKind('');
  static readonly QuickFix = new CodeActionKind('quickfix');
  static readonly Refactor = new CodeActionKind('refactor');
  static readonly RefactorExtract = new CodeActionKind('refactor.extract');
  static readonly RefactorInline = new CodeActionKind('refactor.inline');
  static readonly RefactorRewrite = new CodeActionKind('refactor.rewrite');
  static readonly Source = new CodeActionKind('source');
  static readonly SourceOrganizeImports = new CodeActionKind('source.organizeImports');
  constructor(readonly value: string) {}
}

export enum StatusBarAlignment {
  Left = 1,
  Right = 2,
}
export enum ConfigurationTarget {
  Global = 1,
  Workspace = 2,
}
export enum InlineCompletionTriggerKind {
  Invoke = 0,
  Automatic = 1,
}
export enum CompletionTriggerKind {
  Invoke = 0,
  TriggerCharacter = 1,
  TriggerForIncompleteCompletions = 2,
}
export enum LogLevel {
  Off = 0,
  Trace = 1,
  Debug = 2,
  Info = 3,
  Warning = 4,
  Error = 5,
}

/** What the extension showed and set, and the answers the user will give. */
class EditorState {
  readonly settings = new Map<string, unknown>();
  readonly workspaceSettings = new Map<string, unknown>();
  readonly commands = new Map<string, (...args: any[]) => unknown>();
  readonly statusBarItems: StatusBarItem[] = [];
  readonly outputChannels: OutputChannel[] = [];
  readonly messages: { level: 'info' | 'warning' | 'error'; text: string }[] = [];
  readonly providers = new Map<string, unknown[]>();
  inputBoxAnswers: (string | undefined)[] = [];
  /** Each window.withProgress: its options, and the source of the token its task got (tests cancel it). */
  readonly progress: { options: { location: ProgressLocation; title?: string; cancellable?: boolean }; cancel: CancellationTokenSource }[] = [];
  readonly configurationChanged = new EventEmitter<{ affectsConfiguration(section: string): boolean }>();

  /** Set a user setting, as the settings editor does, and tell the listeners. */
  async configure(key: string, value: unknown, target = ConfigurationTarget.Global): Promise<void> {
    const scope = target === ConfigurationTarget.Global ? this.settings : this.workspaceSettings;
    if (value === undefined) {
      scope.delete(key);
    } else {
      scope.set(key, value);
    }
    this.configurationChanged.fire({
      affectsConfiguration: (section) => key === section || key.startsWith(`${section}.`),
    });
  }

  /** Forget everything a test left behind. */
  reset(): void {
    this.settings.clear();
    this.workspaceSettings.clear();
    this.commands.clear();
    this.statusBarItems.length = 0;
    this.outputChannels.length = 0;
    this.messages.length = 0;
    this.providers.clear();
    this.inputBoxAnswers = [];
    this.progress.length = 0;
    workspace.workspaceFolders = undefined;
    window.activeTextEditor = undefined;
  }
}

export const editor = new EditorState();

const manifest = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'package.json'), 'utf8'));
const declaredDefaults: { [key: string]: { default?: unknown } } = manifest.contributes.configuration.properties;

class WorkspaceConfiguration {
  constructor(private readonly section: string) {}

  private key(name: string): string {
    return this.section ? `${this.section}.${name}` : name;
  }

  get<T>(name: string, defaultValue?: T): T | undefined {
    const key = this.key(name);
    for (const scope of [editor.workspaceSettings, editor.settings]) {
      if (scope.has(key)) {
        return scope.get(key) as T;
      }
    }
    return key in declaredDefaults ? (declaredDefaults[key].default as T) : defaultValue;
  }

  inspect<T>(name: string): { key: string; defaultValue?: T; globalValue?: T; workspaceValue?: T } {
    const key = this.key(name);
    return {
      key,
      defaultValue: declaredDefaults[key]?.default as T,
      globalValue: editor.settings.get(key) as T,
      workspaceValue: editor.workspaceSettings.get(key) as T,
    };
  }

  update(name: string, value: unknown, target: ConfigurationTarget | boolean = ConfigurationTarget.Workspace): Promise<void> {
    const scope = target === true || target === ConfigurationTarget.Global ? ConfigurationTarget.Global : ConfigurationTarget.Workspace;
    return editor.configure(this.key(name), value, scope);
  }
}

export const workspace = {
  workspaceFolders: undefined as { uri: Uri; name: string; index: number }[] | undefined,
  textDocuments: [] as unknown[],
  getConfiguration: (section?: string) => new WorkspaceConfiguration(section ?? ''),
  onDidChangeConfiguration: editor.configurationChanged.event,
  onDidOpenTextDocument: new EventEmitter<unknown>().event,
  onDidCloseTextDocument: new EventEmitter<unknown>().event,
  onDidChangeTextDocument: new EventEmitter<unknown>().event,
  onDidSaveTextDocument: new EventEmitter<unknown>().event,
  onWillSaveTextDocument: new EventEmitter<unknown>().event,
  onDidCreateFiles: new EventEmitter<unknown>().event,
  onDidRenameFiles: new EventEmitter<unknown>().event,
  onDidDeleteFiles: new EventEmitter<unknown>().event,
  onWillCreateFiles: new EventEmitter<unknown>().event,
  onWillRenameFiles: new EventEmitter<unknown>().event,
  onWillDeleteFiles: new EventEmitter<unknown>().event,
};

function noEvent(): Disposable {
  return new Disposable(() => undefined);
}

export class StatusBarItem {
  readonly history: string[] = [];
  private currentText = '';
  name = '';
  command: string | undefined;
  tooltip: string | undefined;
  backgroundColor: ThemeColor | undefined;
  visible = false;
  constructor(
    readonly id: string,
    readonly alignment: StatusBarAlignment,
    readonly priority: number,
  ) {}
  get text(): string {
    return this.currentText;
  }
  set text(value: string) {
    this.currentText = value;
    this.history.push(value);
  }
  show(): void {
    this.visible = true;
  }
  dispose(): void {
    this.visible = false;
  }
}

export class OutputChannel {
  readonly lines: string[] = [];
  shown = 0;
  readonly logLevel = LogLevel.Info;
  readonly onDidChangeLogLevel = noEvent;
  constructor(readonly name: string) {}
  appendLine(value: string): void {
    this.lines.push(value);
  }
  trace(message: string): void {
    this.lines.push(`[trace] ${message}`);
  }
  debug(message: string): void {
    this.lines.push(`[debug] ${message}`);
  }
  info(message: string): void {
    this.lines.push(`[info] ${message}`);
  }
  warn(message: string): void {
    this.lines.push(`[warning] ${message}`);
  }
  error(message: string | Error): void {
    this.lines.push(`[error] ${message}`);
  }
  show(): void {
    this.shown++;
  }
  dispose(): void {}
}

function showMessage(level: 'info' | 'warning' | 'error') {
  return (text: string): Promise<string | undefined> => {
    editor.messages.push({ level, text });
    return Promise.resolve(undefined);
  };
}

export const window = {
  activeTextEditor: undefined as unknown,
  createOutputChannel(name: string): OutputChannel {
    const channel = new OutputChannel(name);
    editor.outputChannels.push(channel);
    return channel;
  },
  createStatusBarItem(id: string, alignment: StatusBarAlignment, priority: number): StatusBarItem {
    const item = new StatusBarItem(id, alignment, priority);
    editor.statusBarItems.push(item);
    return item;
  },
  showInformationMessage: showMessage('info'),
  showWarningMessage: showMessage('warning'),
  showErrorMessage: showMessage('error'),
  showInputBox: () => Promise.resolve(editor.inputBoxAnswers.shift()),
  withProgress<R>(
    options: { location: ProgressLocation; title?: string; cancellable?: boolean },
    task: (progress: { report(value: unknown): void }, token: CancellationTokenSource['token']) => Thenable<R>,
  ): Thenable<R> {
    const cancel = new CancellationTokenSource();
    editor.progress.push({ options, cancel });
    return task({ report: () => undefined }, cancel.token);
  },
};

export const commands = {
  registerCommand(id: string, handler: (...args: any[]) => unknown): Disposable {
    if (editor.commands.has(id)) {
      throw new Error(`command '${id}' already exists`);
    }
    editor.commands.set(id, handler);
    return new Disposable(() => editor.commands.delete(id));
  },
  async executeCommand<T>(id: string, ...args: unknown[]): Promise<T> {
    const handler = editor.commands.get(id);
    if (handler === undefined) {
      throw new Error(`command '${id}' not found`);
    }
    return (await handler(...args)) as T;
  },
};

/** `languages.register*Provider`: vscode-languageclient registers one per server capability. */
export const languages = new Proxy(
  {},
  {
    get(_target, name: string) {
      if (!name.startsWith('register')) {
        return undefined;
      }
      return (selector: unknown, provider: unknown) => {
        const registered = editor.providers.get(name) ?? [];
        const entry = { selector, provider };
        registered.push(entry);
        editor.providers.set(name, registered);
        return new Disposable(() => registered.splice(registered.indexOf(entry), 1));
      };
    },
  },
);

export const env = {
  appName: 'Visual Studio Code',
  language: 'en',
};
