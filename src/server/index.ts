/**
 * `nightshift/server`: the HTTP API, web console and Prometheus metrics, for serving them from
 * your own process (the CLI's `nightshift serve` does the same). A subpath of its own, so that
 * importing `nightshift` does not load the HTTP server (fastify) and metrics libraries.
 */
export { createHttpApi, type HttpApiOptions } from './http-api.ts';
export type { TrustedProxies } from './proxies.ts';
export { loadTokens, type ApiToken, type Role } from './tokens.ts';
export { createMetrics, type Metrics, type MetricsOptions } from './metrics.ts';
