/**
 * The data-key cache: {@link withDataKeyCache} (SPEC.md §9.12).
 * @module
 */
export { withDataKeyCache, isRetryableError, CACHE_LIMITS, CACHE_DEFAULTS } from './data-key-cache.js';
export type {
  DataKeyCache,
  DataKeyCacheOptions,
  CacheStats,
  CacheSideStats,
  CacheSide,
  StaleServeEvent,
  RefreshErrorEvent,
} from './data-key-cache.js';
