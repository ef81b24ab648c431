/**
 * The state machine of MemoryRunRegistry, model-based: fast-check command sequences run on the
 * registry and on the reference model of test/support/registry-model.ts, compared step by step.
 * `npm test` runs a few hundred sequences; the full suite (RUNLEDGER_SUITE=full) 10,000.
 */
import { describe, expect, it } from 'vitest';

import { IllegalTransitionError } from '../src/errors.js';
import { MemoryRunRegistry } from '../src/memory-registry.js';
import type { RunPage, RunQuery, RunRegistry } from '../src/registry.js';
import { isLegalTransition, type Run, type RunPatch } from '../src/run.js';
import { ForwardingRegistry } from './support/forwarding-registry.js';
import { failOnUnhandledErrorsAfterEach } from './support/process-traps.js';
import { FULL_SUITE, MODEL_TRANSITIONS, STATUSES, assertRegistriesMatchModel, modelIsLegal, sequenceCount } from './support/registry-model.js';

failOnUnhandledErrorsAfterEach();

const SEQUENCES = sequenceCount(1_000);
const OUT_OF_CONTRACT_SEQUENCES = FULL_SUITE ? 2_000 : 300;

describe('MemoryRunRegistry against the registry model', () => {
	it('the model writes out the same lifecycle as isLegalTransition', () => {
		for (const from of STATUSES) {
			for (const to of STATUSES) expect(modelIsLegal(from, to), `${from} → ${to}`).toBe(isLegalTransition(from, to));
		}
		expect(Object.keys(MODEL_TRANSITIONS).sort()).toEqual([...STATUSES].sort());
	});

	it(
		`${SEQUENCES} command sequences: MemoryRunRegistry gives the model's outcomes, and only legal transitions are ever stored`,
		async () => {
			await assertRegistriesMatchModel({
				numRuns: SEQUENCES,
				flavors: ['default'],
				open: async () => [{ name: 'MemoryRunRegistry', registry: new MemoryRunRegistry() }],
			});
		},
		FULL_SUITE ? 600_000 : 60_000,
	);

	it(
		`${OUT_OF_CONTRACT_SEQUENCES} command sequences with out-of-contract applyWrites writes (no ifStatus, a list of statuses, an unknown status, an empty runId): each fails with a ValidationError and changes nothing`,
		async () => {
			await assertRegistriesMatchModel({
				numRuns: OUT_OF_CONTRACT_SEQUENCES,
				outOfContractWrites: true,
				flavors: ['default'],
				open: async () => [{ name: 'MemoryRunRegistry', registry: new MemoryRunRegistry() }],
			});
		},
		FULL_SUITE ? 600_000 : 60_000,
	);
});

/**
 * The harness must catch broken registries, else a green run proves nothing: each of these
 * MemoryRunRegistry wrappers has one planted defect.
 */
describe('the registry model check catches planted defects', () => {
	// A fixed seed: whether a defect is found must not depend on the day's luck.
	const check = (create: () => RunRegistry) =>
		assertRegistriesMatchModel({ numRuns: 1_000, seed: 20_251_126, flavors: ['default'], open: async () => [{ name: 'planted defect', registry: create() }] });

	it('an update that stores an illegal transition instead of refusing it', async () => {
		class StoresIllegal extends ForwardingRegistry {
			override async updateRun(runId: string, patch: RunPatch, options?: { ifStatus?: Run['status'] | readonly Run['status'][] }): Promise<Run | undefined> {
				try {
					return await this.inner.updateRun(runId, patch, options);
				} catch (error) {
					if (!(error instanceof IllegalTransitionError)) throw error;
					// Writes it anyway, behind the lifecycle's back.
					const run = (await this.inner.getRun(runId)) as Run;
					await this.inner.deleteRun(runId);
					await this.inner.addRun({ ...run, ...patch } as Run);
					return this.inner.getRun(runId);
				}
			}
		}
		await expect(check(() => new StoresIllegal())).rejects.toThrow(/the outcome differs from the model's[\s\S]*IllegalTransitionError/);
	});

	it('paging that loses the run a page ends on', async () => {
		class SkipsOne extends ForwardingRegistry {
			override async listRuns(query: RunQuery = {}): Promise<RunPage> {
				const page = await this.inner.listRuns(query);
				return page.nextCursor === undefined ? page : { runs: page.runs.slice(0, -1), nextCursor: page.nextCursor };
			}
		}
		await expect(check(() => new SkipsOne())).rejects.toThrow(/differs from the model/);
	});

	it('a listing that ignores the itemId filter when a status filter is given too', async () => {
		class LoosePlan extends ForwardingRegistry {
			override listRuns(query: RunQuery = {}): Promise<RunPage> {
				if (query.status === undefined || query.itemId === undefined) return this.inner.listRuns(query);
				const { itemId: _itemId, ...rest } = query;
				return this.inner.listRuns(rest);
			}
		}
		await expect(check(() => new LoosePlan())).rejects.toThrow(/differs from the model/);
	});

	it('a terminal run that a later update still changes', async () => {
		class TouchesTerminal extends ForwardingRegistry {
			override async updateRun(runId: string, patch: RunPatch, options?: { ifStatus?: Run['status'] | readonly Run['status'][] }): Promise<Run | undefined> {
				const run = await this.inner.getRun(runId);
				if (run !== undefined && ['completed', 'failed', 'cancelled'].includes(run.status) && options?.ifStatus === undefined && patch.status === undefined) {
					await this.inner.deleteRun(runId);
					await this.inner.addRun({ ...run, ...patch } as Run);
					return this.inner.getRun(runId);
				}
				return this.inner.updateRun(runId, patch, options);
			}
		}
		await expect(check(() => new TouchesTerminal())).rejects.toThrow(/the outcome differs from the model's[\s\S]*IllegalTransitionError/);
	});
});
