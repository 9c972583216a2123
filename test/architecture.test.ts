import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cruise, type ICruiseResult, type IViolation } from 'dependency-cruiser';
import extractDepcruiseOptions from 'dependency-cruiser/config-utl/extract-depcruise-options';
import extractTSConfig from 'dependency-cruiser/config-utl/extract-ts-config';
import { describe, expect, it } from 'vitest';

// The layer rules and no-circular live in .dependency-cruiser.mjs (also run by `npm run lint`).
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CONFIG = join(ROOT, '.dependency-cruiser.mjs');

/** Cruises `src` under `baseDir` with the repository's rules; one readable line per violation. */
async function violations(baseDir: string): Promise<string[]> {
  const options = await extractDepcruiseOptions(CONFIG);
  const comments = new Map((options.ruleSet?.forbidden ?? []).map((r) => [r.name, r.comment]));
  const { output } = await cruise(['src'], { ...options, baseDir }, undefined, { tsConfig: extractTSConfig(join(ROOT, 'tsconfig.json')) });
  const result = output as ICruiseResult;
  const typeOnly = (types: readonly string[] | undefined) => !!types && (types.includes('type-only') || types.includes('type-import'));
  const line = (v: IViolation) => {
    const path = v.cycle?.length ? [v.from, ...v.cycle.map((c) => c.name)] : [v.from, v.to];
    const types = v.cycle?.length ? v.cycle.every((c) => typeOnly(c.dependencyTypes)) : typeOnly(v.dependencyTypes);
    return `${v.rule.name}: ${path.join(' → ')}${types ? ' (type-only)' : ''}\n    ${comments.get(v.rule.name) ?? ''}`;
  };
  return result.summary.violations.map(line).sort();
}

describe('architecture', () => {
  it('src keeps its layers and has no import cycles', async () => {
    const found = await violations(ROOT);
    expect(found, `dependency-cruiser found violations of .dependency-cruiser.mjs:\n${found.join('\n')}\n`).toEqual([]);
  });

  it('the rules catch an upward import, a type-only cycle and a lower layer importing the CLI', async () => {
    const found = await violations(join(ROOT, 'test/fixtures/architecture'));
    expect(found.map((line) => line.split('\n')[0])).toEqual([
      'layer-core: src/core/model.ts → src/engine/a.ts (type-only)',
      'layer-scheduler: src/scheduler/commands.ts → src/cli/output.ts',
      'no-circular: src/engine/a.ts → src/engine/b.ts → src/engine/a.ts (type-only)',
    ]);
  });
});
