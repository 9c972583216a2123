/**
 * How --help describes what several commands take: the same words for the same thing, whichever
 * command it is (test/cli/help-docs.test.ts checks that every argument is described, alike
 * wherever it appears).
 */
export const HELP = {
  executionId: 'execution id',
  job: 'job name',
  params: 'job parameters as key=value',
  node: 'node name',
  trigger: 'trigger name',
  cron: 'Quartz cron expression, with seconds (e.g. "0 0/15 9-17 ? * MON-FRI")',
} as const;
