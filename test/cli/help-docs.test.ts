/**
 * The README's CLI table against the real command tree (the one `nightshift` runs, see
 * buildProgram): every command has a row, the row shows every option and argument the command
 * takes and none it does not, and says what the command does in the words of its --help. The
 * --help texts are consistent: every argument is described, the same way wherever it appears.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/program.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const SECTION = /^## The CLI\n([\s\S]*?)^## /m.exec(README)?.[1] ?? '';
/** The prose above the table: the options every command takes are described there, not in each row. */
const PREAMBLE = SECTION.slice(0, SECTION.indexOf('\n| command |'));
/** Options described in the preamble (and --help, which every command has). */
const COMMON = new Set(['--db', '--config', '--verbose', '--help']);

/** The commands a user types, e.g. "run" or "schedule add" (a group such as `schedule` is its commands). */
function commands(cmd: Command, prefix = ''): { path: string; cmd: Command }[] {
  return cmd.commands.flatMap((c) => {
    const path = `${prefix}${c.name()}`;
    return c.commands.length ? commands(c, `${path} `) : [{ path, cmd: c }];
  });
}

const PROGRAM = buildProgram();
const COMMANDS = commands(PROGRAM);

interface Row { usage: string; description: string }

/**
 * The table's rows by command: a row's first cell holds one code span per command it documents
 * (`stop EXECUTION_ID [--json]`), its second what the command does. Spans naming no command are
 * returned under `unknown`.
 */
function readmeRows(section: string): { rows: Map<string, Row>; unknown: string[] } {
  const rows = new Map<string, Row>();
  const unknown: string[] = [];
  // Longest first, so `schedule resume` is not taken for `resume`, nor `nodes` for `node`.
  const paths = COMMANDS.map((c) => c.path).sort((a, b) => b.length - a.length);
  for (const line of section.split('\n')) {
    if (!line.startsWith('| `')) continue;
    const [usageCell, descriptionCell] = line.slice(1).split(/(?<!\\)\|/).map((c) => c.trim());
    const description = descriptionCell.replace(/\[([^\]]*)\]\([^)]*\)/g, '$1').replaceAll('`', '').replaceAll('\\|', '|');
    for (const [, span] of usageCell.matchAll(/`([^`]+)`/g)) {
      const usage = span.replaceAll('\\|', '|');
      const path = paths.find((p) => usage === p || usage.startsWith(`${p} `));
      if (path === undefined) unknown.push(usage);
      else rows.set(path, { usage, description });
    }
  }
  return { rows, unknown };
}

/** The words of a usage: `--flag`s, placeholders and `k=v`. */
const words = (usage: string) => usage.split(/[\s[\]()|]+/).filter(Boolean);

/** How the README writes an argument: `<executionId>` as EXECUTION_ID, `[params...]` as `k=v ...`. */
const placeholder = (name: string, variadic: boolean) => (variadic ? 'k=v ...' : name.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase());

/** What is wrong with the README's table (in `section`) against the commands, one line each. */
function tableProblems(section: string): string[] {
  const { rows, unknown } = readmeRows(section);
  const problems = unknown.map((usage) => `README row \`${usage}\` names no command`);
  for (const { path, cmd } of COMMANDS) {
    const row = rows.get(path);
    if (!row) {
      problems.push(`nightshift ${path}: no row in the README's CLI table`);
      continue;
    }
    const shown = words(row.usage);
    const takes = new Set(cmd.options.map((o) => o.long));
    for (const flag of takes) {
      if (flag && !COMMON.has(flag) && !shown.includes(flag)) problems.push(`nightshift ${path} ${flag}: missing from its README row \`${row.usage}\``);
    }
    for (const flag of shown.filter((w) => w.startsWith('--'))) {
      if (!takes.has(flag)) problems.push(`nightshift ${path}: its README row shows ${flag}, which it does not take`);
      else if (COMMON.has(flag)) problems.push(`nightshift ${path}: its README row shows ${flag}, which the text above the table describes`);
    }
    for (const arg of cmd.registeredArguments) {
      const want = placeholder(arg.name(), arg.variadic);
      if (!(arg.variadic ? row.usage.includes(want) : shown.includes(want))) problems.push(`nightshift ${path} <${arg.name()}>: its README row \`${row.usage}\` does not show it as ${want}`);
    }
    if (!row.description.startsWith(cmd.description())) {
      problems.push(`nightshift ${path}: the README says "${row.description}", --help "${cmd.description()}" (the row starts with the --help text)`);
    }
  }
  return problems;
}

