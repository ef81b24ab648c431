/**
 * Section 4: trackers on a local Redis (this benchmark's own redis-server), 10,000 jobs at
 * concurrency 16: jobs/s, commands per run (client-sent and server-executed), bytes per run
 * (`used_memory` delta with the runs left in Redis; FLUSHDB between contenders).
 */
import { Redis } from 'ioredis';

import { commandStats, diffCounts, installSendCounter, sentSnapshot, top, total, usedMemory } from './redis-commands.js';
import { type Summary, fullGc, now, rotate, summarize } from './stats.js';
import type { Prepared } from './workload.js';

export interface RedisPrepared extends Prepared {
	/** `submitters` loops each starting a run and waiting for it to be written terminal, `perSubmitter` times. */
	readonly closedLoop?: (submitters: number, perSubmitter: number) => Promise<void>;
}

export interface RedisContender {
	readonly key: string;
	readonly label: string;
	prepare(port: number, count: number): Promise<RedisPrepared>;
}

export interface RedisRow {
	readonly key: string;
	readonly label: string;
	/** One per round, in round order. */
	readonly jobsPerSecond: number[];
	readonly throughput: Summary;
	readonly serverCommandsPerRun: Summary;
	readonly clientCommandsPerRun: Summary;
	readonly bytesPerRun: Summary;
	/** From the last round. */
	readonly topServer: string;
	readonly topClient: string;
}

export interface ClosedLoopResult {
	readonly key: string;
	readonly runs: number;
	readonly submitters: number;
	readonly jobsPerSecond: number;
	readonly clientCommandsPerRun: number;
	readonly topClient: string;
}

export interface RedisResult {
	readonly count: number;
	readonly rounds: number;
	readonly rows: RedisRow[];
	readonly closedLoop: ClosedLoopResult[];
}

export async function measureRedis(port: number, contenders: readonly RedisContender[], count: number, rounds: number, log: (line: string) => void): Promise<RedisResult> {
	installSendCounter();
	const admin = new Redis({ host: '127.0.0.1', port });
	const samples = new Map(contenders.map((contender) => [contender.key, { jobs: [] as number[], server: [] as number[], client: [] as number[], bytes: [] as number[], topServer: '', topClient: '' }]));
	try {
		// Round 0 is a warm-up with a tenth of the jobs: scripts loaded, code paths compiled.
		for (let round = 0; round <= rounds; round++) {
			const size = round === 0 ? Math.max(100, Math.floor(count / 10)) : count;
			const line: string[] = [];
			for (const contender of rotate(contenders, round)) {
				await admin.flushdb();
				const memoryBefore = await usedMemory(admin);
				const prepared = await contender.prepare(port, size);
				await fullGc();
				const serverBefore = await commandStats(admin);
				const clientBefore = sentSnapshot();
				const start = now();
				await prepared.run();
				const elapsed = now() - start;
				const clientDelta = diffCounts(clientBefore, sentSnapshot());
				const serverDelta = diffCounts(serverBefore, await commandStats(admin));
				// The INFO that took the first snapshot is counted in the second.
				serverDelta.delete('info');
				await prepared.teardown?.();
				await new Promise((resolve) => setTimeout(resolve, 100));
				const memoryAfter = await usedMemory(admin);
				const jobsPerSecond = size / (elapsed / 1e9);
				line.push(`${contender.key} ${Math.round(jobsPerSecond)}/s`);
				if (round === 0) continue;
				const sample = samples.get(contender.key)!;
				sample.jobs.push(jobsPerSecond);
				sample.server.push(total(serverDelta) / size);
				sample.client.push(total(clientDelta) / size);
				sample.bytes.push((memoryAfter - memoryBefore) / size);
				sample.topServer = top(serverDelta, size);
				sample.topClient = top(clientDelta, size);
			}
			log(`  ${round === 0 ? 'warm-up' : `round ${round}/${rounds}`}: ${line.join(', ')}`);
		}

		const closedLoop: ClosedLoopResult[] = [];
		for (const contender of contenders) {
			await admin.flushdb();
			const prepared = await contender.prepare(port, count);
			if (prepared.closedLoop === undefined) {
				await prepared.teardown?.();
				continue;
			}
			const submitters = 16;
			const perSubmitter = Math.floor(count / submitters / 5);
			const runs = submitters * perSubmitter;
			const clientBefore = sentSnapshot();
			const start = now();
			await prepared.closedLoop(submitters, perSubmitter);
			const elapsed = now() - start;
			const clientDelta = diffCounts(clientBefore, sentSnapshot());
			await prepared.teardown?.();
			const result = { key: contender.key, runs, submitters, jobsPerSecond: runs / (elapsed / 1e9), clientCommandsPerRun: total(clientDelta) / runs, topClient: top(clientDelta, runs) };
			closedLoop.push(result);
			log(`  closed loop ${contender.key}: ${runs} runs, ${Math.round(result.jobsPerSecond)}/s, ${result.clientCommandsPerRun.toFixed(2)} commands sent per run (${result.topClient})`);
		}

		await admin.flushdb();
		return {
			count,
			rounds,
			closedLoop,
			rows: contenders.map((contender) => {
				const sample = samples.get(contender.key)!;
				return {
					key: contender.key,
					label: contender.label,
					jobsPerSecond: sample.jobs,
					throughput: summarize(sample.jobs),
					serverCommandsPerRun: summarize(sample.server),
					clientCommandsPerRun: summarize(sample.client),
					bytesPerRun: summarize(sample.bytes),
					topServer: sample.topServer,
					topClient: sample.topClient,
				};
			}),
		};
	} finally {
		await admin.quit();
	}
}
