/**
 * The conformance suite every {@link CancellationBus} must pass. Like the registry suite, it takes
 * the test runner's functions as arguments and imports no test framework.
 */
import type { BusErrorHandler, CancelCommand, CancellationBus, Unsubscribe } from '../bus.js';
import type { ConformanceRunner } from './registry-suite.js';

/** Options for {@link describeCancellationBusConformance}. */
export interface BusConformanceOptions {
	/**
	 * Names the bus in the suite's title.
	 * @default 'CancellationBus'
	 */
	readonly name?: string;
	/**
	 * How long to wait for a message to arrive before the test fails.
	 * @default 5_000
	 */
	readonly deliveryTimeoutMs?: number;
}

// What one subscription received.
interface Inbox {
	readonly commands: CancelCommand[];
	readonly errors: Error[];
	readonly handler: (command: CancelCommand) => void;
	readonly onError: BusErrorHandler;
}

/**
 * Declares the conformance suite for a {@link CancellationBus}.
 *
 * `createBus` is called twice per test (or more) and must return, each time, a new bus instance
 * on one shared medium: what one instance publishes, the others' subscribers receive. (For Redis:
 * a new bus on the same server and prefix; for an in-process bus: a view of one shared bus whose
 * `close()` ends only its own subscriptions.) Every bus a test creates is closed when it ends.
 * Delivery is checked without sleeping: after the commands under test, a last "sentinel" command
 * is published by the same instance, and once it has arrived the earlier ones must have too (a bus
 * keeps the order of one publisher's messages), exactly once.
 *
 * @example
 * ```ts
 * describeCancellationBusConformance({ describe, it, expect }, () => new RedisCancellationBus({ client, prefix }));
 * ```
 */
