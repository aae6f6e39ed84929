// Verity console: plain JavaScript over the gateway's public /v1/ API.
// Signing in makes a session cookie (HttpOnly: this script never sees
// it); the CSRF token the sign-in and whoami answers carry is kept in
// memory only and sent with every request that changes something.
'use strict';

const EVENT_TYPES = [
  'site.deployed', 'content.replicated', 'site.published', 'site.rolled_back', 'site.deploy_failed',
  'site.domain_attached', 'site.domain_verified', 'site.domain_removed', 'node.joined', 'node.lost',
  'node.audit_failed', 'node.reported', 'cache.purged', 'receipts.settled', 'account.frozen',
  'account.unfrozen', 'gateway.charged',
];

const state = { who: null, csrf: '', feed: null, charts: [], pending: [], render: 0, flash: '' };
// For tests and the curious: the console's state.
window.verityConsole = state;

const $ = (id) => document.getElementById(id);

// el builds an element: attributes (on* as listeners) and children
// (strings become text nodes, never HTML).
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function fmtBytes(n) {
  n = Number(n) || 0;
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = Math.abs(n), i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return (n < 0 ? '−' : '') + (i === 0 ? v : v.toFixed(v < 10 ? 2 : 1)) + ' ' + units[i];
}
function fmtTime(t) {
  if (!t || t.startsWith('0001-')) return '—';
  const d = new Date(t);
  return isNaN(d) ? String(t) : d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}
function short(id) { return id && id.length > 20 ? id.slice(0, 10) + '…' + id.slice(-6) : id || ''; }
// num is a number shown readably, its exact value in data-value.
function num(id, value, text) {
  return el('span', { id, 'data-value': value }, text === undefined ? String(value) : text);
}
function bytes(id, value) { return num(id, value, fmtBytes(value) + (Math.abs(value) >= 1024 ? ' (' + Number(value).toLocaleString('en') + ' B)' : '')); }

// share is the part of a series document's bytes that nodes served (and
// visitors' workers verified), as a percentage.
function share(id, doc) {
  const total = (k) => ((doc && doc.values[k]) || []).reduce((a, b) => a + b, 0);
  const nodes = total('nodes'), all = nodes + total('gateway');
  if (!all) return el('span', { id, class: 'muted' }, 'no traffic');
  return num(id, nodes / all, (100 * nodes / all).toFixed(1) + '% (' + fmtBytes(nodes) + ' of ' + fmtBytes(all) + ')');
}

function showError(msg) {
  const e = $('error');
  e.textContent = msg;
  e.hidden = !msg;
}
function showNotice(msg) {
  const e = $('notice');
  e.textContent = msg;
  e.hidden = !msg;
}

class APIError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

