/**
 * Nightshift: batch jobs for TypeScript, run on one machine with SQLite or on a PostgreSQL
 * cluster. The public API: define jobs, run them, and the built-in readers and writers.
 */
export { defineJob, defineFlow, processExitCode } from './core/job.ts';
export type {
  JobDefinition, JobSpec, StepContext, TaskletContext, FlowElement, StepDefinition, ChunkStepDefinition,
  TaskletStepDefinition, TaskletResult, DecisionDefinition, DecisionContext, SplitDefinition, Transitions, TransitionTarget, SkipPolicy,
  SkipQuery, SkipDecider, RetryPolicy, RetryListener, RetryEvent, ErrorMatcher, SkippedItem, SkippedIn, ReadSkip, JobListener, StepListener,
  ChunkListener, RepeatStatus, Phase, ParamsProblem, ParamsValidator, ParamsIncrementer, Firing, FiringParams, ParamsInput, ParamInput, ImplicitParamValues,
  JobStepDefinition, FlowDefinition, FlowSpec, SubflowDefinition, FlowBuilder, JobSummary,
} from './core/job.ts';
export { p } from './core/params.ts';
export type { ParamSpec, ParamsSchema, ParamValues, JsonParams, ParamKind } from './core/params.ts';
export type { BatchStatus, ExitStatus } from './core/status.ts';
export { exitStatus } from './core/status.ts';
export type { JobExecution, JobInstance, StepExecution, ExecutionContext, StepCounters, LaterExecution } from './core/model.ts';
export type { ItemReader, ItemStreamReader, ItemWriter, ItemStreamWriter, ItemProcessor, ChunkContext } from './core/items.ts';
export {
  NightshiftError, UsageError, ParameterError, UnknownJobError, LaunchRefusedError, MaxRunningError, ItemParseError, FencedError, SkipLimitExceededError,
  StartLimitExceededError, ClosedError,
} from './core/errors.ts';
export { createLogger, silentLogger, type Logger } from './core/logger.ts';
export { createNightshift, type Nightshift, type NightshiftOptions, type ExecutionDetails, type ExecutionSummary, type NodeInfo, type ParamsOf } from './operator.ts';
export type { ExecutionQuery } from './repository/job-repository.ts';
export { openDatabase, DEFAULT_DB_URL } from './repository/open.ts';
export type { OpenOptions } from './repository/open.ts';
export { DatabaseUnreachableError } from './repository/connection-errors.ts';
export type { Database } from './core/database.ts';
export type { SqlClient, Tx, Dialect } from './core/database.ts';
export { rangeReader } from './items/range-reader.ts';
export { sqlWriter, insertRows, copyRows, type SqlWriterOptions } from './items/sql-writer.ts';
export { pagingReader, cursorReader } from './items/sql-reader.ts';
export { ensureTable } from './items/ensure-table.ts';
export { isUniqueViolation } from './items/sql-error.ts';
export { csvReader, type CsvReaderOptions, type CsvRecordKeys } from './items/csv-reader.ts';
export { fixedWidthReader } from './items/fixed-width-reader.ts';
export { jsonlReader } from './items/jsonl-reader.ts';
export { fileWriter, csvWriter, jsonlWriter } from './items/file-writer.ts';
export { compositeWriter, classifierWriter } from './items/composite-writer.ts';
export { commandTasklet, CommandError, COMMAND_WITHHELD_ENV, type CommandSpec } from './tasklets/command.ts';
export { parseCron, nextFireTimes, CronError, type CronSchedule } from './scheduler/cron.ts';
export { startScheduler, type Scheduler, type SchedulerOptions, type FireEvent } from './scheduler/scheduler.ts';
export {
  scheduleAdmin, validateSchedule, type ScheduleAdmin, type ScheduleSpec, type Schedule, type FireRecord, type MisfirePolicy,
} from './scheduler/triggers.ts';
export { startNode, type ClusterNode, type NodeOptions, type NodeEvents, type NodeEvent, type NodeHealth, type ExecutionEnd } from './cluster/node.ts';
export type { RetentionOptions } from './cluster/housekeeping.ts';
export { pruneHistory, type PruneOptions, type PruneResult } from './repository/retention.ts';
export type { Routing, NodeCandidate } from './cluster/routing.ts';
export type { SubmitItem, SubmitResult } from './engine/bulk-launch.ts';
export { threadedProcessor, ThreadedProcessError, type ThreadedProcessor } from './engine/threaded-processor.ts';
export {
  localProcessLauncher, type WorkerLauncher, type LaunchRequest, type LaunchedWorkers, type LocalProcessLauncherOptions,
} from './engine/worker-launcher.ts';
export type { PartitionWorkers } from './core/job.ts';

// Types the API above names, exported so that applications can name them too.
export type {
  SkipMatchers, PartitionedStepDefinition, PartitionedStepSpec, PartitionWorker, PartitionWorkerBuilder, PartitionValues, JsonSafe, PartitionMode,
  SomeChunkStep, SomePartitionedStep, SomeJobStep, SomeFlow,
} from './core/job.ts';
export type { ParamOptions, Resolved, KindValue } from './core/params.ts';
export type { ReadProgress } from './core/items.ts';
export type { Statement } from './core/database.ts';
export type { PgOptions } from './repository/database.ts';
export type { ExecutionPage } from './repository/job-repository.ts';
export type { PagingReaderOptions } from './items/sql-reader.ts';
export { UnreadableFileError, type FileItemReader } from './items/record-source.ts';
export type { FixedWidthReaderOptions, FixedWidthField } from './items/fixed-width-reader.ts';
export type { JsonlReaderOptions } from './items/jsonl-reader.ts';
export type { FileItemWriter, FileWriterOptions, CsvWriterOptions, CsvColumn, JsonlWriterOptions } from './items/file-writer.ts';
export type { DbClock } from './scheduler/clock.ts';
export type { JobsLike, TriggerDefinition } from './scheduler/triggers.ts';
export type { LeaseOptions } from './cluster/node-identity.ts';
export type { AnyJob, JobNamed, SomeJob, SubmitItemOf } from './operator/types.ts';
export type { Metrics } from './server/metrics.ts';
