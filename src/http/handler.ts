/**
 * `createTaskHandler`: the HTTP routes of a manager's runs — list, read, cancel and a live event
 * stream — as one node:http style handler for `http.createServer`, Express or (through
 * `fastifyTaskPlugin`) Fastify.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

import { RunNotFoundError, ValidationError } from '../errors.js';
import type { BackgroundTaskManager } from '../manager.js';
import type { RunPage, RunQuery } from '../registry.js';
import { type Run, type RunStatus, RunStatus as RunStatuses, isRunStatus, isTerminalStatus } from '../run.js';
import { isValidId } from '../run-validation.js';
import {
	ForbiddenError,
	MethodNotAllowedError,
	RouteNotFoundError,
	RunFinishedError,
	exposed,
	isInternal,
	toErrorResponse,
} from './errors.js';
import {
	type ResolvedTaskHandlerOptions,
	type TaskAction,
	type TaskHandlerOptions,
	resolveTaskHandlerOptions,
} from './options.js';
import { toPublicRun } from './public-run.js';
import { RunEventHub, RunEventStream, type StreamCounters } from './sse.js';

/** What `createTaskHandler` returns: a request handler with a few counters and a way to end its streams. */
export interface TaskHandler {
	/**
	 * Serves a request. One outside `basePath` goes to `next()` when given (Express), else gets a
	 * 404. Never throws and never rejects: every failure is answered (or, mid-stream, ends the stream).
	 */
	(req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void): void;

	/** How many event streams are open (or opening). */
	readonly openStreams: number;

	/** How many heartbeat and poll timers the open streams hold. */
	readonly activeTimers: number;

	/**
	 * Ends every open event stream, e.g. before `server.close()` (which waits for open responses).
	 * EventSource clients reconnect — to another instance, or to this one if it still serves.
	 */
	closeStreams(): void;
}

/** The body of `GET {base}`. */
export interface RunListBody {
	readonly runs: Run[];
	readonly nextCursor?: string;
}

/** The body of a successful cancel. */
export interface CancelBody {
	readonly success: true;
	readonly runId: string;
	readonly status: 'cancelled';
}

type Route =
	| { readonly kind: 'list' }
	| { readonly kind: 'run' | 'cancel' | 'events'; readonly segment: string }
	| { readonly kind: 'unknown' };

const ALLOWED_METHODS: Readonly<Record<Route['kind'], readonly string[]>> = {
	list: ['GET', 'HEAD'],
	run: ['GET', 'HEAD', 'DELETE'],
	cancel: ['POST'],
	events: ['GET'],
	unknown: [],
};

