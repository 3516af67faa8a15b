// sql/ holds the database's functions, views and policies; the committed
// migrations hold the history that installs them. These checks keep the two
// honest: includes resolve from sql/, and every sql/ file on disk is exactly
// what the history last installed (or is being changed in current.sql).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { filesUnder } from './helpers/files.ts';

const cli = createRequire(import.meta.url).resolve('graphile-migrate/dist/cli.js');


/** path → content of its latest inlined copy, walking the history in order. */
function installedByHistory(): Map<string, string> {
  const installed = new Map<string, string>();
  const dir = 'migrations/committed';
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.sql')).sort()) {
    const text = readFileSync(join(dir, file), 'utf8');
    for (const m of text.matchAll(/^--! Included (\S+)\n([\s\S]*?)\n--! EndIncluded \1$/gm)) installed.set(m[1], m[2]);
  }
  return installed;
}

const includedInCurrent = () =>
  new Set([...readFileSync('migrations/current.sql', 'utf8').matchAll(/^--!\s*include\s+(\S+\.sql)\s*$/gm)].map((m) => m[1]));

describe('migrations and sql/', () => {
  it('an --!include line in a migration is resolved from sql/', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgwallet-include-'));
    const file = join(dir, 'probe.sql');
    writeFileSync(file, '--!include foundation/timestamps.sql\n');
    const compiled = execFileSync(process.execPath, [cli, 'compile', file], {
      env: { ...process.env, DATABASE_URL: 'postgres://unused@127.0.0.1/unused' },
      encoding: 'utf8',
    });
    expect(compiled).toContain('--! Included foundation/timestamps.sql');
    expect(compiled).toContain(readFileSync('sql/foundation/timestamps.sql', 'utf8').trim());
    rmSync(dir, { recursive: true });
  });

  it('every sql/ file is what the committed history last installed, unless current.sql is changing it', () => {
    const installed = installedByHistory();
    const inProgress = includedInCurrent();
    const drifted = filesUnder('sql', '.sql')
      .map((path) => relative('sql', path))
      .filter((name) => !inProgress.has(name) && installed.get(name) !== readFileSync(join('sql', name), 'utf8').trim());
    expect(drifted, 'edit sql/ files together with an --!include in migrations/current.sql').toEqual([]);
  });
});
