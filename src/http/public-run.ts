/**
 * What clients see of a run: everything but the stack of its error, which would leak paths and
 * code of the server.
 */
import type { Run } from '../run.js';

export function toPublicRun(run: Run): Run {
	if (run.error?.stack === undefined) return run;
	const { stack: _stack, ...error } = run.error;
	return { ...run, error };
}
