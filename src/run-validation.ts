/**
 * Checks of runs, patches and queries shared by the registry adapters, so that every adapter
 * refuses the same input with the same `ValidationError` (its `field` names the culprit).
 */
import { ValidationError } from './errors.js';
import type { Run, RunPatch, RunStatus } from './run.js';
import { RUN_PRIORITIES, RunStatus as RunStatuses, isRunPriority, isRunStatus } from './run.js';

const STATUS_LIST = `one of ${Object.values(RunStatuses).map((status) => `'${status}'`).join(', ')}`;
const PRIORITY_LIST = `one of ${RUN_PRIORITIES.map((priority) => `'${priority}'`).join(', ')}`;
const ID_RULE = 'a string of 1 to 256 printable characters';

// Printable characters only: ids end up in URLs, log lines and Redis keys.
const idPattern = /^[^\u0000-\u001F\u007F]{1,256}$/u;

/** Whether `value` can serve as a run, module, item or instance id: 1 to 256 characters, no control characters. */
export function isValidId(value: unknown): value is string {
	return typeof value === 'string' && idPattern.test(value);
}

export function assertId(field: string, value: unknown): asserts value is string {
	if (!isValidId(value)) throw new ValidationError(field, ID_RULE, value);
}

/** Checks every field of a run before anything is stored. */
export function assertRun(run: unknown): asserts run is Run {
	if (typeof run !== 'object' || run === null) throw new ValidationError('run', 'a run object', run);
	const candidate = run as Partial<Run>;
	assertId('run.runId', candidate.runId);
	assertId('run.moduleId', candidate.moduleId);
	if (!isRunStatus(candidate.status)) throw new ValidationError('run.status', STATUS_LIST, candidate.status);
	if (!isRunPriority(candidate.priority)) throw new ValidationError('run.priority', PRIORITY_LIST, candidate.priority);
	assertTime('run.createdAt', candidate.createdAt);
	assertTime('run.updatedAt', candidate.updatedAt);
	assertOptionalString('run.moduleName', candidate.moduleName);
	if (candidate.itemId !== undefined) assertId('run.itemId', candidate.itemId);
	if (candidate.ownerId !== undefined) assertId('run.ownerId', candidate.ownerId);
	assertOptionalTime('run.startedAt', candidate.startedAt);
	assertOptionalTime('run.completedAt', candidate.completedAt);
	assertOptionalObject('run.progress', candidate.progress);
	assertOptionalObject('run.error', candidate.error);
	assertOptionalObject('run.metadata', candidate.metadata);
}

/** Checks every field of a patch, so that a bad patch changes nothing. */
export function assertPatch(patch: unknown): asserts patch is RunPatch {
	if (typeof patch !== 'object' || patch === null) throw new ValidationError('patch', 'an object', patch);
	const candidate = patch as RunPatch;
	if (candidate.status !== undefined && !isRunStatus(candidate.status)) throw new ValidationError('patch.status', STATUS_LIST, candidate.status);
	if (candidate.priority !== undefined && !isRunPriority(candidate.priority)) {
		throw new ValidationError('patch.priority', PRIORITY_LIST, candidate.priority);
	}
	if (candidate.ownerId !== undefined) assertId('patch.ownerId', candidate.ownerId);
	assertOptionalTime('patch.startedAt', candidate.startedAt);
	assertOptionalTime('patch.completedAt', candidate.completedAt);
	assertOptionalObject('patch.progress', candidate.progress);
	assertOptionalObject('patch.error', candidate.error);
	assertOptionalObject('patch.metadata', candidate.metadata);
}

/** A status-or-statuses option as a list without repeats; `undefined` when absent (no filter). */
export function parseStatusFilter(field: string, value: unknown): RunStatus[] | undefined {
	if (value === undefined) return undefined;
	if (isRunStatus(value)) return [value];
	if (Array.isArray(value) && value.every(isRunStatus)) return [...new Set(value)];
	throw new ValidationError(field, `${STATUS_LIST}, or an array of them`, value);
}

export function assertOptionalString(field: string, value: unknown): void {
	if (value !== undefined && typeof value !== 'string') throw new ValidationError(field, 'a string', value);
}

function assertTime(field: string, value: unknown): void {
	if (typeof value !== 'number' || !Number.isFinite(value)) throw new ValidationError(field, 'a finite number (epoch ms)', value);
}

function assertOptionalTime(field: string, value: unknown): void {
	if (value !== undefined) assertTime(field, value);
}

function assertOptionalObject(field: string, value: unknown): void {
	if (value !== undefined && (typeof value !== 'object' || value === null)) throw new ValidationError(field, 'an object', value);
}
