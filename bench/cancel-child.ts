/**
 * The far side of the cancel-latency measure (section 5), forked by bench/cancel.ts with the same
 * Node flags. It runs a runledger manager on Redis with a RedisCancellationBus and `count` runs
 * that wait for their signal, and answers over IPC:
 *   - 'aborted' when a run's signal aborts (a cancel made in the parent reached it);
 *   - 'pong' when a message arrives on the raw pub/sub channel `bench:ping` (its own connection);
 *   - 'ipc-pong' to an IPC 'ping'.
 * 'aborted' and 'pong' carry `at`, `process.hrtime` in ns when the event happened: CLOCK_MONOTONIC,
 * which on Linux is one clock for every process of the machine, so the parent can subtract its own.
 * argv: port, count, prefix.
 */
import { Redis } from 'ioredis';

import { BackgroundTaskManager } from '../src/index.js';
import { RedisCancellationBus, RedisRunRegistry } from '../src/redis/index.js';

type ParentMessage = { readonly type: 'ping'; readonly id: number } | { readonly type: 'stop' };

const [port, count, prefix] = [Number(process.argv[2]), Number(process.argv[3]), process.argv[4] ?? 'bench-cancel'];
const send = (message: unknown): void => {
	process.send!(message);
};

const client = new Redis({ host: '127.0.0.1', port });
const bus = new RedisCancellationBus({ client, prefix });
const manager = new BackgroundTaskManager(new RedisRunRegistry({ client, prefix }), { bus, instanceId: `child-${process.pid}` });
manager.on('error', (error) => console.error('child manager error:', error.message));

const subscriber = new Redis({ host: '127.0.0.1', port });
subscriber.on('message', (_channel: string, message: string) => send({ type: 'pong', id: Number(message), at: Number(process.hrtime.bigint()) }));
await subscriber.subscribe('bench:ping');

process.on('message', (message: ParentMessage) => {
	if (message.type === 'ping') send({ type: 'ipc-pong', id: message.id });
	else void stop();
});

const runIds: string[] = [];
for (let index = 0; index < count; index++) {
	runIds.push(
		manager.startTask({ moduleId: 'cancel-latency' }, ({ runId, signal }) => {
			return new Promise((_resolve, reject) => {
				signal.addEventListener(
					'abort',
					() => {
						send({ type: 'aborted', runId, at: Number(process.hrtime.bigint()) });
						reject(signal.reason);
					},
					{ once: true },
				);
			});
		}),
	);
}
// Every run is RUNNING in Redis, and the bus (one shared subscriber connection) is subscribed.
await manager.flush();
const unsubscribe = await bus.subscribe(() => {});
send({ type: 'ready', runIds });

async function stop(): Promise<void> {
	await manager.shutdown({ graceMs: 0, abortGraceMs: 100 });
	await unsubscribe();
	await bus.close();
	await subscriber.quit();
	await client.quit();
	process.disconnect();
}