export function describeCancellationBusConformance(
	runner: ConformanceRunner,
	createBus: () => CancellationBus | Promise<CancellationBus>,
	options: BusConformanceOptions = {},
): void {
	const { describe, it, expect } = runner;
	const timeoutMs = options.deliveryTimeoutMs ?? 5_000;
	const namespace = `bus-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
	let counter = 0;
	const cancel = (extra: Partial<CancelCommand> = {}): CancelCommand => ({ type: 'cancel', runId: `${namespace}-run-${++counter}`, ...extra });

	const inbox = (onHandle?: (command: CancelCommand) => void): Inbox => {
		const commands: CancelCommand[] = [];
		const errors: Error[] = [];
		return {
			commands,
			errors,
			handler: (command) => {
				commands.push(command);
				onHandle?.(command);
			},
			onError: (error) => errors.push(error),
		};
	};

	const waitFor = async (what: string, done: () => boolean): Promise<void> => {
		const deadline = Date.now() + timeoutMs;
		while (!done()) {
			if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
			await new Promise((resolve) => setTimeout(resolve, 5));
		}
	};

	const received = (box: Inbox, command: CancelCommand): number => box.commands.filter((entry) => entry.runId === command.runId).length;

	// Publishes a sentinel from `bus` and waits until every inbox of `boxes` has it.
	const settle = async (bus: CancellationBus, boxes: readonly Inbox[]): Promise<void> => {
		const sentinel = cancel({ reason: 'sentinel' });
		await bus.publish(sentinel);
		await waitFor('the sentinel command', () => boxes.every((box) => received(box, sentinel) === 1));
	};

	// Each test gets two buses on one medium, closed however the test ends.
	const test = (name: string, body: (a: CancellationBus, b: CancellationBus) => Promise<void>): void => {
		it(name, async () => {
			const buses: CancellationBus[] = [];
			try {
				buses.push(await createBus());
				buses.push(await createBus());
				await body(buses[0] as CancellationBus, buses[1] as CancellationBus);
			} finally {
				for (const bus of buses) await bus.close?.();
			}
		});
	};

	const subscribe = (bus: CancellationBus, box: Inbox): Promise<Unsubscribe> => bus.subscribe(box.handler, box.onError);

	describe(`${options.name ?? 'CancellationBus'} conformance`, () => {
		test('a published cancel reaches every subscriber of every instance, once, as sent', async (a, b) => {
			const boxes = [inbox(), inbox(), inbox()];
			await subscribe(a, boxes[0] as Inbox);
			await subscribe(a, boxes[1] as Inbox);
			await subscribe(b, boxes[2] as Inbox);
			const fromA = cancel({ reason: 'user pressed stop', origin: 'instance-a' });
			const fromB = cancel();
			await a.publish(fromA);
			await b.publish(fromB);
			await settle(a, boxes);
			await settle(b, boxes);
			for (const box of boxes) {
				expect(box.commands.filter((command) => command.reason !== 'sentinel')).toEqual([fromA, fromB]);
				expect(box.errors).toEqual([]);
			}
		});

		test('subscribers get a copy: mutating it never changes the published command', async (a, b) => {
			const mutator = inbox((command) => {
				(command as { origin?: string }).origin = 'changed by a handler';
			});
			await subscribe(b, mutator);
			const command = cancel({ reason: 'stop' });
			const sent = { ...command };
			await a.publish(command);
			await settle(a, [mutator]);
			expect(mutator.commands[0]).not.toBe(command);
			expect(command).toEqual(sent);
		});

		test('unsubscribe stops delivery to that handler only, and may be called twice', async (a, b) => {
			const gone = inbox();
			const stays = inbox();
			const other = inbox();
			const unsubscribe = await subscribe(a, gone);
			await subscribe(a, stays);
			await subscribe(b, other);
			await unsubscribe();
			await unsubscribe();
			const command = cancel();
			await b.publish(command);
			await settle(b, [stays, other]);
			expect(gone.commands).toEqual([]);
			expect(received(stays, command)).toBe(1);
			expect(received(other, command)).toBe(1);
		});

		test('a bus whose every subscription ended can subscribe again', async (a, b) => {
			const first = inbox();
			await (await subscribe(a, first))();
			const again = inbox();
			await subscribe(a, again);
			const command = cancel();
			await b.publish(command);
			await settle(b, [again]);
			expect(received(again, command)).toBe(1);
			expect(first.commands).toEqual([]);
		});

		test('malformed commands are dropped and reported to onError, never thrown', async (a, b) => {
			const box = inbox();
			const local = inbox();
			await subscribe(b, box);
			await subscribe(a, local);
			const malformed: unknown[] = [
				null,
				'cancel',
				42,
				[cancel()],
				{},
				{ type: 'stop', runId: 'x' },
				{ type: 'cancel' },
				{ type: 'cancel', runId: '' },
				{ type: 'cancel', runId: 7 },
				{ type: 'cancel', runId: 'x'.repeat(257) },
				{ type: 'cancel', runId: 'x', reason: 5 },
				{ type: 'cancel', runId: 'x', origin: { id: 1 } },
			];
			for (const value of malformed) await a.publish(value as CancelCommand);
			const valid = cancel();
			await a.publish(valid);
			await settle(a, [box, local]);
			for (const target of [box, local]) {
				expect(target.commands.filter((command) => command.reason !== 'sentinel')).toEqual([valid]);
				expect(target.errors.length).toBeGreaterThanOrEqual(malformed.length);
				expect(target.errors.every((error) => error instanceof Error)).toBe(true);
			}
		});

		test('a handler that throws does not stop later deliveries, to it or to others', async (a, b) => {
			const thrower = inbox(() => {
				throw new Error('handler failure');
			});
			const other = inbox();
			await subscribe(b, thrower);
			await subscribe(b, other);
			const first = cancel();
			const second = cancel();
			await a.publish(first);
			await a.publish(second);
			await settle(a, [thrower, other]);
			for (const box of [thrower, other]) {
				expect(received(box, first)).toBe(1);
				expect(received(box, second)).toBe(1);
			}
			expect(other.errors).toEqual([]);
		});

		test('a handler without onError that throws does not stop later deliveries', async (a, b) => {
			let calls = 0;
			await b.subscribe(() => {
				calls++;
				throw new Error('handler failure');
			});
			const other = inbox();
			await subscribe(b, other);
			await a.publish(cancel());
			await settle(a, [other]);
			await waitFor('both deliveries to the throwing handler', () => calls >= 2);
			expect(calls).toBe(2);
		});

		test('close stops delivery on that instance only, and publish on a closed bus resolves', async (a, b) => {
			const closed = inbox();
			const open = inbox();
			await subscribe(a, closed);
			await subscribe(b, open);
			await a.close?.();
			await a.close?.();
			const command = cancel();
			await b.publish(command);
			await settle(b, [open]);
			expect(closed.commands).toEqual([]);
			expect(received(open, command)).toBe(1);
			await a.publish(cancel());
			await settle(b, [open]);
			expect(closed.commands).toEqual([]);
		});
	});
}
