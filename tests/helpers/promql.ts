// A small evaluator for the PromQL our alert rules use (ops/prometheus/alerts.yml),
// over one scrape: instant selectors with label matchers (=, !=, =~), `sum`/`max`/
// `min` with an optional `by (…)`, comparisons with a number (filtering, as
// PromQL does), `or`, and `offset` (read as the same scrape). It answers "would
// this expression return anything now"; `for:` durations are the caller's.
// Range functions (rate, increase) are not supported and throw.
import type { Sample } from './prometheus.ts';

export interface Element {
  labels: Record<string, string>;
  value: number;
}

type Token = { kind: 'ident' | 'number' | 'string' | 'op' | 'punct'; text: string };

function tokenize(expr: string): Token[] {
  const tokens: Token[] = [];
  const re = /\s*(?:([a-zA-Z_:][a-zA-Z0-9_:]*)|(\d+(?:\.\d+)?)|"((?:[^"\\]|\\.)*)"|(==|!=|>=|<=|=~|>|<|=)|([(){},-]))/y;
  const text = expr.trimEnd();
  while (re.lastIndex < text.length) {
    const m = re.exec(text);
    if (!m) throw new Error(`cannot read PromQL at: ${text.slice(re.lastIndex)}`);
    if (m[1]) tokens.push({ kind: 'ident', text: m[1] });
    else if (m[2]) tokens.push({ kind: 'number', text: m[2] });
    else if (m[3] !== undefined) tokens.push({ kind: 'string', text: m[3] });
    else if (m[4]) tokens.push({ kind: 'op', text: m[4] });
    else tokens.push({ kind: 'punct', text: m[5] });
  }
  return tokens;
}

const COMPARE: Record<string, (a: number, b: number) => boolean> = {
  '>': (a, b) => a > b, '<': (a, b) => a < b, '>=': (a, b) => a >= b, '<=': (a, b) => a <= b, '==': (a, b) => a === b, '!=': (a, b) => a !== b,
};

export function evaluate(expr: string, samples: Sample[]): Element[] {
  const tokens = tokenize(expr);
  let i = 0;
  const peek = () => tokens[i];
  const take = (text?: string) => {
    const t = tokens[i++];
    if (!t || (text !== undefined && t.text !== text)) throw new Error(`PromQL: expected ${text ?? 'a token'} at ${i - 1} in ${expr}`);
    return t;
  };

  const labelList = (): string[] => {
    take('(');
    const names: string[] = [];
    while (peek().text !== ')') {
      names.push(take().text);
      if (peek().text === ',') take(',');
    }
    take(')');
    return names;
  };

  const aggregate = (fn: string, by: string[] | undefined, inner: Element[]): Element[] => {
    const groups = new Map<string, Element[]>();
    for (const e of inner) {
      const labels = Object.fromEntries((by ?? []).filter((l) => l in e.labels).map((l) => [l, e.labels[l]]));
      const key = JSON.stringify(labels);
      groups.set(key, [...(groups.get(key) ?? []), { labels, value: e.value }]);
    }
    return [...groups.values()].map((g) => ({
      labels: g[0].labels,
      value: fn === 'sum' ? g.reduce((s, e) => s + e.value, 0) : fn === 'max' ? Math.max(...g.map((e) => e.value)) : Math.min(...g.map((e) => e.value)),
    }));
  };

  const primary = (): Element[] => {
    const t = take();
    if (t.text === '(') {
      const inner = orExpr();
      take(')');
      return inner;
    }
    if (t.kind !== 'ident') throw new Error(`PromQL: unexpected ${t.text} in ${expr}`);
    if (['sum', 'max', 'min'].includes(t.text)) {
      let by: string[] | undefined;
      if (peek().text === 'by') {
        take('by');
        by = labelList();
      }
      take('(');
      const inner = orExpr();
      take(')');
      if (peek()?.text === 'by') {
        take('by');
        by = labelList();
      }
      return aggregate(t.text, by, inner);
    }
    if (peek()?.text === '(') throw new Error(`PromQL function ${t.text} is not supported here`);
    const matchers: { name: string; op: string; value: string }[] = [];
    if (peek()?.text === '{') {
      take('{');
      while (peek().text !== '}') {
        const name = take().text;
        const op = take().text;
        const value = take().text;
        matchers.push({ name, op, value });
        if (peek().text === ',') take(',');
      }
      take('}');
    }
    if (peek()?.text === 'offset') {
      take('offset');
      take();
      take();
    }
    return samples
      .filter((s) => s.name === t.text)
      .filter((s) => matchers.every((m) => {
        const v = s.labels[m.name] ?? '';
        return m.op === '=' ? v === m.value : m.op === '!=' ? v !== m.value : new RegExp(`^(?:${m.value})$`).test(v);
      }))
      .map((s) => ({ labels: s.labels, value: s.value }));
  };

  const arith = (): Element[] => {
    let left = primary();
    // a - b where b is one element (our "grew by" rule, offset read as now)
    while (peek()?.text === '-') {
      take('-');
      const right = primary();
      left = left.flatMap((l) => (right[0] ? [{ labels: l.labels, value: l.value - right[0].value }] : []));
    }
    return left;
  };

  const comparison = (): Element[] => {
    const left = arith();
    const t = peek();
    if (t?.kind === 'op' && t.text in COMPARE) {
      take();
      const threshold = Number(take().text);
      return left.filter((e) => COMPARE[t.text](e.value, threshold));
    }
    return left;
  };

  const orExpr = (): Element[] => {
    let result = comparison();
    while (peek()?.text === 'or') {
      take('or');
      const right = comparison();
      result = [...result, ...right.filter((r) => !result.some((l) => JSON.stringify(l.labels) === JSON.stringify(r.labels)))];
    }
    return result;
  };

  const result = orExpr();
  if (i !== tokens.length) throw new Error(`PromQL: trailing tokens in ${expr}`);
  return result;
}
