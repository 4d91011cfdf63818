/**
 * `@fanoutio/eventstream/prometheus`: Prometheus metrics through prom-client,
 * on a subpath of its own so that the main entry never names prom-client (an
 * optional peer): bundlers resolve every import they see and fail the build
 * when it is not installed.
 */
export { type MetricsRegistry, registerMetrics, type UnregisterMetrics } from './api/register-metrics.js';
