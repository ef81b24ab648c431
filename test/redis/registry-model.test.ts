/**
 * The state machine of RedisRunRegistry, model-based: each fast-check command sequence runs in
 * lockstep on a fresh Redis registry (fresh prefix; half of the sequences with a terminal TTL), on
 * a fresh MemoryRunRegistry and on the reference model of test/support/registry-model.ts. After
 * every command Redis must give the model's outcome and the memory registry's, and hold what the
 * model holds (owner leases and reapOrphans included). `npm test` runs a few hundred sequences; the full suite (RUNLEDGER_SUITE=full) 10,000.
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { MemoryRunRegistry } from '../../src/memory-registry.js';
import { RedisRunRegistry } from '../../src/redis/index.js';
import { failOnUnhandledErrorsAfterEach } from '../support/process-traps.js';
import {
	FULL_SUITE,
	ITEM_IDS,
	MODULE_IDS,
	OWNER_IDS,
	RUN_IDS,
	STATUSES,
	assertRegistriesMatchModel,
	sequenceCount,
	type OpenedRegistry,
} from '../support/registry-model.js';
import { connect, redisUrl, scanKeys, uniquePrefix } from './support.js';

failOnUnhandledErrorsAfterEach();

const SEQUENCES = sequenceCount(500);
const OUT_OF_CONTRACT_SEQUENCES = FULL_SUITE ? 2_000 : 200;
// Long enough that no run expires during a sequence: the TTL only switches on the expiry bookkeeping.
const TERMINAL_TTL_MS = 3_600_000;

describe.skipIf(redisUrl === null)('RedisRunRegistry against the registry model', () => {
	let client: Redis;
	// Every sequence's prefix starts with it, so that one SCAN at the end finds any key left behind.
	const base = uniquePrefix();
	let sequence = 0;

	beforeAll(() => {
		client = connect();
	});
	afterAll(async () => {
		await client.quit();
	});

	// Every key a registry of `prefix` can make with the ids of the model's pools.
	const keysOf = (registry: RedisRunRegistry): string[] => {
		const { keys } = registry;
		return [
			keys.ended,
			keys.expiry,
			keys.expiryInfo,
			keys.owners,
			...RUN_IDS.map((runId) => keys.run(runId)),
			...STATUSES.map((status) => keys.status(status)),
			...[...MODULE_IDS, 'zz-none'].map((moduleId) => keys.module(moduleId)),
			...[...ITEM_IDS, 'zz-none'].map((itemId) => keys.item(itemId)),
			...[...OWNER_IDS, 'zz-none'].flatMap((ownerId) => [keys.owner(ownerId), keys.active(ownerId), keys.lease(ownerId)]),
		];
	};

	// Fresh registries for one sequence: Redis (fresh prefix, its keys deleted after) and memory.
	const open = async (flavor: 'no TTL' | 'terminalTtlMs'): Promise<OpenedRegistry[]> => {
		const prefix = `${base}-${++sequence}`;
		const redis = new RedisRunRegistry(flavor === 'no TTL' ? { client, prefix } : { client, prefix, terminalTtlMs: TERMINAL_TTL_MS });
		return [
			{
				name: flavor === 'no TTL' ? 'RedisRunRegistry' : `RedisRunRegistry with terminalTtlMs ${TERMINAL_TTL_MS}`,
				registry: redis,
				dispose: async () => {
					await client.del(...keysOf(redis));
				},
			},
			{ name: 'MemoryRunRegistry', registry: new MemoryRunRegistry() },
		];
	};

	it(
		`${SEQUENCES} command sequences: RedisRunRegistry gives the model's outcomes and the memory registry's, and only legal transitions are ever stored`,
		async () => {
			await assertRegistriesMatchModel({ numRuns: SEQUENCES, flavors: ['no TTL', 'terminalTtlMs'], open });
			// Deleting the keys the pools allow left nothing behind: no registry made a key outside that layout.
			expect(await scanKeys(client, `${base}-*`)).toEqual([]);
		},
		FULL_SUITE ? 1_800_000 : 120_000,
	);

	// Writes outside the RunWrite type (no ifStatus, a list of statuses, an unknown status, an empty
	// runId): both registries check each write with the shared assertRunWrite, so they must refuse
	// the same ones with the same field, and change nothing. (Redis once applied an update without
	// ifStatus unconditionally.)
	// fast-check prints the shortest sequence it found.
	it(
		`${OUT_OF_CONTRACT_SEQUENCES} command sequences with out-of-contract applyWrites writes (no ifStatus, a list of statuses, an unknown status, an empty runId): RedisRunRegistry refuses each as MemoryRunRegistry does, with a ValidationError, and changes nothing`,
		async () => {
			await assertRegistriesMatchModel({ numRuns: OUT_OF_CONTRACT_SEQUENCES, outOfContractWrites: true, flavors: ['no TTL', 'terminalTtlMs'], open });
		},
		FULL_SUITE ? 1_800_000 : 120_000,
	);
});
