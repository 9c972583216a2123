/** One tasklet step that does nothing. */
export declare const noop: import("nightshift").JobDefinition<Record<never, never>>;
/** Reads the numbers 1..items and writes a row per number into count_items. */
export declare const count: import("nightshift").JobDefinition<{
    items: import("nightshift").ParamSpec<number>;
    chunk: import("nightshift").ParamSpec<number>;
    tag: import("nightshift").ParamSpec<string>;
    delayMs: import("nightshift").ParamSpec<number>;
    failAt: import("nightshift").ParamSpec<number>;
}>;
/** The range 1..items split into `grid` partitions; each writes its rows like `count`. */
export declare const partitionedCount: import("nightshift").JobDefinition<{
    items: import("nightshift").ParamSpec<number>;
    grid: import("nightshift").ParamSpec<number>;
    tag: import("nightshift").ParamSpec<string>;
    delayMs: import("nightshift").ParamSpec<number>;
}>;
/** Imports people from a CSV file; bad rows are skipped and recorded in people_rejects. */
export declare const importCsv: import("nightshift").JobDefinition<{
    input: import("nightshift").ParamSpec<string>;
    chunk: import("nightshift").ParamSpec<number>;
    skipLimit: import("nightshift").ParamSpec<number>;
}>;
declare const _default: (import("nightshift").JobDefinition<Record<never, never>> | import("nightshift").JobDefinition<{
    items: import("nightshift").ParamSpec<number>;
    chunk: import("nightshift").ParamSpec<number>;
    tag: import("nightshift").ParamSpec<string>;
    delayMs: import("nightshift").ParamSpec<number>;
    failAt: import("nightshift").ParamSpec<number>;
}> | import("nightshift").JobDefinition<{
    items: import("nightshift").ParamSpec<number>;
    grid: import("nightshift").ParamSpec<number>;
    tag: import("nightshift").ParamSpec<string>;
    delayMs: import("nightshift").ParamSpec<number>;
}> | import("nightshift").JobDefinition<{
    input: import("nightshift").ParamSpec<string>;
    chunk: import("nightshift").ParamSpec<number>;
    skipLimit: import("nightshift").ParamSpec<number>;
}>)[];
export default _default;
//# sourceMappingURL=nightshift.config.d.ts.map