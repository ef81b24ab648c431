/**
 * A {@link CancellationBus} on Redis pub/sub: `PUBLISH {prefix}:cancel <json>` on the injected
 * client, and one subscriber connection of its own (`client.duplicate()`) shared by all the
 * bus's subscriptions. Pub/sub delivers at most once and drops messages while a subscriber is
 * disconnected; the registry's CANCELLED state stays the record.
 */
import type { Redis } from 'ioredis';

import { type BusErrorHandler, type CancelCommand, type CancelCommandHandler, type CancellationBus, type Unsubscribe, parseCancelCommand } from '../bus.js';
import { RunledgerError, ValidationError } from '../errors.js';
import { redisKeys } from './keys.js';
import { expectClient } from './registry.js';

/** Options for {@link RedisCancellationBus}. */
export interface RedisCancellationBusOptions {
	/** An ioredis client, without `keyPrefix`. Used to publish, and duplicated once to subscribe; never closed. */
	readonly client: Redis;
	/**
	 * The channel is `{prefix}:cancel`. Channels ignore the database number: distinct deployments
	 * on one Redis need distinct prefixes.
	 * @default 'runledger'
	 */
	readonly prefix?: string;
}

/** Messages longer than this (in UTF-16 code units) are dropped unread. */
export const MAX_CANCEL_MESSAGE_LENGTH = 16 * 1024;

interface Subscription {
	readonly handler: CancelCommandHandler;
	readonly onError: BusErrorHandler | undefined;
}

/**
 * A {@link CancellationBus} on Redis pub/sub.
 *
 * Incoming messages are size-capped, parsed in a `try`, and checked with `parseCancelCommand`;
 * anything malformed is reported to each subscription's `onError` and dropped, never thrown, as are
 * errors thrown by handlers and connection errors of the subscriber. The subscriber connection
 * resubscribes by itself after a reconnect (ioredis' `autoResubscribe`); messages published
 * meanwhile are lost, which the registry's state covers.
 *
 * @example
 * ```ts
 * const bus = new RedisCancellationBus({ client, prefix: 'myapp:runs' });
 * const unsubscribe = await bus.subscribe((command) => abort(command.runId));
 * ```
 */
export class RedisCancellationBus implements CancellationBus {
	readonly #client: Redis;
	readonly #channel: string;
	readonly #subscriptions = new Set<Subscription>();
	// The subscriber connection, subscribed to the channel once the promise resolves.
	#subscriber: { readonly connection: Redis; readonly ready: Promise<void> } | undefined;
	#closed = false;

	/** @throws {ValidationError} When an option is invalid, or the client has a `keyPrefix`. */
	constructor(options: RedisCancellationBusOptions) {
		if (typeof options !== 'object' || options === null) throw new ValidationError('options', 'an object', options);
		const { client, prefix = 'runledger' } = options;
		expectClient(client);
		this.#client = client;
		this.#channel = redisKeys(prefix).cancelChannel;
	}

	/** The pub/sub channel of this bus: `{prefix}:cancel`. */
	get channel(): string {
		return this.#channel;
	}

