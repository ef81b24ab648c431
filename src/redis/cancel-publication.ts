/**
 * Cancelling a run owned elsewhere in one round trip, on Redis: the registry's compare-and-set
 * script publishes the bus's cancel message itself, only when it applied. The two capabilities are
 * defined in the core (`src/cancel-in-one-trip.ts`, which the manager uses); these are their forms
 * for an ioredis client, which `RedisRunRegistry` and `RedisCancellationBus` implement.
 */
import type { Redis } from 'ioredis';

import type { CancelPreparingBus as AnyCancelPreparingBus, CancelPublishingRegistry as AnyCancelPublishingRegistry } from '../cancel-in-one-trip.js';

export type { CancelPublication } from '../cancel-in-one-trip.js';

/** A bus whose messages another connection to the same Redis may publish for it. */
export type CancelPreparingBus = AnyCancelPreparingBus<Redis>;

/** A registry that can publish a message from a compare-and-set update, in the same round trip. */
export type CancelPublishingRegistry = AnyCancelPublishingRegistry<Redis>;
