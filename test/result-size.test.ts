/**
 * The result size cap of the in-memory registry: the same rule as the Redis registry's (UTF-8 bytes
 * of the JSON text, default 1 MiB), so that tests on this registry catch what production refuses.
 */
import { describe, expect, it } from 'vitest';

import { MemoryRunRegistry, ResultTooLargeError, ValidationError, type Run } from '../src/index.js';
import { createManager, shutdownManagersAfterEach } from './support/harness.js';
import { failOnUnhandledErrorsAfterEach } from './support/process-traps.js';

shutdownManagersAfterEach();
failOnUnhandledErrorsAfterEach();

const MIB = 1_048_576;

function running(runId: string): Run {
	const now = Date.now();
	return { runId, moduleId: 'm', status: 'running', priority: 'normal', parameters: {}, createdAt: now, updatedAt: now, startedAt: now };
}

describe('MemoryRunRegistry maxResultBytes', () => {
	it('refuses a result of 1 MiB + 1 byte of JSON with a ResultTooLargeError and changes nothing; 1 MiB exactly is stored', async () => {
		const registry = new MemoryRunRegistry();
		await registry.addRun(running('big'));
		await registry.addRun(running('fits'));
		// JSON of a string is the string plus two quotes.
		const error = await registry.updateRun('big', { status: 'completed', result: 'x'.repeat(MIB - 1) }).catch((caught: unknown) => caught);
		expect(error).toBeInstanceOf(ResultTooLargeError);
		expect(error).toMatchObject({ bytes: MIB + 1, maxBytes: MIB, code: 'ERR_RESULT_TOO_LARGE' });
		expect((await registry.getRun('big'))!.status).toBe('running');
		await registry.updateRun('fits', { status: 'completed', result: 'x'.repeat(MIB - 2) });
		expect((await registry.getRun('fits'))!.status).toBe('completed');
	});

	it('counts UTF-8 bytes, not characters: 400,000 × "€" (3 bytes each) is over a 1 MB cap', async () => {
		const registry = new MemoryRunRegistry({ maxResultBytes: 1_000_000 });
		await registry.addRun(running('euro'));
		await expect(registry.updateRun('euro', { status: 'completed', result: { text: '€'.repeat(400_000) } })).rejects.toMatchObject({ name: 'ResultTooLargeError', bytes: 1_200_011 });
	});

	it('takes Infinity for no cap and refuses 0, 1.5 and strings with a ValidationError naming maxResultBytes', async () => {
		const registry = new MemoryRunRegistry({ maxResultBytes: Number.POSITIVE_INFINITY });
		await registry.addRun(running('huge'));
		await registry.updateRun('huge', { status: 'completed', result: 'x'.repeat(2 * MIB) });
		expect((await registry.getRun('huge'))!.status).toBe('completed');
		for (const bad of [0, 1.5, '1000']) {
			expect(() => new MemoryRunRegistry({ maxResultBytes: bad as number })).toThrow(ValidationError);
			expect(() => new MemoryRunRegistry({ maxResultBytes: bad as number })).toThrow(/maxResultBytes/);
		}
	});

	it('through a manager: a task returning 2 MB ends FAILED with ResultTooLargeError, nothing of the result stored, no unhandled rejection', async () => {
		const { manager, registry, events } = createManager({}, new MemoryRunRegistry());
		const runId = manager.startTask({ moduleId: 'export' }, async () => ({ rows: 'r'.repeat(2 * MIB) }));
		await manager.waitAll({ timeoutMs: 5000 });
		const stored = await registry.getRun(runId);
		expect(stored).toMatchObject({ status: 'failed', error: { name: 'ResultTooLargeError' } });
		expect(stored!.result).toBeUndefined();
		expect(stored!.error!.message).toMatch(/over the limit of 1048576 bytes/);
		expect(manager.getStats()).toMatchObject({ completed: 0, failed: 1 });
		expect(events.errors.map((error) => error.name)).toEqual(['RegistryError']);
	});
});