	/**
	 * Publishes `command` as JSON to every subscriber of the prefix, this bus's included. Does
	 * nothing once the bus is closed. Subscribers drop and report a malformed command.
	 * @throws {ValidationError} When `command` cannot be written as JSON.
	 */
	async publish(command: CancelCommand): Promise<void> {
		if (this.#closed) return;
		let message: string | undefined;
		try {
			message = JSON.stringify(command);
		} catch {
			message = undefined;
		}
		if (message === undefined) throw new ValidationError('command', 'a cancel command JSON can represent', command);
		await this.#client.publish(this.#channel, message);
	}

	/**
	 * Delivers every valid command to `handler` until the returned function is called; `onError`
	 * gets malformed messages, errors the handler throws, and connection errors. Resolves once the
	 * subscriber connection is subscribed. On a closed bus, subscribes to nothing.
	 */
	async subscribe(handler: CancelCommandHandler, onError?: BusErrorHandler): Promise<Unsubscribe> {
		if (typeof handler !== 'function') throw new ValidationError('handler', 'a function', handler);
		if (onError !== undefined && typeof onError !== 'function') throw new ValidationError('onError', 'a function', onError);
		const subscription: Subscription = { handler, onError };
		const unsubscribe: Unsubscribe = async () => {
			if (!this.#subscriptions.delete(subscription)) return;
			if (this.#subscriptions.size === 0) await this.#disconnect();
		};
		if (this.#closed) return unsubscribe;
		this.#subscriptions.add(subscription);
		try {
			await this.#connect().ready;
		} catch (error) {
			await unsubscribe();
			throw error;
		}
		return unsubscribe;
	}

	/** Stops every delivery and closes the subscriber connection. The injected client stays open. */
	async close(): Promise<void> {
		this.#closed = true;
		this.#subscriptions.clear();
		await this.#disconnect();
	}

	#connect(): { readonly connection: Redis; readonly ready: Promise<void> } {
		if (this.#subscriber !== undefined) return this.#subscriber;
		// Its own connection: a subscribed connection can run no other command. Its SUBSCRIBE waits
		// for Redis however long it takes (no per-request retry limit), so that a bus created while
		// Redis is down subscribes as soon as Redis is back rather than failing for good.
		const connection = this.#client.duplicate({
			autoResubscribe: true,
			enableOfflineQueue: true,
			lazyConnect: false,
			maxRetriesPerRequest: null,
		});
		connection.on('error', (error: unknown) => {
			if (this.#subscriber?.connection !== connection) return;
			this.#report(new RunledgerError(`Cancellation bus connection error: ${messageOf(error)}`, { cause: error, code: 'ERR_BUS_CONNECTION' }));
		});
		connection.on('message', (channel: string, message: string) => {
			if (channel === this.#channel && this.#subscriber?.connection === connection) this.#receive(message);
		});
		const ready = connection.subscribe(this.#channel).then(() => undefined);
		// Awaited by subscribe(); this keeps an early close from leaving an unhandled rejection.
		ready.catch(() => undefined);
		this.#subscriber = { connection, ready };
		return this.#subscriber;
	}

	async #disconnect(): Promise<void> {
		const subscriber = this.#subscriber;
		if (subscriber === undefined) return;
		this.#subscriber = undefined;
		const { connection } = subscriber;
		if (connection.status === 'ready') {
			try {
				await connection.quit();
				return;
			} catch {
				// Fall through: drop the socket.
			}
		}
		connection.disconnect();
	}

	#receive(message: string): void {
		if (message.length > MAX_CANCEL_MESSAGE_LENGTH) {
			this.#report(malformed(`a message of ${message.length} characters (at most ${MAX_CANCEL_MESSAGE_LENGTH})`));
			return;
		}
		let value: unknown;
		try {
			value = JSON.parse(message);
		} catch {
			this.#report(malformed('a message that is not JSON'));
			return;
		}
		const command = parseCancelCommand(value);
		if (command === undefined) {
			this.#report(malformed('a message that is not a cancel command'));
			return;
		}
		for (const subscription of [...this.#subscriptions]) {
			if (!this.#subscriptions.has(subscription)) continue;
			try {
				// A copy each: a handler that mutates its command changes no other handler's.
				subscription.handler({ ...command });
			} catch (error) {
				safeCall(subscription.onError, error instanceof Error ? error : new Error(String(error)));
			}
		}
	}

	#report(error: Error): void {
		for (const subscription of [...this.#subscriptions]) safeCall(subscription.onError, error);
	}
}

function malformed(what: string): RunledgerError {
	return new RunledgerError(`Cancellation bus dropped ${what}`, { code: 'ERR_BUS_MESSAGE' });
}

// An onError that throws is not allowed to break delivery either.
function safeCall(onError: BusErrorHandler | undefined, error: Error): void {
	try {
		onError?.(error);
	} catch {
		// Nowhere left to report it.
	}
}

function messageOf(error: unknown): string {
	return error instanceof Error ? error.message : String(error);
}
