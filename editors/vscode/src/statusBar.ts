// The status bar item that shows `Status`.

import * as vscode from 'vscode';
import { describe, Status } from './status';

export function showStatus(status: Status, command: string): vscode.StatusBarItem {
  const item = vscode.window.createStatusBarItem('coda.status', vscode.StatusBarAlignment.Right, 100);
  item.name = 'CoDA';
  item.command = command;
  const render = () => {
    const view = describe(status);
    item.text = view.text;
    item.tooltip = view.tooltip;
    item.backgroundColor = view.error ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
  };
  render();
  status.onChange(render);
  item.show();
  return item;
}
