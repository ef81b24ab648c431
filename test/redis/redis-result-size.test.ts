/**
 * RedisRunRegistry's `maxResultBytes`: a result whose JSON text is over the cap, in UTF-8 bytes,
 * is refused with a ResultTooLargeError by addRun, updateRun, updateRunAndPublish and each write
 * of applyWrites, and none of it reaches Redis (watched with MONITOR on the shared test server).
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ResultTooLargeError } from '../../src/errors.js';
import { RedisRunRegistry } from '../../src/redis/index.js';
import type { Run } from '../../src/run.js';
import { T0, connect, eventually, makeRun, redisUrl, uniquePrefix } from './support.js';

// Stored RUNNING, as the manager leaves a run it executes.
const runningRun = (overrides: Partial<Run> = {}): Run => makeRun({ status: 'running', parameters: {}, startedAt: T0, ...overrides });

describe.skipIf(redisUrl === null)('RedisRunRegistry maxResultBytes', () => {
	let client: Redis;
	beforeAll(() => {
		client = connect();
	});
	afterAll(async () => {
		await client.quit();
	});

	/**
	 * Every command clients send the server while `body` runs, as its arguments (MONITOR, on a
	 * connection of its own; the calls scripts make left out), up to a marker sent once `body` is done.
	 */
	const monitored = async (body: () => Promise<void>): Promise<string[][]> => {
		const monitor = await client.monitor();
		const commands: string[][] = [];
		const marker = `marker-${uniquePrefix()}`;
		let done = false;
		monitor.on('monitor', (_time: string, args: string[], source: string) => {
			if (source === 'lua') return;
			if (args[0]?.toLowerCase() === 'echo' && args[1] === marker) done = true;
			else commands.push(args);
		});
		try {
			await body();
			await client.echo(marker);
			await eventually('the marker to be monitored', () => done);
			return commands;
		} finally {
			monitor.disconnect();
		}
	};

	it('measures the JSON text in UTF-8 bytes: exactly the cap is stored, one byte more is refused', async () => {
		const registry = new RedisRunRegistry({ client, prefix: uniquePrefix(), maxResultBytes: 100 });
		// '"' + 49 × 'é' (2 bytes each) + '"' = 100 bytes, though only 51 characters.
		const fits = 'é'.repeat(49);
		const over = `${fits}x`;
		const run = runningRun();
		await registry.addRun(run);
		expect(await registry.updateRun(run.runId, { status: 'completed', result: fits })).toMatchObject({ result: fits });

		const other = runningRun();
		await registry.addRun(other);
		const error = await registry.updateRun(other.runId, { status: 'completed', result: over }).catch((caught: unknown) => caught);
		expect(error).toBeInstanceOf(ResultTooLargeError);
		expect(error).toMatchObject({ name: 'ResultTooLargeError', code: 'ERR_RESULT_TOO_LARGE', bytes: 101, maxBytes: 100 });
		expect(await registry.getRun(other.runId)).toEqual(other);
	});

	it('sends nothing of an oversized result to Redis, from addRun, updateRun, updateRunAndPublish or applyWrites', async () => {
		const prefix = uniquePrefix();
		const registry = new RedisRunRegistry({ client, prefix, maxResultBytes: 1_000 });
		const marker = `big-${uniquePrefix()}`;
		const big = { marker, pad: 'x'.repeat(2_000) };
		const small = { marker };
		const running = runningRun();
		await registry.addRun(running);
		const addedBig = runningRun({ status: 'completed', result: big, completedAt: T0 + 1 });
		const batchedOk = runningRun();
		// Redis has the library: its one call below is an FCALL, never after a FUNCTION LOAD.
		await registry.applyWrites([{ type: 'add', run: runningRun() }]);

		const commands = await monitored(async () => {
			await expect(registry.addRun(addedBig)).rejects.toMatchObject({ name: 'ResultTooLargeError', maxBytes: 1_000 });
			await expect(registry.updateRun(running.runId, { status: 'completed', result: big })).rejects.toMatchObject({ name: 'ResultTooLargeError' });
			await expect(
				registry.updateRunAndPublish(running.runId, { status: 'completed', result: big }, { ifStatus: 'running' }, { channel: `${prefix}:cancel`, message: 'm' }),
			).rejects.toMatchObject({ name: 'ResultTooLargeError' });
			const results = await registry.applyWrites([
				{ type: 'add', run: addedBig },
				{ type: 'update', runId: running.runId, ifStatus: 'running', patch: { status: 'completed', result: big } },
				{ type: 'add', run: batchedOk },
				{ type: 'update', runId: batchedOk.runId, ifStatus: 'running', patch: { progress: { percent: 5 }, result: small } },
			]);
			expect(results).toMatchObject([
				{ outcome: 'failed', error: { name: 'ResultTooLargeError', maxBytes: 1_000 } },
				{ outcome: 'failed', error: { name: 'ResultTooLargeError', maxBytes: 1_000 } },
				{ outcome: 'applied' },
				{ outcome: 'applied' },
			]);
			expect((results[0] as { error: ResultTooLargeError }).error.bytes).toBe(Buffer.byteLength(JSON.stringify(big)));
		});

		const ours = commands.filter((args) => args.some((arg) => arg.includes(prefix)));
		// One script call went: the batch's two valid writes; the small result with them.
		expect(ours.map((args) => args[0]?.toLowerCase())).toEqual(['fcall']);
		expect(ours.flat().filter((arg) => arg.includes(marker))).toEqual([JSON.stringify(small)]);
		expect(commands.flat().some((arg) => arg.includes('x'.repeat(2_000)))).toBe(false);

		expect(await registry.getRun(running.runId)).toEqual(running);
		expect(await registry.getRun(addedBig.runId)).toBeUndefined();
		expect(await registry.getRun(batchedOk.runId)).toMatchObject({ result: small, progress: { percent: 5 } });
	});

	it('caps the result only: parameters, metadata and progress may be larger', async () => {
		const registry = new RedisRunRegistry({ client, prefix: uniquePrefix(), maxResultBytes: 10 });
		const large = { text: 'y'.repeat(1_000) };
		const run = runningRun({ parameters: large, metadata: large });
		await registry.addRun(run);
		expect(await registry.updateRun(run.runId, { progress: { percent: 1, message: 'z'.repeat(1_000) }, metadata: large, result: 12_345 })).toMatchObject({ result: 12_345 });
		await expect(registry.updateRun(run.runId, { result: 123_456_789_012 })).rejects.toMatchObject({ name: 'ResultTooLargeError', bytes: 12, maxBytes: 10 });
	});

	it('holds 1 MiB by default, and no cap with Infinity', async () => {
		const byDefault = new RedisRunRegistry({ client, prefix: uniquePrefix() });
		const unlimited = new RedisRunRegistry({ client, prefix: uniquePrefix(), maxResultBytes: Number.POSITIVE_INFINITY });
		const atCap = 'a'.repeat(1_048_576 - 2);
		const overCap = 'a'.repeat(1_048_576 - 1);
		for (const registry of [byDefault, unlimited]) {
			const run = runningRun();
			await registry.addRun(run);
			expect((await registry.updateRun(run.runId, { result: atCap }))?.result).toBe(atCap);
		}
		const run = runningRun();
		await byDefault.addRun(run);
		await expect(byDefault.updateRun(run.runId, { result: overCap })).rejects.toMatchObject({ name: 'ResultTooLargeError', bytes: 1_048_577, maxBytes: 1_048_576 });
		const twoMiB = 'b'.repeat(2 * 1_048_576);
		const added = runningRun({ status: 'completed', result: twoMiB, completedAt: T0 + 1 });
		await unlimited.addRun(added);
		expect((await unlimited.getRun(added.runId))?.result).toBe(twoMiB);
	});

	it('rejects a maxResultBytes that is not a positive integer or Infinity with ValidationError', () => {
		for (const maxResultBytes of [0, -1, 1.5, Number.NaN, Number.NEGATIVE_INFINITY, '5' as unknown as number, null as unknown as number]) {
			expect(() => new RedisRunRegistry({ client, maxResultBytes })).toThrow(expect.objectContaining({ name: 'ValidationError', field: 'maxResultBytes' }));
		}
		expect(() => new RedisRunRegistry({ client, maxResultBytes: 1 })).not.toThrow();
	});
});
