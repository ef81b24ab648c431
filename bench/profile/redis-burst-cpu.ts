/**
 * Where the CPU of the Redis contender's burst goes: the benchmark's runledger-redis contender
 * (10,000 runs at concurrency 16, every state written), per run: Redis' CPU (`INFO cpu`), the time
 * of its FCALLs and of the commands they ran (`INFO commandstats`), and this process's CPU
 * (`process.cpuUsage`), over whole rounds. On this benchmark's own redis-server.
 *
 *   node --import tsx --import ./scripts/lua-hooks.mjs bench/profile/redis-burst-cpu.ts [rounds]
 */
import { Redis } from 'ioredis';

import { runledgerRedisContender } from '../contenders/runledger-redis.js';
import { startRedisServer } from '../redis-server.js';

const rounds = Number(process.argv[2] ?? 4);
const count = 10_000;
const server = await startRedisServer();
const admin = new Redis(server.url);

async function redisCpuSeconds(): Promise<number> {
	const text = await admin.info('cpu');
	return Number(/used_cpu_user:([\d.]+)/.exec(text)?.[1]) + Number(/used_cpu_sys:([\d.]+)/.exec(text)?.[1]);
}

async function commandUsec(): Promise<{ fcall: number; calls: number; inner: number }> {
	let fcall = 0;
	let calls = 0;
	let inner = 0;
	for (const [, name, called, usec] of (await admin.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
		if (name === 'fcall') [fcall, calls] = [Number(usec), Number(called)];
		else if (name !== 'info' && !name!.startsWith('config')) inner += Number(usec);
	}
	return { fcall, calls, inner };
}

for (let round = 0; round < rounds; round++) {
	await admin.flushdb();
	const prepared = await runledgerRedisContender().prepare(server.port, count);
	await admin.config('RESETSTAT');
	const redisBefore = await redisCpuSeconds();
	const processBefore = process.cpuUsage();
	const start = process.hrtime.bigint();
	await prepared.run();
	const wall = Number(process.hrtime.bigint() - start) / 1e3;
	const processCpu = process.cpuUsage(processBefore);
	const redisCpu = (await redisCpuSeconds()) - redisBefore;
	const { fcall, calls, inner } = await commandUsec();
	const per = (micros: number): string => `${(micros / count).toFixed(1)} µs`;
	console.log(
		`round ${round + 1}/${rounds}${round === 0 ? ' (warm-up)' : ''}: wall ${per(wall)} per run; Redis CPU ${per(redisCpu * 1e6)}; FCALL ${per(fcall)} (${calls} calls), of which the commands they ran ${per(inner)}; this process's CPU ${per(processCpu.user + processCpu.system)}`,
	);
	await prepared.teardown?.();
}

admin.disconnect();
await server.stop();
