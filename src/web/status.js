// The status page: fetches /api/status and /api/evidence every few seconds and redraws with DOM
// nodes and textContent only, so nothing an environment reports can become markup.
'use strict';

const REFRESH_MS = 3000;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') node.className = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    node.append(typeof c === 'string' ? document.createTextNode(c) : c);
  }
  return node;
}

function pct(x) {
  return typeof x === 'number' ? (x * 100).toFixed(2) + '%' : '—';
}

function age(seconds) {
  if (typeof seconds !== 'number') return 'unknown';
  if (seconds < 120) return Math.round(seconds) + ' s';
  if (seconds < 7200) return Math.round(seconds / 60) + ' min';
  if (seconds < 172800) return (seconds / 3600).toFixed(1) + ' h';
  return (seconds / 86400).toFixed(1) + ' d';
}

function when(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return d.toLocaleString() + ' (' + age((Date.now() - d.getTime()) / 1000) + ' ago)';
}

function stateOf(s, m) {
  if (s && (s.lastPass.outcome === 'failed' || s.lastPass.outcome === 'invalid')) return ['failing', 'failed', 'bad'];
  if (m && m.up === false) return ['failing', 'down', 'bad'];
  if (s && !s.inSync) return ['drifted', 'drift ' + s.drift, 'warn'];
  if (s) return ['in-sync', 'in sync', 'ok'];
  return ['', 'no pass yet', ''];
}

function card(name, s, m) {
  const [cls, label, badge] = stateOf(s, m);
  const rows = [];
  const row = (k, v) => rows.push(el('dt', null, k), el('dd', null, v));
  if (s) {
    row('tier / host', (s.tier || '—') + ' / ' + (s.host || '—'));
    row('drift', String(s.drift));
    const lp = s.lastPass;
    row('last pass', lp.outcome + ', ' + when(lp.endedAt || lp.startedAt));
    const running = s.facts && s.facts.containers && s.facts.containers.running;
    const image = running && running.image;
    row('image', typeof image === 'string' ? image : '—');
    if (s.lastError) row('last error', s.lastError.code + ': ' + s.lastError.message);
  }
  if (m) {
    row('health', m.up === null ? 'not probed yet' : m.up ? 'up' : 'down' + (m.lastProbe ? ' — ' + m.lastProbe.detail : ''));
    row('uptime 1h / 24h / 30d', pct(m.uptime['1h']) + ' / ' + pct(m.uptime['24h']) + ' / ' + pct(m.uptime['30d']) + ' (objective ' + pct(m.uptimeObjective) + ')');
    row('error rate 5m', pct(m.errorRate['5m']));
    row('probe p95 / p99', (m.latency.p95 === null ? '—' : m.latency.p95.toFixed(3) + ' s') + ' / ' + (m.latency.p99 === null ? '—' : m.latency.p99.toFixed(3) + ' s'));
    row('last backup', m.backup.lastAt ? when(m.backup.lastAt) : 'unknown');
    row('disk used', pct(m.diskUsedRatio));
  }
  const alerts = m && m.alerts.length ? el('ul', { class: 'alerts' }, ...m.alerts.map((a) => el('li', { 'data-alert': a.alert }, a.phase + ': ' + a.alert + ' — ' + a.summary))) : null;
  return el('article', { class: 'env ' + cls, 'data-env': name }, el('h2', null, el('span', null, name), el('span', { class: 'badge ' + badge, 'data-state': label }, label)), el('dl', null, ...rows), alerts);
}

function passItem(p) {
  const href = '/api/evidence/' + encodeURIComponent(p.passId) + '/' + encodeURIComponent(p.env) + '/summary.md';
  return el('li', null, el('a', { href }, p.env + ' ' + p.passId), ' — ' + (p.outcome || 'unfinished') + ', ' + when(p.endedAt || p.startedAt));
}

async function getJson(url) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), 5000);
  try {
    const res = await fetch(url, { signal: ctl.signal, cache: 'no-store' });
    return res.ok ? await res.json() : null;
  } finally {
    clearTimeout(timer);
  }
}

async function refresh() {
  try {
    const [status, evidence] = await Promise.all([getJson('/api/status'), getJson('/api/evidence?limit=15').catch(() => null)]);
    if (!status) throw new Error('no status');
    const byEnv = new Map(status.environments.map((s) => [s.env, s]));
    const names = [...new Set([...byEnv.keys(), ...Object.keys(status.monitor || {})])].sort();
    document.getElementById('envs').replaceChildren(...names.map((n) => card(n, byEnv.get(n), (status.monitor || {})[n])));
    const firing = names.reduce((k, n) => k + (((status.monitor || {})[n] || { alerts: [] }).alerts.filter((a) => a.phase === 'firing').length), 0);
    const insync = status.environments.filter((s) => s.inSync).length;
    document.getElementById('summary').textContent = names.length + ' environments, ' + insync + ' in sync, ' + firing + (firing === 1 ? ' alert firing' : ' alerts firing');
    document.getElementById('passes').replaceChildren(...((evidence && evidence.passes) || []).map(passItem));
    document.getElementById('updated').textContent = 'updated ' + new Date().toLocaleTimeString() + ' · pulser ' + status.version;
  } catch (err) {
    document.getElementById('updated').textContent = 'cannot reach pulser: ' + err.message;
  } finally {
    setTimeout(refresh, REFRESH_MS);
  }
}

refresh();