describe("the README's CLI table matches the commands", () => {
  it('the table is found and lists the commands', () => {
    expect(PREAMBLE).toContain('`--db URL`');
    expect(COMMANDS.map((c) => c.path)).toContain('schedule add');
    expect(readmeRows(SECTION).rows.size).toBeGreaterThanOrEqual(COMMANDS.length);
  });

  it('every command has a row that shows each of its options and arguments, none it does not take, and its --help description', () => {
    expect(tableProblems(SECTION)).toEqual([]);
  });

  it('the options the rows leave out are described above the table, with the commands that do not take them', () => {
    for (const flag of ['--db URL', '--config FILE', '--verbose', '--json', '--version', '--help']) expect(PREAMBLE, flag).toContain(`\`${flag}`);
    for (const flag of ['--db', '--config']) {
      for (const { path, cmd } of COMMANDS) {
        if (!cmd.options.some((o) => o.long === flag)) expect(PREAMBLE, `nightshift ${path} takes no ${flag}: the text above the table says so`).toMatch(new RegExp(`\`${path}\`[^.]*take neither`));
      }
    }
    for (const { path, cmd } of COMMANDS) expect(cmd.options.map((o) => o.long), `nightshift ${path}`).toContain('--verbose');
  });

  it('names the command and what is wrong when the README leaves something out', () => {
    // Only what the edit adds: this checks the check, whatever the README's own state.
    const before = new Set(tableProblems(SECTION));
    const edit = (from: string | RegExp, to: string) => {
      const edited = SECTION.replace(from, to);
      expect(edited, String(from)).not.toBe(SECTION);
      return tableProblems(edited).filter((p) => !before.has(p));
    };
    expect(edit(' [--exit-with-parent]', '')).toEqual([expect.stringMatching(/^nightshift node --exit-with-parent: missing from its README row `node /)]);
    expect(edit(/^\| `execution EXECUTION_ID.*\n/m, '')).toEqual(['nightshift execution: no row in the README\'s CLI table']);
    expect(edit('`nodes [--all] [--json]`', '`nodes [--all] [--limit N] [--json]`')).toEqual(['nightshift nodes: its README row shows --limit, which it does not take']);
    expect(edit('`jobs [--json]`', '`jobs [--json] [--db URL]`')).toEqual(['nightshift jobs: its README row shows --db, which the text above the table describes']);
    expect(edit('`stop EXECUTION_ID', '`stop ID')).toEqual([expect.stringMatching(/^nightshift stop <executionId>: its README row `stop ID.*` does not show it as EXECUTION_ID$/)]);
    expect(edit(/\| list the jobs in the config[^|]*\|/, '| the jobs |')).toEqual([expect.stringMatching(/^nightshift jobs: the README says "the jobs", --help "list the jobs in the config and its declared schedules, /)]);
    expect(edit('`demo ', '`dmeo ')).toEqual(['README row `dmeo [--dir D] [--rows N]` names no command', 'nightshift demo: no row in the README\'s CLI table']);
  });
});

describe('--help texts', () => {
  it('every command says what it does, and every argument is described, the same way wherever it appears', () => {
    const problems: string[] = [];
    const seen = new Map<string, { path: string; description: string }>();
    for (const { path, cmd } of COMMANDS) {
      if (!cmd.description()) problems.push(`nightshift ${path}: no description`);
      for (const arg of cmd.registeredArguments) {
        if (!arg.description) problems.push(`nightshift ${path} <${arg.name()}>: no description`);
        const first = seen.get(arg.name());
        if (!first) seen.set(arg.name(), { path, description: arg.description });
        else if (first.description !== arg.description) {
          problems.push(`nightshift ${path} <${arg.name()}> is "${arg.description}", nightshift ${first.path} <${arg.name()}> "${first.description}"`);
        }
      }
    }
    expect(problems).toEqual([]);
  });
});
