import { allElements, subflowElements, type FlowElement, type SubflowDefinition, type TransitionTarget } from '../core/job.ts';
import { exitStatus, mostSpecificMatch, worstStatus, type BatchStatus, type ExitStatus } from '../core/status.ts';
import type { ElementOutcome, JobRun } from './run-types.ts';
import { commitPending, executeStep } from './step-runner.ts';

/** Job-context key naming where a stopped flow continues on restart. */
export const RESTART_AT = 'ns.restartAt';

export interface FlowResult extends ElementOutcome {
  /** For a flow that stopped: the element a restart begins at. */
  restartAt?: string;
}

/**
 * Runs a flow: elements in order, or along their `on` transitions. Without transitions a
 * FAILED or STOPPED element ends the flow with that status; with transitions the most
 * specific matching exit-code pattern decides, and when none matches, an exit code COMPLETED
 * goes on to the next element (or ends the flow COMPLETED) while any other code fails it.
 */
export async function runFlow<P>(elements: FlowElement<P>[], run: JobRun<P>, startAt?: string): Promise<FlowResult> {
  // A restart point inside a reusable flow resumes at that flow, which resumes at the point.
  let index = startAt ? Math.max(0, elements.findIndex((e) => e.name === startAt || (e.type === 'flow' && contains(e, startAt)))) : 0;
  let resumeInside = startAt !== undefined && elements[index]?.name !== startAt ? startAt : undefined;
  let last: FlowResult = { status: 'COMPLETED', exitStatus: exitStatus('COMPLETED') };
  for (;;) {
    const element = elements[index];
    if (run.handle.stopRequested) {
      return { status: 'STOPPED', exitStatus: exitStatus('STOPPED', 'stopped on request') };
    }
    last = await runElement(element, run, last.exitStatus, resumeInside);
    resumeInside = undefined;
    if (last.status === 'STOPPED' && run.handle.stopRequested) return last;
    // A reusable flow stopped by one of its own transitions stops the job; a restart resumes inside it.
    if (last.status === 'STOPPED' && last.restartAt) return last;
    const target = element.on ? pickTransition(element.on, last.exitStatus.code) : undefined;
    if (!element.on) {
      // No restartAt: a restart walks the flow again from its start, skipping completed steps
      // (their exit statuses route it the same way) but re-running allowStartIfComplete ones.
      if (last.status === 'FAILED' || last.status === 'STOPPED' || last.status === 'ABANDONED' || last.status === 'UNKNOWN') {
        return last;
      }
      if (index + 1 >= elements.length) return last;
      index++;
      continue;
    }
    if (target === undefined) {
      // The defaults Spring Batch's job builders add: an unmatched COMPLETED goes on as if the
      // element had no transitions (the next element, or the end); any other code fails the job.
      if (last.exitStatus.code === 'COMPLETED') {
        if (index + 1 >= elements.length) return { status: 'COMPLETED', exitStatus: last.exitStatus };
        index++;
        continue;
      }
      return {
        status: 'FAILED',
        exitStatus: exitStatus('FAILED', `no transition from ${element.name} matches exit code ${last.exitStatus.code}${why(last)}`),
      };
    }
    if (typeof target === 'object') {
      if ('end' in target) return { status: 'COMPLETED', exitStatus: exitStatus(target.end) };
      if ('fail' in target) return { status: 'FAILED', exitStatus: exitStatus(target.fail, `failed by transition from ${element.name} on ${last.exitStatus.code}${why(last)}`) };
      return { status: 'STOPPED', exitStatus: exitStatus('STOPPED', `stopped by transition from ${element.name}`), restartAt: target.stop };
    }
    if (target === 'end') return { status: 'COMPLETED', exitStatus: last.status === 'COMPLETED' ? last.exitStatus : exitStatus('COMPLETED') };
    if (target === 'fail') return { status: 'FAILED', exitStatus: exitStatus('FAILED', `failed by transition from ${element.name} on ${last.exitStatus.code}${why(last)}`) };
    if (target === 'stop') {
      return {
        status: 'STOPPED',
        exitStatus: exitStatus('STOPPED', `stopped by transition from ${element.name}`),
        restartAt: elements[index + 1]?.name,
      };
    }
    const next = elements.findIndex((e) => e.name === target);
    if (next < 0) {
      return { status: 'FAILED', exitStatus: exitStatus('FAILED', `transition target ${target} is not in the same flow as ${element.name}`) };
    }
    index = next;
  }
}

/**
 * What the element's exit said, for the job's exit description when its transition ends the job:
 * the step's failure, where a job failed by a transition would otherwise name only the step.
 */
const why = (last: FlowResult): string => (last.exitStatus.description ? `: ${last.exitStatus.description}` : '');

function pickTransition(on: Record<string, TransitionTarget>, code: string): TransitionTarget | undefined {
  const match = mostSpecificMatch(Object.keys(on), code);
  return match === undefined ? undefined : on[match];
}

/** Whether a reusable flow holds an element of that name (in its splits and flows too). */
function contains(flow: SubflowDefinition, name: string): boolean {
  for (const el of allElements(flow.flow.elements)) if (el.name === name) return true;
  return false;
}

async function runElement<P>(element: FlowElement<P>, run: JobRun<P>, lastExit: ExitStatus, resumeAt: string | undefined): Promise<FlowResult> {
  switch (element.type) {
    case 'flow':
      return runFlow(subflowElements<P>(element.flow), run, resumeAt);
    case 'decision': {
      await commitPending(run);
      const code = await element.decide({
        params: run.params, jobExecution: run.handle.execution, lastExitStatus: lastExit, jobContext: run.jobContext, db: run.handle.db,
        log: run.handle.log.child({ decision: element.name }),
      });
      return { status: 'COMPLETED', exitStatus: exitStatus(code) };
    }
    case 'split': {
      await commitPending(run);
      const branch = { ...run, deferEnds: false };
      // Every flow ends before the split does, even when one throws: no step is left running
      // after its job execution ended.
      const settled = await Promise.allSettled(element.flows.map((flow) => runFlow(flow, branch)));
      const thrown = settled.find((r) => r.status === 'rejected');
      if (thrown) throw thrown.reason;
      const results = settled.map((r) => (r as PromiseFulfilledResult<FlowResult>).value);
      const status: BatchStatus = worstStatus(results.map((r) => r.status));
      const worst = results.find((r) => r.status === status)!;
      return { status, exitStatus: worst.exitStatus };
    }
    default:
      return executeStep(element, run);
  }
}
