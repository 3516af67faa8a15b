// Verifies the bearer token before GraphQL runs. No header means a visitor
// (app_anonymous); a header that fails verification is a 401, never a
// silent downgrade to anonymous.
import type { NextFunction, Request, Response } from 'express';
import { TokenRejected, verifyAccessToken, type AccessClaims, type TokenSettings } from '../auth/tokens.ts';
import { VerifiedTokenCache } from '../auth/verified-token-cache.ts';

declare global {
  namespace Express {
    interface Request {
      auth?: AccessClaims | null;
    }
  }
}

function reject(res: Response, error: TokenRejected): void {
  res
    .status(401)
    .set('WWW-Authenticate', `Bearer error="invalid_token"`)
    .json({ errors: [{ message: error.message, extensions: { code: error.code } }] });
}

export function bearerAuth(tokens: TokenSettings) {
  const verified = new VerifiedTokenCache();
  return async (req: Request, res: Response, next: NextFunction) => {
    const header = req.headers.authorization;
    req.auth = null;
    if (header === undefined) return next();
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) return reject(res, new TokenRejected('TOKEN_INVALID', 'The Authorization header must be "Bearer <access token>".'));
    const token = match[1];
    const cached = verified.get(token);
    if (cached) {
      req.auth = cached;
      return next();
    }
    try {
      req.auth = await verifyAccessToken(tokens, token);
      verified.set(token, req.auth);
      next();
    } catch (error) {
      if (error instanceof TokenRejected) reject(res, error);
      else next(error);
    }
  };
}
