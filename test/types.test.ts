/**
 * The public API's types, checked by the TypeScript compiler as a user's project would be: launches
 * by name take the names of the jobs a Nightshift was given and the parameters each declares, of
 * their types (test/fixtures/types). Each misuse there is marked `@ts-expect-error`, so a misuse
 * that compiles fails this test as surely as a correct use that does not.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');
const FIXTURES = join(ROOT, 'test/fixtures/types');

/**
 * Every diagnostic of one program made of all the fixtures, checked once: the checker's work on
 * src is shared, and the suite does not hold the event loop for minutes (a program per fixture
 * did, long enough for vitest's calls to its worker to time out on a loaded machine).
 */
let all: readonly ts.Diagnostic[] | undefined;

/** The diagnostics of a fixture, and of what it imports (src), as a user's project would see them. */
function diagnostics(file: string): string[] {
  if (!all) {
    const config = ts.getParsedCommandLineOfConfigFile(join(ROOT, 'tsconfig.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => undefined });
    if (!config) throw new Error('cannot read tsconfig.json');
    const files = readdirSync(FIXTURES).filter((f) => f.endsWith('.ts')).map((f) => join(FIXTURES, f));
    all = ts.getPreEmitDiagnostics(ts.createProgram(files, { ...config.options, noEmit: true }));
  }
  return all
    .filter((d) => !d.file?.fileName.startsWith(FIXTURES + '/') || d.file.fileName === file)
    .map((d) => {
      const where = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start) : undefined;
      return `${d.file?.fileName.replace(ROOT + '/', '') ?? ''}${where ? `:${where.line + 1}` : ''}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
    });
}

/**
 * The diagnostics of a fixture compiled as the strictest users compile their services
 * (`exactOptionalPropertyTypes`, `noUncheckedIndexedAccess`): only the fixture's own, since
 * such a user sees Nightshift's declarations, not its sources compiled under their settings.
 */
function strictDiagnostics(file: string): string[] {
  const config = ts.getParsedCommandLineOfConfigFile(join(ROOT, 'tsconfig.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => undefined });
  if (!config) throw new Error('cannot read tsconfig.json');
  const program = ts.createProgram([file], { ...config.options, noEmit: true, exactOptionalPropertyTypes: true, noUncheckedIndexedAccess: true });
  return ts
    .getPreEmitDiagnostics(program, program.getSourceFile(file))
    .map((d) => {
      const where = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start) : undefined;
      return `${where ? `line ${where.line + 1}` : ''}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
    });
}

describe('public types', () => {
  it('launching by name: job names and parameter types are checked', () => {
    expect(diagnostics(join(ROOT, 'test/fixtures/types/launches.ts'))).toEqual([]);
  }, 60_000);

  it("a skip listener's item has the step's read type for a process skip, its written type for a write skip, none for a read skip; a CSV record has the columns named", () => {
    expect(diagnostics(join(ROOT, 'test/fixtures/types/item-types.ts'))).toEqual([]);
  }, 60_000);

  it('step and chunk listeners written apart from a job need no type arguments, as job listeners do', () => {
    expect(diagnostics(join(ROOT, 'test/fixtures/types/listeners.ts'))).toEqual([]);
  }, 60_000);

  it("lists of differently typed jobs (a node's, a scheduler's, an operator's) take each job as typed; chunk items, skip limits and job-step parameters are still checked", () => {
    expect(diagnostics(join(ROOT, 'test/fixtures/types/job-lists.ts'))).toEqual([]);
  }, 60_000);

  it("a partitioned step's worker sees its partition typed as its partitioner returns it, which holds only what JSON gives back as it was", () => {
    expect(diagnostics(join(ROOT, 'test/fixtures/types/partitions.ts'))).toEqual([]);
  }, 60_000);

  it("a parameter's default has its parameter's type", () => {
    expect(diagnostics(join(ROOT, 'test/fixtures/types/param-defaults.ts'))).toEqual([]);
  }, 60_000);

  it('under exactOptionalPropertyTypes, options and launch parameters that may be left out take an explicit undefined (not given), and a wrong type is still refused', () => {
    expect(strictDiagnostics(join(ROOT, 'test/fixtures/types/exact-optional.ts'))).toEqual([]);
  }, 120_000);
});
