/**
 * Cancelling a run owned elsewhere in one round trip: the registry's compare-and-set update
 * publishes the bus's cancel message from inside its script, only when it applied. These are the
 * two optional capabilities that takes; `RedisRunRegistry` and `RedisCancellationBus` have both.
 * A caller checks for the methods, and that `bus.sharesServerWith(registry.client)`, before using
 * them; otherwise it updates and then publishes, in two round trips.
 */
import type { Redis } from 'ioredis';

import type { CancelCommand } from '../bus.js';
import type { UpdateRunOptions } from '../registry.js';
import type { Run, RunPatch } from '../run.js';

/** A cancel command as a bus would publish it: `PUBLISH channel message`. */
export interface CancelPublication {
	readonly channel: string;
	readonly message: string;
}

/** A bus whose messages another connection to the same server may publish for it. */
export interface CancelPreparingBus {
	/**
	 * `command` encoded exactly as `publish` would send it (signed, when the bus signs), with the
	 * channel it would go to. Publishes nothing.
	 */
	prepare(command: CancelCommand): CancelPublication;
	/** Whether a PUBLISH on `client` reaches this bus's subscribers: `false` whenever that is not certain. */
	sharesServerWith(client: Redis): boolean;
}

/** A registry that can publish a message from a compare-and-set update, in the same round trip. */
export interface CancelPublishingRegistry {
	/** The client the registry's scripts run on: what {@link CancelPreparingBus.sharesServerWith} is given. */
	readonly client: Redis;
	/**
	 * As `updateRun(runId, patch, options)`, and publishes `publication` only when the patch
	 * applied (never when the run is missing, its status is not `ifStatus`, or the change is illegal).
	 */
	updateRunAndPublish(runId: string, patch: RunPatch, options: UpdateRunOptions | undefined, publication: CancelPublication): Promise<Run | undefined>;
}
