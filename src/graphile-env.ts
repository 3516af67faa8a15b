// Grafast reads GRAPHILE_ENV when it is first imported, so this module must be
// imported before anything that pulls in PostGraphile. It mirrors NODE_ENV:
// development gets helpful checks, anything else runs in production mode.
process.env.GRAPHILE_ENV ??= process.env.NODE_ENV === 'test' ? 'test' : process.env.NODE_ENV === 'production' ? 'production' : 'development';
