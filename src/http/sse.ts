/**
 * The event stream of one run (`GET {base}/:runId/events`): Server-Sent Events with the run's
 * snapshot at once and one event per change, until the run ends. Runs this process executes are
 * followed through the manager's events, shared by every stream of a handler through one
 * {@link RunEventHub}; runs another instance executes are read from the registry every
 * `pollIntervalMs`.
 */
import type { ServerResponse } from 'node:http';

import type { BackgroundTaskManager } from '../manager.js';
import type { Logger } from '../options.js';
import { type Run, isTerminalStatus } from '../run.js';
import { toPublicRun } from './public-run.js';

/** The manager events that carry a run. */
export const RUN_EVENTS = ['queued', 'started', 'progress', 'completed', 'failed', 'cancelled'] as const;

/** The SSE `event:` names: `status` for the first snapshot and every status change, `progress` for the rest. */
export type RunStreamEventName = 'status' | 'progress';

/** The headers of every event stream. */
export const EVENT_STREAM_HEADERS: Readonly<Record<string, string>> = {
	'Content-Type': 'text/event-stream; charset=utf-8',
	'Cache-Control': 'no-cache, no-transform',
	Connection: 'keep-alive',
	'X-Accel-Buffering': 'no',
};

/** How long an EventSource waits before it reconnects: the first line of every stream. */
export const RETRY_MS = 2000;

// How long the final event of a run ending here waits for the registry write before it is sent as
// the manager saw it.
const FINAL_WRITE_TIMEOUT_MS = 2000;

/** What the hub hands a run event to. */
export interface RunEventSink {
	onRunEvent(run: Run): void;
}

/**
 * One listener per run event on the manager, whatever the number of streams, dispatching each
 * event to the streams of its run. The listeners are attached while at least one stream is
 * subscribed, and removed when the last one leaves.
 */
export class RunEventHub {
	readonly #manager: BackgroundTaskManager;
	// Sinks by the run they follow. No empty sets: a run leaves the map with its last sink.
	readonly #sinks = new Map<string, Set<RunEventSink>>();
	// Set exactly while `#sinks` is not empty.
	#listening = false;
	readonly #listener = (run: Run): void => {
		const sinks = this.#sinks.get(run.runId);
		if (sinks === undefined) return;
		// A sink may unsubscribe (its run ended) while the others are served.
		for (const sink of [...sinks]) sink.onRunEvent(run);
	};

	constructor(manager: BackgroundTaskManager) {
		this.#manager = manager;
	}

	/** How many runs are followed. */
	get size(): number {
		return this.#sinks.size;
	}

	/** Delivers the events of `runId` to `sink` until the returned function is called. */
	subscribe(runId: string, sink: RunEventSink): () => void {
		let sinks = this.#sinks.get(runId);
		if (sinks === undefined) {
			sinks = new Set();
			this.#sinks.set(runId, sinks);
		}

		sinks.add(sink);
		if (!this.#listening) {
			this.#listening = true;
			for (const event of RUN_EVENTS) this.#manager.on(event, this.#listener);
		}

		let subscribed = true;
		return () => {
			if (!subscribed) return;
			subscribed = false;
			sinks.delete(sink);
			if (sinks.size === 0) this.#sinks.delete(runId);
			if (this.#sinks.size === 0 && this.#listening) {
				this.#listening = false;
				for (const event of RUN_EVENTS) this.#manager.off(event, this.#listener);
			}
		};
	}
}

/** Counts shared by the streams of one handler, so that a leak shows. */
export interface StreamCounters {
	// Heartbeat and poll timers set and not yet cleared or fired.
	timers: number;
}

export interface RunEventStreamOptions {
	readonly manager: BackgroundTaskManager;
	readonly hub: RunEventHub;
	readonly runId: string;
	readonly res: ServerResponse;
	/** The id the client saw last (`Last-Event-ID`), if it resumes. */
	readonly lastEventId: number | undefined;
	readonly heartbeatMs: number;
	readonly pollIntervalMs: number;
	readonly logger: Logger;
	readonly counters: StreamCounters;
	/** Called once, when the stream is closed for whatever reason. */
	readonly onClose: (stream: RunEventStream) => void;
}

/**
 * One client's stream of one run. Created before the run is read, so that no event is lost
 * between the read and the subscription: events that arrive meanwhile are buffered, and either
 * replayed by {@link open} or dropped by {@link close}.
 */
