/**
 * Model-based testing of {@link RunRegistry} adapters with fast-check.
 *
 * - {@link RegistryModel}: a plain in-memory reference implementation of what the contract lets a
 *   caller observe (src/registry.ts), with its own copy of the lifecycle table (it does not import
 *   `isLegalTransition`, so that a wrong table in src/run.ts cannot agree with itself).
 * - {@link commandsArbitrary}: short sequences of registry calls over small pools of ids (so ids
 *   are reused, runs collide and filters match), every added run with a distinct `createdAt` so
 *   that listing order is the same for every adapter.
 * - {@link assertRegistriesMatchModel}: runs each sequence on the model and on one or more fresh
 *   registries in lockstep. After every command it compares outcomes by value (runs minus
 *   `updatedAt`; errors by name and message, a ValidationError by the field it names; list pages),
 *   with the model and between the registries; then it reads every run back and checks the
 *   invariants: stored runs equal the model's, each run's status history is a legal path,
 *   terminal runs never change, `updatedAt` never goes down (and is the one given until a registry
 *   stamps it), and what a call returned is what is stored. At the end of a sequence every index
 *   is listed in full and compared.
 *
 * Reproduce a failure with the seed and path fast-check prints:
 * `RUNLEDGER_MODEL_SEED=<seed> RUNLEDGER_MODEL_PATH=<path> npx vitest run <file>`.
 */
import { inspect, isDeepStrictEqual } from 'node:util';

import fc from 'fast-check';
import { expect } from 'vitest';

import { IllegalTransitionError, RunExistsError } from '../../src/errors.js';
import type { RunPage, RunQuery, RunRegistry, RunWrite, RunWriteResult } from '../../src/registry.js';
import type { Run, RunPatch, RunPriority, RunStatus } from '../../src/run.js';

// ---------------------------------------------------------------------------------------------
// How many sequences

/** Whether this is the full suite (`npm run test:faults` sets RUNLEDGER_SUITE=full). */
export const FULL_SUITE = process.env.RUNLEDGER_SUITE === 'full';

/** The number of sequences of the full suite. */
export const FULL_SEQUENCES = 10_000;

/** {@link FULL_SEQUENCES} under the full suite, else `fast`. */
export function sequenceCount(fast: number): number {
	return FULL_SUITE ? FULL_SEQUENCES : fast;
}

// ---------------------------------------------------------------------------------------------
// Pools and times

/** Few ids, so that adds collide and updates mostly find their run; some with `:`, a space, non-ASCII. */
export const RUN_IDS = ['r1', 'r2', 'r3', 'r4:x', 'r5 ü'] as const;
export const MODULE_IDS = ['m1', 'm2:x'] as const;
export const ITEM_IDS = ['i1', 'i2'] as const;
export const OWNER_IDS = ['o1', 'o2', 'o3'] as const;
const NO_SUCH = 'zz-none';

export const STATUSES: readonly RunStatus[] = ['queued', 'running', 'completed', 'failed', 'cancelled'];
const PRIORITIES: readonly RunPriority[] = ['critical', 'high', 'normal', 'low'];

/**
 * The lifecycle, written out from the contract rather than imported: queued → running | cancelled |
 * failed; running → completed | failed | cancelled; an update keeping the status is legal only for
 * an active run; terminal runs never change.
 */
export const MODEL_TRANSITIONS: Readonly<Record<RunStatus, readonly RunStatus[]>> = {
	queued: ['queued', 'running', 'cancelled', 'failed'],
	running: ['running', 'completed', 'failed', 'cancelled'],
	completed: [],
	failed: [],
	cancelled: [],
};

export const modelIsLegal = (from: RunStatus, to: RunStatus): boolean => MODEL_TRANSITIONS[from].includes(to);
const isTerminal = (status: RunStatus): boolean => MODEL_TRANSITIONS[status].length === 0;

// Times are laid out so that time-based behaviour is decidable from far away:
// - "old" times fall in T0 + slot·SLOT_MS + [0, 450) (2023): created at +k (k the index of the
//   add in its sequence, < 100, which makes every createdAt distinct) or +k+0.5, updated at
//   +200+k, patch times (startedAt, completedAt) at +400; some runs are created (and updated)
//   at the same offsets before 1970 instead;
// - "future" times are in 2100, so a registry stamping `updatedAt` with its clock keeps them;
// - a time a registry stamps is "now", years after every old time.
// A cleanupOldRuns cut-off is an hour before now, or MID_CUT, which a registry sees late by the
// time the call takes to reach it: 9.5 s pass from MID_CUT before the next old time.
export const T0 = 1_700_000_000_000;
const SLOT_MS = 10_000;
const SLOTS = 1_000;
const FUTURE = 4_102_444_800_000;
const NEGATIVE = -SLOTS * SLOT_MS;
const MID_CUT = T0 + (SLOTS / 2) * SLOT_MS + 500;
const HOUR = 3_600_000;
const FOREVER = 1e15;
const DAY = 86_400_000;
// Tolerance between this process' clock and a registry's (Redis runs on this host).
const CLOCK_SLACK_MS = 50;
const MAX_WRITES_PER_BATCH = 4;
const MAX_COMMANDS = 20;
const MAX_SETUP_ADDS = 5;

/** How old a terminal run must be for a cleanupOldRuns command to remove it. */
export type CleanupAge = 'forever' | 'hour' | 'mid-2023';

function maxAgeMs(age: CleanupAge): number {
	switch (age) {
		case 'forever':
			return FOREVER;
		case 'hour':
			return HOUR;
		case 'mid-2023':
			return Date.now() - MID_CUT;
	}
}

// ---------------------------------------------------------------------------------------------
// Commands

type Filters = Pick<RunQuery, 'status' | 'moduleId' | 'itemId' | 'ownerId'>;

