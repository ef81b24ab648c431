/**
 * The errors the HTTP layer answers with, and how each becomes a response. Only errors raised
 * on purpose for the request (marked with {@link exposed}) reach the client as they are; anything
 * else is a 500 with a generic message, and goes to the logger.
 */
import { RunNotFoundError, RunledgerError, ValidationError } from '../errors.js';
import type { RunStatus } from '../run.js';
import type { TaskAction } from './options.js';

/** The body of every error response. */
export interface TaskErrorBody {
	readonly error: {
		readonly name: string;
		readonly message: string;
		/** 400: the query parameter, header or path segment at fault (`runId`, `limit`, `Last-Event-ID`…). */
		readonly field?: string;
		/** 409: the terminal status of the run. */
		readonly status?: RunStatus;
	};
}

/** `authorize` refused the request (or threw). */
export class ForbiddenError extends RunledgerError {
	override name = 'ForbiddenError' as const;
	readonly action: TaskAction;

	constructor(action: TaskAction) {
		super(`Not allowed to ${action === 'list' ? 'list runs' : `${action === 'events' ? 'follow the events of' : action} this run`}`, { code: 'ERR_FORBIDDEN' });
		this.action = action;
	}
}

/** A cancel of a run that has already ended. */
export class RunFinishedError extends RunledgerError {
	override name = 'RunFinishedError' as const;
	readonly runId: string;
	readonly status: RunStatus;

	constructor(runId: string, status: RunStatus) {
		super(`Run "${runId}" has already ended (${status})`, { code: 'ERR_RUN_FINISHED' });
		this.runId = runId;
		this.status = status;
	}
}

/** A method the route does not serve. */
export class MethodNotAllowedError extends RunledgerError {
	override name = 'MethodNotAllowedError' as const;
	readonly allow: readonly string[];

	constructor(method: string, allow: readonly string[]) {
		super(`Method ${method} is not allowed here; allowed: ${allow.join(', ')}`, { code: 'ERR_METHOD_NOT_ALLOWED' });
		this.allow = allow;
	}
}

/** A path under the base path that is no route. */
export class RouteNotFoundError extends RunledgerError {
	override name = 'NotFoundError' as const;

	constructor() {
		super('No such route', { code: 'ERR_ROUTE_NOT_FOUND' });
	}
}

/** A response to an error: what {@link toErrorResponse} gives. */
export interface ErrorResponse {
	readonly statusCode: number;
	readonly headers: Readonly<Record<string, string>>;
	readonly body: TaskErrorBody;
}

// Errors raised on purpose for the request at hand: their name and message are safe to send.
const exposedErrors = new WeakSet<Error>();

/** Marks `error` as one the client may see, and returns it. */
export function exposed<E extends Error>(error: E): E {
	exposedErrors.add(error);
	return error;
}

/** Whether `error` becomes a 500 (and must be logged). */
export function isInternal(error: unknown): boolean {
	return !(error instanceof Error && exposedErrors.has(error));
}

export const INTERNAL_ERROR_BODY: TaskErrorBody = { error: { name: 'InternalError', message: 'Internal error' } };

export function toErrorResponse(error: unknown): ErrorResponse {
	if (isInternal(error)) return { statusCode: 500, headers: {}, body: INTERNAL_ERROR_BODY };
	if (error instanceof ValidationError) {
		return { statusCode: 400, headers: {}, body: { error: { name: error.name, message: error.message, field: error.field } } };
	}

	if (error instanceof RunFinishedError) {
		return { statusCode: 409, headers: {}, body: { error: { name: error.name, message: error.message, status: error.status } } };
	}

	if (error instanceof MethodNotAllowedError) {
		return { statusCode: 405, headers: { Allow: error.allow.join(', ') }, body: body(error) };
	}

	if (error instanceof ForbiddenError) return { statusCode: 403, headers: {}, body: body(error) };
	if (error instanceof RunNotFoundError || error instanceof RouteNotFoundError) return { statusCode: 404, headers: {}, body: body(error) };
	return { statusCode: 500, headers: {}, body: INTERNAL_ERROR_BODY };
}

function body(error: RunledgerError): TaskErrorBody {
	return { error: { name: error.name, message: error.message } };
}
