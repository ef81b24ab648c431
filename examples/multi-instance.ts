/**
 * Two processes, one Redis: a worker process executes runs, the main process sees and cancels
 * them through `runledger/redis`.
 *
 *   redis-server --port 6390 &
 *   REDIS_URL=redis://127.0.0.1:6390 npx tsx --import ./scripts/lua-hooks.mjs examples/multi-instance.ts
 *
 * (REDIS_URL defaults to redis://127.0.0.1:6379. `--import ./scripts/lua-hooks.mjs` lets tsx load
 * runledger's Lua scripts from its sources; an installed runledger has them built in, and you import
 * from 'runledger' and 'runledger/redis' instead of '../src/…'.)
 *
 * The main process starts a second process of this very file (role `worker`) on a fresh key
 * prefix. The worker's manager starts four renders of different lengths, reporting progress. The
 * main process — another manager on the same prefix — lists the worker's runs from Redis, cancels
 * the longest one (the worker's task sees its signal abort, through the Redis cancellation bus),
 * waits for the others to complete, prints every final state, and both processes exit 0. Both
 * managers keep an owner lease, so had the worker crashed, the main process would have failed its
 * runs ('OwnerLostError') within the lease's ttl. Takes about 5 seconds.
 *
 * If Redis cannot be reached, it says so and exits 1.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';

import { Redis } from 'ioredis';

import { BackgroundTaskManager, type Run } from '../src/index.js';
import { RedisCancellationBus, RedisRunRegistry } from '../src/redis/index.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const [role = 'main', prefixArg, workerIdArg] = process.argv.slice(2);

/** What the worker renders: how many seconds each takes. The main process reads this back from Redis. */
const RENDERS = [
	{ clip: 'intro', seconds: 1.5 },
	{ clip: 'scene-1', seconds: 2 },
	{ clip: 'scene-2', seconds: 2.5 },
	{ clip: 'credits', seconds: 8 },
] as const;

interface RenderParameters {
	readonly clip: string;
	readonly seconds: number;
}

/** One instance on the shared prefix: a registry and a bus on one client, an owner lease. */
function instance(client: Redis, prefix: string, instanceId: string): BackgroundTaskManager {
	const manager = new BackgroundTaskManager(new RedisRunRegistry({ client, prefix, terminalTtlMs: 10 * 60_000 }), {
		instanceId,
		bus: new RedisCancellationBus({ client, prefix }),
		ownerLease: { ttlMs: 5_000 },
		reconcileIntervalMs: 1_000,
	});
	manager.on('error', (error) => console.error(`[${instanceId}] runledger: ${error.code}: ${error.message}`));
	return manager;
}

/** Connects, or says why not and exits 1. */
async function connectOrExit(url: string): Promise<Redis> {
	const probe = new Redis(url, { lazyConnect: true, connectTimeout: 2_000, maxRetriesPerRequest: 0, retryStrategy: () => null });
	// The socket's own error (ECONNREFUSED, …) says more than the rejection ("Connection is closed").
	let socketError: Error | undefined;
	probe.on('error', (error: Error) => (socketError ??= error));
	try {
		await probe.connect();
		await probe.ping();
	} catch (error) {
		console.error(`Cannot reach Redis at ${url}: ${(socketError ?? (error instanceof Error ? error : new Error(String(error)))).message}`);
		console.error('Start one and point REDIS_URL at it, e.g.:');
		console.error('  redis-server --port 6390 &');
		console.error('  REDIS_URL=redis://127.0.0.1:6390 npx tsx --import ./scripts/lua-hooks.mjs examples/multi-instance.ts');
		probe.disconnect();
		process.exit(1);
	}
	await probe.quit();
	const client = new Redis(url);
	client.on('error', (error) => console.error(`Redis: ${error.message}`));
	return client;
}

// ---------------------------------------------------------------------------------------------
// The worker: executes the renders.
// ---------------------------------------------------------------------------------------------

