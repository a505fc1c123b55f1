-- The app's login role and database, least privilege, idempotent (roles/postgresql).
-- psql variables: app_user, app_db, dry (true: report only), want_vector; the password comes
-- base64-encoded as app_password_b64, from a `\set` line the task puts before this script on
-- psql's stdin (never on the command line or in the task's environment).
-- Every change prints a line starting with CHANGED (the task's changed_when).
\set ON_ERROR_STOP on
SELECT convert_from(decode(:'app_password_b64', 'base64'), 'UTF8') AS app_password \gset

SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'app_user') AS need_role \gset
\if :need_role
  \if :dry
    \echo CHANGED role :app_user would be created
  \else
    CREATE ROLE :"app_user" LOGIN PASSWORD :'app_password'
      NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
    \echo CHANGED role :app_user created
  \endif
\endif

SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'app_user'
               AND (rolsuper OR rolcreatedb OR rolcreaterole OR rolreplication OR rolbypassrls
                    OR NOT rolcanlogin)) AS need_attrs \gset
\if :need_attrs
  \if :dry
    \echo CHANGED role :app_user would lose its extra privileges
  \else
    ALTER ROLE :"app_user" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
    \echo CHANGED role :app_user privileges reduced
  \endif
\endif

SELECT NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'app_db') AS need_db \gset
\if :need_db
  \if :dry
    \echo CHANGED database :app_db would be created
  \else
    CREATE DATABASE :"app_db" OWNER :"app_user" ENCODING 'UTF8' TEMPLATE template0;
    \echo CHANGED database :app_db created
  \endif
\endif

SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'app_db') AS have_db \gset
\if :have_db
  SELECT EXISTS (SELECT 1 FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba
                 WHERE d.datname = :'app_db' AND r.rolname <> :'app_user') AS need_owner \gset
  \if :need_owner
    \if :dry
      \echo CHANGED database :app_db would be owned by :app_user
    \else
      ALTER DATABASE :"app_db" OWNER TO :"app_user";
      \echo CHANGED database :app_db owner set
    \endif
  \endif

  -- Only the app role (and superusers) may connect to the app database.
  SELECT has_database_privilege('public', :'app_db', 'CONNECT') AS public_connect \gset
  \if :public_connect
    \if :dry
      \echo CHANGED database :app_db would refuse CONNECT to PUBLIC
    \else
      REVOKE CONNECT, TEMPORARY ON DATABASE :"app_db" FROM PUBLIC;
      GRANT CONNECT, TEMPORARY ON DATABASE :"app_db" TO :"app_user";
      \echo CHANGED database :app_db CONNECT limited to :app_user
    \endif
  \endif

  \if :want_vector
    \connect :"app_db"
    SELECT NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector') AS need_vector \gset
    \if :need_vector
      \if :dry
        \echo CHANGED extension vector would be created in :app_db
      \else
        CREATE EXTENSION IF NOT EXISTS vector;
        \echo CHANGED extension vector created in :app_db
      \endif
    \endif
  \endif
\endif
