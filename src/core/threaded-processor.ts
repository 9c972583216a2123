/**
 * A processor that runs in worker threads, for CPU-bound work: a module and the name of the
 * function it exports (item → result, or undefined to filter). Items and results cross threads
 * by structured clone; an error comes back as a `ThreadedProcessError` with the original
 * error's name and message.
 */
export interface ThreadedProcessor {
  /** The module (file URL or path) that exports the processor function, loaded in each thread. */
  readonly module: string;
  /** The name of that export. */
  readonly exportName: string;
  /** How many worker threads process a chunk's items. */
  readonly threads: number;
}
