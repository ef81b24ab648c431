/**
 * Creates managers on real registries and shuts every one of them down after each test.
 */
import { afterEach } from 'vitest';
import {
	BackgroundTaskManager,
	type BackgroundTaskManagerOptions,
	MemoryRunRegistry,
	type RunRegistry,
} from '../../src/index.js';
import { EventRecorder } from './event-recorder.js';

export interface Harness<G extends RunRegistry> {
	readonly manager: BackgroundTaskManager;
	readonly registry: G;
	readonly events: EventRecorder;
}

const created: BackgroundTaskManager[] = [];

/** A manager on `registry` (a fresh MemoryRunRegistry by default), recorded for the afterEach shutdown. */
export function createManager<G extends RunRegistry = MemoryRunRegistry>(
	options?: BackgroundTaskManagerOptions,
	registry?: G,
): Harness<G> {
	const store = (registry ?? new MemoryRunRegistry()) as G;
	const manager = new BackgroundTaskManager(store, options);
	created.push(manager);
	return { manager, registry: store, events: new EventRecorder(manager) };
}

/** Registers the afterEach that shuts down every manager a test created. Call once per test file. */
export function shutdownManagersAfterEach(): void {
	afterEach(async () => {
		const managers = created.splice(0);
		await Promise.all(managers.map((manager) => manager.shutdown({ graceMs: 0, abortGraceMs: 20 })));
	});
}
