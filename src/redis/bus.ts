/**
 * A {@link CancellationBus} on Redis pub/sub: `PUBLISH {prefix}:cancel <json>` on the injected
 * client, and one subscriber connection of its own (`client.duplicate()`) shared by all the
 * bus's subscriptions. Pub/sub delivers at most once and drops messages while a subscriber is
 * disconnected; the registry's CANCELLED state stays the record.
 *
 * The subscriber connection is pinged periodically, so that a connection that died silently (a
 * black-holed network, a NAT or firewall that forgot it) is dropped and replaced instead of
 * receiving nothing forever. With a `signingKey`, messages are signed (HMAC-SHA256 over a
 * canonical form, with a timestamp and a nonce) and unsigned, forged, stale or replayed ones are
 * rejected.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

import type { Redis } from 'ioredis';

import { type BusErrorHandler, type CancelCommand, type CancelCommandHandler, type CancellationBus, type Unsubscribe, parseCancelCommand } from '../bus.js';
import { RunledgerError, ValidationError } from '../errors.js';
import type { CancelPreparingBus, CancelPublication } from './cancel-publication.js';
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
	/**
	 * How often the subscriber connection is pinged (`PING` is allowed in subscriber mode), to find
	 * a connection that died without being closed. 0 turns pinging off. The timer is unref'd.
	 * @default 5000
	 */
	readonly pingIntervalMs?: number;
	/**
	 * How long a ping may go unanswered (or a reconnect hang before Redis is ready) before the
	 * subscriber connection is dropped — reported on `onError` with code `ERR_BUS_DEAD_CONNECTION` —
	 * and ioredis reconnects and resubscribes.
	 * @default 2000
	 */
	readonly pingTimeoutMs?: number;
	/**
	 * Signs every published message and accepts only signed ones: a timestamp, a random nonce
	 * and an HMAC-SHA256 with this key over a canonical form of the command and the channel.
	 * Unsigned, forged, stale and replayed messages are dropped and reported on `onError` with
	 * code `ERR_BUS_SIGNATURE`. Use at least 32 random bytes, the same on every instance of the prefix.
	 * @default undefined (messages are neither signed nor checked)
	 */
	readonly signingKey?: string | Buffer;
	/**
	 * With `signingKey`: a message whose timestamp is further than this from the receiver's clock
	 * (in the past or the future) is rejected, and nonces are remembered this long to reject replays.
	 * Must exceed the clock skew between instances plus the delivery delay.
	 * @default 30_000
	 */
	readonly maxMessageAgeMs?: number;
}

/** Messages longer than this (in UTF-16 code units) are dropped unread. */
export const MAX_CANCEL_MESSAGE_LENGTH = 16 * 1024;

/**
 * With a `signingKey`, at most this many nonces are remembered (each until its message is too old
 * to be accepted anyway); beyond it the oldest is forgotten. Only messages with a valid signature
 * add one, so only holders of the key can fill it.
 */
export const MAX_REMEMBERED_NONCES = 100_000;

// setTimeout fires at once above this.
const MAX_TIMER_MS = 2_147_483_647;
// The first element of the signed form: changes if the form ever does.
const SIGNATURE_VERSION = 'runledger-cancel-v1';

interface Subscription {
	readonly handler: CancelCommandHandler;
	readonly onError: BusErrorHandler | undefined;
}

// The subscriber connection and its liveness check.
interface Subscriber {
	readonly connection: Redis;
	/** Resolves once subscribed to the channel. */
	readonly ready: Promise<void>;
	/** The periodic ping, when pinging is on. */
	interval: NodeJS.Timeout | undefined;
	/** The deadline of the check in progress, if one is. */
	probe: NodeJS.Timeout | undefined;
}

/**
 * A {@link CancellationBus} on Redis pub/sub.
 *
 * Incoming messages are size-capped, parsed in a `try`, and checked with `parseCancelCommand`
 * (and, with a `signingKey`, their signature, age and nonce); anything malformed or rejected is
 * reported to each subscription's `onError` and dropped, never thrown, as are errors thrown by
 * handlers and connection errors of the subscriber. The subscriber connection resubscribes by
 * itself after a reconnect (ioredis' `autoResubscribe`); it is pinged every `pingIntervalMs` and
 * dropped (to reconnect) when a ping goes unanswered for `pingTimeoutMs`. Messages published
 * while it is disconnected are lost, which the registry's state covers.
 *
 * @example
 * ```ts
 * const bus = new RedisCancellationBus({ client, prefix: 'myapp:runs' });
 * const unsubscribe = await bus.subscribe((command) => abort(command.runId));
 * ```
 */
