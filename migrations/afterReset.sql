-- `graphile-migrate reset` recreates the database and revokes everything from
-- PUBLIC; the API's login role needs CONNECT back.
grant connect on database :DATABASE_NAME to authenticator;
