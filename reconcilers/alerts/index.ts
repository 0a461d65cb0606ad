// The alerts concern. Not a reconciler: nothing in the world is converged to these thresholds.
// They are rendered (Prometheus rules, Grafana dashboard) and evaluated by pulser's monitor.
export { alertSettings, alertSettingsOf, ALERT_NAMES, ALERT_DEFAULTS, type AlertName, type AlertSettings } from './settings.ts';
export { renderAlertRules, renderDashboard, promDuration, DASHBOARD_PANELS, type RenderEnv } from './render.ts';
export { evaluateEnv, owedNotification, initialStates, type AlertState, type Kpis } from './evaluate.ts';
export { deliverNotification, type AlertNotification } from './notify.ts';
