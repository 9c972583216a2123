// The client and transaction types live in core (users' writers see them); the repository
// implements them. Driver-level extras are in driver-client.ts.
export type { Dialect, SqlClient, Statement, Tx } from '../core/database.ts';
