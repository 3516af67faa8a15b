// docs/design.md must stay true to the code.
//
// (a) Every ```mermaid block parses with the real Mermaid parser: mermaid's own
//     `mermaid.parse` (the package GitHub's renderer is built on), run in Node.
//     Mermaid sanitises labels with DOMPurify, which needs a DOM, so a jsdom
//     window is made global before mermaid is imported; no browser is involved.
// (b) Each state diagram names its enum in a `%% enum: schema.type` line, and
//     the states Mermaid parsed from it are exactly that enum's labels in
//     pg_enum of the migrated test database. Deposits, withdrawals and holds
//     must each have one.
// (c) Every entity of the ER diagram names a real table (its alias,
//     "schema.table"), and each attribute listed is a column of that table
//     with that type.
// (d) The README links the document under its "Architecture" heading.
import { readFileSync } from 'node:fs';
import { JSDOM } from 'jsdom';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';

const DOC = 'docs/design.md';
const text = readFileSync(DOC, 'utf8');
const blocks = [...text.matchAll(/^```mermaid\n([\s\S]*?)^```$/gm)].map((match) => match[1]);

/** The enums whose life cycles the document must draw. */
const REQUIRED_STATE_DIAGRAMS = ['app_public.deposit_status', 'app_public.withdrawal_status', 'ledger.hold_status'];

/** ER attribute types that PostgreSQL spells differently in information_schema.udt_name. */
const UDT_NAMES: Record<string, string> = { char: 'bpchar', smallint: 'int2', bigint: 'int8', boolean: 'bool', int: 'int4' };

type Mermaid = (typeof import('mermaid'))['default'];
let mermaid: Mermaid;
let db: pg.Client;

beforeAll(async () => {
  const dom = new JSDOM('<!doctype html><html><body></body></html>');
  Object.assign(globalThis, { window: dom.window, document: dom.window.document });
  mermaid = (await import('mermaid')).default;
  db = new pg.Client({ connectionString: inject('rootUrl') });
  await db.connect();
});

afterAll(async () => {
  await db?.end();
});

async function enumLabels(qualified: string): Promise<string[]> {
  const [schema, type] = qualified.split('.');
  const { rows } = await db.query<{ label: string }>(
    `select e.enumlabel as label
       from pg_enum e join pg_type t on t.oid = e.enumtypid join pg_namespace n on n.oid = t.typnamespace
      where n.nspname = $1 and t.typname = $2 order by e.enumsortorder`,
    [schema, type],
  );
  return rows.map((row) => row.label);
}

describe('docs/design.md', () => {
  it('has the diagrams the brief asks for', () => {
    const kinds = blocks.map((block) => block.trimStart().split(/\s/)[0]);
    expect(kinds.filter((kind) => kind === 'flowchart').length).toBeGreaterThanOrEqual(1); // components
    expect(kinds.filter((kind) => kind === 'sequenceDiagram').length).toBeGreaterThanOrEqual(3); // deposit, withdrawal, posting
    expect(kinds.filter((kind) => kind === 'stateDiagram-v2').length).toBeGreaterThanOrEqual(3);
    expect(kinds.filter((kind) => kind === 'erDiagram').length).toBeGreaterThanOrEqual(1);
  });

  it('every mermaid block parses with the mermaid parser', async () => {
    expect(blocks.length).toBeGreaterThanOrEqual(8);
    for (const block of blocks) {
      const result = await mermaid.parse(block).catch((error: Error) => {
        throw new Error(`A mermaid block in ${DOC} does not parse: ${error.message}\n--- block ---\n${block}`);
      });
      expect(result && result.diagramType, block.split('\n', 1)[0]).toBeTruthy();
    }
  });

  it('the parser rejects a broken diagram (the check is not hollow)', async () => {
    await expect(mermaid.parse('stateDiagram-v2\n  [*] --> pending -->')).rejects.toThrow();
    await expect(mermaid.parse('sequenceDiagram\n  A->>: no target')).rejects.toThrow();
  });

  it('each state diagram has exactly the states of its PostgreSQL enum', async () => {
    const seen: string[] = [];
    for (const block of blocks.filter((b) => b.trimStart().startsWith('stateDiagram'))) {
      const enumName = /^\s*%% enum: ([a-z_]+\.[a-z_]+)\s*$/m.exec(block)?.[1];
      expect(enumName, `a state diagram without a "%% enum:" line:\n${block}`).toBeDefined();
      seen.push(enumName!);
      const diagram = await mermaid.mermaidAPI.getDiagramFromText(block);
      const { nodes } = (diagram.db as unknown as { getData(): { nodes: { id: string; shape?: string; isGroup?: boolean }[] } }).getData();
      const states = nodes
        .filter((node) => !node.isGroup && !['stateStart', 'stateEnd', 'note', 'noteGroup'].includes(node.shape ?? ''))
        .map((node) => node.id);
      const labels = await enumLabels(enumName!);
      expect(labels.length, `${enumName} is not an enum in the database`).toBeGreaterThan(1);
      expect([...new Set(states)].sort(), `states drawn for ${enumName}`).toEqual([...labels].sort());
    }
    expect([...seen].sort()).toEqual(expect.arrayContaining(REQUIRED_STATE_DIAGRAMS));
  });

  it('the ER diagram names real tables, columns and types', async () => {
    const er = blocks.filter((b) => b.trimStart().startsWith('erDiagram'));
    for (const block of er) {
      const diagram = await mermaid.mermaidAPI.getDiagramFromText(block);
      const entities = (diagram.db as unknown as { getEntities(): Map<string, { alias?: string; attributes: { name: string; type: string }[] }> }).getEntities();
      expect(entities.size).toBeGreaterThan(3);
      for (const [name, entity] of entities) {
        expect(entity.alias, `entity ${name} needs a "schema.table" alias`).toMatch(/^[a-z_]+\.[a-z_]+$/);
        const [schema, table] = entity.alias!.split('.');
        const { rows } = await db.query<{ column_name: string; udt_name: string }>(
          'select column_name, udt_name from information_schema.columns where table_schema = $1 and table_name = $2',
          [schema, table],
        );
        expect(rows.length, `${entity.alias} is not a table`).toBeGreaterThan(0);
        const columns = new Map(rows.map((row) => [row.column_name, row.udt_name]));
        for (const attribute of entity.attributes) {
          expect(columns.has(attribute.name), `${entity.alias}.${attribute.name}`).toBe(true);
          expect(columns.get(attribute.name), `type of ${entity.alias}.${attribute.name}`).toBe(UDT_NAMES[attribute.type] ?? attribute.type);
        }
      }
    }
  });

  it('is linked from the README under "Architecture"', () => {
    const readme = readFileSync('README.md', 'utf8');
    const section = /^## Architecture\n([\s\S]*?)^## /m.exec(readme)?.[1] ?? '';
    expect(section).toContain('(docs/design.md)');
  });
});
