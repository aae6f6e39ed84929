// Shows, for each resource of the page, the Server-Timing entries it came
// with: which transport (first-visit, webtransport, webrtc, gateway) and
// which node served it, and how many blocks were verified.
(function () {
  'use strict';

  function timing(entry) {
    const out = {};
    for (const st of entry.serverTiming || []) {
      out[st.name] = st.description || (st.duration ? st.duration.toFixed(1) + ' ms' : '');
      if (st.name === 'ttfb') out.ttfb = st.duration.toFixed(1) + ' ms';
    }
    return out;
  }

  function cell(text, cls) {
    const td = document.createElement('td');
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  }

  function row(entry) {
    const t = timing(entry);
    const tr = document.createElement('tr');
    const url = new URL(entry.name, location.href);
    tr.appendChild(cell(url.pathname));
    const tv = document.createElement('td');
    const tag = document.createElement('span');
    tag.className = 'tag ' + (t.verity || '');
    tag.textContent = t.verity || '(none)';
    tv.appendChild(tag);
    tr.appendChild(tv);
    tr.appendChild(cell(t.node || ''));
    tr.appendChild(cell(t.blocks || '', 'num'));
    tr.appendChild(cell(t.ttfb || '', 'num'));
    const size = entry.decodedBodySize || entry.transferSize || 0;
    tr.appendChild(cell(size ? size.toLocaleString() + ' B' : '', 'num'));
    return tr;
  }

  function skip(entry) {
    const p = new URL(entry.name, location.href).pathname;
    return p.startsWith('/.verity/') || p === '/verity-sw.js';
  }

  const seen = new Set();
  function render() {
    const body = document.querySelector('#timings tbody');
    if (!body) return;
    const entries = performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'));
    for (const e of entries) {
      const key = e.name + '@' + e.startTime;
      if (seen.has(key) || skip(e)) continue;
      seen.add(key);
      body.appendChild(row(e));
    }
  }

  function swState() {
    const el = document.getElementById('sw-state');
    if (!el) return;
    if (!('serviceWorker' in navigator)) {
      el.textContent = 'service worker: not supported by this browser';
      return;
    }
    el.textContent = navigator.serviceWorker.controller
      ? 'service worker: controlling this page'
      : 'service worker: not controlling this page yet (reload after it installs)';
  }

  async function loadBig() {
    const out = document.getElementById('big-result');
    out.textContent = 'fetching…';
    const t0 = performance.now();
    try {
      const res = await fetch('/media/measurements.csv', { cache: 'no-store' });
      const buf = await res.arrayBuffer();
      const ms = performance.now() - t0;
      const lines = new TextDecoder().decode(buf).split('\n').length - 1;
      out.textContent = `${buf.byteLength.toLocaleString()} bytes, ${lines.toLocaleString()} rows in ${ms.toFixed(0)} ms`;
    } catch (err) {
      out.textContent = 'failed: ' + err;
    }
    setTimeout(render, 50);
  }

  if ('PerformanceObserver' in window) {
    new PerformanceObserver(render).observe({ type: 'resource', buffered: true });
  }
  if ('serviceWorker' in navigator) {
    navigator.serviceWorker.addEventListener('controllerchange', swState);
  }
  window.addEventListener('load', () => { render(); swState(); });
  document.addEventListener('DOMContentLoaded', () => {
    const b = document.getElementById('load-big');
    if (b) b.addEventListener('click', loadBig);
    render();
    swState();
  });
})();
