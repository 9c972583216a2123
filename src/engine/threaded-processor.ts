import { availableParallelism } from 'node:os';
import { pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';
import type { Piscina as PiscinaPool } from 'piscina';
import type { ThreadedProcessor } from '../core/threaded-processor.ts';

export type { ThreadedProcessor };

/**
 * Declares a processor that runs in `threads` worker threads (default: the machine's cores).
 *
 * @example
 * processInThreads: threadedProcessor(new URL('./score.ts', import.meta.url), { exportName: 'score' })
 */
export function threadedProcessor(module: string | URL, options: { exportName?: string | undefined; threads?: number | undefined } = {}): ThreadedProcessor {
  const url = module instanceof URL ? module.href : module.startsWith('file:') ? module : pathToFileURL(module).href;
  const threads = options.threads ?? availableParallelism();
  if (!Number.isInteger(threads) || threads < 1) throw new Error(`threads must be a positive integer, got ${threads}`);
  return { module: url, exportName: options.exportName ?? 'default', threads };
}

/** An error thrown by a threaded processor, as it crossed back from its thread. */
export class ThreadedProcessError extends Error {
  /** Always `'ThreadedProcessError'`. */
  override readonly name = 'ThreadedProcessError';
  constructor(
    /** The `name` of the error the processor threw in its thread (its class does not cross threads). */
    readonly originalName: string,
    message: string,
  ) {
    super(message);
  }
}

type SliceResult = { ok: true; value: unknown } | { ok: false; name: string; message: string };

/** A pool of threads for one step execution; `process` splits a chunk over them. */
export function openThreadPool(spec: ThreadedProcessor) {
  // piscina (CommonJS) loads with the first thread pool, not with every import of nightshift.
  const { Piscina } = createRequire(import.meta.url)('piscina') as { Piscina: typeof PiscinaPool };
  const pool = new Piscina({
    filename: new URL('./processor-thread.mjs', import.meta.url).href,
    minThreads: spec.threads,
    maxThreads: spec.threads,
  });
  return {
    /** Processes items in slices, one per thread; per item a value or an error. */
    async process(items: unknown[]): Promise<({ value: unknown } | { error: ThreadedProcessError })[]> {
      const size = Math.ceil(items.length / spec.threads) || 1;
      const slices: unknown[][] = [];
      for (let i = 0; i < items.length; i += size) slices.push(items.slice(i, i + size));
      const results = await Promise.all(
        slices.map((slice) => pool.run({ module: spec.module, exportName: spec.exportName, items: slice }) as Promise<SliceResult[]>),
      );
      return results.flat().map((r) => (r.ok ? { value: r.value } : { error: new ThreadedProcessError(r.name, r.message) }));
    },
    close: () => pool.destroy(),
  };
}
