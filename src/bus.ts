/**
 * The cancellation bus carries a cancel from the instance that was asked to the instance that
 * runs the task. It is a fast path, not the record: the registry's CANCELLED state is written
 * first and is what counts, so a bus may drop messages (Redis pub/sub does) without a cancel
 * being lost — the owner finds out on its next write or reconcile.
 */

/** Ask the owner of `runId` to abort it. The registry already holds the run CANCELLED. */
export interface CancelCommand {
	readonly type: 'cancel';
	readonly runId: string;
	readonly reason?: string;
	/** The instance that issued the cancel, when it has an id. */
	readonly origin?: string;
}

/** Receives every valid command published on the bus, by any instance (this one included). */
export type CancelCommandHandler = (command: CancelCommand) => void;

/** Receives what a bus could not deliver: malformed messages, connection trouble. Never thrown. */
export type BusErrorHandler = (error: Error) => void;

/** Stops the delivery to one handler. */
export type Unsubscribe = () => Promise<void>;

export interface CancellationBus {
	/** Sends `command` to every subscriber, at most once. */
	publish(command: CancelCommand): Promise<void>;

	/** Delivers every valid command to `handler` until the returned function is called. Resolves once subscribed. */
	subscribe(handler: CancelCommandHandler, onError?: BusErrorHandler): Promise<Unsubscribe>;

	/** Releases what the bus owns (its own connections). Never closes a client the host injected. */
	close?(): Promise<void>;
}

/**
 * Checks that `value` is a well-formed cancel command, reading only own data properties so that
 * `__proto__` or getter tricks in a message cannot reach anything. Returns a clean copy, or
 * undefined when it is not one.
 */
export function parseCancelCommand(value: unknown): CancelCommand | undefined {
	if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
	const type = ownValue(value, 'type');
	const runId = ownValue(value, 'runId');
	const reason = ownValue(value, 'reason');
	const origin = ownValue(value, 'origin');
	if (type !== 'cancel' || typeof runId !== 'string' || runId.length === 0 || runId.length > 256) return undefined;
	if (reason !== undefined && (typeof reason !== 'string' || reason.length > 1024)) return undefined;
	if (origin !== undefined && (typeof origin !== 'string' || origin.length > 256)) return undefined;
	const command: { type: 'cancel'; runId: string; reason?: string; origin?: string } = { type, runId };
	if (reason !== undefined) command.reason = reason;
	if (origin !== undefined) command.origin = origin;
	return command;
}

function ownValue(object: object, key: string): unknown {
	const descriptor = Object.getOwnPropertyDescriptor(object, key);
	return descriptor !== undefined && 'value' in descriptor ? (descriptor.value as unknown) : undefined;
}

/**
 * An in-process bus: for tests, and for several managers in one process sharing one registry.
 * Delivery is asynchronous (a microtask), as on a real bus.
 */
export class LocalCancellationBus implements CancellationBus {
	// Each subscription once; removed by its unsubscribe or by close().
	readonly #subscribers = new Set<{ handler: CancelCommandHandler; onError: BusErrorHandler | undefined }>();
	#closed = false;

	async publish(command: CancelCommand): Promise<void> {
		if (this.#closed) return;
		// Subscribers get what any bus would deliver: a validated copy, never the publisher's object.
		const copy = parseCancelCommand(command);
		for (const subscriber of [...this.#subscribers]) {
			queueMicrotask(() => {
				if (!this.#subscribers.has(subscriber)) return;
				if (copy === undefined) {
					subscriber.onError?.(new TypeError('Dropped a malformed cancel command'));
					return;
				}

				try {
					subscriber.handler(copy);
				} catch (error) {
					subscriber.onError?.(error instanceof Error ? error : new Error(String(error)));
				}
			});
		}
	}

	async subscribe(handler: CancelCommandHandler, onError?: BusErrorHandler): Promise<Unsubscribe> {
		const subscriber = { handler, onError };
		if (!this.#closed) this.#subscribers.add(subscriber);
		return async () => {
			this.#subscribers.delete(subscriber);
		};
	}

	async close(): Promise<void> {
		this.#closed = true;
		this.#subscribers.clear();
	}
}