/** One registry call of a sequence. */
export type Command =
	| { readonly op: 'addRun'; readonly run: Run }
	| { readonly op: 'getRun'; readonly runId: string }
	| { readonly op: 'getRuns'; readonly runIds: readonly string[] }
	| { readonly op: 'updateRun'; readonly runId: string; readonly patch: RunPatch; readonly ifStatus?: RunStatus | readonly RunStatus[] }
	| { readonly op: 'deleteRun'; readonly runId: string }
	/** A first page: sets (or clears) the open listing that `nextPage` continues. */
	| { readonly op: 'listRuns'; readonly query: Filters; readonly limit?: number }
	/**
	 * The next page of the open listing (same filters, this limit), other commands having run since
	 * the page before; when none is open, the first page of an unfiltered listing.
	 */
	| { readonly op: 'nextPage'; readonly limit: number }
	/** Every page of a query, one call after another. */
	| { readonly op: 'listAllPages'; readonly query: Filters; readonly limit: number }
	| { readonly op: 'cleanupOldRuns'; readonly age: CleanupAge }
	| { readonly op: 'applyWrites'; readonly writes: readonly RunWrite[] }
	/** A call with an invalid argument: a ValidationError naming `field`, and nothing changes. */
	| { readonly op: 'invalid'; readonly call: InvalidCall; readonly runId: string }
	/** A lease of an hour: nothing expires during a sequence. */
	| { readonly op: 'heartbeat'; readonly ownerId: string }
	| { readonly op: 'releaseOwner'; readonly ownerId: string }
	| { readonly op: 'reapOrphans' };

/** The invalid calls generated, by the field their ValidationError names. */
export type InvalidCall = 'query.limit' | 'query.cursor' | 'patch.status' | 'options.ifStatus' | 'run.status' | 'runId';

const BAD_CURSOR = Buffer.from('1700000000000').toString('base64url');

function invalidCall(registry: RunRegistry, call: InvalidCall, runId: string): Promise<unknown> {
	switch (call) {
		case 'query.limit':
			return registry.listRuns({ limit: 0 });
		case 'query.cursor':
			return registry.listRuns({ cursor: BAD_CURSOR });
		case 'patch.status':
			return registry.updateRun(runId, { status: 'paused' as RunStatus, progress: { percent: 1 } });
		case 'options.ifStatus':
			return registry.updateRun(runId, { status: 'running' }, { ifStatus: ['queued', 'paused' as RunStatus] });
		case 'run.status':
			return registry.addRun({ runId, moduleId: 'm1', status: 'paused' as RunStatus, priority: 'normal', parameters: {}, createdAt: T0, updatedAt: T0 });
		case 'runId':
			return registry.getRun('');
	}
}

function renderInvalidCall(call: InvalidCall, runId: string): string {
	const id = JSON.stringify(runId);
	switch (call) {
		case 'query.limit':
			return 'listRuns({"limit":0})';
		case 'query.cursor':
			return `listRuns({"cursor":${JSON.stringify(BAD_CURSOR)}})`;
		case 'patch.status':
			return `updateRun(${id}, {"status":"paused","progress":{"percent":1}})`;
		case 'options.ifStatus':
			return `updateRun(${id}, {"status":"running"}, { ifStatus: ["queued","paused"] })`;
		case 'run.status':
			return `addRun({"runId":${id},"status":"paused",…})`;
		case 'runId':
			return 'getRun("")';
	}
}

/** A command as a call, for counterexamples and failure messages. */
export function renderCommand(command: Command): string {
	const j = (value: unknown): string => JSON.stringify(value) ?? 'undefined';
	switch (command.op) {
		case 'addRun':
			return `addRun(${j(command.run)})`;
		case 'getRun':
		case 'deleteRun':
			return `${command.op}(${j(command.runId)})`;
		case 'getRuns':
			return `getRuns(${j(command.runIds)})`;
		case 'updateRun':
			return `updateRun(${j(command.runId)}, ${j(command.patch)}${command.ifStatus === undefined ? '' : `, { ifStatus: ${j(command.ifStatus)} }`})`;
		case 'listRuns':
			return `listRuns(${j(command.limit === undefined ? command.query : { ...command.query, limit: command.limit })})`;
		case 'nextPage':
			return `nextPage(limit ${command.limit})`;
		case 'listAllPages':
			return `listAllPages(${j({ ...command.query, limit: command.limit })})`;
		case 'cleanupOldRuns':
			return `cleanupOldRuns(${command.age})`;
		case 'applyWrites':
			return `applyWrites(${j(command.writes)})`;
		case 'invalid':
			return renderInvalidCall(command.call, command.runId);
		case 'heartbeat':
			return `heartbeat(${j(command.ownerId)}, ${HOUR})`;
		case 'releaseOwner':
			return `releaseOwner(${j(command.ownerId)})`;
		case 'reapOrphans':
			return 'reapOrphans()';
	}
}

// The run of an add before its times are placed (see buildRun).
interface RunSeed {
	readonly runId: string;
	readonly moduleId: string;
	readonly status: RunStatus;
	readonly priority: RunPriority;
	readonly parameters: unknown;
	readonly slot: number;
	// Where createdAt falls: in 2023 (T0 on), the same plus half a millisecond, or before 1970.
	readonly era: 'T0' | 'fraction' | 'negative';
	readonly updated: 'at-creation' | 'later' | 'future';
	readonly rest: Partial<Run>;
}

type WriteSeed = { readonly type: 'add'; readonly seed: RunSeed } | Extract<RunWrite, { type: 'update' }>;

type CommandSeed =
	| { readonly op: 'addRun'; readonly seed: RunSeed }
	| { readonly op: 'applyWrites'; readonly writes: readonly WriteSeed[] }
	| Exclude<Command, { op: 'addRun' | 'applyWrites' }>;

/** Which optional registry methods every registry under test has; commands for the others are not generated. */
export interface Capabilities {
	readonly applyWrites: boolean;
	readonly getRuns: boolean;
	/** heartbeat, releaseOwner and reapOrphans. */
	readonly leases: boolean;
}

// `arb` or undefined, weighted; shrinks towards undefined (short counterexamples).
function sometimes<T>(arb: fc.Arbitrary<T>, presentWeight: number, absentWeight: number): fc.Arbitrary<T | undefined> {
	return fc.oneof({ withCrossShrink: true }, { arbitrary: fc.constant(undefined), weight: absentWeight }, { arbitrary: arb, weight: presentWeight });
}

