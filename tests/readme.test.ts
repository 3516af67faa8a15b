// The README's configuration table is the one list of settings: every
// environment variable the code reads must be in it.
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { filesUnder } from './helpers/files.ts';


it('documents every environment variable read by the code', () => {
  const read = new Set<string>();
  for (const file of [...filesUnder('src', '.ts'), 'tests/global-setup.ts']) {
    // env.NAME, env['NAME'], and helpers called as f(env, 'NAME', …)
    const text = readFileSync(file, 'utf8');
    for (const match of text.matchAll(/\benv\.([A-Z][A-Z0-9_]+)|env\[['"]([A-Z][A-Z0-9_]+)['"]\]|\(\s*env\s*,\s*['"]([A-Z][A-Z0-9_]+)['"]/g)) {
      read.add(match[1] ?? match[2] ?? match[3]);
    }
  }
  const documented = new Set([...readFileSync('README.md', 'utf8').matchAll(/^\| `([A-Z][A-Z0-9_]+)` \|/gm)].map((m) => m[1]));
  expect(read.size).toBeGreaterThan(10);
  expect([...read].filter((name) => !documented.has(name)).sort()).toEqual([]);
});
