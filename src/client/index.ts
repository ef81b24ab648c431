/**
 * runledger/client: follow a run served by runledger/http from Node 20+ or a browser —
 * `waitForRun` polls the status URL until the run ends, `watchRun` iterates its event stream.
 */
export { TimeoutError, isRunledgerError, RunledgerError, ValidationError } from '../errors.js';
export { isTerminalStatus, RunStatus, type Run, type RunErrorInfo, type RunProgress } from '../run.js';
export { HttpError, InvalidResponseError, NetworkError, ReconnectLimitError, RunNotFoundHttpError } from './errors.js';
export type { FetchFunction } from './responses.js';
export { SseParser, type SseEvent, type SseParserHandlers } from './sse-parser.js';
export { waitForRun, type WaitForRunOptions } from './wait-for-run.js';
export { watchRun, type WatchRunOptions } from './watch-run.js';