// The object without its undefined members (what exactOptionalPropertyTypes and printing want).
function compact<T extends object>(value: T): { [K in keyof T]: Exclude<T[K], undefined> } {
	return Object.fromEntries(Object.entries(value).filter(([, member]) => member !== undefined)) as { [K in keyof T]: Exclude<T[K], undefined> };
}

const runIdArb = fc.constantFrom(...RUN_IDS);
const statusArb = fc.constantFrom(...STATUSES);
// One status, or a list of them: possibly empty, possibly with repeats.
const statusFilterArb = fc.oneof(statusArb, fc.array(statusArb, { maxLength: 3 }));
const slotArb = fc.integer({ min: 0, max: SLOTS - 1 });
const timeArb = fc.oneof(
	{ arbitrary: slotArb.map((slot) => T0 + slot * SLOT_MS + 400), weight: 4 },
	{ arbitrary: slotArb.map((slot) => FUTURE + slot * SLOT_MS + 400), weight: 1 },
);
const progressArb = fc
	.tuple(fc.integer({ min: 0, max: 100 }), sometimes(fc.constantFrom('working', 'half ✓ done'), 1, 1))
	.map(([percent, message]) => compact({ percent, message }));
// JSON-safe values only: the Redis registry stores JSON text (no -0, no undefined inside).
const resultArb = fc.constantFrom<unknown>({ rows: 3 }, 'done', 42, null, false, [1, 'two', { three: 3 }], { nested: { ok: true, list: [] } }, 'ünïcødé ✓');
const errorArb = fc.constantFrom(
	{ name: 'Error', message: 'boom' },
	{ name: 'TypeError', message: 'bad input', code: 'E_INPUT' },
	{ name: 'OwnerLostError', message: 'gone', stack: 'Error: gone\n    at x' },
);
const metadataArb = fc.constantFrom<Record<string, unknown>>({ attempt: 1 }, { tags: ['a', 'b'] }, {});
const parametersArb = fc.constantFrom<unknown>({}, { input: 'value' }, undefined, 'text', [1, 2], { deep: { a: [1, { b: null }] } });
const ownerArb = fc.constantFrom(...OWNER_IDS);
const priorityArb = fc.constantFrom(...PRIORITIES);

const runSeedArb: fc.Arbitrary<RunSeed> = fc
	.record({
		runId: runIdArb,
		moduleId: fc.constantFrom(...MODULE_IDS),
		status: fc.oneof({ arbitrary: fc.constantFrom<RunStatus>('queued', 'running'), weight: 3 }, { arbitrary: statusArb, weight: 2 }),
		priority: priorityArb,
		parameters: parametersArb,
		slot: slotArb,
		era: fc.oneof({ arbitrary: fc.constant<RunSeed['era']>('T0'), weight: 4 }, { arbitrary: fc.constantFrom<RunSeed['era']>('fraction', 'negative'), weight: 1 }),
		updated: fc.constantFrom<RunSeed['updated']>('at-creation', 'later', 'future'),
		moduleName: sometimes(fc.constantFrom('Render', 'Ünïcode name'), 1, 3),
		itemId: sometimes(fc.constantFrom(...ITEM_IDS), 2, 1),
		ownerId: sometimes(ownerArb, 2, 1),
		startedAt: sometimes(timeArb, 1, 2),
		completedAt: sometimes(timeArb, 1, 2),
		progress: sometimes(progressArb, 1, 2),
		result: sometimes(resultArb, 1, 3),
		error: sometimes(errorArb, 1, 3),
		metadata: sometimes(metadataArb, 1, 3),
	})
	.map(({ runId, moduleId, status, priority, parameters, slot, era, updated, ...rest }) => ({
		runId,
		moduleId,
		status,
		priority,
		parameters,
		slot,
		era,
		updated,
		rest: compact(rest) as Partial<Run>,
	}));

const patchArb: fc.Arbitrary<RunPatch> = fc
	.record({
		status: sometimes(statusArb, 3, 1),
		progress: sometimes(progressArb, 1, 1),
		result: sometimes(resultArb, 1, 3),
		error: sometimes(errorArb, 1, 3),
		ownerId: sometimes(ownerArb, 1, 2),
		startedAt: sometimes(timeArb, 1, 4),
		completedAt: sometimes(timeArb, 1, 3),
		priority: sometimes(priorityArb, 1, 4),
		metadata: sometimes(metadataArb, 1, 4),
	})
	.map((patch) => compact(patch) as RunPatch);

const filtersArb: fc.Arbitrary<Filters> = fc
	.record({
		status: sometimes(statusFilterArb, 1, 2),
		moduleId: sometimes(fc.constantFrom(...MODULE_IDS, NO_SUCH), 1, 3),
		itemId: sometimes(fc.constantFrom(...ITEM_IDS, NO_SUCH), 1, 3),
		ownerId: sometimes(fc.constantFrom(...OWNER_IDS, NO_SUCH), 1, 3),
	})
	.map((filters) => compact(filters) as Filters);

const updateWriteArb: fc.Arbitrary<WriteSeed> = fc
	.record({ runId: runIdArb, patch: patchArb, ifStatus: statusArb })
	.map(({ runId, patch, ifStatus }) => ({ type: 'update', runId, patch, ifStatus }));

/**
 * Update writes outside the RunWrite type, as a JavaScript caller (or a cast) can send them: no
 * `ifStatus`, a list of statuses, an unknown status, an empty runId. The model's answer: the write
 * fails with a ValidationError and changes nothing (a compare-and-set write must not turn into an
 * unconditional one, nor take a condition its type does not allow).
 */
const outOfContractWriteArb: fc.Arbitrary<WriteSeed> = fc
	.record({
		runId: runIdArb,
		patch: patchArb,
		flaw: fc.constantFrom('no ifStatus', 'ifStatus list', 'unknown ifStatus', 'empty runId'),
		statuses: fc.array(statusArb, { minLength: 1, maxLength: 2 }),
	})
	.map(({ runId, patch, flaw, statuses }): WriteSeed => {
		const ifStatus = statuses[0] as RunStatus;
		switch (flaw) {
			case 'no ifStatus':
				return { type: 'update', runId, patch } as unknown as WriteSeed;
			case 'ifStatus list':
				return { type: 'update', runId, patch, ifStatus: statuses } as unknown as WriteSeed;
			case 'unknown ifStatus':
				return { type: 'update', runId, patch, ifStatus: 'paused' as RunStatus };
			case 'empty runId':
				return { type: 'update', runId: '', patch, ifStatus };
		}
	});

