// Revio lists are pages of `{results, next, previous}`; `next` is an absolute
// URL (checked against the configured origin by RevioHttp before following).
import type { RevioContext } from './context.ts';
import type { CallOptions, Page } from './types.ts';

/** Every item of a list, following `next` (at most `maxPages` pages). */
export async function collectPages<T>(
  ctx: RevioContext,
  operation: string,
  path: string,
  query: Record<string, string | undefined>,
  options: CallOptions = {},
  maxPages = 100,
): Promise<T[]> {
  const items: T[] = [];
  let page = await ctx.http.request<Page<T>>({ operation, method: 'GET', path, query }, options);
  for (let pages = 1; ; pages++) {
    items.push(...page.results);
    if (!page.next || pages >= maxPages) return items;
    page = await ctx.http.request<Page<T>>({ operation, method: 'GET', path: page.next }, options);
  }
}
