/**
 * RedisCancellationBus against a real redis-server: the bus conformance suite (two buses on one
 * prefix per test), raw hostile messages on the channel, prefix isolation, connection ownership,
 * and what happens when the subscriber connection drops.
 */
import { randomUUID } from 'node:crypto';
import { type Server, type Socket, createConnection, createServer } from 'node:net';

import fc from 'fast-check';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type CancelCommand, parseCancelCommand } from '../../src/bus.js';
import { MAX_CANCEL_MESSAGE_LENGTH, RedisCancellationBus } from '../../src/redis/index.js';
import { describeCancellationBusConformance } from '../../src/testing/index.js';
import { connect, eventually, redisUrl, uniquePrefix } from './support.js';

let client: Redis;

// What one subscription received.
const recorder = () => {
	const commands: CancelCommand[] = [];
	const errors: Error[] = [];
	return { commands, errors, handler: (command: CancelCommand) => void commands.push(command), onError: (error: Error) => void errors.push(error) };
};

describe.skipIf(redisUrl === null)('RedisCancellationBus', () => {
	const prefix = uniquePrefix();
	beforeAll(() => {
		client = connect();
	});
	afterAll(async () => {
		await client.quit();
	});

	describeCancellationBusConformance({ describe, it, expect }, () => new RedisCancellationBus({ client, prefix }), { name: 'RedisCancellationBus' });

	it('survives hostile raw messages on its channel and still delivers the next valid cancel', async () => {
		const bus = new RedisCancellationBus({ client, prefix: uniquePrefix() });
		const box = recorder();
		try {
			await bus.subscribe(box.handler, box.onError);
			const hostile = [
				'',
				'not json',
				'{',
				'null',
				'[]',
				'[{"type":"cancel","runId":"x"}]',
				'"cancel"',
				'42',
				'true',
				'{}',
				'{"type":"cancel"}',
				'{"type":"cancel","runId":""}',
				'{"type":"cancel","runId":5}',
				'{"type":"cancel","runId":{"toString":"x"}}',
				`{"type":"cancel","runId":"${'x'.repeat(257)}"}`,
				'{"type":"cancel","runId":"x","reason":["a"]}',
				'{"__proto__":{"polluted":1}}',
				'{"constructor":{"prototype":{"polluted":1}}}',
				'{"type":{"__proto__":"cancel"},"runId":"x"}',
				'x'.repeat(MAX_CANCEL_MESSAGE_LENGTH + 1),
				`{"type":"cancel","runId":"x","reason":"${'y'.repeat(2 * MAX_CANCEL_MESSAGE_LENGTH)}"}`,
				'\u0000\u0001\uFFFD',
			];
			for (const message of hostile) await client.publish(bus.channel, message);
			// Invalid UTF-8 bytes, as another client could send them.
			await client.publish(bus.channel, Buffer.from([0xff, 0xfe, 0x7b, 0x00]));
			// Valid commands carrying prototype tricks: delivered clean, nothing polluted.
			await client.publish(bus.channel, '{"type":"cancel","runId":"proto","__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":1}}}');
			const valid: CancelCommand = { type: 'cancel', runId: `run-${randomUUID()}`, reason: 'after the noise' };
			await client.publish(bus.channel, JSON.stringify(valid));
			await eventually('the valid cancel', () => box.commands.some((command) => command.runId === valid.runId));

			expect(box.commands).toEqual([{ type: 'cancel', runId: 'proto' }, valid]);
			expect(Object.getPrototypeOf(box.commands[0])).toBe(Object.prototype);
			expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
			expect((Object.prototype as { polluted?: unknown }).polluted).toBeUndefined();
			expect(box.errors).toHaveLength(hostile.length + 1);
			for (const error of box.errors) expect(error).toMatchObject({ name: 'RunledgerError', code: 'ERR_BUS_MESSAGE' });
		} finally {
			await bus.close();
		}
	});

	it('delivers or reports every one of many random messages, exactly once each', async () => {
		const bus = new RedisCancellationBus({ client, prefix: uniquePrefix() });
		const box = recorder();
		try {
			await bus.subscribe(box.handler, box.onError);
			const messages = [
				...fc.sample(fc.json(), { numRuns: 150, seed: 7 }),
				...fc.sample(fc.string({ unit: 'binary', maxLength: 64 }), { numRuns: 100, seed: 8 }),
				...fc.sample(
					fc.record({ type: fc.constantFrom('cancel', 'Cancel', 'stop'), runId: fc.oneof(fc.string({ maxLength: 300 }), fc.integer()), reason: fc.option(fc.anything()) }),
					{ numRuns: 100, seed: 9 },
				).map((value) => JSON.stringify(value)),
			];
			for (const message of messages) await client.publish(bus.channel, message);
			const sentinel: CancelCommand = { type: 'cancel', runId: `sentinel-${randomUUID()}` };
			await client.publish(bus.channel, JSON.stringify(sentinel));
			await eventually('the sentinel', () => box.commands.some((command) => command.runId === sentinel.runId));

			expect(box.commands.length + box.errors.length).toBe(messages.length + 1);
			const expectedValid = messages.flatMap((message) => {
				try {
					const command = parseCancelCommand(JSON.parse(message));
					return command === undefined || message.length > MAX_CANCEL_MESSAGE_LENGTH ? [] : [command];
				} catch {
					return [];
				}
			});
			expect(box.commands).toEqual([...expectedValid, sentinel]);
			expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
		} finally {
			await bus.close();
		}
	});

	it('isolates prefixes: a bus never gets the cancels of another prefix', async () => {
		const one = new RedisCancellationBus({ client, prefix: uniquePrefix() });
		const two = new RedisCancellationBus({ client, prefix: uniquePrefix() });
		const boxOne = recorder();
		const boxTwo = recorder();
		try {
			await one.subscribe(boxOne.handler, boxOne.onError);
			await two.subscribe(boxTwo.handler, boxTwo.onError);
			const forTwo: CancelCommand = { type: 'cancel', runId: 'for-two' };
			const forOne: CancelCommand = { type: 'cancel', runId: 'for-one' };
			await two.publish(forTwo);
			// Published after, on the same connection: once it arrived, forTwo would have too.
			await one.publish(forOne);
			await eventually('both deliveries', () => boxOne.commands.length === 1 && boxTwo.commands.length === 1);
			expect(boxOne.commands).toEqual([forOne]);
			expect(boxTwo.commands).toEqual([forTwo]);
		} finally {
			await one.close();
			await two.close();
		}
	});

	it('owns one subscriber connection, closed by close() or the last unsubscribe; the injected client stays open', async () => {
		const name = `bus-${randomUUID().slice(0, 8)}`;
		const own = connect({ connectionName: name });
		const connections = async (): Promise<number> =>
			((await client.client('LIST')) as string).split('\n').filter((line) => line.includes(` name=${name} `)).length;
		try {
			await own.ping();
			expect(await connections()).toBe(1);
			const bus = new RedisCancellationBus({ client: own, prefix: uniquePrefix() });
			const first = await bus.subscribe(() => {});
			const second = await bus.subscribe(() => {});
			expect(await connections()).toBe(2);
			await first();
			expect(await connections()).toBe(2);
			await second();
			await eventually('the subscriber connection to close after the last unsubscribe', async () => (await connections()) === 1);

			await bus.subscribe(() => {});
			await bus.subscribe(() => {});
			expect(await connections()).toBe(2);
			await bus.close();
			await eventually('the subscriber connection to close', async () => (await connections()) === 1);
			expect(own.status).toBe('ready');
			expect(await own.ping()).toBe('PONG');
			// Closed: subscribing opens nothing, publishing sends nothing.
			await bus.subscribe(() => {});
			await bus.publish({ type: 'cancel', runId: 'late' });
			expect(await connections()).toBe(1);
		} finally {
			await own.quit();
		}
	});

	it('reports a dropped connection to onError and resubscribes by itself', async () => {
		const target = new URL(redisUrl as string);
		const proxy = await startProxy(Number(target.port));
		const viaProxy = new Redis({ host: '127.0.0.1', port: proxy.port, retryStrategy: () => 20, maxRetriesPerRequest: 3 });
		// The test's own client drops too; its errors are not what is under test.
		viaProxy.on('error', () => {});
		const bus = new RedisCancellationBus({ client: viaProxy, prefix: uniquePrefix() });
		const publisher = new RedisCancellationBus({ client, prefix: bus.channel.slice(0, -':cancel'.length) });
		const box = recorder();
		try {
			await bus.subscribe(box.handler, box.onError);
			const before: CancelCommand = { type: 'cancel', runId: 'before-drop' };
			await publisher.publish(before);
			await eventually('the first cancel', () => box.commands.length === 1);

			proxy.reset();
			await eventually('the connection error to be reported', () => box.errors.length > 0);
			expect(box.errors[0]).toMatchObject({ name: 'RunledgerError', code: 'ERR_BUS_CONNECTION' });

			// Messages published while it reconnects are lost (pub/sub); once resubscribed, they arrive.
			let attempt = 0;
			await eventually('a cancel after the reconnect', async () => {
				await publisher.publish({ type: 'cancel', runId: `after-drop-${++attempt}` });
				await new Promise((resolve) => setTimeout(resolve, 20));
				return box.commands.some((command) => command.runId.startsWith('after-drop-'));
			});
			expect(box.commands[0]).toEqual(before);
			expect(new Set(box.commands.map((command) => command.runId)).size).toBe(box.commands.length);
		} finally {
			await bus.close();
			await publisher.close();
			viaProxy.disconnect();
			await proxy.close();
		}
	});
});

// A TCP proxy to the test server whose connections can be reset, to drop a client's connection.
async function startProxy(targetPort: number): Promise<{ port: number; reset: () => void; close: () => Promise<void> }> {
	// The client-facing sockets: resetting those sends the client a TCP RST (ECONNRESET).
	const sockets = new Set<Socket>();
	const server: Server = createServer((inbound) => {
		const outbound = createConnection({ host: '127.0.0.1', port: targetPort });
		sockets.add(inbound);
		inbound.pipe(outbound).pipe(inbound);
		const drop = (): void => {
			inbound.destroy();
			outbound.destroy();
			sockets.delete(inbound);
		};
		inbound.on('error', drop).on('close', drop);
		outbound.on('error', drop).on('close', drop);
	});
	await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
	const address = server.address();
	if (typeof address !== 'object' || address === null) throw new Error('The proxy has no port');
	return {
		port: address.port,
		reset: () => {
			for (const socket of [...sockets]) socket.resetAndDestroy();
		},
		close: async () => {
			for (const socket of sockets) socket.destroy();
			await new Promise<void>((resolve) => server.close(() => resolve()));
		},
	};
}
