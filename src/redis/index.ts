/**
 * `runledger/redis`: a {@link RedisRunRegistry} and a {@link RedisCancellationBus} on an ioredis
 * client (ioredis 5 or later, an optional peer dependency). See `docs/redis.md`.
 */
export { RedisRunRegistry, type RedisRunRegistryOptions } from './registry.js';
export { MAX_CANCEL_MESSAGE_LENGTH, RedisCancellationBus, type RedisCancellationBusOptions } from './bus.js';
export { redisKeys, type RedisKeys } from './keys.js';
export type { CancelPreparingBus, CancelPublication, CancelPublishingRegistry } from './cancel-publication.js';
