/**
 * Options of {@link createTaskHandler}, validated once when the handler is created.
 */
import type { IncomingMessage } from 'node:http';

import { ValidationError } from '../errors.js';
import { MAX_TIMER_MS } from '../options.js';
import type { Logger } from '../options.js';
import type { Run } from '../run.js';
import { MAX_LIST_LIMIT } from '../run-validation.js';

/** What a request wants to do: what `authorize` is asked about. */
export type TaskAction = 'list' | 'get' | 'cancel' | 'events';

/**
 * Decides whether `req` may do `action`. Resolve `true` to allow; anything else — `false`, no
 * value, a throw or a rejection — answers 403 (a throw is logged).
 *
 * - `'list'`: called once without `run` (a refusal answers 403), then once per run of the page
 *   with `run`: runs it refuses are left out of the page.
 * - `'get'`, `'cancel'`, `'events'`: called once, with the run, after it was loaded (an unknown
 *   run answers 404 without asking).
 */
export type AuthorizeFunction = (
	req: IncomingMessage,
	action: TaskAction,
	run?: Run,
) => boolean | Promise<boolean>;

export interface TaskHandlerOptions {
	/**
	 * Where the routes live, matched against the full request path (`req.originalUrl` under
	 * Express, else `req.url`). Starts with `/`; a trailing `/` is ignored.
	 * @default '/tasks'
	 */
	readonly basePath?: string;

	/**
	 * Decides per request and action whether it is allowed; see {@link AuthorizeFunction}.
	 * @default undefined (everything is allowed)
	 */
	readonly authorize?: AuthorizeFunction;

	/**
	 * The largest `limit` a list request may ask for, and the page size when it asks for none.
	 * An integer from 1 to 10,000.
	 * @default 100
	 */
	readonly maxListLimit?: number;

	/**
	 * How often an event stream sends a `: ping` comment, so that proxies and load balancers do
	 * not close it as idle. Its timer is unref'd.
	 * @default 15_000
	 */
	readonly heartbeatMs?: number;

	/**
	 * How often an event stream reads a run that another instance executes (one `getRun` at a
	 * time per stream). Runs this process executes are followed through the manager's events
	 * instead. Its timer is unref'd.
	 * @default 1000
	 */
	readonly pollIntervalMs?: number;

	/**
	 * Where internal errors (500s), throwing `authorize` functions and failed polls are logged.
	 * @default a silent logger
	 */
	readonly logger?: Logger;
}

/** The options after validation, with defaults applied. */
export interface ResolvedTaskHandlerOptions {
	// Without a trailing slash; '' when the routes live at the root.
	readonly basePath: string;
	readonly authorize: AuthorizeFunction | undefined;
	readonly maxListLimit: number;
	readonly heartbeatMs: number;
	readonly pollIntervalMs: number;
	readonly logger: Logger;
}

const noop = (): void => {};
const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };

export function resolveTaskHandlerOptions(options: TaskHandlerOptions = {}): ResolvedTaskHandlerOptions {
	if (typeof options !== 'object' || options === null) throw new ValidationError('options', 'an object', options);

	const basePath = options.basePath ?? '/tasks';
	if (typeof basePath !== 'string' || !/^\/[^?#\s]*$/u.test(basePath) || basePath.includes('//')) {
		throw new ValidationError('basePath', "a path that starts with '/', without '?', '#', whitespace or '//'", basePath);
	}

	if (options.authorize !== undefined && typeof options.authorize !== 'function') {
		throw new ValidationError('authorize', 'a function', options.authorize);
	}

	const maxListLimit = options.maxListLimit ?? 100;
	// At most what every registry accepts as a `limit`.
	if (!(Number.isInteger(maxListLimit) && maxListLimit >= 1 && maxListLimit <= MAX_LIST_LIMIT)) {
		throw new ValidationError('maxListLimit', `an integer from 1 to ${MAX_LIST_LIMIT}`, maxListLimit);
	}

	const heartbeatMs = options.heartbeatMs ?? 15_000;
	assertInterval('heartbeatMs', heartbeatMs);
	const pollIntervalMs = options.pollIntervalMs ?? 1000;
	assertInterval('pollIntervalMs', pollIntervalMs);

	const logger = options.logger ?? silentLogger;
	for (const level of ['debug', 'info', 'warn', 'error'] as const) {
		if (typeof logger[level] !== 'function') throw new ValidationError(`logger.${level}`, 'a function', logger[level]);
	}

	return {
		basePath: basePath.endsWith('/') ? basePath.slice(0, -1) : basePath,
		authorize: options.authorize,
		maxListLimit,
		heartbeatMs,
		pollIntervalMs,
		logger,
	};
}

function assertInterval(field: string, value: unknown): void {
	if (!(typeof value === 'number' && Number.isFinite(value) && value >= 1 && value <= MAX_TIMER_MS)) {
		throw new ValidationError(field, `a number of milliseconds from 1 to ${MAX_TIMER_MS}`, value);
	}
}
