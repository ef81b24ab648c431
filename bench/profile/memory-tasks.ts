/**
 * The runledger memory contender alone, for profiling: `rounds` × `count` trivial tasks through a
 * manager (concurrency 16 unless `--unlimited`, a listener on every event) on a MemoryRunRegistry.
 *
 *   node --cpu-prof --cpu-prof-dir=.tmp/prof --import tsx --import ./scripts/lua-hooks.mjs bench/profile/memory-tasks.ts
 *   node --import tsx bench/profile/top-functions.ts .tmp/prof/<file>.cpuprofile
 *
 * With `--alloc`, records every allocation (the objects GC collected included, which
 * `--heap-prof` leaves out) through the inspector, into .tmp/prof/alloc.heapprofile:
 *   node --import tsx --import ./scripts/lua-hooks.mjs bench/profile/memory-tasks.ts --alloc
 *   node --import tsx bench/profile/top-allocations.ts .tmp/prof/alloc.heapprofile
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';

import { createMemoryManager, runMemory } from '../contenders/runledger-memory.js';

const args = process.argv.slice(2);
const count = Number(args.find((arg) => /^\d+$/.test(arg)) ?? 100_000);
const rounds = Number(args.find((arg) => arg.startsWith('--rounds='))?.slice(9) ?? 3);
const concurrency = args.includes('--unlimited') ? Number.POSITIVE_INFINITY : 16;
const session = args.includes('--alloc') ? new Session() : undefined;
if (session !== undefined) {
	session.connect();
	await session.post('HeapProfiler.startSampling', { samplingInterval: 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true } as never);
}
for (let round = 0; round < rounds; round++) {
	const { manager } = createMemoryManager(concurrency, Math.max(200_000, count * 2));
	const start = process.hrtime.bigint();
	await runMemory(manager, count);
	const elapsed = Number(process.hrtime.bigint() - start) / 1e3;
	await manager.shutdown({ graceMs: 0, abortGraceMs: 0 });
	console.log(`round ${round + 1}: ${(elapsed / count).toFixed(2)} µs/task`);
}
if (session !== undefined) {
	const { profile } = (await session.post('HeapProfiler.stopSampling')) as { profile: unknown };
	mkdirSync('.tmp/prof', { recursive: true });
	writeFileSync('.tmp/prof/alloc.heapprofile', JSON.stringify(profile));
	session.disconnect();
	console.log(`allocation profile: .tmp/prof/alloc.heapprofile (${rounds * count} tasks)`);
}
