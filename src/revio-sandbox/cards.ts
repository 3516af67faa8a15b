// The test cards of Revio's testing page (REVIO_API.md §5, [C] R-TEST):
// 4444 3333 2222 1111 (non-3DS) and 5555 5555 5555 4444 (3DS) succeed with any
// name, any future expiry and CVC 123; a wrong CVC is an authorisation failure;
// a wrong expiry is an immediate validation error. The sandbox also decides
// (assumptions): any other well-formed card number is declined; the 3DS card
// passes its challenge without a page; a malformed number or a missing name is
// a validation error like a bad expiry.

export const SUCCESS_CARDS: Record<string, 'visa' | 'mastercard'> = {
  '4444333322221111': 'visa',
  '5555555555554444': 'mastercard',
};
export const TEST_CVC = '123';

export interface CardInput {
  number?: string;
  name?: string;
  /** MM/YY, MM/YYYY or MMYY. */
  expiry?: string;
  cvc?: string;
}

export type CardOutcome =
  | { kind: 'invalid'; message: string }
  | { kind: 'declined'; code: string; message: string; last4: string }
  | { kind: 'approved'; brand: 'visa' | 'mastercard'; last4: string };

function luhn(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

function expiryOk(raw: string, now: Date): boolean {
  const match = /^\s*(\d{1,2})\s*\/?\s*(\d{2}|\d{4})\s*$/.exec(raw);
  if (!match) return false;
  const month = Number(match[1]);
  const year = match[2].length === 2 ? 2000 + Number(match[2]) : Number(match[2]);
  if (month < 1 || month > 12) return false;
  // A card is valid through the last day of its expiry month.
  return new Date(Date.UTC(year, month, 1)).getTime() > now.getTime();
}

export function checkCard(card: CardInput, now = new Date()): CardOutcome {
  const number = (card.number ?? '').replace(/[\s-]/g, '');
  if (!/^\d{12,19}$/.test(number) || !luhn(number)) return { kind: 'invalid', message: 'The card number is not valid.' };
  if (!(card.name ?? '').trim()) return { kind: 'invalid', message: 'Enter the name on the card.' };
  if (!expiryOk(card.expiry ?? '', now)) return { kind: 'invalid', message: 'The expiry date is not valid or has passed.' };
  const cvc = (card.cvc ?? '').trim();
  if (!/^\d{3,4}$/.test(cvc)) return { kind: 'invalid', message: 'The CVC must be 3 or 4 digits.' };
  const last4 = number.slice(-4);
  const brand = SUCCESS_CARDS[number];
  if (!brand) return { kind: 'declined', code: 'card_declined', message: 'The card was declined by the issuer.', last4 };
  if (cvc !== TEST_CVC) return { kind: 'declined', code: 'authorization_failed', message: 'Authorisation failed: the CVC does not match.', last4 };
  return { kind: 'approved', brand, last4 };
}

/** A card that succeeds, for the REST shortcut and the prefilled checkout form. */
export function successCard(now = new Date()): Required<CardInput> {
  const year = String((now.getUTCFullYear() + 3) % 100).padStart(2, '0');
  return { number: '4444 3333 2222 1111', name: 'Test Customer', expiry: `12/${year}`, cvc: TEST_CVC };
}
