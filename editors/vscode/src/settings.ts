// What the language server is told about the user's `coda.*` settings.
//
// The server reads the same options at `initialize` (initializationOptions) and
// on `workspace/didChangeConfiguration` (as `{coda: {...}}`), under camelCase
// keys. Only the options it knows are sent: the `coda.server.*`,
// `coda.inlineCompletions.*` and `coda.completionItems.*` settings belong to
// this extension.

/** The part of `vscode.WorkspaceConfiguration` read here, so this module needs no editor to run. */
export interface ConfigurationReader {
  get<T>(section: string): T | undefined;
}

/** The settings section this extension contributes, and the key the server looks under. */
export const SECTION = 'coda';

export interface ServerSettings {
  model: string | null;
  device: string;
  dtype: string;
  quantize: string;
  maxNewTokens: number;
  threshold: number;
  blockSize: number;
  contextBefore: number;
  contextAfter: number;
  contextFiles: number;
  contextOpenFiles: boolean;
  contextImports: boolean;
  contextRecentEdits: boolean;
  candidates: number;
  languages: string[] | null;
  completeInComments: boolean;
}

/**
 * The defaults repeat the ones declared in package.json: a reader without the
 * extension's manifest behind it (as in tests) still yields what the server
 * would use on its own.
 */
const DEFAULTS: ServerSettings = {
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
};

/** The server's options from the `coda` section of the configuration. */
export function serverSettings(config: ConfigurationReader): ServerSettings {
  const read = <K extends keyof ServerSettings>(key: K): ServerSettings[K] =>
    config.get<ServerSettings[K]>(key) ?? DEFAULTS[key];
  return {
    // An empty path in the settings UI means "not set", sent as null: the server
    // then keeps its own default (its --model, else $CODA_MODEL, else the bundled
    // coda-mini) rather than trying to load "".
    // settings.json is hand-edited: a model that is not a string goes to the server as it is,
    // which refuses it with a message naming the setting (trim() would throw here instead).
    model: modelSetting(read('model')),
    device: read('device'),
    dtype: read('dtype'),
    quantize: read('quantize'),
    maxNewTokens: read('maxNewTokens'),
    threshold: read('threshold'),
    blockSize: read('blockSize'),
    contextBefore: read('contextBefore'),
    contextAfter: read('contextAfter'),
    contextFiles: read('contextFiles'),
    contextOpenFiles: read('contextOpenFiles'),
    contextImports: read('contextImports'),
    contextRecentEdits: read('contextRecentEdits'),
    candidates: read('candidates'),
    languages: read('languages'),
    completeInComments: read('completeInComments'),
  };
}

/** The two completion features, each switched by `coda.<feature>.enabled`. */
export type Feature = 'inlineCompletions' | 'completionItems';

/**
 * Completion items are off by default: VS Code asks for them on nearly every
 * keystroke, next to the inline completion, and the server answers only the
 * newest request per document, so the two would keep cancelling each other.
 */
const FEATURE_DEFAULTS: Record<Feature, boolean> = { inlineCompletions: true, completionItems: false };

export function featureEnabled(config: ConfigurationReader, feature: Feature): boolean {
  return config.get<boolean>(`${feature}.enabled`) ?? FEATURE_DEFAULTS[feature];
}

/** Whether a configuration change touches anything the server reads. */
export function affectsServerSettings(affects: (section: string) => boolean): boolean {
  return (Object.keys(DEFAULTS) as (keyof ServerSettings)[]).some((key) => affects(`${SECTION}.${key}`));
}

/** The `workspace/didChangeConfiguration` params the server expects. */
export function configurationParams(settings: ServerSettings): { settings: { coda: ServerSettings } } {
  return { settings: { coda: settings } };
}


function modelSetting(value: unknown): string | null {
  if (typeof value === 'string') return value.trim() || null;
  return (value ?? null) as string | null; // not a string: the server names it in its refusal
}