// Whether an update write is one of those: the model refuses it whole.
const isOutOfContract = (write: Extract<RunWrite, { type: 'update' }>): boolean =>
	write.runId === '' || typeof write.ifStatus !== 'string' || !STATUSES.includes(write.ifStatus);

function commandSeedArb(capabilities: Capabilities, outOfContractWrites: boolean): fc.Arbitrary<CommandSeed> {
	const choices: Array<fc.WeightedArbitrary<CommandSeed>> = [
		{ arbitrary: runSeedArb.map((seed) => ({ op: 'addRun', seed })), weight: 4 },
		{
			arbitrary: fc
				.record({ runId: runIdArb, patch: patchArb, ifStatus: sometimes(statusFilterArb, 1, 2) })
				.map(({ runId, patch, ifStatus }) => (ifStatus === undefined ? { op: 'updateRun', runId, patch } : { op: 'updateRun', runId, patch, ifStatus })),
			weight: 7,
		},
		{ arbitrary: runIdArb.map((runId) => ({ op: 'getRun', runId })), weight: 1 },
		{ arbitrary: runIdArb.map((runId) => ({ op: 'deleteRun', runId })), weight: 1 },
		{
			arbitrary: fc
				.record({ query: filtersArb, limit: sometimes(fc.integer({ min: 1, max: 3 }), 4, 1) })
				.map(({ query, limit }) => (limit === undefined ? { op: 'listRuns', query } : { op: 'listRuns', query, limit })),
			weight: 3,
		},
		{ arbitrary: fc.integer({ min: 1, max: 3 }).map((limit) => ({ op: 'nextPage', limit })), weight: 2 },
		{
			arbitrary: fc.record({ query: filtersArb, limit: fc.integer({ min: 1, max: 3 }) }).map(({ query, limit }) => ({ op: 'listAllPages', query, limit })),
			weight: 2,
		},
		{ arbitrary: fc.constantFrom<CleanupAge>('forever', 'hour', 'mid-2023').map((age) => ({ op: 'cleanupOldRuns', age })), weight: 1 },
		{
			arbitrary: fc
				.record({ call: fc.constantFrom<InvalidCall>('query.limit', 'query.cursor', 'patch.status', 'options.ifStatus', 'run.status', 'runId'), runId: runIdArb })
				.map(({ call, runId }) => ({ op: 'invalid', call, runId })),
			weight: 1,
		},
	];
	if (capabilities.leases) {
		choices.push(
			{ arbitrary: ownerArb.map((ownerId) => ({ op: 'heartbeat', ownerId })), weight: 2 },
			{ arbitrary: ownerArb.map((ownerId) => ({ op: 'releaseOwner', ownerId })), weight: 1 },
			{ arbitrary: fc.constant({ op: 'reapOrphans' }), weight: 1 },
		);
	}
	if (capabilities.getRuns) {
		choices.push({ arbitrary: fc.array(runIdArb, { maxLength: 4 }).map((runIds) => ({ op: 'getRuns', runIds })), weight: 1 });
	}
	if (capabilities.applyWrites) {
		const writeArb = fc.oneof(
			{ arbitrary: runSeedArb.map((seed): WriteSeed => ({ type: 'add', seed })), weight: 1 },
			{ arbitrary: updateWriteArb, weight: 2 },
			...(outOfContractWrites ? [{ arbitrary: outOfContractWriteArb, weight: 2 }] : []),
		);
		choices.push({
			arbitrary: fc.array(writeArb, { minLength: 1, maxLength: MAX_WRITES_PER_BATCH }).map((writes) => ({ op: 'applyWrites', writes })),
			weight: 3,
		});
	}
	return fc.oneof(...choices);
}

// Places the times of the k-th run added in a sequence.
function buildRun(seed: RunSeed, k: number): Run {
	const createdAt = seed.era === 'negative' ? NEGATIVE + seed.slot * SLOT_MS + k : T0 + seed.slot * SLOT_MS + k + (seed.era === 'fraction' ? 0.5 : 0);
	const updatedAt = seed.updated === 'at-creation' ? createdAt : seed.updated === 'later' ? createdAt + 200 : FUTURE + seed.slot * SLOT_MS + k;
	return { runId: seed.runId, moduleId: seed.moduleId, status: seed.status, priority: seed.priority, parameters: seed.parameters, createdAt, updatedAt, ...seed.rest };
}

// A copy of `command` that fast-check prints as the call it stands for.
function withRendering(command: Command): Command {
	const copy = { ...command };
	Object.defineProperty(copy, fc.toStringMethod, { value: () => renderCommand(copy), enumerable: false });
	return copy;
}

/**
 * Sequences of up to 20 commands: first 0 to 5 adds of distinct ids (so that most later commands
 * find runs to act on), then any commands. The runs they add have distinct `createdAt`s.
 */
export function commandsArbitrary(capabilities: Capabilities, outOfContractWrites = false): fc.Arbitrary<Command[]> {
	const setup = fc.uniqueArray(runSeedArb, { selector: (seed) => seed.runId, maxLength: MAX_SETUP_ADDS, size: 'max' });
	const body = fc.array(commandSeedArb(capabilities, outOfContractWrites), { minLength: 1, maxLength: MAX_COMMANDS - MAX_SETUP_ADDS, size: 'max' });
	return fc.tuple(setup, body).map(([adds, seeds]) => {
		let added = 0;
		const place = (seed: RunSeed): Run => buildRun(seed, added++);
		const commands: Command[] = adds.map((seed) => withRendering({ op: 'addRun', run: place(seed) }));
		// The body runs last item first: fast-check shrinks an array by dropping its first items,
		// which then are the last commands, those after the failure (else counterexamples keep them).
		for (const seed of [...seeds].reverse()) {
			if (seed.op === 'addRun') commands.push(withRendering({ op: 'addRun', run: place(seed.seed) }));
			else if (seed.op === 'applyWrites') {
				const writes = seed.writes.map((write): RunWrite => (write.type === 'add' ? { type: 'add', run: place(write.seed) } : write));
				commands.push(withRendering({ op: 'applyWrites', writes }));
			} else commands.push(withRendering(seed));
		}
		return commands;
	});
}

