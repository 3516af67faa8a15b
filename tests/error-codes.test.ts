// The error-code registry, the SQL that raises codes, and docs/errors.md must
// agree, so clients can rely on `extensions.code` and the docs never drift.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../src/errors.ts';
import { filesUnder } from './helpers/files.ts';


/** Every `errcode = 'XXXXX'` in sql/, with the code named by its trailing comment. */
function raisedInSql(): { file: string; sqlstate: string; comment: string | undefined }[] {
  return filesUnder('sql', '.sql').flatMap((file) =>
    [...readFileSync(file, 'utf8').matchAll(/errcode\s*=\s*'([0-9A-Z]{5})'[^\n]*?(?:--\s*([A-Z_]+))?\s*$/gm)].map((m) => ({
      file,
      sqlstate: m[1],
      comment: m[2],
    })),
  );
}

describe('error codes', () => {
  it('are unique, by code and by SQLSTATE', () => {
    const codes = ERROR_CODES.map((e) => e.code);
    expect(new Set(codes).size).toBe(codes.length);
    const states = ERROR_CODES.flatMap((e) => (e.sqlstate ? [e.sqlstate] : []));
    expect(new Set(states).size).toBe(states.length);
  });

  it('every SQLSTATE raised in sql/ is registered, and its comment names the registered code', () => {
    const raised = raisedInSql();
    expect(raised.length).toBeGreaterThan(0);
    for (const { file, sqlstate, comment } of raised) {
      const entry = ERROR_CODES.find((e) => e.sqlstate === sqlstate);
      expect(entry, `${file}: ${sqlstate} is not in src/errors.ts`).toBeDefined();
      expect(comment, `${file}: ${sqlstate} needs a trailing "-- ${entry?.code}" comment`).toBe(entry?.code);
    }
  });

  it('docs/errors.md lists every code with its SQLSTATE, and nothing else', () => {
    const doc = readFileSync('docs/errors.md', 'utf8');
    const rows = [...doc.matchAll(/^\|\s*`([A-Z_]+)`\s*\|\s*`?([0-9A-Z]{5}|—|-)?`?\s*\|/gm)].map((m) => ({ code: m[1], sqlstate: m[2] }));
    expect(rows.map((r) => r.code).sort()).toEqual(ERROR_CODES.map((e) => e.code).sort());
    for (const entry of ERROR_CODES) {
      const row = rows.find((r) => r.code === entry.code)!;
      expect(row.sqlstate === '—' || row.sqlstate === '-' ? undefined : row.sqlstate, entry.code).toBe(entry.sqlstate);
    }
  });
});