export class RunEventStream implements RunEventSink {
	readonly #options: RunEventStreamOptions;
	readonly #res: ServerResponse;
	// 'opening' until `open` wrote the head; 'closed' from `close` on, for good.
	#state: 'opening' | 'open' | 'closed' = 'opening';
	// Events that arrived while opening, in order.
	#buffer: Run[] = [];
	// The last state the client knows: sent, or skipped because the client resumed after it.
	#known: Run | undefined;
	// A newer state waiting for the socket to drain; it replaces any older one waiting.
	#pending: Run | undefined;
	// The last event id written (or the client's Last-Event-ID); ids only grow.
	#lastId: number;
	// Set once a terminal state was seen: the stream is ending, later states are ignored.
	#ending = false;
	#heartbeat: NodeJS.Timeout | undefined;
	#pollTimer: NodeJS.Timeout | undefined;
	readonly #unsubscribe: () => void;
	readonly #onClose = (): void => this.close();
	readonly #onDrain = (): void => this.#flushPending();
	readonly #onError = (error: unknown): void => {
		this.#options.logger.debug({ err: error, runId: this.#options.runId }, 'runledger/http: event stream socket error');
		this.close();
	};

	constructor(options: RunEventStreamOptions) {
		this.#options = options;
		this.#res = options.res;
		this.#lastId = options.lastEventId ?? 0;
		this.#unsubscribe = options.hub.subscribe(options.runId, this);
		this.#res.on('close', this.#onClose);
		this.#res.on('error', this.#onError);
		this.#res.on('drain', this.#onDrain);
		if (this.#res.destroyed) this.close();
	}

	get closed(): boolean {
		return this.#state === 'closed';
	}

	/** Writes the head and `snapshot` (a run read after this stream subscribed), then follows the run. */
	open(snapshot: Run): void {
		if (this.#state !== 'opening') return;
		this.#state = 'open';
		const res = this.#res;
		res.writeHead(200, EVENT_STREAM_HEADERS);
		res.flushHeaders();
		res.write(`retry: ${RETRY_MS}\n\n`);

		const { lastEventId } = this.#options;
		if (lastEventId !== undefined && snapshot.updatedAt <= lastEventId) {
			// The client has seen this state already (or a later one).
			this.#known = snapshot;
			if (isTerminalStatus(snapshot.status)) {
				this.close();
				return;
			}
		} else {
			this.#write(snapshot);
			if (this.closed) return;
		}

		const buffered = this.#buffer;
		this.#buffer = [];
		for (const run of buffered) this.#consider(run, true);
		if (this.closed || this.#ending) return;

		this.#heartbeat = setInterval(() => this.#ping(), this.#options.heartbeatMs).unref();
		this.#options.counters.timers++;
		// Not executed here: only the registry knows how it goes on.
		if (!this.#options.manager.isTaskActive(this.#options.runId)) this.#schedulePoll();
	}

	onRunEvent(run: Run): void {
		if (this.#state === 'opening') {
			this.#buffer.push(run);
			return;
		}

		try {
			this.#consider(run, true);
		} catch (error) {
			this.#fail(error);
		}
	}

	/** Stops every timer and listener of the stream and ends the response. Idempotent. */
	close(): void {
		if (this.#state === 'closed') return;
		// A stream closed while opening (404, 403, 500) leaves the response to the handler.
		const opened = this.#state === 'open';
		this.#state = 'closed';
		this.#buffer = [];
		this.#pending = undefined;
		this.#unsubscribe();
		if (this.#heartbeat !== undefined) {
			clearInterval(this.#heartbeat);
			this.#heartbeat = undefined;
			this.#options.counters.timers--;
		}

		if (this.#pollTimer !== undefined) {
			clearTimeout(this.#pollTimer);
			this.#pollTimer = undefined;
			this.#options.counters.timers--;
		}

		const res = this.#res;
		res.off('close', this.#onClose);
		res.off('drain', this.#onDrain);
		// The error listener stays: a socket error after the end must not become an uncaught one.
		if (opened && !res.writableEnded && !res.destroyed) {
			try {
				res.end();
			} catch (error) {
				this.#onError(error);
			}
		}

		this.#options.onClose(this);
	}

	// Sends `run` unless the client knows it or a newer state already. `fromManager`: an event of
	// this process's manager, which is read once more when it ends the run.
	#consider(run: Run, fromManager: boolean): void {
		if (this.#state !== 'open' || this.#ending) return;
		const latest = this.#pending ?? this.#known;
		if (latest !== undefined && (run.updatedAt < latest.updatedAt || isSameState(run, latest))) return;
		if (isTerminalStatus(run.status)) {
			this.#ending = true;
			if (fromManager) {
				void this.#sendFinal(run);
				return;
			}
		}

		this.#send(run);
	}

	// The run ended in this process: once the manager has written the end to the registry, the run
	// is read once more, so that the client gets the final state as stored (its `updatedAt` is the
	// registry's, which a resuming client's Last-Event-ID is compared with).
	async #sendFinal(event: Run): Promise<void> {
		const { manager, runId } = this.#options;
		let run = event;
		try {
			// The event is emitted before its write is queued: let the manager queue it first.
			await new Promise<void>((resolve) => setImmediate(resolve));
			await manager.waitForRun(runId, { timeoutMs: FINAL_WRITE_TIMEOUT_MS });
			const stored = await manager.getRun(runId);
			if (stored !== undefined && isTerminalStatus(stored.status)) run = stored;
		} catch (error) {
			this.#options.logger.warn({ err: error, runId: this.#options.runId }, 'runledger/http: could not read the final state of a run; the event is sent as it came');
		}

		try {
			this.#send(run);
		} catch (error) {
			this.#fail(error);
		}
	}

	#send(run: Run): void {
		if (this.#state !== 'open') return;
		if (this.#pending !== undefined || this.#res.writableNeedDrain) {
			this.#pending = run;
			return;
		}

		this.#write(run);
	}

	#flushPending(): void {
		const run = this.#pending;
		if (run === undefined || this.#state !== 'open') return;
		this.#pending = undefined;
		this.#write(run);
	}

	#write(run: Run): void {
		const res = this.#res;
		if (res.destroyed || res.writableEnded) {
			this.close();
			return;
		}

		let data: string;
		try {
			data = JSON.stringify(toPublicRun(run));
		} catch (error) {
			this.#fail(error);
			return;
		}

		const name: RunStreamEventName = this.#known === undefined || this.#known.status !== run.status ? 'status' : 'progress';
		const id = Math.max(this.#lastId + 1, Math.floor(run.updatedAt));
		this.#lastId = id;
		this.#known = run;
		res.write(`id: ${id}\nevent: ${name}\ndata: ${data}\n\n`);
		if (isTerminalStatus(run.status)) this.close();
	}

	// Something unexpected (a run that does not serialize): logged, and the stream ends. The client
	// reconnects and gets the run as JSON, or a 500.
	#fail(error: unknown): void {
		this.#options.logger.error({ err: error, runId: this.#options.runId }, 'runledger/http: event stream failed');
		this.close();
	}

	#ping(): void {
		const res = this.#res;
		if (this.#state !== 'open') return;
		if (res.destroyed || res.writableEnded) {
			this.close();
			return;
		}

		// A stream that cannot drain gains nothing from more bytes.
		if (!res.writableNeedDrain) res.write(': ping\n\n');
	}

	#schedulePoll(): void {
		if (this.#state !== 'open' || this.#ending || this.#pollTimer !== undefined) return;
		this.#pollTimer = setTimeout(() => {
			this.#pollTimer = undefined;
			this.#options.counters.timers--;
			void this.#poll();
		}, this.#options.pollIntervalMs).unref();
		this.#options.counters.timers++;
	}

	async #poll(): Promise<void> {
		const { manager, runId, logger } = this.#options;
		let run: Run | undefined;
		try {
			run = await manager.getRun(runId);
		} catch (error) {
			logger.warn({ err: error, runId }, 'runledger/http: reading a followed run failed; will try again');
			this.#schedulePoll();
			return;
		}

		if (this.#state !== 'open') return;
		if (run === undefined) {
			// Deleted or expired: there is nothing more to follow. A reconnecting client gets a 404.
			this.close();
			return;
		}

		this.#consider(run, false);
		this.#schedulePoll();
	}
}

// Whether two snapshots of a run show the client the same thing: a write that changed neither
// the status nor the progress (an owner change, say) is no event.
function isSameState(a: Run, b: Run): boolean {
	return (
		a.status === b.status &&
		a.progress?.percent === b.progress?.percent &&
		a.progress?.message === b.progress?.message
	);
}
