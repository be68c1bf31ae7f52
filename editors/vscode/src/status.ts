// What the status bar says: which model, in which state, and how fast the last
// inline completion came back.
//
// Two sources drive it. The client's lifecycle says whether a server process
// is up at all; the server's `coda/status` notification says where the model
// load stands, which is most of the wait on a cold start. On top of "ready",
// requests and commands in flight show as "busy".

export type State = 'starting' | 'loading' | 'ready' | 'busy' | 'error';

/** The server's notification, sent when a model load starts and ends, and while a hub model downloads. */
export const STATUS_NOTIFICATION = 'coda/status';

export interface ServerStatus {
  state: 'loading' | 'ready' | 'error';
  model: string | null;
  message?: string;
  /** While a hub model downloads: how much of it is on disk, 0 to 100. */
  percentage?: number;
}

export class Status {
  private server: Exclude<State, 'busy'> = 'starting';
  private inFlight = 0;
  private currentModel: string | null = null;
  private currentMessage: string | undefined;
  private currentPercentage: number | undefined;
  private lastLatencyMs: number | undefined;
  private inline = true;
  private readonly listeners: (() => void)[] = [];

  get state(): State {
    return this.server === 'ready' && this.inFlight > 0 ? 'busy' : this.server;
  }

  get model(): string | null {
    return this.currentModel;
  }

  /** Why the state is "error". */
  get message(): string | undefined {
    return this.currentMessage;
  }

  /** How much of a downloading model is on disk (0 to 100), while it downloads. */
  get percentage(): number | undefined {
    return this.currentPercentage;
  }

  get latencyMs(): number | undefined {
    return this.lastLatencyMs;
  }

  get inlineEnabled(): boolean {
    return this.inline;
  }

  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  /** A server process is being started for `model` (the configured one, until the server names its own). */
  starting(model: string | null): void {
    this.server = 'starting';
    this.currentModel = model;
    this.currentMessage = undefined;
    this.currentPercentage = undefined;
    this.changed();
  }

  /** The server's `coda/status` notification. */
  reported(status: ServerStatus): void {
    this.server = status.state;
    this.currentModel = status.model;
    this.currentMessage = status.message; // an error, a download's progress, or a warning while ready
    this.currentPercentage = status.state === 'loading' ? status.percentage : undefined;
    this.changed();
  }

  /** The server could not be started, or stopped without being asked to. */
  failed(message: string): void {
    this.server = 'error';
    this.currentMessage = message;
    this.changed();
  }

  /** A request or command went out; call what this returns when it is answered. */
  begin(): () => void {
    this.inFlight++;
    this.changed();
    let done = false;
    return () => {
      if (!done) {
        done = true;
        this.inFlight--;
        this.changed();
      }
    };
  }

  /** An inline completion round trip finished in `latencyMs`. */
  completed(latencyMs: number): void {
    this.lastLatencyMs = latencyMs;
    this.changed();
  }

  setInlineEnabled(enabled: boolean): void {
    this.inline = enabled;
    this.changed();
  }

  private changed(): void {
    for (const listener of this.listeners) {
      listener();
    }
  }
}

export interface StatusView {
  text: string;
  tooltip: string;
  error: boolean;
}

const ICONS: Record<State, string> = {
  starting: '$(sync~spin)',
  loading: '$(loading~spin)',
  ready: '$(sparkle)',
  busy: '$(sync~spin)',
  error: '$(error)',
};

const WORDS: Record<State, string> = {
  starting: 'starting',
  loading: 'loading model',
  ready: 'ready',
  busy: 'busy',
  error: 'error',
};

/** The status bar item's text and tooltip. */
export function describe(status: Status): StatusView {
  const state = status.state;
  const name = status.model === null ? 'CoDA' : `CoDA ${modelName(status.model)}`;
  const words = state === 'loading' && status.percentage !== undefined ? `downloading ${status.percentage}%` : WORDS[state];
  const parts = [`${ICONS[state]} ${name}: ${words}`];
  if (status.latencyMs !== undefined && (state === 'ready' || state === 'busy')) {
    parts.push(formatLatency(status.latencyMs));
  }
  if (!status.inlineEnabled) {
    parts.push('inline off');
  }
  const tooltip = [
    // null while a server starts with coda.model empty: it loads its default, and names it once it reports.
    `Model: ${status.model ?? "the server's default (coda-mini)"}`,
    `State: ${words}`,
    ...(status.message ? [status.message] : []),
    ...(status.latencyMs !== undefined ? [`Last inline completion: ${formatLatency(status.latencyMs)}`] : []),
    `Inline completions: ${status.inlineEnabled ? 'on' : 'off'}`,
    'Click to show the server log',
  ];
  return { text: parts.join(' · '), tooltip: tooltip.join('\n'), error: state === 'error' };
}

/** The last part of a model directory or hub id: `models/tiny` → `tiny`. */
export function modelName(model: string): string {
  const parts = model.split(/[\\/]+/).filter((part) => part.length > 0);
  return parts.length > 0 ? parts[parts.length - 1] : model;
}

export function formatLatency(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}
