/**
 * A processor that runs in worker threads, for CPU-bound work: a module and the name of the
 * function it exports (item → result, or undefined to filter). Items and results cross threads
 * by structured clone; an error comes back as a `ThreadedProcessError` with the original
 * error's name and message.
 */
export interface ThreadedProcessor {
  readonly module: string;
  readonly exportName: string;
  readonly threads: number;
}
