/**
 * A result the Redis registry cannot store as JSON (a BigInt, a cycle, a function, a symbol…)
 * must not leave its run RUNNING with a write retried forever: the run ends FAILED with a
 * ResultNotStorableError, the refusal is reported, and everything settles.
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { BackgroundTaskManager, type RegistryError, type RunledgerError } from '../../src/index.js';
import { RedisRunRegistry } from '../../src/redis/index.js';
import { failOnUnhandledErrorsAfterEach } from '../support/process-traps.js';
import { connect, redisUrl, uniquePrefix } from './support.js';

let client: Redis;

const circular: Record<string, unknown> = { name: 'loop' };
circular.self = circular;

const unstorable: ReadonlyArray<readonly [string, unknown]> = [
	['a BigInt', 10n],
	['an object holding a BigInt', { total: 10n }],
	['a cyclic object', circular],
	['a function', () => 1],
	['a symbol', Symbol('s')],
	['NaN', Number.NaN],
	['an object whose toJSON throws', { toJSON: () => { throw new Error('no JSON for you'); } }],
];

describe.skipIf(redisUrl === null)('results the Redis registry cannot store', () => {
	failOnUnhandledErrorsAfterEach();
	beforeAll(() => {
		client = connect();
	});
	afterAll(async () => {
		await client.quit();
	});

	for (const [label, value] of unstorable) {
		for (const timing of ['at once', 'after its start was written'] as const) {
			it(`ends a run whose result is ${label} (returned ${timing}) FAILED with a ResultNotStorableError, reported once, and settles`, async () => {
				const registry = new RedisRunRegistry({ client, prefix: uniquePrefix() });
				const manager = new BackgroundTaskManager(registry);
				const errors: RunledgerError[] = [];
				manager.on('error', (error) => errors.push(error));
				try {
					const runId = manager.startTask({ moduleId: 'export' }, async () => {
						if (timing === 'after its start was written') await new Promise((resolve) => setTimeout(resolve, 50));
						return value;
					});
					const report = await manager.waitAll({ timeoutMs: 5_000 });
					expect(report).toEqual({ settled: true, pending: [] });

					const stored = await registry.getRun(runId);
					expect(stored).toMatchObject({ status: 'failed', error: { name: 'ResultNotStorableError' } });
					expect(stored?.result).toBeUndefined();
					expect(stored?.completedAt).toBeGreaterThan(0);
					expect(await manager.getRun(runId)).toMatchObject({ status: 'failed' });
					expect(manager.getStats()).toMatchObject({ completed: 0, failed: 1, pendingWrites: 0 });
					expect(errors.map((error) => error.name)).toEqual(['RegistryError']);
					expect((errors[0] as RegistryError | undefined)?.runId).toBe(runId);
				} finally {
					await manager.shutdown({ graceMs: 0 });
				}
			});
		}
	}

	it('stores a JSON-safe result exactly, next to the refused ones', async () => {
		const registry = new RedisRunRegistry({ client, prefix: uniquePrefix() });
		const manager = new BackgroundTaskManager(registry);
		try {
			const runId = manager.startTask({ moduleId: 'export' }, async () => ({ rows: [1, 2, 3], note: 'ok' }));
			await manager.waitAll({ timeoutMs: 5_000 });
			expect(await registry.getRun(runId)).toMatchObject({ status: 'completed', result: { rows: [1, 2, 3], note: 'ok' } });
		} finally {
			await manager.shutdown({ graceMs: 0 });
		}
	});
});
