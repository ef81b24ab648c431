/**
 * `runledger/http`: the HTTP surface of a manager's runs — list, read, cancel and a live
 * Server-Sent Events stream — for node:http, Express and Fastify. See `docs/http.md`.
 */
export { createTaskHandler, type CancelBody, type RunListBody, type TaskHandler } from './handler.js';
export {
	fastifyTaskPlugin,
	type FastifyInstanceLike,
	type FastifyReplyLike,
	type FastifyRequestLike,
	type FastifyTaskPluginOptions,
} from './fastify.js';
export { ForbiddenError, MethodNotAllowedError, RunFinishedError, type TaskErrorBody } from './errors.js';
export type { AuthorizeFunction, TaskAction, TaskHandlerOptions } from './options.js';
export { EVENT_STREAM_HEADERS, RETRY_MS, type RunStreamEventName } from './sse.js';
