// Money at the edge: Revio takes integer minor units (cents) and an ISO 4217
// code. Anything else is refused before a request is made.

/** A positive safe integer amount in cents (accepts a bigint or a digit string from PostgreSQL). */
export function toCents(amount: number | bigint | string, what = 'amount'): number {
  const value = typeof amount === 'string' && /^\d+$/.test(amount) ? Number(amount) : typeof amount === 'bigint' ? Number(amount) : amount;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new RangeError(`${what} must be a positive whole number of cents, got ${String(amount)}.`);
  }
  return value;
}

export function toCurrency(currency: string): string {
  const code = currency.trim().toUpperCase();
  if (!/^[A-Z]{3}$/.test(code)) throw new RangeError(`currency must be an ISO 4217 code such as ZAR, got "${currency}".`);
  return code;
}

export function toReference(reference: string): string {
  if (typeof reference !== 'string' || reference.length === 0 || reference.length > 128) {
    throw new RangeError('reference must be 1 to 128 characters.');
  }
  return reference;
}
