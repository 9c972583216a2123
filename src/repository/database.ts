// The database interface lives in core (users' steps see it); the repository implements it.
export type { Database, Dialect, SqlClient, Statement, Tx } from '../core/database.ts';