export class RedisCancellationBus implements CancellationBus, CancelPreparingBus {
	readonly #client: Redis;
	readonly #channel: string;
	readonly #subscriptions = new Set<Subscription>();
	readonly #pingIntervalMs: number;
	readonly #pingTimeoutMs: number;
	readonly #signingKey: Buffer | undefined;
	readonly #maxMessageAgeMs: number;
	// Nonces of accepted signed messages → when they may be forgotten (their message's timestamp +
	// maxMessageAgeMs). In insertion order, which is nearly expiry order: pruned from the front.
	readonly #nonces = new Map<string, number>();
	// The subscriber connection, subscribed to the channel once `ready` resolves.
	#subscriber: Subscriber | undefined;
	#closed = false;

	/** @throws {ValidationError} When an option is invalid, or the client has a `keyPrefix`. */
	constructor(options: RedisCancellationBusOptions) {
		if (typeof options !== 'object' || options === null) throw new ValidationError('options', 'an object', options);
		const { client, prefix = 'runledger', pingIntervalMs = 5_000, pingTimeoutMs = 2_000, signingKey, maxMessageAgeMs = 30_000 } = options;
		expectClient(client);
		if (!(typeof pingIntervalMs === 'number' && Number.isInteger(pingIntervalMs) && pingIntervalMs >= 0 && pingIntervalMs <= MAX_TIMER_MS)) {
			throw new ValidationError('pingIntervalMs', `an integer number of milliseconds from 0 to ${MAX_TIMER_MS}`, pingIntervalMs);
		}
		if (!(typeof pingTimeoutMs === 'number' && Number.isInteger(pingTimeoutMs) && pingTimeoutMs >= 1 && pingTimeoutMs <= MAX_TIMER_MS)) {
			throw new ValidationError('pingTimeoutMs', `an integer number of milliseconds from 1 to ${MAX_TIMER_MS}`, pingTimeoutMs);
		}
		if (!(typeof maxMessageAgeMs === 'number' && Number.isInteger(maxMessageAgeMs) && maxMessageAgeMs >= 1 && maxMessageAgeMs <= MAX_TIMER_MS)) {
			throw new ValidationError('maxMessageAgeMs', `an integer number of milliseconds from 1 to ${MAX_TIMER_MS}`, maxMessageAgeMs);
		}
		if (signingKey !== undefined && !((typeof signingKey === 'string' || Buffer.isBuffer(signingKey)) && signingKey.length > 0)) {
			throw new ValidationError('signingKey', 'a non-empty string or Buffer', signingKey);
		}
		this.#client = client;
		this.#channel = redisKeys(prefix).cancelChannel;
		this.#pingIntervalMs = pingIntervalMs;
		this.#pingTimeoutMs = pingTimeoutMs;
		// A copy: the caller may reuse or wipe its buffer.
		this.#signingKey = signingKey === undefined ? undefined : Buffer.from(signingKey);
		this.#maxMessageAgeMs = maxMessageAgeMs;
	}

	/** The pub/sub channel of this bus: `{prefix}:cancel`. */
	get channel(): string {
		return this.#channel;
	}