// ---------------------------------------------------------------------------------------------
// Outcomes

/** What a call gave, by value: its (normalized) value, or the error it rejected with. */
export type Outcome = { readonly value: unknown } | { readonly error: ErrorShape };

// A ValidationError by the field it names (its message is the shared validation's wording).
type ErrorShape = { readonly name: string; readonly message: string } | { readonly name: 'ValidationError'; readonly field?: string };

type MutableRun = { -readonly [K in keyof Run]: Run[K] };

function errorShape(error: unknown): ErrorShape {
	if (!(error instanceof Error)) return { name: typeof error, message: String(error) };
	if (error.name === 'ValidationError') return { name: 'ValidationError', field: (error as Error & { field: string }).field };
	return { name: error.name, message: error.message };
}

/**
 * A run as compared: without `updatedAt`, which a registry may stamp with its own clock; for a run
 * the model says reapOrphans failed, without the `completedAt` the registry stamped and with only
 * the name of the error (the contract fixes no message). checkStored checks those times.
 */
export function view(run: Run | undefined, model: RegistryModel): unknown {
	if (run === undefined) return undefined;
	const { updatedAt: _updatedAt, ...rest } = run;
	if (model.runs.get(run.runId)?.reapedAt === undefined) return rest;
	return { ...rest, completedAt: 'stamped by reapOrphans', error: { name: run.error?.name } };
}

function normalizeWriteResults(results: readonly RunWriteResult[]): unknown[] {
	return results.map((result) => (result.outcome === 'failed' ? { outcome: 'failed', error: errorShape(result.error) } : { outcome: result.outcome }));
}

// ---------------------------------------------------------------------------------------------
// The model

interface ModelEntry {
	run: MutableRun;
	// Whether run.updatedAt is exactly what a registry stores. When false, the registry stamped it
	// with its clock and run.updatedAt is a lower bound (the time the stamping step began).
	exact: boolean;
	// When reapOrphans failed it: the start of that step, a lower bound of the completedAt stamped.
	reapedAt?: number;
}

interface OpenListing<Cursor> {
	readonly query: Filters;
	readonly cursor: Cursor;
}

const matches = (run: Run, query: Filters): boolean => {
	const statuses = query.status === undefined ? undefined : typeof query.status === 'string' ? [query.status] : query.status;
	return (
		(statuses === undefined || statuses.includes(run.status)) &&
		(query.moduleId === undefined || run.moduleId === query.moduleId) &&
		(query.itemId === undefined || run.itemId === query.itemId) &&
		(query.ownerId === undefined || run.ownerId === query.ownerId)
	);
};

const PATCHABLE = ['priority', 'progress', 'result', 'error', 'startedAt', 'completedAt', 'ownerId', 'metadata'] as const;

/** The reference: what the contract says a registry holds and answers. */
export class RegistryModel {
	readonly runs = new Map<string, ModelEntry>();
	// The open listing: its filters and the createdAt of the last run it returned.
	listing: OpenListing<number> | undefined;
	// Owners holding a lease.
	readonly leases = new Set<string>();

	/** Applies `command`, which begins at `now` (before any registry runs it). */
	apply(command: Command, now: number): Outcome {
		switch (command.op) {
			case 'addRun': {
				const failure = this.#add(command.run);
				return failure === undefined ? { value: undefined } : { error: failure };
			}
			case 'getRun':
				return { value: view(this.runs.get(command.runId)?.run, this) };
			case 'getRuns':
				return { value: command.runIds.map((runId) => view(this.runs.get(runId)?.run, this)) };
			case 'updateRun': {
				const result = this.#update(command.runId, command.patch, command.ifStatus, now);
				return 'error' in result ? result : { value: view(result.run, this) };
			}
			case 'deleteRun':
				return { value: this.runs.delete(command.runId) };
			case 'listRuns': {
				const page = this.#page(command.query, command.limit ?? 100, undefined);
				this.listing = page.more ? { query: command.query, cursor: (page.runs.at(-1) as Run).createdAt } : undefined;
				return { value: pageValue(page, this) };
			}
			case 'nextPage': {
				const query = this.listing?.query ?? {};
				const page = this.#page(query, command.limit, this.listing?.cursor);
				this.listing = page.more ? { query, cursor: (page.runs.at(-1) as Run).createdAt } : undefined;
				return { value: pageValue(page, this) };
			}
			case 'listAllPages':
				return { value: this.#allPages(command.query, command.limit) };
			case 'cleanupOldRuns': {
				const cutoff = command.age === 'forever' ? -FOREVER : command.age === 'hour' ? now - HOUR : MID_CUT;
				let removed = 0;
				for (const [runId, { run }] of this.runs) {
					if (isTerminal(run.status) && (run.completedAt ?? run.updatedAt) < cutoff) {
						this.runs.delete(runId);
						removed++;
					}
				}
				return { value: removed };
			}
			case 'applyWrites':
				return {
					value: command.writes.map((write) => {
						if (write.type === 'add') {
							const failure = this.#add(write.run);
							return failure === undefined ? { outcome: 'applied' } : { outcome: 'failed', error: failure };
						}
						// The field a ValidationError names is left to the adapter (see forModel).
						if (isOutOfContract(write)) return { outcome: 'failed', error: { name: 'ValidationError' } };
						const result = this.#update(write.runId, write.patch, write.ifStatus, now);
						if ('error' in result) return { outcome: 'failed', error: result.error };
						return { outcome: result.run === undefined ? 'missed' : 'applied' };
					}),
				};
			case 'invalid':
				return { error: { name: 'ValidationError', field: command.call } };
			case 'heartbeat':
				this.leases.add(command.ownerId);
				return { value: undefined };
			case 'releaseOwner':
				this.leases.delete(command.ownerId);
				return { value: undefined };
			case 'reapOrphans': {
				// Every queued or running run of an owner without a lease; runs without an owner stay.
				const reaped: string[] = [];
				for (const [runId, entry] of this.runs) {
					const { run } = entry;
					if (isTerminal(run.status) || run.ownerId === undefined || this.leases.has(run.ownerId)) continue;
					run.status = 'failed';
					run.completedAt = now;
					run.error = { name: 'OwnerLostError', message: '' };
					entry.reapedAt = now;
					this.#stamp(entry, now);
					reaped.push(runId);
				}
				return { value: reaped.sort() };
			}
		}
	}

	/** Every run matching `query`, newest first. */
	list(query: Filters): Run[] {
		return [...this.runs.values()].map((entry) => entry.run).filter((run) => matches(run, query)).sort((a, b) => b.createdAt - a.createdAt);
	}

	#add(run: Run): ErrorShape | undefined {
		if (this.runs.has(run.runId)) return errorShape(new RunExistsError(run.runId));
		this.runs.set(run.runId, { run: structuredClone(run) as MutableRun, exact: true });
		return undefined;
	}

