// The monitoring files docker-compose.yml loads: they parse, have the shape
// Prometheus and Grafana expect, name only metrics /metrics exports, and are
// mounted where the configuration looks for them.
import { existsSync, readFileSync } from 'node:fs';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { EXAMPLE_BANK_ACCOUNT_KEY } from '../src/payments/local-keys.ts';
import { makeLogger } from '../src/logger.ts';
import { registerDatabaseMetrics } from '../src/metrics/database.ts';
import { createMetrics } from '../src/metrics/registry.ts';

/** Every series name /metrics can answer with (histograms and summaries as their _bucket/_sum/_count series). */
async function exportedSeries(): Promise<Set<string>> {
  const metrics = createMetrics();
  // The database gauges register without a database (they read it only on scrape).
  registerDatabaseMetrics(metrics, { pool: new pg.Pool(), logger: makeLogger('silent'), ledgerCheckIntervalSeconds: 300 });
  const names = new Set<string>();
  for (const m of await metrics.registry.getMetricsAsJSON()) {
    names.add(m.name);
    if (String(m.type) === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(m.name + suffix);
    if (String(m.type) === 'summary') for (const suffix of ['_sum', '_count']) names.add(m.name + suffix);
  }
  return names;
}

/** Metric names in a PromQL expression: ours and the Node.js process ones (Prometheus' own `up` aside). */
function metricNamesIn(expr: string): string[] {
  const withoutStrings = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  return [...withoutStrings.matchAll(/\b((?:pgwallet|process|nodejs)_[a-zA-Z0-9_]+)\b/g)].map((m) => m[1]);
}

function balanced(expr: string): boolean {
  let depth = 0;
  for (const c of expr.replace(/"(?:[^"\\]|\\.)*"/g, '')) {
    if ('({['.includes(c)) depth += 1;
    if (')}]'.includes(c)) depth -= 1;
    if (depth < 0) return false;
  }
  return depth === 0;
}

const DURATION = /^\d+[smhd]$/;

describe('ops/prometheus/alerts.yml', () => {
  const rules = parse(readFileSync('ops/prometheus/alerts.yml', 'utf8')) as {
    groups: { name: string; rules: { alert: string; expr: string; for?: string; labels: { severity: string }; annotations: { summary: string; runbook: string } }[] }[];
  };
  const all = rules.groups.flatMap((g) => g.rules);

  it('is a list of rule groups, each rule with an expression, a severity, a summary and a runbook', () => {
    expect(rules.groups.length).toBeGreaterThan(0);
    expect(new Set(rules.groups.map((g) => g.name)).size).toBe(rules.groups.length);
    expect(new Set(all.map((r) => r.alert)).size).toBe(all.length);
    for (const rule of all) {
      expect(rule.alert, JSON.stringify(rule)).toMatch(/^Pgwallet[A-Za-z0-9]+$/);
      expect(typeof rule.expr, rule.alert).toBe('string');
      expect(balanced(rule.expr), `${rule.alert}: unbalanced brackets`).toBe(true);
      if (rule.for !== undefined) expect(rule.for, rule.alert).toMatch(DURATION);
      expect(['critical', 'warning'], rule.alert).toContain(rule.labels.severity);
      expect(rule.annotations.summary, rule.alert).toBeTruthy();
      expect(rule.annotations.runbook, rule.alert).toMatch(/docs\/[a-z-]+\.md/);
      for (const doc of rule.annotations.runbook.match(/docs\/[a-z-]+\.md/g) ?? []) expect(existsSync(doc), `${rule.alert}: ${doc}`).toBe(true);
    }
  });

  it('names only metrics that /metrics exports, and alerts on every ledger invariant', async () => {
    const exported = await exportedSeries();
    const unknown = all.flatMap((r) => metricNamesIn(r.expr).filter((name) => !exported.has(name)).map((name) => `${r.alert}: ${name}`));
    expect(unknown).toEqual([]);
    const named = new Set(all.flatMap((r) => metricNamesIn(r.expr)));
    for (const invariant of ['pgwallet_ledger_trial_balance_nonzero_currencies', 'pgwallet_ledger_unbalanced_entries', 'pgwallet_ledger_balance_drift_rows',
      'pgwallet_ledger_guards_disabled', 'pgwallet_dead_letter_jobs', 'pgwallet_reconciliation_discrepancies_open']) {
      expect(named.has(invariant), invariant).toBe(true);
    }
  });
});

describe('ops/grafana/dashboards/pgwallet.json', () => {
  const dashboard = JSON.parse(readFileSync('ops/grafana/dashboards/pgwallet.json', 'utf8')) as {
    uid: string;
    title: string;
    panels: { id: number; type: string; title: string; datasource?: { uid: string }; targets?: { expr: string; datasource?: { uid: string } }[] }[];
  };
  const datasource = parse(readFileSync('ops/grafana/provisioning/datasources/prometheus.yml', 'utf8')) as { datasources: { uid: string; type: string; url: string }[] };

  it('parses, with unique panel ids, each graph querying the provisioned Prometheus datasource', () => {
    expect(dashboard.uid).toBe('pgwallet');
    expect(new Set(dashboard.panels.map((p) => p.id)).size).toBe(dashboard.panels.length);
    const uid = datasource.datasources[0].uid;
    expect(datasource.datasources[0]).toMatchObject({ type: 'prometheus', url: 'http://prometheus:9090' });
    const graphs = dashboard.panels.filter((p) => p.type !== 'row');
    expect(graphs.length).toBeGreaterThan(10);
    for (const panel of graphs) {
      expect(panel.datasource?.uid, panel.title).toBe(uid);
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
      for (const target of panel.targets ?? []) expect(balanced(target.expr), `${panel.title}: ${target.expr}`).toBe(true);
    }
  });

  it('names only metrics that /metrics exports, and shows every metric family of ours', async () => {
    const exported = await exportedSeries();
    const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
    const unknown = exprs.flatMap((e) => metricNamesIn(e).filter((name) => !exported.has(name)));
    expect(unknown).toEqual([]);
    const shown = new Set(exprs.flatMap(metricNamesIn).map((n) => n.replace(/_(bucket|sum|count)$/, '')));
    const ours = [...exported].filter((n) => n.startsWith('pgwallet_') && !/_(bucket|sum|count)$/.test(n));
    expect(ours.filter((n) => !shown.has(n))).toEqual([]);
  });
});