	/**
	 * Publishes `command` as JSON to every subscriber of the prefix, this bus's included. Does
	 * nothing once the bus is closed. Subscribers drop and report a malformed command. With a
	 * `signingKey`, the message carries `ts`, `nonce` and `sig` besides the command's fields.
	 * @throws {ValidationError} When `command` cannot be written as JSON (or, when signing, is not a cancel command).
	 */
	async publish(command: CancelCommand): Promise<void> {
		if (this.#closed) return;
		const { channel, message } = this.prepare(command);
		await this.#client.publish(channel, message);
	}

	/**
	 * `command` encoded exactly as {@link publish} would send it (with `ts`, `nonce` and `sig` when
	 * the bus signs: each call signs anew), and this bus's channel; publishes nothing. For a
	 * `RedisRunRegistry.updateRunAndPublish` on a client that {@link sharesServerWith} this bus's.
	 * Works on a closed bus too: what is published then reaches the other instances' buses.
	 * @throws {ValidationError} As `publish`.
	 */
	prepare(command: CancelCommand): CancelPublication {
		let message: string | undefined;
		if (this.#signingKey === undefined) {
			try {
				message = JSON.stringify(command);
			} catch {
				message = undefined;
			}
		} else {
			// Only what the signature covers is sent: a clean copy of the command.
			const clean = parseCancelCommand(command);
			if (clean === undefined) throw new ValidationError('command', 'a cancel command', command);
			const ts = Date.now();
			const nonce = randomBytes(16).toString('base64url');
			message = JSON.stringify({ ...clean, ts, nonce, sig: this.#sign(clean, ts, nonce, this.#signingKey) });
		}
		if (message === undefined) throw new ValidationError('command', 'a cancel command JSON can represent', command);
		return { channel: this.#channel, message };
	}

	/**
	 * Whether a PUBLISH sent on `client` reaches this bus's subscribers: `client` is the bus's own
	 * client, or a plain connection (no Sentinel, no Cluster, no custom connector) to the same
	 * `host` and `port` (or the same socket `path`) as the user of the bus's client, as given in
	 * the options. `false` whenever that cannot be told: `localhost` and `127.0.0.1` count as different.
	 */
	sharesServerWith(client: Redis): boolean {
		if (client === this.#client) return true;
		const server = serverOf(this.#client);
		return server !== undefined && server === serverOf(client);
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

	#connect(): Subscriber {
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
		const subscriber: Subscriber = { connection, ready, interval: undefined, probe: undefined };
		if (this.#pingIntervalMs > 0) {
			// Housekeeping: never keeps the host alive. Cleared by #disconnect.
			subscriber.interval = setInterval(() => this.#check(subscriber), this.#pingIntervalMs).unref();
		}
		this.#subscriber = subscriber;
		return subscriber;
	}

	/**
	 * One liveness check of the subscriber connection. When it is ready: a PING, which must be
	 * answered within pingTimeoutMs. When it is connected but not ready yet (ioredis' ready check
	 * or resubscribe hanging): it must become ready within pingTimeoutMs. Otherwise ioredis is
	 * (re)connecting by itself and there is nothing to check. A failed check drops the socket, so
	 * that ioredis reconnects and resubscribes.
	 */
	#check(subscriber: Subscriber): void {
		if (subscriber.probe !== undefined || this.#subscriber !== subscriber) return;
		const { connection } = subscriber;
		const status = connection.status;
		if (status !== 'ready' && status !== 'connect') return;
		const stream = streamOf(connection);
		const probe = setTimeout(() => {
			subscriber.probe = undefined;
			if (this.#subscriber !== subscriber || streamOf(connection) !== stream) return;
			// Reconnecting already (the socket closed meanwhile), or it became ready: ioredis has it.
			if (connection.status !== status) return;
			const what = status === 'ready' ? `did not answer a PING within ${this.#pingTimeoutMs} ms` : `connected but was not ready within ${this.#pingTimeoutMs} ms`;
			this.#report(
				new RunledgerError(`Cancellation bus subscriber connection ${what}: dropping it to reconnect and resubscribe`, {
					code: 'ERR_BUS_DEAD_CONNECTION',
				}),
			);
			dropSocket(connection);
		}, this.#pingTimeoutMs).unref();
		subscriber.probe = probe;
		if (status !== 'ready') return;
		connection.ping().then(
			() => {
				// A late reply (after its deadline passed, maybe after a reconnect) ends no newer check.
				if (subscriber.probe !== probe) return;
				clearTimeout(probe);
				subscriber.probe = undefined;
			},
			// The connection closed under it: ioredis reconnects, the deadline decides.
			() => undefined,
		);
	}

	async #disconnect(): Promise<void> {
		const subscriber = this.#subscriber;
		if (subscriber === undefined) return;
		this.#subscriber = undefined;
		clearInterval(subscriber.interval);
		clearTimeout(subscriber.probe);
		subscriber.probe = undefined;
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
		if (this.#signingKey !== undefined) {
			const rejection = this.#verify(value as object, command, this.#signingKey);
			if (rejection !== undefined) {
				this.#report(new RunledgerError(`Cancellation bus rejected ${rejection}`, { code: 'ERR_BUS_SIGNATURE' }));
				return;
			}
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

	// base64url HMAC-SHA256 of the canonical form: a JSON array in a fixed order, the channel
	// included so that a message signed for one prefix is refused on another with the same key.
	#sign(command: CancelCommand, ts: number, nonce: string, key: Buffer): string {
		const canonical = JSON.stringify([SIGNATURE_VERSION, this.#channel, command.type, command.runId, command.reason ?? null, command.origin ?? null, ts, nonce]);
		return createHmac('sha256', key).update(canonical, 'utf8').digest('base64url');
	}

	// Why a signed message must be dropped, or undefined when it is authentic, fresh and new.
	// The nonce is remembered only once the signature is checked: forgeries fill nothing.
	#verify(message: object, command: CancelCommand, key: Buffer): string | undefined {
		const ts = ownValue(message, 'ts');
		const nonce = ownValue(message, 'nonce');
		const sig = ownValue(message, 'sig');
		if (ts === undefined && nonce === undefined && sig === undefined) return 'an unsigned message';
		if (!(typeof ts === 'number' && Number.isSafeInteger(ts)) || typeof nonce !== 'string' || nonce.length === 0 || nonce.length > 64 || typeof sig !== 'string') {
			return 'a message with a malformed signature';
		}
		const given = /^[A-Za-z0-9_-]{43}$/u.test(sig) ? Buffer.from(sig, 'base64url') : undefined;
		const expected = Buffer.from(this.#sign(command, ts, nonce, key), 'base64url');
		if (given === undefined || given.length !== expected.length || !timingSafeEqual(given, expected)) return 'a message with a bad signature';
		const now = Date.now();
		if (Math.abs(now - ts) > this.#maxMessageAgeMs) {
			return `a message timestamped ${now - ts} ms ${ts <= now ? 'ago' : 'ahead'} (at most ${this.#maxMessageAgeMs} ms either way)`;
		}
		this.#forgetNonces(now);
		if (this.#nonces.has(nonce)) return 'a replayed message (nonce seen before)';
		if (this.#nonces.size >= MAX_REMEMBERED_NONCES) {
			const oldest = this.#nonces.keys().next();
			if (oldest.done !== true) this.#nonces.delete(oldest.value);
		}
		this.#nonces.set(nonce, ts + this.#maxMessageAgeMs);
		return undefined;
	}

	// Drops the nonces at the front whose message would now be rejected as too old anyway.
	#forgetNonces(now: number): void {
		for (const [nonce, forgetAt] of this.#nonces) {
			if (forgetAt >= now) return;
			this.#nonces.delete(nonce);
		}
	}
}

// Where a plain ioredis connection goes, with which user, from its options; undefined when unsure.
function serverOf(client: unknown): string | undefined {
	if (typeof client !== 'object' || client === null) return undefined;
	const options = (client as { options?: unknown }).options;
	if (typeof options !== 'object' || options === null) return undefined;
	const { host, port, path, username, sentinels, Connector } = options as Record<string, unknown>;
	// Sentinel picks the server at connect time; a custom connector, anything.
	if ((Array.isArray(sentinels) && sentinels.length > 0) || (Connector !== undefined && (Connector as { name?: unknown }).name !== 'StandaloneConnector')) return undefined;
	const user = typeof username === 'string' ? username : '';
	if (typeof path === 'string' && path !== '') return JSON.stringify(['path', path, user]);
	if (typeof host === 'string' && host !== '' && typeof port === 'number') return JSON.stringify(['tcp', host, port, user]);
	return undefined;
}

function ownValue(object: object, key: string): unknown {
	const descriptor = Object.getOwnPropertyDescriptor(object, key);
	return descriptor !== undefined && 'value' in descriptor ? (descriptor.value as unknown) : undefined;
}

// ioredis' socket (public but undocumented), to tell one connection from the next.
function streamOf(connection: Redis): unknown {
	return (connection as { stream?: unknown }).stream;
}

// Destroys the socket at once (a graceful end would wait for a FIN a dead peer never sends), so
// that ioredis sees it close and reconnects; without a socket, ioredis' own disconnect-and-reconnect.
function dropSocket(connection: Redis): void {
	const stream = streamOf(connection) as { destroy?: () => void } | undefined;
	if (typeof stream?.destroy === 'function') stream.destroy();
	else connection.disconnect(true);
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
