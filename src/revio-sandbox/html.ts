// Tiny HTML helpers for the sandbox's pages: everything interpolated is escaped.

export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Minor units → "R 1 234.56" style (ZAR) or "USD 12.00". */
export function formatMoney(cents: number, currency: string): string {
  const major = (cents / 100).toFixed(2);
  return currency === 'ZAR' ? `R ${major}` : `${currency} ${major}`;
}

export const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  // No scripts at all; inline styles only.
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
};

export function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
  body { font-family: system-ui, sans-serif; background: #f4f5f7; color: #1d2330; margin: 0; }
  main { max-width: 32rem; margin: 2rem auto; background: #fff; border-radius: 10px; padding: 1.5rem 2rem; box-shadow: 0 2px 10px #0002; }
  main.wide { max-width: 64rem; }
  h1 { font-size: 1.3rem; margin-top: 0; }
  .badge { display: inline-block; background: #ffe08a; border-radius: 4px; padding: 0 .4rem; font-size: .8rem; font-weight: 600; }
  .amount { font-size: 2rem; font-weight: 700; margin: .5rem 0 1rem; }
  label { display: block; margin: .6rem 0 .2rem; font-weight: 600; font-size: .9rem; }
  input { width: 100%; box-sizing: border-box; padding: .5rem; font-size: 1rem; border: 1px solid #b8bfcc; border-radius: 6px; }
  .row { display: flex; gap: 1rem; } .row > div { flex: 1; }
  .buttons { display: flex; gap: 1rem; margin-top: 1.2rem; }
  button { flex: 1; padding: .7rem; font-size: 1rem; border: 0; border-radius: 6px; cursor: pointer; }
  button.pay { background: #1a7f37; color: #fff; } button.fail { background: #c62828; color: #fff; }
  button.small { flex: none; padding: .25rem .6rem; font-size: .85rem; }
  .alert { border-radius: 6px; padding: .6rem .8rem; margin: .8rem 0; }
  .alert.error { background: #fde7e9; } .alert.ok { background: #e6f4ea; }
  .hint { color: #5b6475; font-size: .85rem; }
  table { width: 100%; border-collapse: collapse; font-size: .85rem; } td, th { text-align: left; padding: .3rem; border-bottom: 1px solid #e3e6eb; }
  code { font-size: .85em; }
</style>
</head>
<body><main${title.startsWith('Revio sandbox console') ? ' class="wide"' : ''}>
<p><span class="badge">TEST MODE</span> Revio sandbox</p>
${body}
</main></body></html>`;
}
