/**
 * Noticing that the process that started this one has ended, for the commands that run until a
 * signal (`node`, `serve`) or until their execution ends (`run`, `restart`).
 *
 * npx (npm exec) runs a command through `sh -c`, and passes a SIGTERM it gets to that shell
 * only: the shell ends, and the command goes on running, re-parented, with nobody left to stop
 * it (a node would keep its lease and claim work). So a command started by npx (npm sets
 * `npm_lifecycle_event=npx` for it) takes the end of its parent as that signal; so does a worker
 * node started with `--exit-with-parent`.
 */

/** Whether this process was started by npx / npm exec. */
export const startedByNpx = (): boolean => process.env.npm_lifecycle_event === 'npx';

/**
 * Calls `onEnd` once when this process's parent (`parent`: its pid when the command began) has
 * ended (checked every 250 ms), if `always` or when npx started it; returns what stops watching.
 */
export function whenParentEnds(onEnd: () => void, always = false, parent = process.ppid): () => void {
  if (!always && !startedByNpx()) return () => undefined;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    onEnd();
  }, 250);
  timer.unref();
  return () => clearInterval(timer);
}

/** What a command says on stderr when its parent ended. */
export const PARENT_ENDED = 'the process that started this one ended (npx passes no signal on to it): stopping as on SIGTERM';
