/** Helpers shared by the bad-input suites of both registries. */
import { expect } from 'vitest';

import { type BackgroundTaskManager, RunExistsError } from '../../src/index.js';

/** What `fn` threw synchronously, or undefined. */
export function thrownBy(fn: () => unknown): unknown {
	try {
		fn();
	} catch (error) {
		return error;
	}
	return undefined;
}

/** The tail `cap()` of src/error-info.ts appends to a cut text. */
export const cutTail = (length: number, max: number): string => `… (${length - max} more characters)`;

/** The longest text `cap(text, max)` of src/error-info.ts can make, whatever the length of `text`. */
export const cappedLength = (max: number): number => max + cutTail(Number.MAX_SAFE_INTEGER, 0).length;

/**
 * `count` concurrent `startTask` calls (each after a microtask) with one `runId`; every task waits
 * for `gate` and returns `{ by: index }`. Resolves each call's outcome (the id, or what it threw)
 * and how many task functions were called.
 */
export async function startConcurrently(
	manager: Pick<BackgroundTaskManager, 'startTask'>,
	runId: string,
	count: number,
	gate: Promise<unknown>,
): Promise<{ readonly outcomes: unknown[]; readonly calls: () => number }> {
	let calls = 0;
	const outcomes = await Promise.all(
		Array.from({ length: count }, async (_, index) => {
			await Promise.resolve();
			try {
				return manager.startTask({ runId, moduleId: 'import', parameters: { index } }, async () => {
					calls++;
					await gate;
					return { by: index };
				});
			} catch (error) {
				return error;
			}
		}),
	);
	return { outcomes, calls: () => calls };
}

/** Checks that exactly one of `outcomes` is `runId` and every other a RunExistsError for it; returns the index of the accepted one. */
export function expectOneAccepted(outcomes: readonly unknown[], runId: string): number {
	const refused = outcomes.filter((outcome) => outcome !== runId);
	expect(outcomes.filter((outcome) => outcome === runId)).toHaveLength(1);
	expect(refused).toHaveLength(outcomes.length - 1);
	for (const error of refused) {
		expect(error).toBeInstanceOf(RunExistsError);
		expect(error).toMatchObject({ name: 'RunExistsError', code: 'ERR_RUN_EXISTS', runId });
	}
	return outcomes.indexOf(runId);
}
