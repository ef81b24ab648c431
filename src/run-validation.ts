/**
 * Checks of runs, patches and queries shared by the registry adapters, so that every adapter
 * refuses the same input with the same `ValidationError` (its `field` names the culprit).
 */
import { ValidationError } from './errors.js';
import type { RunQuery, RunWrite } from './registry.js';
import type { Run, RunPatch, RunStatus } from './run.js';
import { RUN_PRIORITIES, RunStatus as RunStatuses, isRunPriority, isRunStatus } from './run.js';

const STATUS_LIST = `one of ${Object.values(RunStatuses).map((status) => `'${status}'`).join(', ')}`;
const PRIORITY_LIST = `one of ${RUN_PRIORITIES.map((priority) => `'${priority}'`).join(', ')}`;
const ID_RULE = 'a string of 1 to 256 printable characters';

const MAX_ID_CODE_POINTS = 256;

/**
 * Whether `value` can serve as a run, module, item or instance id: 1 to 256 characters (code
 * points), none of them a control character — ids end up in URLs, log lines and Redis keys.
 */
export function isValidId(value: unknown): value is string {
	if (typeof value !== 'string') return false;
	const { length } = value;
	if (length === 0 || length > 2 * MAX_ID_CODE_POINTS) return false;
	// A loop rather than a regex: this runs for every run added, several times.
	let points = 0;
	for (let index = 0; index < length; index++) {
		const code = value.charCodeAt(index);
		if (code <= 0x1f || (code >= 0x7f && code <= 0x9f)) return false;
		// A surrogate pair is one character.
		if (code >= 0xd8_00 && code <= 0xdb_ff && index + 1 < length) {
			const next = value.charCodeAt(index + 1);
			if (next >= 0xdc_00 && next <= 0xdf_ff) index++;
		}
		points++;
	}
	return points <= MAX_ID_CODE_POINTS;
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

/**
 * Checks one write of an `applyWrites` batch, so that every adapter refuses the same write with
 * the same field: `write`, `write.type`, `write.runId`, `write.ifStatus` (one status, required),
 * then the run (`run.…`) or the patch (`patch.…`).
 */
export function assertRunWrite(write: unknown): asserts write is RunWrite {
	if (typeof write !== 'object' || write === null) throw new ValidationError('write', "an { type: 'add' | 'update', … } object", write);
	const candidate = write as { type?: unknown; run?: unknown; runId?: unknown; patch?: unknown; ifStatus?: unknown };
	if (candidate.type === 'add') {
		assertRun(candidate.run);
		return;
	}
	if (candidate.type !== 'update') throw new ValidationError('write.type', "'add' or 'update'", candidate.type);
	assertId('write.runId', candidate.runId);
	if (!isRunStatus(candidate.ifStatus)) throw new ValidationError('write.ifStatus', STATUS_LIST, candidate.ifStatus);
	assertPatch(candidate.patch);
}

/** The default and the largest `limit` of a `listRuns` page. */
export const DEFAULT_LIST_LIMIT = 100;
export const MAX_LIST_LIMIT = 10_000;

/** A checked {@link RunQuery}, with its `limit` defaulted and its status filter as a list (see parseStatusFilter). The cursor is the registry's to decode. */
export interface ParsedRunQuery {
	readonly statuses: RunStatus[] | undefined;
	readonly moduleId: string | undefined;
	readonly itemId: string | undefined;
	readonly ownerId: string | undefined;
	readonly limit: number;
	readonly cursor: unknown;
}

/** Checks a `listRuns` query as every registry does, so that each refuses the same query with the same field. */
export function parseRunQuery(query: unknown): ParsedRunQuery {
	if (typeof query !== 'object' || query === null) throw new ValidationError('query', 'an object', query);
	const candidate = query as RunQuery;
	const statuses = parseStatusFilter('query.status', candidate.status);
	const { moduleId, itemId, ownerId, limit = DEFAULT_LIST_LIMIT, cursor } = candidate;
	assertOptionalString('query.moduleId', moduleId);
	assertOptionalString('query.itemId', itemId);
	assertOptionalString('query.ownerId', ownerId);
	if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
		throw new ValidationError('query.limit', `an integer from 1 to ${MAX_LIST_LIMIT}`, limit);
	}
	return { statuses, moduleId, itemId, ownerId, limit, cursor };
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