	#update(runId: string, patch: RunPatch, ifStatus: RunStatus | readonly RunStatus[] | undefined, now: number): { run: Run | undefined } | { error: ErrorShape } {
		const entry = this.runs.get(runId);
		if (entry === undefined) return { run: undefined };
		const { run } = entry;
		if (ifStatus !== undefined && !(typeof ifStatus === 'string' ? [ifStatus] : ifStatus).includes(run.status)) return { run: undefined };
		const from = run.status;
		const to = patch.status ?? from;
		if (!modelIsLegal(from, to)) return { error: errorShape(new IllegalTransitionError(runId, from, to)) };
		run.status = to;
		for (const field of PATCHABLE) {
			if (patch[field] !== undefined) (run as Record<string, unknown>)[field] = structuredClone(patch[field]);
		}
		this.#stamp(entry, now);
		return { run };
	}

	// updatedAt never goes back: a stored time ahead of the registry's clock (2100) stays as it is.
	#stamp(entry: ModelEntry, now: number): void {
		if (entry.exact && entry.run.updatedAt > now + DAY) return;
		entry.exact = false;
		entry.run.updatedAt = Math.max(entry.run.updatedAt, now);
	}

	#page(query: Filters, limit: number, before: number | undefined): { runs: Run[]; more: boolean } {
		const candidates = this.list(query).filter((run) => before === undefined || run.createdAt < before);
		return { runs: candidates.slice(0, limit), more: candidates.length > limit };
	}

	#allPages(query: Filters, limit: number): unknown {
		const runs = this.list(query);
		const pages: string[][] = [];
		for (let start = 0; start < runs.length || pages.length === 0; start += limit) pages.push(runs.slice(start, start + limit).map((run) => run.runId));
		return { pages, runs: runs.map((run) => view(run, this)) };
	}
}

const pageValue = (page: { runs: readonly Run[]; more: boolean }, model: RegistryModel): unknown => ({
	ids: page.runs.map((run) => run.runId),
	runs: page.runs.map((run) => view(run, model)),
	more: page.more,
});

// ---------------------------------------------------------------------------------------------
// Running commands on a registry

/** A registry under test and what the runner remembers of it. */
export interface Subject {
	readonly name: string;
	readonly registry: RunRegistry;
	listing: OpenListing<string> | undefined;
	// The last getRun of each id after a command, and the statuses seen since it was last absent.
	readonly observed: Map<string, { run: Run; history: RunStatus[] }>;
}

interface Execution {
	readonly outcome: Outcome;
	// Full runs the call returned: they must equal what getRun reads right after.
	readonly returned: readonly Run[];
}

// Runs `command` on the subject; its outcome is viewed as `model` (already past the command) sees runs.
async function execute(subject: Subject, command: Command, model: RegistryModel): Promise<Execution> {
	const { registry } = subject;
	const strip = (run: Run | undefined): unknown => view(run, model);
	const returned: Run[] = [];
	const keep = (run: Run | undefined): Run | undefined => {
		if (run !== undefined) returned.push(run);
		return run;
	};
	try {
		switch (command.op) {
			case 'addRun':
				return { outcome: { value: await registry.addRun(structuredClone(command.run)) }, returned };
			case 'getRun':
				return { outcome: { value: strip(keep(await registry.getRun(command.runId))) }, returned };
			case 'getRuns': {
				const runs = await (registry.getRuns as NonNullable<RunRegistry['getRuns']>).call(registry, [...command.runIds]);
				return { outcome: { value: runs.map((run) => strip(keep(run))) }, returned };
			}
			case 'updateRun': {
				const options = command.ifStatus === undefined ? undefined : { ifStatus: command.ifStatus };
				return { outcome: { value: strip(keep(await registry.updateRun(command.runId, structuredClone(command.patch), options))) }, returned };
			}
			case 'deleteRun':
				return { outcome: { value: await registry.deleteRun(command.runId) }, returned };
			case 'listRuns':
			case 'nextPage': {
				let query: RunQuery;
				const filters = command.op === 'listRuns' ? command.query : (subject.listing?.query ?? {});
				if (command.op === 'listRuns') query = command.limit === undefined ? { ...filters } : { ...filters, limit: command.limit };
				else if (subject.listing === undefined) query = { limit: command.limit };
				else query = { ...filters, limit: command.limit, cursor: subject.listing.cursor };
				const page = await registry.listRuns(query);
				subject.listing = page.nextCursor === undefined ? undefined : { query: filters, cursor: page.nextCursor };
				page.runs.forEach(keep);
				return { outcome: { value: pageValue({ runs: page.runs, more: page.nextCursor !== undefined }, model) }, returned };
			}
			case 'listAllPages': {
				const pages: string[][] = [];
				let cursor: string | undefined;
				do {
					const page = await registry.listRuns(cursor === undefined ? { ...command.query, limit: command.limit } : { ...command.query, limit: command.limit, cursor });
					pages.push(page.runs.map((run) => run.runId));
					page.runs.forEach(keep);
					cursor = page.nextCursor;
				} while (cursor !== undefined && pages.length <= RUN_IDS.length + 1);
				return { outcome: { value: { pages, runs: returned.map(strip) } }, returned };
			}
			case 'cleanupOldRuns':
				return { outcome: { value: await registry.cleanupOldRuns(maxAgeMs(command.age)) }, returned };
			case 'applyWrites': {
				const results = await (registry.applyWrites as NonNullable<RunRegistry['applyWrites']>).call(registry, structuredClone(command.writes));
				return { outcome: { value: normalizeWriteResults(results) }, returned };
			}
			case 'invalid':
				return { outcome: { value: await invalidCall(registry, command.call, command.runId) }, returned };
			case 'heartbeat':
				return { outcome: { value: await (registry.heartbeat as NonNullable<RunRegistry['heartbeat']>).call(registry, command.ownerId, HOUR) }, returned };
			case 'releaseOwner':
				return { outcome: { value: await (registry.releaseOwner as NonNullable<RunRegistry['releaseOwner']>).call(registry, command.ownerId) }, returned };
			case 'reapOrphans': {
				const reaped = await (registry.reapOrphans as NonNullable<RunRegistry['reapOrphans']>).call(registry);
				// The contract gives no order.
				return { outcome: { value: [...reaped].sort() }, returned };
			}
		}
	} catch (error) {
		return { outcome: { error: errorShape(error) }, returned };
	}
}

