/**
 * A vitest reporter that ends `npm test` with how many tests were skipped and why (the note of
 * `ctx.skip(condition, note)`, see test/support/skip.ts). A skip with no reason fails a full run:
 * a missing browser or tool must not turn tests into silent skips. Runs narrowed with `-t` or
 * `.only` leave tests out on purpose: those are not counted.
 */
import type { Reporter, TestModule, Vitest } from 'vitest/node';

export default class SkipReporter implements Reporter {
  private namePattern = false;

  onInit(vitest: Vitest): void {
    this.namePattern = Boolean(vitest.config.testNamePattern);
  }

  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    const narrowed = this.namePattern || modules.some((m) => [...m.children.allTests()].some((t) => t.options.mode === 'only'));
    const reasons = new Map<string, string[]>();
    const unexplained: string[] = [];
    let total = 0;
    for (const m of modules) {
      for (const t of m.children.allTests()) {
        const r = t.result();
        if (r.state !== 'skipped') continue;
        // A test left out by `-t` or by `.only` elsewhere is not a skip of the suite.
        if (t.options.mode === 'skip' && narrowed) continue;
        if (t.options.mode === 'todo') continue;
        total++;
        const name = `${m.moduleId.replace(`${process.cwd()}/`, '')} > ${t.fullName}`;
        if (r.note) reasons.set(r.note, [...(reasons.get(r.note) ?? []), name]);
        else unexplained.push(name);
      }
    }
    const lines = [`\n Skipped: ${total} test${total === 1 ? '' : 's'}${total ? '' : ' (none)'}`];
    for (const [reason, names] of [...reasons].sort((a, b) => b[1].length - a[1].length)) {
      lines.push(`   ${names.length} × ${reason}`);
      if (names.length <= 3) for (const n of names) lines.push(`       ${n}`);
    }
    if (unexplained.length) {
      lines.push(`   ${unexplained.length} without a reason (skip with ctx.skip(condition, reason), see test/support/skip.ts):`);
      for (const n of unexplained) lines.push(`       ${n}`);
      if (!narrowed) {
        lines.push(' A skip without a reason fails the run.');
        process.exitCode = 1;
      }
    }
    process.stdout.write(`${lines.join('\n')}\n`);
  }
}