const LIST_PARAMETERS = ['status', 'moduleId', 'itemId', 'limit', 'cursor'] as const;
const STATUS_LIST = Object.values(RunStatuses).map((status) => `'${status}'`).join(', ');
const ID_RULE = 'a string of 1 to 256 printable characters';
const JSON_HEADERS = { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' } as const;

/**
 * Creates the handler of the task routes under `basePath` (default `/tasks`):
 *
 * - `GET {base}` → `{ runs, nextCursor? }`, query `status` (repeatable), `moduleId`, `itemId`, `limit`, `cursor`
 * - `GET {base}/:runId` → the run
 * - `DELETE {base}/:runId`, `POST {base}/:runId/cancel` → `{ success: true, runId, status: 'cancelled' }`
 * - `GET {base}/:runId/events` → a `text/event-stream` of the run until it ends
 *
 * Errors are `{ error: { name, message, field?, status? } }`; see docs/http.md.
 *
 * @example
 * ```ts
 * http.createServer(createTaskHandler(manager)).listen(3000);
 * app.use(createTaskHandler(manager, { basePath: '/api/tasks' })); // Express
 * ```
 * @throws {ValidationError} When an option is invalid.
 */
export function createTaskHandler(manager: BackgroundTaskManager, options?: TaskHandlerOptions): TaskHandler {
	for (const method of ['getRun', 'listRuns', 'cancelTask', 'isTaskActive', 'on', 'off'] as const) {
		if (typeof (manager as unknown as Record<string, unknown> | null)?.[method] !== 'function') {
			throw new ValidationError('manager', 'a BackgroundTaskManager', manager);
		}
	}

	const router = new TaskRouter(manager, resolveTaskHandlerOptions(options));
	const handler = (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void): void => {
		router.handle(req, res, next);
	};

	return Object.defineProperties(handler, {
		openStreams: { get: () => router.openStreams, enumerable: true },
		activeTimers: { get: () => router.activeTimers, enumerable: true },
		closeStreams: { value: () => router.closeStreams(), enumerable: true },
	}) as TaskHandler;
}

class TaskRouter {
	readonly #manager: BackgroundTaskManager;
	readonly #options: ResolvedTaskHandlerOptions;
	// One listener per manager event for all the streams of this handler.
	readonly #hub: RunEventHub;
	// Every stream from its creation (before the run is read) until it closes.
	readonly #streams = new Set<RunEventStream>();
	readonly #counters: StreamCounters = { timers: 0 };

	constructor(manager: BackgroundTaskManager, options: ResolvedTaskHandlerOptions) {
		this.#manager = manager;
		this.#options = options;
		this.#hub = new RunEventHub(manager);
	}

	get openStreams(): number {
		return this.#streams.size;
	}

	get activeTimers(): number {
		return this.#counters.timers;
	}

	closeStreams(): void {
		for (const stream of [...this.#streams]) stream.close();
	}

	handle(req: IncomingMessage, res: ServerResponse, next: ((error?: unknown) => void) | undefined): void {
		let route: Route | undefined;
		let query: string;
		try {
			const url = (req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url ?? '/';
			const queryStart = url.indexOf('?');
			const path = queryStart === -1 ? url : url.slice(0, queryStart);
			query = queryStart === -1 ? '' : url.slice(queryStart + 1);
			route = this.#match(path);
			if (route === undefined) {
				if (next === undefined) this.#reply(req, res, exposed(new RouteNotFoundError()));
				else next();
				return;
			}
		} catch (error) {
			this.#reply(req, res, error);
			return;
		}

		this.#serve(req, res, route, query).catch((error: unknown) => this.#reply(req, res, error));
	}

	// The route of `path`, `undefined` outside the base path.
	#match(path: string): Route | undefined {
		const base = this.#options.basePath;
		if (path === base || path === `${base}/`) return { kind: 'list' };
		if (!path.startsWith(`${base}/`)) return undefined;
		const segments = path.slice(base.length + 1).split('/');
		const [segment, action] = segments;
		if (segment === undefined) return { kind: 'unknown' };
		if (segments.length === 1) return { kind: 'run', segment };
		if (segments.length === 2 && (action === 'cancel' || action === 'events')) return { kind: action, segment };
		return { kind: 'unknown' };
	}

	async #serve(req: IncomingMessage, res: ServerResponse, route: Route, query: string): Promise<void> {
		if (route.kind === 'unknown') throw exposed(new RouteNotFoundError());
		const method = req.method ?? 'GET';
		const allowed = ALLOWED_METHODS[route.kind];
		if (!allowed.includes(method)) throw exposed(new MethodNotAllowedError(method, allowed));

		const params = new URLSearchParams(query);
		if (route.kind === 'list') {
			await this.#list(req, res, params);
			return;
		}

		const runId = decodeRunId(route.segment);
		if (route.kind === 'events') {
			await this.#events(req, res, runId, params);
			return;
		}

		assertNoParameters(params, []);
		if (route.kind === 'run' && method !== 'DELETE') {
			const run = await this.#load(req, runId, 'get');
			this.#sendJson(res, 200, toPublicRun(run));
		} else {
			await this.#cancel(req, res, runId);
		}
	}

	async #list(req: IncomingMessage, res: ServerResponse, params: URLSearchParams): Promise<void> {
		assertNoParameters(params, LIST_PARAMETERS);
		const query: { -readonly [K in keyof RunQuery]: RunQuery[K] } = { limit: this.#options.maxListLimit };
		const statuses = params.getAll('status');
		if (statuses.length > 0) {
			const invalid = statuses.find((status) => !isRunStatus(status));
			if (invalid !== undefined) throw exposed(new ValidationError('status', STATUS_LIST, invalid));
			query.status = [...new Set(statuses)] as RunStatus[];
		}

		const moduleId = single(params, 'moduleId');
		if (moduleId !== undefined) query.moduleId = assertId('moduleId', moduleId);
		const itemId = single(params, 'itemId');
		if (itemId !== undefined) query.itemId = assertId('itemId', itemId);
		const limit = single(params, 'limit');
		if (limit !== undefined) {
			const value = /^[1-9]\d{0,9}$/u.test(limit) ? Number(limit) : Number.NaN;
			if (!(value <= this.#options.maxListLimit)) {
				throw exposed(new ValidationError('limit', `an integer from 1 to ${this.#options.maxListLimit}`, limit));
			}

			query.limit = value;
		}

		const cursor = single(params, 'cursor');
		if (cursor !== undefined) query.cursor = cursor;

		if (!(await this.#authorize(req, 'list', undefined))) throw exposed(new ForbiddenError('list'));
		let page: RunPage;
		try {
			page = await this.#manager.listRuns(query);
		} catch (error) {
			// The registry refuses cursors it did not make; any other failure is internal.
			if (cursor !== undefined && error instanceof ValidationError && error.field === 'query.cursor') {
				throw exposed(new ValidationError('cursor', 'a nextCursor returned by this endpoint', cursor));
			}

			throw error;
		}

		let { runs } = page;
		if (this.#options.authorize !== undefined) {
			const allowed = await Promise.all(runs.map((run) => this.#authorize(req, 'list', run)));
			runs = runs.filter((_run, index) => allowed[index]);
		}

		const body: RunListBody = page.nextCursor === undefined
			? { runs: runs.map(toPublicRun) }
			: { runs: runs.map(toPublicRun), nextCursor: page.nextCursor };
		this.#sendJson(res, 200, body);
	}

	async #cancel(req: IncomingMessage, res: ServerResponse, runId: string): Promise<void> {
		const run = await this.#load(req, runId, 'cancel');
		if (isTerminalStatus(run.status)) throw exposed(new RunFinishedError(runId, run.status));
		if (!(await this.#manager.cancelTask(runId))) {
			// Ended (or removed) between the read and the cancel.
			const current = await this.#manager.getRun(runId);
			if (current === undefined) throw exposed(new RunNotFoundError(runId));
			if (!isTerminalStatus(current.status)) throw new Error(`cancelTask refused run "${runId}", which is still ${current.status}`);
			throw exposed(new RunFinishedError(runId, current.status));
		}

		const body: CancelBody = { success: true, runId, status: 'cancelled' };
		this.#sendJson(res, 200, body);
	}

	async #events(req: IncomingMessage, res: ServerResponse, runId: string, params: URLSearchParams): Promise<void> {
		assertNoParameters(params, ['lastEventId']);
		const header = req.headers['last-event-id'];
		const lastEventId = header === undefined
			? parseEventId('lastEventId', single(params, 'lastEventId'))
			: parseEventId('Last-Event-ID', Array.isArray(header) ? header.join(',') : header);

		// Subscribed before the run is read, so that no change falls between the read and the subscription.
		const stream = new RunEventStream({
			manager: this.#manager,
			hub: this.#hub,
			runId,
			res,
			lastEventId,
			heartbeatMs: this.#options.heartbeatMs,
			pollIntervalMs: this.#options.pollIntervalMs,
			logger: this.#options.logger,
			counters: this.#counters,
			onClose: (closed) => this.#streams.delete(closed),
		});
		if (!stream.closed) this.#streams.add(stream);
		let run: Run;
		try {
			run = await this.#load(req, runId, 'events');
		} catch (error) {
			stream.close();
			throw error;
		}

		// The client may have gone while the run was read: `open` is then a no-op.
		stream.open(run);
	}

	// Reads a run and asks `authorize` about it: 404 when unknown, 403 when refused.
	async #load(req: IncomingMessage, runId: string, action: TaskAction): Promise<Run> {
		const run = await this.#manager.getRun(runId);
		if (run === undefined) throw exposed(new RunNotFoundError(runId));
		if (!(await this.#authorize(req, action, run))) throw exposed(new ForbiddenError(action));
		return run;
	}

	async #authorize(req: IncomingMessage, action: TaskAction, run: Run | undefined): Promise<boolean> {
		const { authorize } = this.#options;
		if (authorize === undefined) return true;
		try {
			return (await (run === undefined ? authorize(req, action) : authorize(req, action, run))) === true;
		} catch (error) {
			this.#options.logger.error({ err: error, action, ...(run === undefined ? {} : { runId: run.runId }) }, 'runledger/http: authorize threw; the request is refused');
			return false;
		}
	}

	#sendJson(res: ServerResponse, statusCode: number, body: unknown, headers: Readonly<Record<string, string>> = {}): void {
		// Serialized first: a run that does not serialize becomes a 500, not half a response.
		const text = JSON.stringify(body);
		if (res.headersSent || res.destroyed || res.writableEnded) return;
		res.writeHead(statusCode, { ...JSON_HEADERS, 'Content-Length': String(Buffer.byteLength(text)), ...headers });
		res.end(text);
	}

	// Answers `error`: as it is when raised for the request, else as a logged 500. Never throws.
	#reply(req: IncomingMessage, res: ServerResponse, error: unknown): void {
		try {
			if (isInternal(error)) {
				this.#options.logger.error({ err: error, method: req.method, url: req.url }, 'runledger/http: internal error');
			}

			if (res.headersSent) {
				// Mid-response there is no way to tell the client but to cut the connection.
				res.destroy();
				return;
			}

			const { statusCode, headers, body } = toErrorResponse(error);
			this.#sendJson(res, statusCode, body, headers);
		} catch (failure) {
			this.#options.logger.error({ err: failure }, 'runledger/http: could not send an error response');
			res.destroy();
		}
	}
}

function decodeRunId(segment: string): string {
	let runId: string;
	try {
		runId = decodeURIComponent(segment);
	} catch {
		throw exposed(new ValidationError('runId', `${ID_RULE}, percent-encoded`, segment));
	}

	return assertId('runId', runId);
}

function assertId(field: string, value: string): string {
	if (!isValidId(value)) throw exposed(new ValidationError(field, ID_RULE, value));
	return value;
}

// Refuses query parameters the route does not know, naming the first one.
function assertNoParameters(params: URLSearchParams, known: readonly string[]): void {
	for (const key of params.keys()) {
		if (!known.includes(key)) {
			const expected = known.length === 0
				? 'absent: this route takes no query parameters'
				: `absent: this route takes only ${known.join(', ')}`;
			throw exposed(new ValidationError(key, expected, params.get(key)));
		}
	}
}

// The value of a parameter that may be given once.
function single(params: URLSearchParams, key: string): string | undefined {
	const values = params.getAll(key);
	if (values.length > 1) throw exposed(new ValidationError(key, 'given once', values));
	return values[0];
}

function parseEventId(field: string, value: string | undefined): number | undefined {
	if (value === undefined) return undefined;
	if (!/^\d{1,16}$/u.test(value) || !Number.isSafeInteger(Number(value))) {
		throw exposed(new ValidationError(field, 'an event id (an integer ≥ 0)', value));
	}

	return Number(value);
}
