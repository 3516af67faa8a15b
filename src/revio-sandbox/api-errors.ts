// Error bodies in Revio's layouts (REVIO_API.md §1):
// - business rule refusals: 400 `{"__all__": {"message", "code"}}` (spec);
// - transport-level errors (401, 404, 409, 429, 5xx): `{"code", "message"}`
//   (the newer platform error page);
// - field validation: `{"<field>": [{"message", "code"}]}`, nested for nested
//   fields, e.g. `{"purchase": {"products": [{...}]}}` (layout assumed, [A]).

export class ApiError extends Error {
  readonly status: number;
  readonly body: unknown;
  readonly headers: Record<string, string>;

  constructor(status: number, body: unknown, headers: Record<string, string> = {}) {
    super(`HTTP ${status}`);
    this.status = status;
    this.body = body;
    this.headers = headers;
  }
}

/** 400 with Revio's non-field error layout. */
export function refused(message: string, code: string): ApiError {
  return new ApiError(400, { __all__: { message, code } });
}

/** 400 naming a field path, e.g. fieldError(['purchase', 'products'], 'This field is required.', 'required'). */
export function fieldError(path: string[], message: string, code = 'invalid'): ApiError {
  let body: unknown = [{ message, code }];
  for (const key of [...path].reverse()) body = { [key]: body };
  return new ApiError(400, body);
}

export function notFound(): ApiError {
  return new ApiError(404, { code: 'not_found', message: 'No such object' });
}

export function conflict(message: string): ApiError {
  return new ApiError(409, { code: 'conflict', message });
}

export const unauthorized = () =>
  new ApiError(401, { code: 'unauthorized', message: 'Authentication credentials were not provided or are not valid.' }, { 'www-authenticate': 'Bearer' });

/** The body and headers of an injected HTTP error (faults). */
export function faultError(status: number, retryAfterSeconds: number): ApiError {
  const codes: Record<number, [string, string]> = {
    429: ['rate_limited', 'Request was throttled.'],
    500: ['internal_error', 'Internal server error.'],
    502: ['bad_gateway', 'Bad gateway.'],
    503: ['service_unavailable', 'Service temporarily unavailable.'],
    504: ['gateway_timeout', 'Gateway timeout.'],
  };
  const [code, message] = codes[status] ?? [status >= 500 ? 'internal_error' : 'invalid_request', `Injected HTTP ${status}.`];
  const headers: Record<string, string> = status === 429 || status === 503 ? { 'retry-after': String(retryAfterSeconds) } : {};
  return new ApiError(status, { code, message }, headers);
}

// ---- small validators shared by the resources ------------------------------

export type Json = Record<string, unknown>;

export function asObject(value: unknown, path: string[]): Json {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    if (path.length === 0) throw new ApiError(400, { code: 'invalid_request', message: 'The request body must be a JSON object.' });
    throw fieldError(path, 'Must be an object.');
  }
  return value as Json;
}

export function optionalString(body: Json, key: string, path: string[], max: number): string | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw fieldError([...path, key], 'Must be a string.');
  if (value.length > max) throw fieldError([...path, key], `Ensure this field has no more than ${max} characters.`, 'max_length');
  return value;
}

export function requiredString(body: Json, key: string, path: string[], max: number): string {
  const value = optionalString(body, key, path, max);
  if (value === undefined || value === '') throw fieldError([...path, key], 'This field is required.', 'required');
  return value;
}

export function optionalUrl(body: Json, key: string): string | null {
  const value = optionalString(body, key, [], 500);
  if (value === undefined || value === '') return null;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw fieldError([key], 'Enter a valid URL.');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw fieldError([key], 'Enter a valid URL.');
  return value;
}

export function integerIn(value: unknown, path: string[], min: number, required: boolean): number | undefined {
  if (value === undefined || value === null) {
    if (required) throw fieldError(path, 'This field is required.', 'required');
    return undefined;
  }
  const number = typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value) : value;
  if (typeof number !== 'number' || !Number.isSafeInteger(number)) throw fieldError(path, 'A valid integer is required.');
  if (number < min) throw fieldError(path, `Ensure this value is greater than or equal to ${min}.`, 'min_value');
  return number;
}

export function currencyOf(value: unknown, path: string[], fallback: string): string {
  if (value === undefined || value === null || value === '') return fallback;
  if (typeof value !== 'string' || !/^[A-Z]{3}$/.test(value)) throw fieldError(path, 'Must be an ISO 4217 currency code such as ZAR.');
  return value;
}

export function emailOf(value: unknown, path: string[]): string {
  if (typeof value !== 'string' || value === '') throw fieldError(path, 'This field is required.', 'required');
  if (value.length > 254 || !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(value)) throw fieldError(path, 'Enter a valid email address.');
  return value;
}

/** `brand_id` must be the sandbox's one brand. */
export function requireBrand(body: Json, brandId: string): void {
  if (body.brand_id === undefined || body.brand_id === null || body.brand_id === '') throw fieldError(['brand_id'], 'This field is required.', 'required');
  if (body.brand_id !== brandId) throw fieldError(['brand_id'], 'Brand with this id does not exist or does not belong to your company.');
}
