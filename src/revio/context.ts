// What every typed call needs: the HTTP layer and the merchant defaults.
import type { RevioHttp } from './http.ts';

export interface RevioContext {
  http: RevioHttp;
  /** Revio brand UUID sent with purchases and payouts. */
  brandId: string;
  /** Default currency (ZAR). */
  currency: string;
}