async function worker(prefix: string, instanceId: string): Promise<void> {
	const log = (message: string): void => console.log(`[worker] ${message}`);
	const client = await connectOrExit(REDIS_URL);
	const manager = instance(client, prefix, instanceId);

	for (const render of RENDERS) {
		manager.startTask<RenderParameters>({ moduleId: 'render', moduleName: 'Video render', itemId: 'video-42', parameters: render }, async ({ runId, parameters, signal, reportProgress }) => {
			const steps = parameters.seconds * 4;
			try {
				for (let step = 1; step <= steps; step++) {
					await delay(250, undefined, { signal });
					reportProgress((step / steps) * 100, `${parameters.clip}: frame ${step * 10}`);
				}
			} catch (error) {
				// The signal's reason says why: a CancelledError with the canceller's reason.
				const reason: unknown = signal.aborted ? signal.reason : error;
				log(`${runId} (${parameters.clip}): signal aborted — ${reason instanceof Error ? reason.message : String(reason)}`);
				throw error;
			}
			return { clip: parameters.clip, frames: steps * 10 };
		});
	}
	log(`${instanceId} started ${RENDERS.length} renders`);

	// Until every render has ended — completed here, or cancelled from the main process.
	await manager.waitAll();
	const stats = manager.getStats();
	log(`all settled: ${stats.completed} completed, ${stats.cancelled} cancelled`);
	await manager.shutdown();
	await client.quit();
}

// ---------------------------------------------------------------------------------------------
// The main process: starts the worker, then watches and steers its runs through Redis.
// ---------------------------------------------------------------------------------------------

async function main(): Promise<number> {
	const log = (message: string): void => console.log(`[main]   ${message}`);
	const client = await connectOrExit(REDIS_URL);
	const prefix = `runledger-example-${randomUUID().slice(0, 8)}`;
	const workerId = 'worker-1';
	const manager = instance(client, prefix, 'main');
	log(`Redis ${REDIS_URL}, prefix ${prefix}`);

	// The same Node flags (tsx's loader, the Lua hook) and this same file, as role 'worker'.
	const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), 'worker', prefix, workerId], { stdio: ['ignore', 'inherit', 'inherit'] });
	const workerExit = new Promise<number>((resolve) => {
		child.once('error', (error) => {
			log(`could not start the worker: ${error.message}`);
			resolve(1);
		});
		child.once('exit', (code, signal) => resolve(code ?? (signal === null ? 1 : 128)));
	});
	let workerCode: number | undefined;
	void workerExit.then((code) => (workerCode = code));

	try {
		// The worker's runs, as Redis has them: polled until all four are running.
		let runs: Run[] = [];
		const deadline = Date.now() + 30_000;
		while (runs.length < RENDERS.length) {
			if (workerCode !== undefined) throw new Error(`the worker exited early (code ${workerCode})`);
			if (Date.now() > deadline) throw new Error('the worker did not start its runs within 30 s');
			await delay(100);
			runs = (await manager.listRuns({ ownerId: workerId, status: 'running' })).runs;
		}
		runs.sort((a, b) => (a.parameters as RenderParameters).seconds - (b.parameters as RenderParameters).seconds);
		log(`${workerId} is running ${runs.length} runs (read from Redis):`);
		for (const run of runs) {
			const { clip, seconds } = run.parameters as RenderParameters;
			log(`  ${run.runId}  ${clip.padEnd(8)} ${String(seconds).padStart(3)} s  ${run.status}  ${Math.round(run.progress?.percent ?? 0)}%`);
		}

		// Cancel the longest one: it runs in the other process, its signal aborts there.
		const longest = runs[runs.length - 1]!;
		const cancelled = await manager.cancelTask(longest.runId, 'not needed any more');
		log(`cancelTask(${longest.runId}) → ${cancelled}`);

		// Wait for every run to end: a run owned elsewhere is polled in Redis.
		const final = await Promise.all(runs.map((run) => manager.waitForRun(run.runId, { timeoutMs: 30_000 })));
		log('final states:');
		for (const run of final) {
			const { clip } = run.parameters as RenderParameters;
			const outcome = run.status === 'completed' ? JSON.stringify(run.result) : `${run.error?.name}: ${run.error?.message}`;
			log(`  ${run.runId}  ${clip.padEnd(8)} ${run.status.padEnd(9)} ${outcome}`);
		}

		const code = await workerExit;
		log(`worker exited with code ${code}`);
		return code === 0 ? 0 : 1;
	} catch (error) {
		log(`failed: ${error instanceof Error ? error.message : String(error)}`);
		child.kill('SIGKILL');
		return 1;
	} finally {
		await manager.shutdown({ graceMs: 1_000 });
		await client.quit();
	}
}

if (role === 'worker') {
	if (prefixArg === undefined || workerIdArg === undefined) throw new Error('usage: multi-instance.ts worker <prefix> <instanceId>');
	await worker(prefixArg, workerIdArg);
} else {
	process.exitCode = await main();
}