describe('docker-compose.yml', () => {
  const compose = parse(readFileSync('docker-compose.yml', 'utf8')) as {
    services: Record<string, { volumes?: string[]; command?: string[]; environment?: Record<string, unknown>; ports?: unknown[] }>;
  };
  const prometheus = parse(readFileSync('ops/prometheus/prometheus.yml', 'utf8')) as {
    rule_files: string[];
    scrape_configs: { job_name: string; dns_sd_configs?: { names: string[]; port: number }[] }[];
  };
  const mounts = (service: string) => new Map((compose.services[service].volumes ?? []).map((v) => {
    const [host, container] = v.split(':');
    return [container, host];
  }));

  it('runs PostgreSQL 18, migrations, the API, a separate worker, Prometheus and Grafana', () => {
    expect(Object.keys(compose.services)).toEqual(expect.arrayContaining(['db', 'migrate', 'api', 'worker', 'prometheus', 'grafana']));
    expect(compose.services.worker.command).toEqual(['node', 'src/worker/main.ts']);
    expect(compose.services.api.environment?.IN_PROCESS_WORKER).toBe('false');
  });

  it('mounts the alert rules where prometheus.yml loads them, and scrapes every api and worker replica', () => {
    const prom = mounts('prometheus');
    expect(prom.get('/etc/prometheus/prometheus.yml')).toBe('./ops/prometheus/prometheus.yml');
    for (const ruleFile of prometheus.rule_files) expect(prom.get(ruleFile), ruleFile).toBe('./ops/prometheus/alerts.yml');
    const jobs = new Map(prometheus.scrape_configs.map((c) => [c.job_name, c]));
    expect(jobs.get('pgwallet-api')?.dns_sd_configs?.[0]).toMatchObject({ names: ['api'], port: Number(compose.services.api.environment?.METRICS_PORT) });
    expect(jobs.get('pgwallet-worker')?.dns_sd_configs?.[0]).toMatchObject({ names: ['worker'], port: Number(compose.services.worker.environment?.WORKER_METRICS_PORT) });
  });

  it('provisions Grafana with the datasource and the dashboard folder, from files that exist', () => {
    const grafana = mounts('grafana');
    expect(grafana.get('/etc/grafana/provisioning/datasources')).toBe('./ops/grafana/provisioning/datasources');
    expect(grafana.get('/etc/grafana/provisioning/dashboards')).toBe('./ops/grafana/provisioning/dashboards');
    expect(grafana.get('/var/lib/grafana/dashboards')).toBe('./ops/grafana/dashboards');
    const provider = parse(readFileSync('ops/grafana/provisioning/dashboards/pgwallet.yml', 'utf8')) as { providers: { options: { path: string } }[] };
    expect(provider.providers[0].options.path).toBe('/var/lib/grafana/dashboards');
    for (const service of ['prometheus', 'grafana']) {
      for (const host of mounts(service).values()) if (host.startsWith('./')) expect(existsSync(host), host).toBe(true);
    }
  });

  it('publishes no port of the Revio sandbox outside the compose network', () => {
    expect(compose.services['revio-sandbox']).toBeDefined();
    expect(compose.services['revio-sandbox'].ports ?? []).toEqual([]);
    // Nor does another service map the sandbox's port onto the host.
    for (const [name, service] of Object.entries(compose.services)) {
      for (const mapping of service.ports ?? []) expect(String(mapping), name).not.toMatch(/(^|:)4010$|REVIO_SANDBOX_PORT/);
    }
  });

  it('runs the worker as app_worker, never as the owner, and keeps production off the sandbox unless told', () => {
    // `<<: *pgwallet-env` merges the shared settings (YAML merge keys).
    const merged = parse(readFileSync('docker-compose.yml', 'utf8'), { merge: true }) as typeof compose;
    const worker = merged.services.worker.environment ?? {};
    expect(String(worker.WORKER_DATABASE_URL)).toMatch(/^postgres:\/\/app_worker:/);
    expect(worker.DATABASE_URL).toBeUndefined();
    expect(String(compose.services.migrate.environment?.WORKER_DATABASE_URL)).toMatch(/^postgres:\/\/app_worker:/);
    expect(worker.NODE_ENV).toBe('production');
    expect(worker.REVIO_ALLOW_SANDBOX).toBe('${REVIO_ALLOW_SANDBOX:-false}');
  });
});

describe('.env.example', () => {
  it('its bank key is the one production refuses (src/payments/local-keys.ts)', () => {
    const example = Object.fromEntries(
      readFileSync('.env.example', 'utf8').split('\n').filter((l) => /^[A-Z_]+=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    expect(example.BANK_ACCOUNT_ENCRYPTION_KEY).toBe(EXAMPLE_BANK_ACCOUNT_KEY);
    expect(example.REVIO_ALLOW_SANDBOX).toBe('false');
  });
});
