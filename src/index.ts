export {
	LocalCancellationBus,
	parseCancelCommand,
	type BusErrorHandler,
	type CancelCommand,
	type CancelCommandHandler,
	type CancellationBus,
	type Unsubscribe,
} from './bus.js';
export {
	CancelledError,
	IllegalTransitionError,
	QueueFullError,
	RegistryError,
	ResultTooLargeError,
	RunExistsError,
	RunNotFoundError,
	RunledgerError,
	ShutdownError,
	ShutdownTimeoutError,
	TimeoutError,
	ValidationError,
	isCancelledError,
	isRunledgerError,
	isTimeoutError,
} from './errors.js';
export type { BackgroundTaskManagerEvents } from './events.js';
export type { TaskContext, TaskFunction } from './execution.js';
export {
	BackgroundTaskManager,
	type ManagerStats,
	type ShutdownOptions,
	type ShutdownReport,
	type StartTaskInput,
	type StartTaskRun,
	type WaitAllReport,
} from './manager.js';
export { MemoryRunRegistry, type MemoryRunRegistryOptions } from './memory-registry.js';
export type { BackgroundTaskManagerOptions, Logger, OwnerLeaseOptions, RetentionOptions } from './options.js';
export type { RunPage, RunQuery, RunRegistry, RunWrite, RunWriteResult, UpdateRunOptions } from './registry.js';
export {
	RUN_PRIORITIES,
	RunStatus,
	isLegalTransition,
	isRunPriority,
	isRunStatus,
	isTerminalStatus,
	type Run,
	type RunErrorInfo,
	type RunPatch,
	type RunPriority,
	type RunProgress,
} from './run.js';