// How many status changes `command` may make to each run: 1 per update aimed at it, 1 for every run in a reap.
function updatesPerRun(command: Command): Map<string, number> {
	const counts = new Map<string, number>();
	if (command.op === 'reapOrphans') for (const runId of RUN_IDS) counts.set(runId, 1);
	if (command.op === 'updateRun') counts.set(command.runId, 1);
	if (command.op === 'applyWrites') {
		for (const write of command.writes) if (write.type === 'update') counts.set(write.runId, (counts.get(write.runId) ?? 0) + 1);
	}
	return counts;
}

// Whether `to` can be reached from `from` in at most `steps` legal transitions (0 steps: unchanged).
function reachable(from: RunStatus, to: RunStatus, steps: number): boolean {
	let current = new Set<RunStatus>([from]);
	for (let step = 0; step < steps; step++) {
		const next = new Set<RunStatus>();
		for (const status of current) {
			// An update may also be refused or missed: the status then stays.
			next.add(status);
			for (const target of MODEL_TRANSITIONS[status]) next.add(target);
		}
		current = next;
	}
	return current.has(to);
}

// An outcome as the model states it: the ValidationErrors of batch writes without the field they
// name, which the contract leaves to the adapter (adapters are compared with each other in full).
function forModel(command: Command, outcome: Outcome): Outcome {
	if (command.op !== 'applyWrites' || !('value' in outcome) || !Array.isArray(outcome.value)) return outcome;
	return {
		value: outcome.value.map((result: { outcome: string; error?: ErrorShape }) =>
			result.error?.name === 'ValidationError' ? { outcome: result.outcome, error: { name: 'ValidationError' } } : result,
		),
	};
}

// Assertions without vitest's `expect` on the hot path (tens of checks per command, millions per
// full run): a failure throws with the step, the command and both values in full.
class ModelMismatch extends Error {
	override name = 'ModelMismatch';
}

const show = (value: unknown): string => inspect(value, { depth: null, breakLength: Number.POSITIVE_INFINITY, compact: true, sorted: true });

// Equal as `toEqual` has it (undefined members count as absent); the strict comparison first, as it is cheap.
function assertSame(actual: unknown, expected: unknown, what: () => string): void {
	if (isDeepStrictEqual(actual, expected)) return;
	try {
		expect(actual).toEqual(expected);
	} catch {
		throw new ModelMismatch(`${what()}
    expected: ${show(expected)}
    actual:   ${show(actual)}`);
	}
}

function assertThat(condition: boolean, what: () => string): void {
	if (!condition) throw new ModelMismatch(what());
}

async function checkStored(subject: Subject, model: RegistryModel, command: Command, execution: Execution, label: () => string): Promise<void> {
	const stored = await Promise.all(RUN_IDS.map((runId) => subject.registry.getRun(runId)));
	const now = Date.now();
	const updates = updatesPerRun(command);
	const where = (): string => `${label()}\n  on ${subject.name}`;

	for (const [index, runId] of RUN_IDS.entries()) {
		const run = stored[index];
		const expected = model.runs.get(runId);
		assertSame(view(run, model), view(expected?.run, model), () => `${where()}: getRun(${JSON.stringify(runId)}) afterwards differs from the model`);
		if (run === undefined || expected === undefined) {
			subject.observed.delete(runId);
			continue;
		}

		const { updatedAt } = run;
		const { reapedAt } = expected;
		if (reapedAt !== undefined) {
			const { completedAt } = run;
			assertThat(
				typeof completedAt === 'number' && completedAt >= reapedAt - CLOCK_SLACK_MS && completedAt <= now + CLOCK_SLACK_MS,
				() => `${where()}: ${runId} was reaped, so its completedAt must be from ${reapedAt} (the step's start) to ${now}; it is ${show(completedAt)}`,
			);
		}
		if (expected.exact) {
			assertThat(updatedAt === expected.run.updatedAt, () => `${where()}: ${runId} was never stamped, so its updatedAt must be the one given, ${expected.run.updatedAt}; it is ${show(updatedAt)}`);
		} else {
			assertThat(
				typeof updatedAt === 'number' && updatedAt >= expected.run.updatedAt - CLOCK_SLACK_MS && updatedAt <= now + CLOCK_SLACK_MS,
				() => `${where()}: ${runId} was stamped, so its updatedAt must be from ${expected.run.updatedAt} (the step's start) to ${now}; it is ${show(updatedAt)}`,
			);
		}

		const previous = subject.observed.get(runId);
		let history = [run.status];
		if (previous !== undefined) {
			const path = (): string => [...previous.history, run.status].join(' → ');
			if (isTerminal(previous.run.status)) {
				assertSame(run, previous.run, () => `${where()}: terminal run ${runId} changed (statuses seen: ${path()})`);
			} else {
				const steps = updates.get(runId) ?? 0;
				assertThat(reachable(previous.run.status, run.status, steps), () => `${where()}: ${runId} went ${path()} in ${steps} update(s): not a legal path`);
			}
			assertThat(updatedAt >= previous.run.updatedAt, () => `${where()}: updatedAt of ${runId} went down from ${previous.run.updatedAt} to ${updatedAt}`);
			history = previous.run.status === run.status ? previous.history : [...previous.history, run.status];
		}
		subject.observed.set(runId, { run, history });
	}

	for (const run of execution.returned) {
		const index = RUN_IDS.indexOf(run.runId as (typeof RUN_IDS)[number]);
		assertSame(run, stored[index], () => `${where()}: the run ${run.runId} it returned is not what getRun reads right after`);
	}
}

