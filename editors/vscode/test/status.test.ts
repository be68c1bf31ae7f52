import { strict as assert } from 'node:assert';
import { describe as suite, it } from 'node:test';
import { describe, formatLatency, modelName, Status } from '../src/status';

suite('Status', () => {
  it('goes starting → loading → ready → busy → ready', () => {
    const status = new Status();
    const seen: string[] = [];
    status.onChange(() => seen.push(status.state));

    status.starting('models/tiny');
    status.reported({ state: 'loading', model: 'models/tiny' });
    status.reported({ state: 'ready', model: 'models/tiny' });
    const done = status.begin();
    assert.equal(status.state, 'busy');
    done();

    assert.deepEqual(seen, ['starting', 'loading', 'ready', 'busy', 'ready']);
  });

  it('stays busy until the last request in flight is answered', () => {
    const status = new Status();
    status.reported({ state: 'ready', model: 'm' });
    const first = status.begin();
    const second = status.begin();
    first();
    first(); // answered twice (a finally after a cancellation): counted once
    assert.equal(status.state, 'busy');
    second();
    assert.equal(status.state, 'ready');
  });

  it('shows a load over requests in flight', () => {
    const status = new Status();
    status.reported({ state: 'loading', model: 'm' });
    const done = status.begin();
    assert.equal(status.state, 'loading');
    done();
  });

  it("keeps the server's error message, and forgets it when the server recovers", () => {
    const status = new Status();
    status.reported({ state: 'error', model: 'models/missing', message: 'could not load models/missing' });
    assert.equal(status.state, 'error');
    assert.equal(status.message, 'could not load models/missing');
    status.reported({ state: 'loading', model: 'models/tiny' });
    assert.equal(status.message, undefined);
  });

  it("shows the server's warning while ready (completions that keep coming back empty) until it clears", () => {
    const status = new Status();
    const warning = 'the last 5 completions were empty: the model suggested only whitespace or nothing';
    status.reported({ state: 'ready', model: 'models/tiny', message: warning });
    assert.equal(status.state, 'ready');
    assert.match(describe(status).tooltip, /last 5 completions were empty/);
    status.reported({ state: 'ready', model: 'models/tiny' });
    assert.doesNotMatch(describe(status).tooltip, /empty/);
  });

  it('is an error when the server cannot run, whatever the model did', () => {
    const status = new Status();
    status.reported({ state: 'ready', model: 'models/tiny' });
    status.failed('The server stopped');
    assert.equal(status.state, 'error');
    assert.equal(status.message, 'The server stopped');
    assert.equal(status.model, 'models/tiny');
  });

  it('names the model the server reports over the configured one', () => {
    const status = new Status();
    status.starting(null);
    status.reported({ state: 'loading', model: 'Salesforce/CoDA-v0-Instruct' });
    assert.equal(status.model, 'Salesforce/CoDA-v0-Instruct');
  });
});

suite('describe', () => {
  it('shows model, state and latency', () => {
    const status = new Status();
    status.reported({ state: 'ready', model: 'models/tiny' });
    assert.equal(describe(status).text, '$(sparkle) CoDA tiny: ready');
    status.completed(182.4);
    assert.equal(describe(status).text, '$(sparkle) CoDA tiny: ready · 182 ms');
    assert.match(describe(status).tooltip, /Model: models\/tiny/);
    assert.match(describe(status).tooltip, /Last inline completion: 182 ms/);
    assert.equal(describe(status).error, false);
  });

  it('has a word for every state', () => {
    const status = new Status();
    status.starting(null);
    assert.equal(describe(status).text, '$(sync~spin) CoDA: starting');
    status.reported({ state: 'loading', model: 'models/tiny' });
    assert.equal(describe(status).text, '$(loading~spin) CoDA tiny: loading model');
    const downloading = 'downloading org/model into the Hugging Face cache (once): 1.20 of 8.10 GB';
    status.reported({ state: 'loading', model: 'models/tiny', message: downloading, percentage: 15 });
    assert.equal(describe(status).text, '$(loading~spin) CoDA tiny: downloading 15%');
    assert.match(describe(status).tooltip, /1\.20 of 8\.10 GB/);
    status.reported({ state: 'ready', model: 'models/tiny' });
    status.completed(40);
    status.begin();
    assert.equal(describe(status).text, '$(sync~spin) CoDA tiny: busy · 40 ms');
    status.reported({ state: 'error', model: 'models/tiny', message: 'out of memory' });
    assert.equal(describe(status).text, '$(error) CoDA tiny: error');
    assert.equal(describe(status).error, true);
    assert.match(describe(status).tooltip, /out of memory/);
  });

  it('says when inline completions are off', () => {
    const status = new Status();
    status.reported({ state: 'ready', model: 'models/tiny' });
    status.setInlineEnabled(false);
    assert.equal(describe(status).text, '$(sparkle) CoDA tiny: ready · inline off');
    assert.match(describe(status).tooltip, /Inline completions: off/);
  });

  it("names the server's default while a server with no model configured starts", () => {
    const status = new Status();
    status.starting(null);
    assert.equal(describe(status).text, '$(sync~spin) CoDA: starting');
    assert.match(describe(status).tooltip, /Model: the server's default \(coda-mini\)/);
    status.reported({ state: 'ready', model: 'coda-mini' });
    assert.equal(describe(status).text, '$(sparkle) CoDA coda-mini: ready');
  });
});

suite('modelName', () => {
  it('is the last part of a path or hub id', () => {
    assert.equal(modelName('models/tiny'), 'tiny');
    assert.equal(modelName('models/tiny/'), 'tiny');
    assert.equal(modelName('C:\\models\\coda'), 'coda');
    assert.equal(modelName('Salesforce/CoDA-v0-Instruct'), 'CoDA-v0-Instruct');
    assert.equal(modelName('tiny'), 'tiny');
  });
});

suite('formatLatency', () => {
  it('uses milliseconds below a second', () => {
    assert.equal(formatLatency(0.4), '0 ms');
    assert.equal(formatLatency(999.4), '999 ms');
    assert.equal(formatLatency(1250), '1.3 s');
  });
});
