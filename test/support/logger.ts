/** A pino-compatible logger that records every call. */
import type { Logger } from '../../src/index.js';

export interface LogEntry {
	readonly level: 'debug' | 'info' | 'warn' | 'error';
	readonly object: Record<string, unknown>;
	readonly message: string | undefined;
}

export class RecordingLogger implements Logger {
	readonly entries: LogEntry[] = [];

	debug(object: Record<string, unknown>, message?: string): void {
		this.entries.push({ level: 'debug', object, message });
	}

	info(object: Record<string, unknown>, message?: string): void {
		this.entries.push({ level: 'info', object, message });
	}

	warn(object: Record<string, unknown>, message?: string): void {
		this.entries.push({ level: 'warn', object, message });
	}

	error(object: Record<string, unknown>, message?: string): void {
		this.entries.push({ level: 'error', object, message });
	}

	at(level: LogEntry['level']): LogEntry[] {
		return this.entries.filter((entry) => entry.level === level);
	}
}
