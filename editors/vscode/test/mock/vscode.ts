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
  /** `file:///a/b.py` or `untitled:Untitled-1`; an encoded file path is decoded, as VS Code does. */
  static parse(value: string): Uri {
    const match = /^([a-zA-Z][\w+.-]*):(?:\/\/([^/]*))?(.*)$/.exec(value);
    if (match === null) {
      throw new Error(`not a URI: ${value}`);
    }
    const [, scheme, authority, rest] = match;
    if (scheme === 'file' && authority) {
      throw new Error(`file URIs with an authority are not supported by the mock: ${value}`);
    }
    return new Uri(scheme, decodeURIComponent(rest));
  }
  get path(): string {
    return this.fsPath;
  }
  toString(): string {
    return this.scheme === 'file' ? `file://${this.fsPath}` : `${this.scheme}:${this.fsPath}`;
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

export enum CodeActionTriggerKind {
  Invoke = 1,
  Automatic = 2,
}

export class CodeAction {
  command?: { title: string; command: string; tooltip?: string; arguments?: unknown[] };
  edit?: WorkspaceEdit;
  diagnostics?: unknown[];
  isPreferred?: boolean;
  disabled?: { reason: string };
  constructor(
    public title: string,
    public kind?: CodeActionKind,
  ) {}
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
  append(part: string): CodeActionKind {
    return new CodeActionKind(this.value ? `${this.value}.${part}` : part);
  }
}

export class TextEdit {
  constructor(
    public range: Range,
    public newText: string,
  ) {}
  static replace(range: Range, newText: string): TextEdit {
    return new TextEdit(range, newText);
  }
  static insert(position: Position, newText: string): TextEdit {
    return new TextEdit(new Range(position, position), newText);
  }
  static delete(range: Range): TextEdit {
    return new TextEdit(range, '');
  }
}

/** Text edits per document; file operations are not part of this mock. */
export class WorkspaceEdit {
  private readonly edits = new Map<string, { uri: Uri; edits: TextEdit[] }>();
  get size(): number {
    return this.edits.size;
  }
  set(uri: Uri, edits: readonly (TextEdit | [TextEdit, unknown])[] | null | undefined): void {
    if (edits === null || edits === undefined) {
      this.edits.delete(uri.toString());
      return;
    }
    const plain = edits.map((edit) => (Array.isArray(edit) ? edit[0] : edit));
    for (const edit of plain) {
      if (!(edit instanceof TextEdit)) {
        throw new Error('the mock WorkspaceEdit takes text edits only');
      }
    }
    this.edits.set(uri.toString(), { uri, edits: plain });
  }
  replace(uri: Uri, range: Range, newText: string): void {
    this.set(uri, [...this.get(uri), new TextEdit(range, newText)]);
  }
  insert(uri: Uri, position: Position, newText: string): void {
    this.replace(uri, new Range(position, position), newText);
  }
  delete(uri: Uri, range: Range): void {
    this.replace(uri, range, '');
  }
  has(uri: Uri): boolean {
    return this.edits.has(uri.toString());
  }
  get(uri: Uri): TextEdit[] {
    return this.edits.get(uri.toString())?.edits ?? [];
  }
  entries(): [Uri, TextEdit[]][] {
    return [...this.edits.values()].map(({ uri, edits }) => [uri, edits]);
  }
  createFile(): never {
    throw new Error('file operations are not supported by the mock');
  }
  deleteFile(): never {
    throw new Error('file operations are not supported by the mock');
  }
  renameFile(): never {
    throw new Error('file operations are not supported by the mock');
  }
}

export enum EndOfLine {
  LF = 1,
  CRLF = 2,
}

/** A text document in memory, as `workspace.openTextDocument` gives it (the mock's documents use "\n" only). */
export class TextDocument {
  private content: string;
  private currentVersion = 1;
  isClosed = false;
  readonly eol = EndOfLine.LF;
  constructor(
    readonly uri: Uri,
    readonly languageId: string,
    text: string,
  ) {
    if (text.includes('\r')) {
      throw new Error('the mock documents take "\\n" line ends only');
    }
    this.content = text;
  }
  get fileName(): string {
    return this.uri.fsPath;
  }
  get isUntitled(): boolean {
    return this.uri.scheme === 'untitled';
  }
  get version(): number {
    return this.currentVersion;
  }
  /** Edited since it was opened (the mock never saves). */
  get isDirty(): boolean {
    return this.currentVersion > 1;
  }
  get lineCount(): number {
    return this.content.split('\n').length;
  }
  getText(range?: Range): string {
    return range === undefined ? this.content : this.content.slice(this.offsetAt(range.start), this.offsetAt(range.end));
  }
  lineAt(lineOrPosition: number | Position): { lineNumber: number; text: string; range: Range; isEmptyOrWhitespace: boolean } {
    const line = typeof lineOrPosition === 'number' ? lineOrPosition : lineOrPosition.line;
    const text = this.content.split('\n')[line];
    if (text === undefined) {
      throw new Error(`no line ${line} in ${this.uri.toString()}`);
    }
    return { lineNumber: line, text, range: new Range(line, 0, line, text.length), isEmptyOrWhitespace: text.trim() === '' };
  }
  /** Offsets and positions in UTF-16 code units, clamped to the text, as VS Code's are. */
  offsetAt(position: Position): number {
    const lines = this.content.split('\n');
    const line = Math.min(Math.max(position.line, 0), lines.length - 1);
    let offset = 0;
    for (let i = 0; i < line; i++) {
      offset += lines[i].length + 1;
    }
    return offset + Math.min(Math.max(position.character, 0), lines[line].length);
  }
  positionAt(offset: number): Position {
    const before = this.content.slice(0, Math.min(Math.max(offset, 0), this.content.length)).split('\n');
    return new Position(before.length - 1, before[before.length - 1].length);
  }
  /** Replaces the ranges (of the text as it is now, not overlapping) in one change, as an edit in VS Code does. */
  applyEdits(edits: readonly TextEdit[]): { range: Range; rangeOffset: number; rangeLength: number; text: string }[] {
    const changes = edits
      .map((edit) => {
        const start = this.offsetAt(edit.range.start);
        const end = this.offsetAt(edit.range.end);
        return { range: new Range(this.positionAt(start), this.positionAt(end)), rangeOffset: start, rangeLength: end - start, text: edit.newText };
      })
      .sort((a, b) => b.rangeOffset - a.rangeOffset); // last first: each change's range holds when applied in order
    changes.forEach((change, i) => {
      if (i > 0 && change.rangeOffset + change.rangeLength > changes[i - 1].rangeOffset) {
        throw new Error('overlapping edits');
      }
    });
    for (const change of changes) {
      this.content = this.content.slice(0, change.rangeOffset) + change.text + this.content.slice(change.rangeOffset + change.rangeLength);
    }
    this.currentVersion++;
    return changes;
  }
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
  readonly documentOpened = new EventEmitter<TextDocument>();
  readonly documentChanged = new EventEmitter<TextDocumentChangeEvent>();
  readonly documentClosed = new EventEmitter<TextDocument>();
  readonly workspaceFoldersChanged = new EventEmitter<{ added: unknown[]; removed: unknown[] }>();
  /** Each workspace.applyEdit, in order, whether it was applied or not. */
  readonly appliedEdits: { edit: WorkspaceEdit; applied: boolean }[] = [];
  /** The level output channels are created with: VS Code's default log level (Developer: Set Log Level). */
  logLevel = LogLevel.Info;

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
    this.appliedEdits.length = 0;
    this.logLevel = LogLevel.Info;
    workspace.textDocuments.length = 0;
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

export interface TextDocumentChangeEvent {
  document: TextDocument;
  contentChanges: readonly { range: Range; rangeOffset: number; rangeLength: number; text: string }[];
  reason: undefined;
}

let untitledCount = 0;

const LANGUAGES: { [extension: string]: string } = { '.py': 'python', '.rs': 'rust', '.ts': 'typescript', '.js': 'javascript' };

export const workspace = {
  workspaceFolders: undefined as { uri: Uri; name: string; index: number }[] | undefined,
  /** The open documents. */
  textDocuments: [] as TextDocument[],
  getConfiguration: (section?: string) => new WorkspaceConfiguration(section ?? ''),
  onDidChangeConfiguration: editor.configurationChanged.event,
  onDidOpenTextDocument: editor.documentOpened.event,
  onDidCloseTextDocument: editor.documentClosed.event,
  onDidChangeTextDocument: editor.documentChanged.event,
  onDidChangeWorkspaceFolders: editor.workspaceFoldersChanged.event,
  /** A file from disk (its language from its extension, else plaintext), or an untitled document. */
  async openTextDocument(source: Uri | { language?: string; content?: string }): Promise<TextDocument> {
    if (source instanceof Uri) {
      const open = workspace.textDocuments.find((document) => document.uri.toString() === source.toString());
      if (open !== undefined) {
        return open;
      }
      if (source.scheme !== 'file') {
        throw new Error(`the mock opens files only, not ${source.toString()}`);
      }
      const text = await fs.promises.readFile(source.fsPath, 'utf8');
      return opened(new TextDocument(source, LANGUAGES[path.extname(source.fsPath)] ?? 'plaintext', text));
    }
    const uri = Uri.parse(`untitled:Untitled-${++untitledCount}`);
    return opened(new TextDocument(uri, source.language ?? 'plaintext', source.content ?? ''));
  },
  /**
   * Applies the text edits, each document's in one change that raises its version by one and fires
   * onDidChangeTextDocument. A file that is not open is opened first, as VS Code does; when one
   * cannot be, nothing is applied.
   */
  async applyEdit(edit: WorkspaceEdit): Promise<boolean> {
    const targets: { document: TextDocument; edits: TextEdit[] }[] = [];
    for (const [uri, edits] of edit.entries()) {
      try {
        targets.push({ document: await workspace.openTextDocument(uri), edits });
      } catch {
        editor.appliedEdits.push({ edit, applied: false });
        return false;
      }
    }
    editor.appliedEdits.push({ edit, applied: true });
    for (const { document, edits } of targets) {
      const contentChanges = document.applyEdits(edits);
      editor.documentChanged.fire({ document, contentChanges, reason: undefined });
    }
    return true;
  },
  onDidSaveTextDocument: new EventEmitter<unknown>().event,
  onWillSaveTextDocument: new EventEmitter<unknown>().event,
  onDidCreateFiles: new EventEmitter<unknown>().event,
  onDidRenameFiles: new EventEmitter<unknown>().event,
  onDidDeleteFiles: new EventEmitter<unknown>().event,
  onWillCreateFiles: new EventEmitter<unknown>().event,
  onWillRenameFiles: new EventEmitter<unknown>().event,
  onWillDeleteFiles: new EventEmitter<unknown>().event,
};

function opened(document: TextDocument): TextDocument {
  workspace.textDocuments.push(document);
  editor.documentOpened.fire(document);
  return document;
}

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
  readonly logLevel = editor.logLevel;
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

export interface TextEditor {
  document: TextDocument;
  selection: Selection;
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
  /** Makes `document` the active editor's, the selection at the start unless given. */
  showTextDocument(document: TextDocument, options?: { selection?: Range }): Promise<TextEditor> {
    const range = options?.selection ?? new Range(0, 0, 0, 0);
    const textEditor: TextEditor = { document, selection: new Selection(range.start, range.end) };
    window.activeTextEditor = textEditor;
    return Promise.resolve(textEditor);
  },
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

type DocumentFilter = { language?: string; scheme?: string; pattern?: unknown; notebookType?: string };
type DocumentSelector = string | DocumentFilter | readonly (string | DocumentFilter)[];

/** VS Code's score of a document for a selector: 10 an exact match, 5 a wildcard one, 0 none. */
function match(selector: DocumentSelector, document: TextDocument): number {
  if (Array.isArray(selector)) {
    return Math.max(0, ...selector.map((filter) => match(filter, document)));
  }
  if (typeof selector === 'string') {
    return selector === document.languageId ? 10 : selector === '*' ? 5 : 0;
  }
  const { language, scheme, pattern, notebookType } = selector as DocumentFilter;
  if (pattern !== undefined || notebookType !== undefined) {
    throw new Error('document filters with a pattern or notebookType are not supported by the mock');
  }
  let score = 0;
  for (const [wanted, actual] of [
    [scheme, document.uri.scheme],
    [language, document.languageId],
  ]) {
    if (wanted === undefined) {
      continue;
    }
    if (wanted === actual) {
      score = 10;
    } else if (wanted === '*') {
      score = Math.max(score, 5);
    } else {
      return 0;
    }
  }
  return score;
}

/** `languages.register*Provider`: vscode-languageclient registers one per server capability. */
export const languages = new Proxy(
  {},
  {
    get(_target, name: string) {
      if (name === 'match') {
        return match;
      }
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
