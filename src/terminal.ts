/**
 * Text from hosts and registries on the operator's terminal: a hostile user on a host (a file
 * a command prints, a process's stderr) or a hostile registry (an error message oras repeats)
 * controls those bytes. Escape sequences in them could retitle the window, clear the screen,
 * rewrite earlier lines (a carriage return hides what came before it), and on some terminals
 * answer back. Every text a sink or error printer writes passes `terminalSafe`: each control
 * character but tab and newline (C0, DEL, C1) is shown as `\xNN` text instead — visible,
 * never interpreted. The JSON output escapes them already (JSON.stringify); the audit log
 * keeps the bytes as they came.
 */
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

export function terminalSafe(text: string): string {
  return text.replace(CONTROL, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/**
 * JSON text that is safe on a terminal too: JSON.stringify escapes C0 controls but leaves DEL
 * and the C1 range (U+009B is CSI on UTF-8 terminals), and U+2028/2029: those are written as
 * \uXXXX escapes — the same JSON value, parsed back unchanged.
 */
export function jsonSafe(value: unknown): string {
  return JSON.stringify(value).replace(/[\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
