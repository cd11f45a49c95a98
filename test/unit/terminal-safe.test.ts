/** terminalSafe / jsonSafe (src/terminal.ts) and the JSON lines sink: nothing that drives a terminal gets through raw. */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { JsonSink } from '../../src/report/json.js';
import { jsonSafe, terminalSafe } from '../../src/terminal.js';

const DRIVES = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

describe('terminal-safe text', () => {
  it('terminalSafe shows C0 (but tab and newline), DEL and C1 as \\xNN', () => {
    expect(terminalSafe('a\tb\nc\x1b]0;t\x07\r\x7f\u009bJ é')).toBe('a\tb\nc\\x1b]0;t\\x07\\x0d\\x7f\\x9bJ é');
  });

  it('the JSON lines sink escapes C1 / DEL too (JSON.stringify leaves them raw); the value parses back unchanged', () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (c) => (text += c));
    const data = 'x\u009b2J\u007f\u2028\x1b[31m';
    new JsonSink(out).event({ type: 'action.output', runId: 'r', ts: 't', data } as never);
    expect(text).not.toMatch(DRIVES);
    expect(JSON.parse(text).data).toBe(data);
    expect(jsonSafe({ a: '\u0085' })).toBe('{"a":"\\u0085"}');
  });
});
