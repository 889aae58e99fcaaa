/** The parser: every bad line named with its number and what is wrong; pairing per process. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HistoryFormatError, parseHistory, parseHistoryText } from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'quorate-checker-history-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const L = (o: object) => JSON.stringify(o);

function problems(text: string): string[] {
  try {
    parseHistoryText(text);
  } catch (err) {
    expect(err).toBeInstanceOf(HistoryFormatError);
    const e = err as HistoryFormatError;
    expect(e.code).toBe('BAD_HISTORY');
    return e.issues.map((i) => `${i.line} ${i.code}: ${i.message}`);
  }
  throw new Error('expected a HistoryFormatError');
}

describe('parsing', () => {
  it('pairs invocations with completions per process and keeps invocation order', () => {
    const h = parseHistoryText(
      [
        L({ process: 0, type: 'invoke', f: 'put', key: 'k', value: 'a', time: 1 }),
        L({ process: 1, type: 'invoke', f: 'get', key: 'k', value: null, time: '2' }),
        L({ process: 1, type: 'ok', f: 'get', key: 'k', value: null, time: 3 }),
        L({ process: 2, type: 'invoke', f: 'cas', key: 'k', value: ['a', 'b'], time: 4 }),
        L({ process: 0, type: 'ok', f: 'put', key: 'k', value: 'a', time: 5 }),
        L({ process: 2, type: 'info', f: 'cas', key: 'k', value: ['a', 'b'], time: 6 }),
        L({ process: 3, type: 'invoke', f: 'acquire', key: 'l', value: 'me', time: 7 }),
        L({ process: 3, type: 'ok', f: 'acquire', key: 'l', value: 'me', time: 8 }),
        L({ process: 4, type: 'invoke', f: 'put', key: 'k', value: 'z', time: 9 }),
        L({ process: 4, type: 'fail', f: 'put', key: 'k', value: 'z', time: 10 }),
        L({ process: 5, type: 'invoke', f: 'get', key: 'k', value: null, time: 11 }),
        L({ process: 5, type: 'info', f: 'get', key: 'k', value: null, time: 12 }),
        L({ process: 6, type: 'invoke', f: 'delete', key: 'k', value: null, time: 13 }),
        '',
      ].join('\n'),
    );
    expect(
      h.ops.map((o) => [
        o.index,
        o.process,
        o.f,
        o.status,
        o.value,
        o.call,
        o.ret,
        o.invokeLine,
        o.completeLine,
      ]),
    ).toEqual([
      [0, 0, 'put', 'ok', 'a', 1n, 5n, 1, 5],
      [1, 1, 'get', 'ok', null, 2n, 3n, 2, 3],
      [2, 2, 'cas', 'info', ['a', 'b'], 4n, null, 4, null],
      [3, 6, 'delete', 'info', null, 13n, null, 13, null],
    ]);
    expect(h.counts).toEqual({
      events: 13,
      invoked: 6,
      ok: 2,
      fail: 1,
      info: 3,
      unfinished: 1,
      droppedReads: 1,
      leaseOps: 1,
    });
  });

  it('reads times above 2^53 exactly, as numbers or strings', () => {
    const h = parseHistoryText(
      [
        '{"process":0,"type":"invoke","f":"put","key":"time","value":"\\"time\\":1","time":18446744073709551000}',
        '{"process":0,"type":"ok","f":"put","key":"time","value":"\\"time\\":1","time":"18446744073709551001"}',
      ].join('\n'),
    );
    expect(h.ops[0]!.call).toBe(18446744073709551000n);
    expect(h.ops[0]!.ret).toBe(18446744073709551001n);
  });

  it('names each bad line, what is wrong, and goes on to the next', () => {
    const text = [
      '{"process":0,"type":"invoke"',
      '[1,2]',
      L({ process: -1, type: 'invoke', f: 'put', key: 'k', value: 'a', time: 1 }),
      L({ process: 0, type: 'start', f: 'put', key: 'k', value: 'a', time: 1 }),
      L({ process: 0, type: 'invoke', f: 'incr', key: 'k', value: 1, time: 1 }),
      L({ process: 0, type: 'invoke', f: 'put', key: 7, value: 'a', time: 1.5 }),
      L({ process: 0, type: 'invoke', f: 'put', key: 'k', value: 7, time: 1 }),
      L({ process: 0, type: 'ok', f: 'put', key: 'k', value: 'a', time: 2 }),
      L({ process: 1, type: 'invoke', f: 'put', key: 'k', value: 'a', time: 3 }),
      L({ process: 1, type: 'invoke', f: 'get', key: 'k', time: 4 }),
      L({ process: 1, type: 'ok', f: 'get', key: 'k', value: 'a', time: 5 }),
      L({ process: 2, type: 'invoke', f: 'get', key: 'k', value: null, time: 9 }),
      L({ process: 2, type: 'ok', f: 'get', key: 'k', value: 'a', time: 8 }),
      L({ process: 3, type: 'invoke', f: 'get', key: 'k', value: null, time: 9 }),
      L({ process: 3, type: 'ok', f: 'get', key: 'k', time: 10 }),
      L({ process: 4, type: 'invoke', f: 'cas', key: 'k', value: ['a'], time: 9 }),
    ].join('\n');
    expect(problems(text)).toEqual([
      expect.stringMatching(/^1 json: not valid JSON \(/),
      '2 json: expected a JSON object, found an array [1,2]',
      '3 field: "process" must be a non-negative integer, found number -1',
      '4 field: "type" must be one of "invoke", "ok", "fail", "info", found the string "start"',
      '5 unknown-op: unknown operation "f":"incr"; known: put, get, cas, delete, txn (checked), acquire, renew, release (skipped)',
      '6 field: "key" must be a string, found number 7',
      '6 field: "time" must be monotonic nanoseconds: a non-negative integer or a string of decimal digits, found number 1.5',
      '7 field: "value" of a put invocation must be the string written, found number 7',
      '8 no-invoke: "ok" for process 0 with no open invocation (every completion follows an "invoke" of the same process)',
      '10 double-invoke: process 1 invokes get while its put from line 9 has not completed; a process runs one operation at a time (use a new process number after an "info")',
      '11 mismatch: "ok" of get "k" completes process 1\'s put "k" invoked at line 9',
      "13 time-order: completion time 8 is before its invocation's time 9 (line 12)",
      '15 field: "value" of a get "ok" must be the string read, or null when the key was absent, found nothing',
      '16 field: "value" of a cas invocation must be [expected, new], each a string or null, found an array ["a"]',
    ]);
  });

  it('stops at the issue limit and says there were more', () => {
    const text = Array.from({ length: 50 }, () => 'nope').join('\n');
    try {
      parseHistoryText(text, { maxIssues: 3 });
      expect.unreachable();
    } catch (err) {
      const e = err as HistoryFormatError;
      expect(e.issues).toHaveLength(3);
      expect(e.truncated).toBe(true);
      expect(e.message.split('\n')[0]).toMatch(/^history: invalid history \(3\+ problems\)/);
    }
  });

  it('streams a file and names lines by number', async () => {
    const path = join(dir, 'bad.jsonl');
    writeFileSync(
      path,
      `${L({ process: 0, type: 'invoke', f: 'get', key: 'k', value: null, time: 1 })}\r\n\n${L({ process: 0, type: 'ok', f: 'get', key: 'k', value: 5, time: 2 })}\n`,
    );
    await expect(parseHistory(path)).rejects.toThrow(
      `${path}: invalid history (1 problem); every line must be a JSON object {"process","type","f","key","value","time"}\n  line 3: "value" of a get "ok" must be the string read, or null when the key was absent, found number 5 [field]`,
    );
    await expect(parseHistory(join(dir, 'missing.jsonl'))).rejects.toMatchObject({ code: 'FILE_UNREADABLE' });
  });

  it('validates events in memory the same way, by position', async () => {
    await expect(
      parseHistory([{ process: 0, type: 'ok', f: 'put', key: 'k', value: 'a', time: 1n }]),
    ).rejects.toThrow('event 1: "ok" for process 0 with no open invocation');
  });
});
