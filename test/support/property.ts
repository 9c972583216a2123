/**
 * fast-check settings for the property tests (test/property). `npm test` runs each property with
 * a fixed seed and a modest number of runs, so a run is reproducible and quick; `npm run
 * test:chaos` raises NIGHTSHIFT_PROPERTY_RUNS and draws a new seed, which fast-check prints with
 * any counterexample (replay with NIGHTSHIFT_PROPERTY_SEED=<seed>).
 */
const RUNS = Number(process.env.NIGHTSHIFT_PROPERTY_RUNS ?? 100);
const SEED_ENV = process.env.NIGHTSHIFT_PROPERTY_SEED;
/** The seed: fixed by default, NIGHTSHIFT_PROPERTY_SEED=random for a new one each run. */
export const PROPERTY_SEED = SEED_ENV === 'random' ? Date.now() % 2_147_483_647 : Number(SEED_ENV ?? 16_2026);

if (SEED_ENV === 'random' || RUNS !== 100) console.log(`[property] seed ${PROPERTY_SEED}, ${RUNS} runs per property (scaled per test)`);

/** fc.assert's options: the suite's seed, and its number of runs times `scale` (for costly properties). */
export function propertyOptions(scale = 1): { seed: number; numRuns: number } {
  return { seed: PROPERTY_SEED, numRuns: Math.max(1, Math.round(RUNS * scale)) };
}

/** Names an object inherits from Object.prototype (refused as parameters on branch inputs, issue 16 item 7). */
export const PROTOTYPE_NAMES = new Set(Object.getOwnPropertyNames(Object.prototype).concat('__proto__'));