// api calls the gateway's API with the session cookie; a change carries
// the CSRF token. It throws an APIError with the server's message.
async function api(method, path, body) {
  const opts = { method, credentials: 'same-origin', headers: {} };
  if (method !== 'GET' && method !== 'HEAD') opts.headers['X-Verity-CSRF'] = state.csrf;
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  // A read that met a network error (a kept-alive connection the
  // gateway closed as it was reused, a busy machine) is asked once more;
  // a change is not, as it may have been applied.
  const tries = method === 'GET' || method === 'HEAD' ? 2 : 1;
  let resp;
  for (let i = 1; ; i++) {
    try {
      resp = await fetch(path, opts);
      break;
    } catch (err) {
      if (i >= tries) throw new APIError(0, 'the gateway did not answer (' + err.message + ')');
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  if (resp.status === 204) return null;
  const text = await resp.text();
  let doc = null;
  try { doc = text ? JSON.parse(text) : null; } catch (_) { /* not JSON */ }
  if (!resp.ok) {
    const msg = doc && doc.error ? doc.error : (text || resp.statusText);
    throw new APIError(resp.status, resp.status + ': ' + msg);
  }
  if (doc === null && text) throw new APIError(resp.status, 'the gateway answered something that is not JSON');
  return doc;
}

// view replaces the page's main content; failures of render are shown,
// never a blank page.
async function view(title, render) {
  const mine = ++state.render; // a later view supersedes this one
  stopFeed();
  for (const c of state.charts) c.destroy();
  state.charts = [];
  state.pending = [];
  const main = $('main');
  main.replaceChildren(el('h1', { id: 'title' }, title), el('p', { id: 'loading' }, 'Loading…'));
  try {
    const parts = await render();
    if (mine !== state.render) return;
    $('loading')?.remove();
    main.append(...[].concat(parts));
    for (const draw of state.pending.splice(0)) draw();
  } catch (err) {
    if (mine !== state.render) return;
    $('loading')?.remove();
    if (err instanceof APIError && err.status === 401) {
      state.who = null;
      renderHeader();
      await signInView(err.message);
      return;
    }
    showError(err.message);
    main.append(el('p', { class: 'muted', id: 'failed' }, 'This page could not be loaded: ' + err.message));
  }
}

function card(title, ...children) { return el('section', { class: 'card' }, el('h2', {}, title), ...children); }
function facts(pairs) {
  return el('dl', { class: 'facts' }, pairs.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
}
function table(id, heads, rows, empty) {
  if (!rows.length) return el('p', { id, class: 'muted' }, empty || 'None.');
  return el('table', { id }, el('thead', {}, el('tr', {}, heads.map((h) => el('th', {}, h)))), el('tbody', {}, rows));
}

// chart draws series (name → values, one per time) with uPlot, or says
// why it cannot.
function chart(id, series, doc, scale) {
  const box = el('div', { class: 'chart', id });
  if (!doc || !doc.times || !doc.times.length) {
    box.append(el('p', { class: 'muted' }, 'No data in this range.'));
    return box;
  }
  const names = Object.keys(series).filter((k) => doc.values[k]);
  box.dataset.sums = JSON.stringify(Object.fromEntries(names.map((k) => [k, doc.values[k].reduce((a, b) => a + b, 0)])));
  if (typeof window.uPlot !== 'function') {
    box.append(el('p', { class: 'muted' }, 'Charts need uPlot (make console-assets); totals: ' +
      names.map((k) => series[k] + ' ' + (scale === 'count' ? String : fmtBytes)(doc.values[k].reduce((a, b) => a + b, 0))).join(', ')));
    return box;
  }
  const colors = ['#1f6feb', '#e5534b', '#3fb950', '#d29922', '#a371f7', '#39c5cf'];
  const opts = {
    width: 520, height: 200,
    series: [{}, ...names.map((k, i) => ({ label: series[k], stroke: colors[i % colors.length], width: 1.5 }))],
    axes: [{}, { values: (u, vals) => vals.map((v) => (scale === 'count' ? String(v) : fmtBytes(v))), size: scale === 'count' ? 50 : 84 }],
  };
  const data = [doc.times.map((t) => Date.parse(t) / 1000), ...names.map((k) => doc.values[k])];
  // Drawn by view once the box is on the page, as wide as its card.
  state.pending.push(() => {
    opts.width = Math.max(240, Math.min(720, box.clientWidth - 8));
    state.charts.push(new window.uPlot(opts, data, box));
  });
  return box;
}

function renderHeader() {
  const who = state.who;
  $('whoami').hidden = $('signout').hidden = !who;
  const nav = $('nav');
  nav.replaceChildren();
  if (!who) return;
  $('whoami').textContent = who.role === 'site' ? 'site ' + who.site : who.role === 'operator' ? 'operator ' + who.operator : 'admin';
  if (who.role === 'admin') nav.append(el('a', { href: '#/admin' }, 'Network'));
  if (who.role === 'site') nav.append(el('a', { href: '#/site/' + who.site }, 'Site'));
  if (who.role === 'operator') nav.append(el('a', { href: '#/operator' }, 'Nodes'));
}

async function signInView(reason) {
  state.render++;
  stopFeed();
  showError(reason || '');
  const cred = el('input', { id: 'credential', type: 'password', autocomplete: 'off', required: true, placeholder: 'vat_…, vdt_… or vop_…' });
  const site = el('input', { id: 'site', autocomplete: 'off', placeholder: 'only with a deploy token (vdt_…)' });
  const form = el('form', { class: 'signin', id: 'signin' },
    el('p', {}, 'Sign in with a credential this gateway issued: the admin token, a site\'s deploy token, or a node operator\'s credential.'),
    el('label', { for: 'credential' }, 'Credential'), cred,
    el('label', { for: 'site' }, 'Site (with a deploy token)'), site,
    el('p', {}, el('button', { class: 'primary', type: 'submit', id: 'signin-submit' }, 'Sign in')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError('');
    try {
      const who = await api('POST', '/v1/auth/session', { credential: cred.value.trim(), site: site.value.trim() });
      signedIn(who);
      go(home());
    } catch (err) {
      showError('Sign-in refused: ' + err.message);
    }
  });
  $('main').replaceChildren(el('h1', { id: 'title' }, 'Sign in'), form);
}

function signedIn(who) {
  state.who = who;
  state.csrf = who.csrf || '';
  renderHeader();
}

function home() {
  const who = state.who;
  if (!who) return '#/signin';
  if (who.role === 'site') return '#/site/' + who.site;
  if (who.role === 'operator') return '#/operator';
  return '#/admin';
}

// --- site owner -------------------------------------------------------

async function siteView(name) {
  await view('Site ' + name, async () => {
    const st = await api('GET', '/v1/sites/' + encodeURIComponent(name));
    const rec = st.site;
    const account = (rec && rec.account) || (st.deploy && st.deploy.account) || (state.who.role === 'site' ? state.who.account : '');
    const parts = [];
    parts.push(card('Site',
      facts([
        ['name', el('span', { id: 'site-name' }, name)],
        ['origin', st.url ? el('a', { id: 'site-url', href: st.url, target: '_blank', rel: 'noopener' }, st.url) : '—'],
        ['current root', el('span', { id: 'site-root', class: 'mono' }, rec ? rec.root : 'not published yet')],
        ['version', num('site-version', rec ? rec.version : 0)],
        ['size', rec && rec.size ? bytes('site-size', rec.size) : '—'],
        ['account', el('span', { id: 'site-account' }, account || '—')],
        ['latest deploy', st.deploy ? el('span', { id: 'deploy-state' }, st.deploy.state + ' · ' + short(st.deploy.root) + ' · ' + fmtTime(st.deploy.deployed)) : '—'],
      ])));
    parts.push(card('Deploy history', historyTable(name, rec)));
    const previews = (st.previews || []).map((p) => el('tr', {},
      el('td', { class: 'cid' }, short(p.root)), el('td', {}, el('a', { href: p.url, target: '_blank', rel: 'noopener', class: 'preview-link' }, p.url)),
      el('td', {}, fmtTime(p.expires)), el('td', {}, p.pinned + ' / ' + p.replicas)));
    parts.push(card('Previews', table('previews', ['root', 'preview', 'expires', 'held by'], previews, 'No preview deploys (verity deploy --preview).')));
    const domains = await api('GET', '/v1/sites/' + encodeURIComponent(name) + '/domains');
    const drows = (domains.domains || []).map((d) => el('tr', {},
      el('td', {}, d.domain), el('td', {}, el('span', { class: 'tag ' + (d.verified ? 'ok' : 'bad') }, d.verified ? 'verified (' + d.method + ')' : 'not verified')),
      el('td', { class: 'mono' }, d.verified ? '' : d.txtName + ' TXT ' + d.txtValue)));
    parts.push(card('Custom domains', table('domains', ['domain', 'state', 'to prove it'], drows, 'No custom domain attached.')));
    if (account) parts.push(...await accountCards(account, name));
    return parts;
  });
}

function historyTable(name, rec) {
  if (!rec || !rec.history || !rec.history.length) return el('p', { class: 'muted', id: 'history' }, 'Nothing published yet.');
  const rows = rec.history.map((v) => {
    const current = v.root === rec.root;
    const btn = current ? el('span', { class: 'tag ok' }, 'current') :
      el('button', { class: 'danger rollback', type: 'button', 'data-root': v.root, onclick: () => confirmRollback(name, v) }, 'Roll back to this');
    return el('tr', { 'data-root': v.root, 'data-version': v.version },
      el('td', {}, String(v.version)), el('td', {}, v.action), el('td', { class: 'cid' }, v.root),
      el('td', {}, fmtTime(v.time)), el('td', {}, v.size ? fmtBytes(v.size) : '—'), el('td', {}, btn));
  });
  return el('div', {}, table('history', ['version', 'action', 'root', 'when', 'size', ''], rows), el('div', { id: 'confirm-slot' }));
}

function confirmRollback(name, v) {
  showNotice('');
  const slot = $('confirm-slot');
  const box = el('div', { id: 'confirm' },
    el('p', {}, 'Roll site ', el('b', {}, name), ' back to version ' + v.version + ', root ', el('span', { class: 'mono' }, v.root),
      '? Visitors get that content at once.'),
    el('button', { class: 'danger', id: 'confirm-yes', type: 'button', onclick: async () => {
      box.remove();
      try {
        const rec = await api('POST', '/v1/sites/' + encodeURIComponent(name) + '/rollback', { root: v.root });
        await siteView(name);
        showError('');
        showNotice('Rolled back: ' + name + ' now serves ' + rec.root + ' (version ' + rec.version + ').');
      } catch (err) {
        showError('Rollback refused: ' + err.message);
      }
    } }, 'Yes, roll back'), ' ',
    el('button', { id: 'confirm-no', type: 'button', onclick: () => box.remove() }, 'Cancel'));
  slot.replaceChildren(box);
}

async function accountCards(account, site) {
  const enc = encodeURIComponent(account);
  const [a, dash, stmt, all, traffic] = await Promise.all([
    api('GET', '/v1/accounts/' + enc),
    api('GET', '/v1/accounts/' + enc + '/dashboard'),
    api('GET', '/v1/accounts/' + enc + '/statement?limit=50'),
    api('GET', '/v1/accounts/' + enc + '/history?since=24h&step=1h'),
    site ? api('GET', '/v1/accounts/' + enc + '/history?since=24h&step=1h&site=' + encodeURIComponent(site)) : null,
  ]);
  const spend = site && dash.sites ? (dash.sites[site] || { nodes: 0, gateway: 0 }) : dash.spend;
  const rows = (stmt.entries || []).slice().reverse().map((e) => el('tr', {},
    el('td', {}, fmtTime(e.time)), el('td', {}, e.type), el('td', {}, fmtBytes(e.bytes)),
    el('td', { class: 'mono' }, e.node ? short(e.node) : e.gateway || ''),
    el('td', {}, Object.entries(e.sites || {}).map(([s, b]) => s + ' ' + fmtBytes(b)).join(', ')),
    el('td', {}, fmtBytes(e.balance))));
  const out = [
    card('Account ' + account,
      facts([
        ['balance', bytes('acct-balance', a.balance)],
        ['freezes below', bytes('acct-freeze', a.freezeBelow)],
        ['state', el('span', { id: 'acct-frozen', class: 'tag ' + (a.frozen ? 'bad' : 'ok'), 'data-value': a.frozen }, a.frozen ? 'frozen: visitors are not served by nodes' : 'active')],
        ['held by open sessions', bytes('acct-held', a.held || 0)],
        ['paid to nodes', bytes('acct-spent', a.spent)],
        ['charged by gateways', bytes('acct-charged', a.charged || 0)],
        [site ? 'site ' + site + ': nodes' : 'all sites: nodes', bytes('site-spend-nodes', spend.nodes)],
        [site ? 'site ' + site + ': gateway' : 'all sites: gateway', bytes('site-spend-gateway', spend.gateway)],
        ['served by nodes, last 24 h', share('node-share', traffic || all)],
      ])),
  ];
  const charts = el('div', { class: 'grid' });
  if (traffic) {
    charts.append(card('Traffic of ' + site + ', last 24 h (bytes per hour)', chart('chart-traffic', { nodes: 'from nodes (verified)', gateway: 'from the gateway' }, traffic)));
    charts.append(requestsCard(site, traffic));
    charts.append(card('Node failures your visitors reported (bad blocks, unreachable nodes, timeouts), last 24 h', chart('chart-reported', { reported: 'reports' }, traffic, 'count')));
  }
  charts.append(card('Account spend per hour, last 24 h', chart('chart-spend', { nodes: 'paid to nodes', gateway: 'charged by gateways' }, all)));
  charts.append(card('Balance and top-ups, last 24 h', chart('chart-balance', { balance: 'balance at the hour\'s end', topups: 'top-ups' }, all)));
  out.push(charts);
  out.push(card('Statement (latest 50)', table('statement', ['when', 'type', 'bytes', 'node / gateway', 'by site', 'balance after'], rows, 'No entries.')));
  return out;
}

// requestsCard is a site's requests over the series document's range:
// those the gateway answered itself (it counts them), and those visitors'
// workers reported answering from nodes, from their verified cache and
// through the gateway, with the worker's share of them.
function requestsCard(site, doc) {
  const total = (k) => ((doc && doc.values[k]) || []).reduce((a, b) => a + b, 0);
  const nodes = total('requests_nodes'), cache = total('requests_cache'), fallback = total('requests_fallback');
  const worker = nodes + cache, all = worker + fallback;
  return card('Requests of ' + site + ', last 24 h (per hour)',
    facts([
      ['gateway (its own count)', num('req-gateway', total('requests_gateway'))],
      ['from nodes', num('req-nodes', nodes)],
      ['worker cache hits', num('req-cache', cache)],
      ['worker fallback', num('req-fallback', fallback)],
      ['worker share', all ? num('worker-share', worker / all, (100 * worker / all).toFixed(0) + '%') :
        el('span', { id: 'worker-share', class: 'muted' }, 'no reports yet')],
    ]),
    el('p', { class: 'muted' }, el('span', { class: 'tag' }, 'reported by visitors\' browsers'),
      ' Nodes, cache and fallback are counted by your visitors\' workers and reported to the gateway (bounded and rate-limited per address): a picture of your traffic, not a bill.'),
    chart('chart-requests', {
      requests_gateway: 'answered by the gateway', requests_nodes: 'from nodes (reported)',
      requests_cache: 'worker cache hits (reported)', requests_fallback: 'worker fallback (reported)',
    }, doc, 'count'));
}

// --- node operator ----------------------------------------------------

// nodeRows are the table rows of nodes; failures, when given, maps a
// node id to its failures reported and audits failed in the last 24 h.
function nodeRows(nodes, admin, failures) {
  return nodes.map((n) => {
    const f = failures && failures[n.id];
    const used = n.stored || n.blocks * 262144;
    const certLeft = n.certExpires ? (Date.parse(n.certExpires) - Date.now()) / 86400000 : null;
    return el('tr', { 'data-node': n.id, class: n.state === 'live' ? '' : 'bad' },
      el('td', { class: 'mono' }, admin ? short(n.id) : n.id),
      el('td', {}, el('span', { class: 'tag ' + n.state }, n.state), n.reason ? ' ' + n.reason : ''),
      admin ? el('td', {}, n.operator || '—') : null,
      el('td', {}, [n.region, n.asn ? 'AS' + n.asn : ''].filter(Boolean).join(' · ') || '—'), el('td', {}, n.version || '—'),
      el('td', {}, certLeft === null ? '—' : fmtTime(n.certExpires) + (certLeft < 3 ? ' (soon)' : '')),
      el('td', { 'data-value': used }, fmtBytes(used) + (n.capacity ? ' of ' + fmtBytes(n.capacity) : '')),
      el('td', {}, (n.load * 100).toFixed(0) + '%'),
      el('td', { class: 'holdings', 'data-value': n.holdings }, n.holdings + (n.auditing ? ' (+' + n.auditing + ' in audit)' : '') + (n.pending ? ' (+' + n.pending + ' ordered)' : '')),
      failures ? el('td', { class: 'failures', 'data-value': f ? f.reported + f.audits : '' },
        f ? f.reported + ' reported, ' + f.audits + ' audits failed' : '—') : null,
      el('td', {}, fmtTime(n.lastSeen)));
  });
}
const NODE_HEADS = ['node', 'state', 'region / AS', 'version', 'certificate expires', 'storage used', 'load', 'holdings', 'last seen'];

async function operatorView() {
  await view('Your nodes', async () => {
    const list = await api('GET', '/v1/nodes');
    const nodes = list.nodes || [];
    const parts = [card('Nodes of operator ' + state.who.operator, table('nodes', NODE_HEADS, nodeRows(nodes, false), 'None of your nodes has joined yet (verity node --operator-token-file …).'))];
    for (const n of nodes) {
      const id = encodeURIComponent(n.id);
      const [earn, hist] = await Promise.all([api('GET', '/v1/nodes/' + id + '/earnings'), api('GET', '/v1/nodes/' + id + '/history?since=24h&step=1h')]);
      const byAccount = Object.fromEntries(Object.keys(hist.values).filter((k) => k.startsWith('account:')).map((k) => [k, k.slice(8)]));
      // Pending: what the node says it holds unsettled (its heartbeat),
      // a claim and not money; absent from a node that does not say.
      const u = n.claimedUnsettled;
      const tag = n.id.slice(-8);
      const accounts = [...new Set([...Object.keys(earn.from || {}), ...Object.keys((u && u.byAccount) || {})])].sort();
      const from = accounts.map((a) => el('tr', { 'data-account': a }, el('td', {}, a),
        el('td', { class: 'settled', 'data-value': (earn.from || {})[a] || 0 }, fmtBytes((earn.from || {})[a] || 0)),
        el('td', { class: 'pending', 'data-value': u ? ((u.byAccount || {})[a] || 0) : '' }, u ? fmtBytes((u.byAccount || {})[a] || 0) : 'unknown')));
      parts.push(el('div', { class: 'grid', 'data-node': n.id },
        card('Earnings of ' + short(n.id),
          facts([['settled, ever (the ledger)', bytes('earned-' + tag, earn.earned)],
            ['pending (claimed)', u ? bytes('pending-' + tag, u.bytes) :
              el('span', { id: 'pending-' + tag, class: 'muted', 'data-value': 'unknown' }, 'unknown')],
            ['sessions held', u ? num('pending-sessions-' + tag, u.sessions) : '—']]),
          el('p', { class: 'muted' }, el('span', { class: 'tag' }, 'claimed by the node, not yet paid'),
            u ? ' Pending is what the node says it holds in receipts not settled yet; the ledger pays only what it settles.' :
              ' This node does not report its pending receipts (an older version).'),
          table('earned-from-' + tag, ['account', 'settled', 'pending (claimed)'], from, 'Nothing settled or pending yet.')),
        card('Earned per hour by account, last 24 h', chart('chart-earn-' + n.id.slice(-8), Object.keys(byAccount).length ? byAccount : { earned: 'earned' }, hist)),
        card('Failures reported and audits failed, last 24 h', chart('chart-fail-' + n.id.slice(-8), { reported: 'reported by visitors', audit_failed: 'audits failed' }, hist, 'count'))));
    }
    return parts;
  });
}

// --- admin ------------------------------------------------------------

async function adminView() {
  await view('Network', async () => {
    const [nodes, places, sites, accounts, evh] = await Promise.all([
      api('GET', '/v1/nodes'), api('GET', '/v1/placements'), api('GET', '/v1/sites'), api('GET', '/v1/accounts'),
      api('GET', '/v1/events/history?since=24h&step=1h&types=node.reported,node.audit_failed,node.lost,site.published'),
    ]);
    const prow = (places.placements || []).map((p) => el('tr', { class: p.underReplicated ? 'bad' : '', 'data-root': p.root },
      el('td', { class: 'cid' }, short(p.root)), el('td', {}, (p.sites || []).join(', ')),
      el('td', { 'data-value': p.livePinned }, p.livePinned + ' / ' + p.replicas + (p.underReplicated ? ' under-replicated' : '')),
      el('td', {}, Object.entries(p.holders).map(([n, s]) => short(n) + ' ' + s).join(', '))));
    const srow = (sites.sites || []).map((s) => el('tr', {},
      el('td', {}, el('a', { href: '#/site/' + s.name }, s.name)), el('td', { class: 'cid' }, s.site ? short(s.site.root) : '—'),
      el('td', {}, s.site ? String(s.site.version) : '—'), el('td', {}, (s.site && s.site.account) || '—')));
    const arow = (accounts.accounts || []).map((a) => el('tr', { 'data-account': a.name, class: a.frozen ? 'bad' : '' },
      el('td', {}, a.name), el('td', { 'data-value': a.balance }, fmtBytes(a.balance)), el('td', {}, fmtBytes(a.freezeBelow)),
      el('td', {}, a.frozen ? 'frozen' : 'active'), el('td', {}, fmtBytes(a.spent)), el('td', {}, fmtBytes(a.charged || 0))));
    const under = (places.placements || []).filter((p) => p.underReplicated).length;
    // Each node's failures of the last 24 h.
    const fh = await api('GET', '/v1/events/history?since=24h&step=24h&types=node.reported,node.audit_failed&group=node');
    const total = (k) => (fh.values[k] || []).reduce((a, b) => a + b, 0);
    const failures = Object.fromEntries((nodes.nodes || []).map((n) =>
      [n.id, { reported: total('node.reported:' + n.id), audits: total('node.audit_failed:' + n.id) }]));
    const heads = ['node', 'state', 'operator', ...NODE_HEADS.slice(2, -1), 'failures (24 h)', 'last seen'];
    return [
      card('Nodes', table('admin-nodes', heads, nodeRows(nodes.nodes || [], true, failures), 'No node has joined.')),
      card('Placements', el('p', {}, num('under-replicated', under, under + ' under-replicated'), ' of ' + (places.placements || []).length + ' roots'),
        table('placements', ['root', 'sites', 'live copies', 'holders'], prow, 'Nothing placed.')),
      el('div', { class: 'grid' },
        card('Sites', table('sites', ['site', 'root', 'version', 'account'], srow, 'No sites.')),
        card('Accounts', table('accounts', ['account', 'balance', 'freezes below', 'state', 'paid to nodes', 'charged'], arow, 'No accounts.'))),
      card('Failures and changes per hour, last 24 h', chart('chart-events', { 'node.reported': 'reported by visitors', 'node.audit_failed': 'audits failed', 'node.lost': 'nodes lost', 'site.published': 'sites published' }, evh, 'count')),
      feedCard(),
    ];
  });
}

function feedCard() {
  const input = el('input', { id: 'feed-types', placeholder: 'all types, or e.g. site.published,node.lost', list: 'event-types' });
  const list = el('ul', { id: 'feed' });
  const status = el('span', { id: 'feed-status', class: 'muted' });
  const apply = () => startFeed(input.value, list, status);
  const c = card('Live events',
    el('datalist', { id: 'event-types' }, EVENT_TYPES.map((t) => el('option', { value: t }))),
    el('div', { class: 'filters' }, input, el('button', { id: 'feed-apply', type: 'button', onclick: apply }, 'Filter'), status), list);
  queueMicrotask(apply);
  return c;
}

function startFeed(types, list, status) {
  stopFeed();
  const want = types.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = want.filter((t) => !EVENT_TYPES.includes(t));
  if (bad.length) {
    showError('Unknown event type: ' + bad.join(', ') + '. Known: ' + EVENT_TYPES.join(', '));
    return;
  }
  showError('');
  list.replaceChildren();
  const url = '/v1/events?last=50' + (want.length ? '&types=' + encodeURIComponent(want.join(',')) : '');
  const es = new EventSource(url);
  state.feed = es;
  status.textContent = 'connecting…';
  es.onopen = () => { status.textContent = 'live'; };
  es.onerror = () => {
    status.textContent = es.readyState === EventSource.CLOSED ? 'closed: signed out or not allowed' : 'reconnecting…';
  };
  for (const t of want.length ? want : EVENT_TYPES) {
    es.addEventListener(t, (m) => {
      let ev;
      try { ev = JSON.parse(m.data); } catch (_) { return; }
      list.prepend(el('li', { 'data-type': ev.type }, fmtTime(ev.time) + '  ' + ev.type + '  ' + JSON.stringify(ev.data)));
      while (list.childElementCount > 200) list.lastElementChild.remove();
    });
  }
}

function stopFeed() {
  if (state.feed) state.feed.close();
  state.feed = null;
}

// --- routing ----------------------------------------------------------

// go shows the page of hash: through hashchange when the hash changes.
function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

async function route() {
  showNotice('');
  const h = location.hash.replace(/^#\/?/, '');
  if (!state.who) return signInView();
  showError(state.flash || '');
  state.flash = '';
  const [page, arg] = h.split('/');
  if (page === 'site' && arg) return siteView(decodeURIComponent(arg));
  if (page === 'operator') return operatorView();
  if (page === 'admin') return adminView();
  if (page === 'signin' || page === '') return go(home());
  state.flash = 'No such page: #/' + h;
  go(home());
}

async function signOut() {
  try {
    await api('DELETE', '/v1/auth/session');
  } catch (err) {
    showError('Sign-out failed: ' + err.message);
    return;
  }
  state.who = null;
  state.csrf = '';
  renderHeader();
  go('#/signin');
}

async function start() {
  $('signout').addEventListener('click', signOut);
  window.addEventListener('hashchange', route);
  try {
    signedIn(await api('GET', '/v1/auth/whoami'));
  } catch (err) {
    state.who = null;
    renderHeader();
    // No cookie: just sign in. A refused cookie: say why.
    return signInView(err.status === 401 && !/sign in, or send/.test(err.message) ? err.message : err.status === 401 ? '' : err.message);
  }
  route();
}

start();