// Filters whose listings are compared in full at the end of a sequence: every index.
const FINAL_QUERIES: readonly Filters[] = [
	{},
	...STATUSES.map((status) => ({ status })),
	{ status: ['queued', 'running'] },
	{ status: ['completed', 'failed', 'cancelled'] },
	...MODULE_IDS.map((moduleId) => ({ moduleId })),
	...ITEM_IDS.map((itemId) => ({ itemId })),
	...OWNER_IDS.map((ownerId) => ({ ownerId })),
	{ moduleId: 'm1', status: ['queued', 'running'], ownerId: 'o1' },
	{ status: ['queued', 'running'], itemId: 'i1' },
	{ status: 'completed', itemId: 'i2', moduleId: 'm2:x' },
	{ status: ['failed', 'cancelled'], ownerId: 'o2' },
];

/** Runs `commands` on the model and on every subject in lockstep, checking after each command. */
export async function runSequence(commands: readonly Command[], subjects: readonly Subject[]): Promise<void> {
	const model = new RegistryModel();
	for (const [index, command] of commands.entries()) {
		const label = (): string => `step ${index + 1} of ${commands.length}: ${renderCommand(command)}`;
		const now = Date.now();
		const expected = model.apply(command, now);
		const executions: Execution[] = [];
		for (const subject of subjects) {
			const execution = await execute(subject, command, model);
			assertSame(forModel(command, execution.outcome), expected, () => `${label()}\n  on ${subject.name}: the outcome differs from the model's`);
			executions.push(execution);
		}
		for (let other = 1; other < subjects.length; other++) {
			assertSame(executions[other]?.outcome, executions[0]?.outcome, () => `${label()}\n  ${subjects[other]?.name} and ${subjects[0]?.name} give different outcomes`);
		}
		for (const [which, subject] of subjects.entries()) await checkStored(subject, model, command, executions[which] as Execution, label);
	}

	for (const subject of subjects) {
		const pages = await Promise.all(FINAL_QUERIES.map((query) => subject.registry.listRuns({ ...query, limit: 1_000 })));
		for (const [index, query] of FINAL_QUERIES.entries()) {
			const page = pages[index] as RunPage;
			const what = (): string => `after the last step, on ${subject.name}: listRuns(${JSON.stringify(query)})`;
			assertSame(page.runs.map((run) => run.runId), model.list(query).map((run) => run.runId), () => `${what()} differs from the model`);
			assertThat(page.nextCursor === undefined, () => `${what()} has a nextCursor`);
		}
	}
}

// ---------------------------------------------------------------------------------------------
// The property

/** A registry to test, fresh and empty, and how to get rid of it. */
export interface OpenedRegistry {
	readonly name: string;
	readonly registry: RunRegistry;
	dispose?(): Promise<void>;
}

export interface ModelCheckOptions<F> {
	/** How many sequences. */
	readonly numRuns: number;
	/** Fresh, empty registries for one sequence (all run the same commands in lockstep). */
	readonly open: (flavor: F) => Promise<readonly OpenedRegistry[]>;
	/** Variants of the registries, one picked per sequence (e.g. with and without a TTL). */
	readonly flavors: readonly [F, ...F[]];
	/** Batches also hold update writes outside the RunWrite type (see outOfContractWriteArb). @default false */
	readonly outOfContractWrites?: boolean;
	/** A fixed fast-check seed; else RUNLEDGER_MODEL_SEED (and RUNLEDGER_MODEL_PATH) when set, else a random one. */
	readonly seed?: number;
}

/** What the check ran: the optional methods it could exercise. */
export interface ModelCheckReport {
	readonly capabilities: Capabilities;
}

/**
 * Asserts, over `numRuns` generated sequences, that every registry `open` gives behaves as the
 * model does (see the file comment). Commands for optional methods that some registry lacks are not
 * generated (and a warning says so).
 */
export async function assertRegistriesMatchModel<F>(options: ModelCheckOptions<F>): Promise<ModelCheckReport> {
	const probe = await options.open(options.flavors[0]);
	const has = (method: keyof RunRegistry): boolean => probe.every(({ registry }) => typeof registry[method] === 'function');
	const capabilities: Capabilities = {
		applyWrites: has('applyWrites'),
		getRuns: has('getRuns'),
		leases: has('heartbeat') && has('releaseOwner') && has('reapOrphans'),
	};
	const names = probe.map(({ name }) => name).join(', ');
	for (const opened of probe) await opened.dispose?.();
	for (const [method, present] of Object.entries(capabilities)) {
		if (!present) console.warn(`registry model check (${names}): not every registry has ${method === 'leases' ? 'heartbeat/releaseOwner/reapOrphans' : method}: those commands are SKIPPED`);
	}

	const seed = options.seed ?? process.env.RUNLEDGER_MODEL_SEED;
	const path = options.seed === undefined ? process.env.RUNLEDGER_MODEL_PATH : undefined;
	await fc.assert(
		fc.asyncProperty(commandsArbitrary(capabilities, options.outOfContractWrites), fc.constantFrom(...options.flavors), async (commands, flavor) => {
			const opened = await options.open(flavor);
			try {
				const subjects = opened.map(({ name, registry }): Subject => ({ name, registry, listing: undefined, observed: new Map() }));
				await runSequence(commands, subjects);
			} finally {
				for (const { registry, dispose } of opened) {
					await registry.close?.();
					await dispose?.();
				}
			}
		}),
		{
			numRuns: options.numRuns,
			// The failed assertion (step, command, expected vs actual) in the report, not only in `cause`.
			includeErrorInReport: true,
			...(seed === undefined ? {} : { seed: Number(seed) }),
			...(path === undefined ? {} : { path }),
		},
	);
	return { capabilities };
}
