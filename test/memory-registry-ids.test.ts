/**
 * MemoryRunRegistry: runs under the ids it makes for managers (which name a slot of its table) and
 * under any other id live side by side — found, updated, deleted and evicted alike, an id never
 * shadowing another, whatever ids callers choose.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RunExistsError } from '../src/errors.js';
import { MemoryRunRegistry } from '../src/memory-registry.js';
import { newRunId } from '../src/registry-internals.js';
import type { Run } from '../src/run.js';
import { BackgroundTaskManager } from '../src/index.js';

const T0 = 1_700_000_000_000;

function runUnder(runId: string, moduleId = 'm'): Run {
	return { runId, moduleId, status: 'queued', priority: 'normal', parameters: {}, createdAt: T0, updatedAt: T0 };
}

const idOf = (registry: MemoryRunRegistry): string => registry[newRunId]();
// The same slot (last 4 characters), other random characters: what a caller could make of an id it saw.
const sameSlot = (runId: string): string => `${runId.startsWith('A') ? 'B' : 'A'}${runId.slice(1)}`;

describe('MemoryRunRegistry ids', () => {
	it('finds runs a manager made by id, and forgets a deleted one while its slot serves the next run', async () => {
		const registry = new MemoryRunRegistry();
		const manager = new BackgroundTaskManager(registry);
		const first = manager.startTask({ moduleId: 'm' }, async () => 1);
		await manager.waitAll();
		expect(await registry.getRun(first)).toMatchObject({ runId: first, status: 'completed', result: 1 });
		expect(await registry.deleteRun(first)).toBe(true);

		const second = manager.startTask({ moduleId: 'm' }, async () => 2);
		await manager.waitAll();
		expect(second).not.toBe(first);
		expect(await registry.getRun(first)).toBeUndefined();
		expect(await registry.getRun(second)).toMatchObject({ runId: second, result: 2 });
		expect(registry.size).toBe(1);
		await manager.shutdown();
	});

	it('keeps a caller-chosen id that spells a slot in use apart from the run in that slot', async () => {
		const registry = new MemoryRunRegistry();
		const made = idOf(registry);
		await registry.addRun(runUnder(made, 'made'));
		const chosen = sameSlot(made);
		await registry.addRun(runUnder(chosen, 'chosen'));
		expect((await registry.getRun(made))?.moduleId).toBe('made');
		expect((await registry.getRun(chosen))?.moduleId).toBe('chosen');
		expect(await registry.deleteRun(made)).toBe(true);
		expect(await registry.getRun(made)).toBeUndefined();
		expect((await registry.getRun(chosen))?.moduleId).toBe('chosen');
		expect(registry.size).toBe(1);
	});

	it('refuses a second run under an id a slot holds, and under a chosen id that spells the next slot', async () => {
		const registry = new MemoryRunRegistry();
		const made = idOf(registry);
		await registry.addRun(runUnder(made));
		await expect(registry.addRun(runUnder(made))).rejects.toBeInstanceOf(RunExistsError);

		const next = sameSlot(idOf(registry));
		await registry.addRun(runUnder(next));
		await expect(registry.addRun(runUnder(next))).rejects.toBeInstanceOf(RunExistsError);
		expect(registry.size).toBe(2);
	});

	it('evicts runs stored under slot ids and under other ids alike, and stays correct as slots are reused', async () => {
		const registry = new MemoryRunRegistry({ maxRuns: 3 });
		const ids: string[] = [];
		for (let index = 0; index < 12; index++) {
			const runId = index % 3 === 2 ? `chosen-${index}` : idOf(registry);
			ids.push(runId);
			await registry.addRun({ ...runUnder(runId), status: 'completed', startedAt: T0 + index, completedAt: T0 + index, updatedAt: T0 + index });
		}
		expect(registry.size).toBe(3);
		const kept = await Promise.all(ids.map(async (runId) => (await registry.getRun(runId)) !== undefined));
		expect(kept).toEqual([...Array<boolean>(9).fill(false), true, true, true]);
	});

	it('behaves like a map from id to run under any mix of made, chosen and look-alike ids', async () => {
		// Ids: a new one from the registry, a chosen plain one, a look-alike of an id seen before
		// (same slot, other characters), or an id seen before (deleted or not).
		type Step = { kind: 'made' } | { kind: 'chosen'; name: number } | { kind: 'lookalike'; of: number } | { kind: 'again'; of: number } | { kind: 'delete'; of: number };
		const step: fc.Arbitrary<Step> = fc.oneof(
			fc.constant({ kind: 'made' as const }),
			fc.record({ kind: fc.constant('chosen' as const), name: fc.nat(5) }),
			fc.record({ kind: fc.constant('lookalike' as const), of: fc.nat() }),
			fc.record({ kind: fc.constant('again' as const), of: fc.nat() }),
			fc.record({ kind: fc.constant('delete' as const), of: fc.nat() }),
			fc.record({ kind: fc.constant('delete' as const), of: fc.nat() }),
		);
		await fc.assert(
			fc.asyncProperty(fc.array(step, { maxLength: 60 }), async (steps) => {
				const registry = new MemoryRunRegistry({ maxRuns: Number.POSITIVE_INFINITY });
				const model = new Map<string, string>();
				const seen: string[] = [];
				const pick = (index: number): string | undefined => (seen.length === 0 ? undefined : seen[index % seen.length]);
				for (const [index, current] of steps.entries()) {
					if (current.kind === 'delete') {
						const runId = pick(current.of);
						if (runId === undefined) continue;
						expect(await registry.deleteRun(runId)).toBe(model.delete(runId));
						continue;
					}
					const runId =
						current.kind === 'made' ? idOf(registry)
						: current.kind === 'chosen' ? `chosen-${current.name}`
						: current.kind === 'lookalike' ? (pick(current.of) === undefined ? undefined : sameSlot(pick(current.of)!))
						: pick(current.of);
					if (runId === undefined) continue;
					seen.push(runId);
					const moduleId = `m${index}`;
					if (model.has(runId)) {
						await expect(registry.addRun(runUnder(runId, moduleId))).rejects.toBeInstanceOf(RunExistsError);
					} else {
						await registry.addRun(runUnder(runId, moduleId));
						model.set(runId, moduleId);
					}
					expect(registry.size).toBe(model.size);
				}
				for (const runId of new Set(seen)) expect((await registry.getRun(runId))?.moduleId).toBe(model.get(runId));
				expect((await registry.listRuns({ limit: 10_000 })).runs.map((run) => run.runId).sort()).toEqual([...model.keys()].sort());
			}),
			{ numRuns: 500 },
		);
	});
});
