// Preloaded by `npm test` (node --require): `require('vscode')`, from the
// extension or from vscode-languageclient, gets the mock in ./vscode.

import Module = require('node:module');
import * as path from 'node:path';

const mock = path.join(__dirname, 'vscode.js');
const internal = Module as unknown as { _resolveFilename(request: string, ...rest: unknown[]): string };
const resolve = internal._resolveFilename;
internal._resolveFilename = function (request: string, ...rest: unknown[]): string {
  return request === 'vscode' ? mock : resolve.call(this, request, ...rest);
};
