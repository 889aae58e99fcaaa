/**
 * Where the Grafana dashboard and the Prometheus alert rules shipped with this package are
 * on disk, for tools that provision them (copy them into Grafana's and Prometheus's
 * configuration directories).
 */
import { fileURLToPath } from 'node:url';

/** `grafana/quorate-dashboard.json` in this package. */
export const dashboardFile: string = fileURLToPath(
  new URL('../grafana/quorate-dashboard.json', import.meta.url),
);

/** `prometheus/alerts.yaml` in this package. */
export const alertRulesFile: string = fileURLToPath(new URL('../prometheus/alerts.yaml', import.meta.url));
