/**
 * The warning for a password given in `--db` to a command that runs for long (a node, serve):
 * every user of the machine can read it in the process list (`ps`) meanwhile. Undefined when the
 * flag holds none. The password itself is not repeated.
 */
export function dbFlagWarning(flag: string | undefined): string | undefined {
  if (flag === undefined || !/^postgres(ql)?:\/\//i.test(flag)) return undefined;
  let password: string;
  try {
    password = new URL(flag).password;
  } catch {
    return undefined;
  }
  return password
    ? 'the --db URL holds a password, which every user of this machine can read in the process list (ps) while this runs: ' +
        'pass the URL in NIGHTSHIFT_DB instead (the deployment examples read it from an environment file)'
    : undefined;
}
