// Verity loader: the one script tag a site adds
//   <script src="/verity.js" async></script>
// It registers the Verity service worker, which from then on fetches the
// site's assets from storage nodes and verifies every byte. It never breaks
// the page: any failure is logged and the page keeps loading from the
// gateway as before.
(function () {
  'use strict';
  var SW_URL = '/verity-sw.js';
  // The script tag's data-keepalive="off" lets the browser stop the
  // worker, and free its compiled code, while this page is open
  // (keepAlive, holdWasm).
  var script = document.currentScript;
  var KEEPALIVE = !(script && script.getAttribute('data-keepalive') === 'off');

  function warn(msg, err) {
    try { console.warn('verity: ' + msg, err || ''); } catch (e) { /* no console */ }
  }

  // Bridge: the worker can ask the page for a MessagePort (RTCPeerConnection
  // exists only in pages, so a future WebRTC transport lives here and is
  // bridged to the worker over this channel). The worker posts
  // {type: 'verity-bridge'}; the page answers with a port the worker keeps.
  var bridge = {
    handlers: {},
    // relayed counts the data bytes this page has posted to the worker.
    relayed: 0,
    // on(type, fn): fn(message, port) handles messages of that type that
    // the worker sends over the bridge.
    on: function (type, fn) { bridge.handlers[type] = fn; },
    connect: function (worker) {
      var ch = new MessageChannel();
      ch.port1.onmessage = function (ev) {
        var d = ev.data || {};
        var fn = bridge.handlers[d.type];
        if (fn) {
          try { fn(d, ch.port1, ev.ports); } catch (e) { warn('bridge handler failed', e); }
        }
      };
      worker.postMessage({ type: 'verity-bridge' }, [ch.port2]);
    }
  };

  // WebRTC transport (docs/protocol.md §3, §6.7). The worker asks for one
  // stream per request: {type: 'verity-rtc-stream', node, url} with a
  // MessagePort. The page keeps up to RTC_PCS_MAX RTCPeerConnections per
  // node (each signaled by posting its offer to url), opens one data
  // channel per stream on the least busy one and relays bytes both ways;
  // the worker verifies everything.
  //   page → worker: {t:'ack', credit: true}, {t:'data', b}, {t:'reset', code},
  //                  {t:'end'}, {t:'error', msg[, gone:true | held:true]}
  //   worker → page: {t:'data', b}, {t:'credit', n}, {t:'close'}
  // Credit: the request carries the bytes the worker will take ('credit');
  // the page posts data only within the credit granted so far (splitting a
  // message at the credit) and holds the rest (in order, with the end or
  // reset that follows it) until the worker
  // grants more; a worker that lets more than RTC_HOLD_MAX bytes pile up
  // here gets the stream failed instead. Without 'credit' in the request
  // (an older worker) data is posted as it comes.
  //
  // Several peer connections: each has its own UDP socket and SCTP
  // association, so its own congestion window; a packet lost on one does
  // not slow the streams of the others. The first connection is opened by
  // the first stream and kept; a further one is opened (in the background,
  // one at a time) only while every connected one carries a stream, and
  // closed after RTC_IDLE_MS without one. A connection that fails takes
  // its own streams down, not the others'.
  var RTC_CONNECT_MS = 10000;
  var RTC_HOLD_MAX = 8 << 20;
  var RTC_GATHER_MS = 2000;
  var RTC_PCS_MAX = 4;
  var RTC_IDLE_MS = 30000;
  var pools = {};   // node → [{pc, ready: Promise<pc>, up, streams: [lost(err)], idle}]

  function gathered(pc) {
    return new Promise(function (resolve) {
      if (pc.iceGatheringState === 'complete') { resolve(); return; }
      var t = setTimeout(resolve, RTC_GATHER_MS);
      pc.addEventListener('icegatheringstatechange', function () {
        if (pc.iceGatheringState === 'complete') { clearTimeout(t); resolve(); }
      });
    });
  }

  // dropPeer closes a connection and fails the streams it still carries.
  function dropPeer(node, e, err) {
    var pool = pools[node];
    var i = pool ? pool.indexOf(e) : -1;
    if (i >= 0) pool.splice(i, 1);
    if (pool && pool.length === 0) delete pools[node];
    clearTimeout(e.idle);
    e.up = false;
    try { e.pc.close(); } catch (x) { /* closed */ }
    var lost = e.streams;
    e.streams = [];
    for (var j = 0; j < lost.length; j++) lost[j](err || new Error('webrtc connection closed'));
  }

  function connectPeer(node, url) {
    var pc = new RTCPeerConnection({ iceServers: [] });
    var e = { pc: pc, up: false, streams: [], idle: null };
    e.ready = new Promise(function (resolve, reject) {
      // An offer needs a data channel; this one closes once connected.
      var init = pc.createDataChannel('verity-init');
      var settled = false;
      var timer = setTimeout(function () { fail(new Error('webrtc connect timeout')); }, RTC_CONNECT_MS);
      function fail(err) {
        if (!settled) { settled = true; clearTimeout(timer); reject(err); }
        dropPeer(node, e, err);
      }
      pc.addEventListener('connectionstatechange', function () {
        var st = pc.connectionState;
        if (st === 'connected' && !settled) {
          settled = true;
          e.up = true;
          clearTimeout(timer);
          try { init.close(); } catch (err) { /* closed */ }
          if (e.streams.length === 0) idleClose(node, e);
          resolve(pc);
        } else if (st === 'failed' || st === 'closed' || st === 'disconnected') {
          fail(new Error('webrtc ' + st));
        }
      });
      pc.createOffer()
        .then(function (o) { return pc.setLocalDescription(o); })
        .then(function () { return gathered(pc); })
        .then(function () {
          return fetch(url, { method: 'POST', body: pc.localDescription.sdp, headers: { 'Content-Type': 'application/sdp' } });
        })
        .then(function (r) {
          if (!r.ok) throw new Error('webrtc signaling: ' + r.status);
          return r.text();
        })
        .then(function (sdp) { return pc.setRemoteDescription({ type: 'answer', sdp: sdp }); })
        .catch(fail);
    });
    e.ready.catch(function () { /* a stream waiting on it reports it */ });
    (pools[node] = pools[node] || []).push(e);
    return e;
  }

  // peerFor picks the connection a new stream of node uses: the connected
  // one with the fewest streams, else (none connected yet) the first one
  // connecting, else a new one. It counts the stream on it until
  // release(); when the connection fails, lost(err) ends the stream.
  function peerFor(node, url, lost) {
    var pool = pools[node] || [];
    var best = null, connecting = false;
    for (var i = 0; i < pool.length; i++) {
      if (!pool[i].up) { connecting = true; continue; }
      if (!best || pool[i].streams.length < best.streams.length) best = pool[i];
    }
    if (!best) best = pool[0] || connectPeer(node, url);
    else if (best.streams.length > 0 && !connecting && pool.length < RTC_PCS_MAX) connectPeer(node, url);
    var e = best;
    e.streams.push(lost);
    clearTimeout(e.idle);
    return {
      ready: e.ready,
      release: function () {
        var i = e.streams.indexOf(lost);
        if (i < 0) return;
        e.streams.splice(i, 1);
        if (e.streams.length === 0 && e.up) idleClose(node, e);
      }
    };
  }

  // idleClose closes e, unless it is the node's first connection, if it
  // still carries no stream after RTC_IDLE_MS.
  function idleClose(node, e) {
    clearTimeout(e.idle);
    e.idle = setTimeout(function () {
      var p = pools[node];
      if (e.streams.length === 0 && p && p[0] !== e) dropPeer(node, e);
    }, RTC_IDLE_MS);
  }

  // Streams this page relays; when it goes away they fail at once, so the
  // worker moves to another source without waiting for a timeout.
  var liveStreams = [];

  function rtcStream(d, _bridgePort, ports) {
    var sp = ports && ports[0];
    if (!sp || typeof RTCPeerConnection !== 'function') return;
    sp.postMessage({ t: 'ack', credit: true });
    liveStreams.push(sp);
    var out = [];
    var dc = null;
    var done = false;
    var limited = typeof d.credit === 'number';
    var credit = limited ? d.credit : 0;
    var held = [];      // data beyond the credit, oldest first
    var heldBytes = 0;
    var last = null;    // end or reset, posted after the held data
    var peer = null;
    function finish(msg) {
      if (done) return;
      done = true;
      held = [];
      if (peer) peer.release();
      var i = liveStreams.indexOf(sp);
      if (i >= 0) liveStreams.splice(i, 1);
      try { sp.postMessage(msg); } catch (e) { /* worker gone */ }
    }
    // ends the stream after whatever is still held.
    function finishAfterHeld(msg) {
      if (heldBytes > 0) { if (!last) last = msg; return; }
      finish(msg);
    }
    function post(b) {
      bridge.relayed += b.byteLength;
      sp.postMessage({ t: 'data', b: b }, [b]);
    }
    // flush posts held data as far as the credit goes. Message boundaries
    // carry no meaning, so a message larger than the credit left (nodes
    // send up to 256 KiB at once) is split at the credit rather than held
    // until the worker grants its whole size.
    function flush() {
      while (held.length > 0 && !done && credit > 0) {
        var b = held[0];
        if (b.byteLength > credit) {
          held[0] = b.slice(credit);
          b = b.slice(0, credit);
        } else {
          held.shift();
        }
        heldBytes -= b.byteLength;
        credit -= b.byteLength;
        post(b);
      }
      if (held.length === 0 && last) finish(last);
    }
    sp.verityFinish = finish;
    sp.onmessage = function (ev) {
      var m = ev.data || {};
      if (m.t === 'credit') {
        credit += m.n > 0 ? m.n : 0;
        flush();
      } else if (m.t === 'data') {
        if (dc && dc.readyState === 'open') dc.send(m.b); else out.push(m.b);
      } else if (m.t === 'close') {
        finish({ t: 'end' });
        if (dc) { try { dc.close(); } catch (e) { /* closed */ } }
        sp.close();
      }
    };
    peer = peerFor(d.node, d.url, function (err) {
      finishAfterHeld({ t: 'error', msg: String(err) });
    });
    peer.ready.then(function (pc) {
      if (done) return;
      dc = pc.createDataChannel('verity', { ordered: true });
      dc.binaryType = 'arraybuffer';
      dc.onopen = function () {
        for (var i = 0; i < out.length; i++) dc.send(out[i]);
        out = [];
      };
      dc.onmessage = function (ev) {
        if (done || last) return;
        if (typeof ev.data === 'string') { finishAfterHeld({ t: 'reset', code: ev.data }); return; }
        var b = ev.data;
        if (!limited) { post(b); return; }
        if (held.length === 0 && credit >= b.byteLength) {
          credit -= b.byteLength;
          post(b);
          return;
        }
        held.push(b);
        heldBytes += b.byteLength;
        flush();
        if (heldBytes > RTC_HOLD_MAX) {
          finish({ t: 'error', held: true, msg: 'worker reads too slowly: over ' + RTC_HOLD_MAX + ' bytes held' });
          try { dc.close(); } catch (e) { /* closed */ }
        }
      };
      dc.onclose = function () { finishAfterHeld({ t: 'end' }); };
    }).catch(function (err) { finish({ t: 'error', msg: String(err) }); });
  }
  bridge.on('verity-rtc-stream', rtcStream);

  // Keeping the worker running while the visitor is on the page. The
  // browser stops a service worker after 30 s without an event, and the
  // next page of the site the visitor opens then meets a stopped worker:
  // it is answered from the worker's cache or the gateway while the wasm
  // boots again (hundreds of ms of CPU), instead of by a running worker
  // from its cache and the nodes. A message every KEEP_EVERY_MS is such an
  // event. It is sent only while the page is visible and was used (a
  // pointer, key, wheel, touch or scroll) within KEEP_IDLE_MS: a page left
  // alone, or in a background tab, lets the worker and its memory go. A
  // page coming back into view sends one at once, which starts a stopped
  // worker; the worker boots its Go side once it has nothing else to do,
  // so it is running by the visitor's next click.
  var KEEP_EVERY_MS = 20000;
  var KEEP_IDLE_MS = 5 * 60000;
  function keepAlive(sw) {
    var lastUse = Date.now();
    var timer = null;
    function ping() {
      try { if (sw.controller) sw.controller.postMessage({ type: 'verity-keepalive' }); } catch (e) { /* gone */ }
    }
    function schedule() {
      clearTimeout(timer);
      timer = null;
      if (document.visibilityState !== 'visible' || Date.now() - lastUse >= KEEP_IDLE_MS) return;
      timer = setTimeout(function () { ping(); schedule(); }, KEEP_EVERY_MS);
    }
    function used() {
      var stopped = timer === null;
      lastUse = Date.now();
      if (stopped && document.visibilityState === 'visible') { ping(); schedule(); }
    }
    var kinds = ['pointerdown', 'keydown', 'wheel', 'touchstart', 'scroll'];
    for (var i = 0; i < kinds.length; i++) window.addEventListener(kinds[i], used, { capture: true, passive: true });
    document.addEventListener('visibilitychange', function () {
      if (document.visibilityState === 'visible') { lastUse = Date.now(); ping(); }
      schedule();
    });
    window.addEventListener('pagehide', function () { clearTimeout(timer); timer = null; });
    window.addEventListener('pageshow', function (ev) { if (ev.persisted) { lastUse = Date.now(); ping(); schedule(); } });
    schedule();
  }

  // Holding the worker's compiled wasm while the page is open. A worker
  // the browser stops takes its compiled code with it: the next start
  // compiles the wasm again, and V8 compiles again, function by function,
  // the code the first requests run and optimizes the hot ones (hundreds
  // of ms of CPU over the first visit of each life). V8 keeps one compiled
  // module per renderer process for the same bytes, shared by the page and
  // the worker, for as long as either holds it. So the page compiles the
  // worker's wasm (the entry of the worker's Cache Storage that its
  // WASM_CURRENT entry names) once it has loaded and the thread is idle,
  // and holds it until it is left, or hidden for HOLD_HIDDEN_MS: a worker
  // started again meanwhile finds the module compiled, with the code it
  // had optimized, and boots and answers sooner. While the worker runs,
  // the page's compile finds the worker's module and only reads the
  // bytes. The cost is the module's memory (the wasm's 3.8 MB and the
  // code compiled for it) while the page is open; a page left frees it at
  // the next garbage collection. The browser shares a module only within
  // one renderer process, where a page and the worker its navigation
  // started run, and a page reached by following a link stays.
  var WASM_CACHE = 'verity-wasm-v1';
  var HOLD_AFTER_MS = 500;
  var HOLD_IDLE_MS = 2000;
  var WASM_CURRENT = '/.verity/wasm/current';
  var HOLD_HIDDEN_MS = 30 * 60000;
  function holdWasm(sw) {
    var held = { url: '', module: null };
    var timer = null;
    var idle = null;
    var hidden = null;
    var gen = 0;
    var left = false;
    function compile() {
      idle = null;
      var my = ++gen;
      var current = function () { return my === gen && !left; };
      var url = '';
      try {
        if (left || !window.caches || typeof WebAssembly !== 'object' || typeof WebAssembly.compileStreaming !== 'function') return;
        caches.has(WASM_CACHE).then(function (has) {
          if (!has) return null;
          return caches.open(WASM_CACHE).then(function (c) {
            return c.match(WASM_CURRENT).then(function (m) { return m ? m.text() : ''; }).then(function (u) {
              url = u;
              if (!url || url === held.url || !current()) return null;
              return c.match(url);
            });
          });
        }).then(function (r) {
          if (!r || !r.ok || !current()) return null;
          return WebAssembly.compileStreaming(r.clone()).catch(function () {
            // A proxy may have changed the Content-Type: the same bytes.
            return r.arrayBuffer().then(function (b) { return WebAssembly.compile(b); });
          }).then(function (m) {
            if (!current()) return; // left, or a newer worker, meanwhile
            held.url = url;
            held.module = m;
          });
        }).catch(function (err) { warn('the worker\'s wasm is not held', err); });
      } catch (err) {
        warn('the worker\'s wasm is not held', err);
      }
    }
    function cancel() {
      clearTimeout(timer);
      timer = null;
      if (idle !== null && typeof window.cancelIdleCallback === 'function') window.cancelIdleCallback(idle);
      idle = null;
    }
    function later() {
      cancel();
      left = false;
      timer = setTimeout(function () {
        timer = null;
        if (typeof window.requestIdleCallback === 'function') idle = window.requestIdleCallback(compile, { timeout: HOLD_IDLE_MS });
        else compile();
      }, HOLD_AFTER_MS);
    }
    function release() {
      cancel();
      gen++;
      held.url = '';
      held.module = null;
    }
    if (document.readyState === 'complete') later();
    else window.addEventListener('load', later);
    // A new worker version brings a new wasm.
    sw.addEventListener('controllerchange', later);
    window.addEventListener('pagehide', function () { left = true; release(); });
    window.addEventListener('pageshow', function (ev) { if (ev.persisted) later(); });
    // A tab hidden for long lets its worker's code go too.
    document.addEventListener('visibilitychange', function () {
      clearTimeout(hidden);
      hidden = null;
      if (document.visibilityState === 'hidden') hidden = setTimeout(release, HOLD_HIDDEN_MS);
      else if (!held.module && !left && document.readyState === 'complete') later();
    });
    return function () { return held.url; };
  }
  var heldWasm = function () { return ''; };

  function start() {
    if (window.isSecureContext === false) {
      // Service workers exist only in secure contexts: https, or
      // http://localhost. Served over plain HTTP, the page loads from the
      // gateway alone, unverified in the browser.
      warn('this page is not a secure context (' + location.protocol + '//' + location.host +
        '): the worker cannot be installed, so nothing is fetched from nodes or verified in the browser; serve the site over https');
      return;
    }
    if (!('serviceWorker' in navigator)) return;
    var sw = navigator.serviceWorker;
    sw.addEventListener('message', function (ev) {
      var d = ev.data || {};
      if (d.type === 'verity-bridge-request' && ev.source) {
        try { bridge.connect(ev.source); } catch (e) { warn('bridge failed', e); }
      }
    });
    // Offer the bridge up front to the worker controlling this page (the
    // newest page is the one the worker uses), and take it back on leaving.
    function offer() {
      if (sw.controller && typeof RTCPeerConnection === 'function') {
        try { bridge.connect(sw.controller); } catch (e) { warn('bridge failed', e); }
      }
    }
    offer();
    sw.addEventListener('controllerchange', offer);
    if (KEEPALIVE) {
      keepAlive(sw);
      heldWasm = holdWasm(sw);
    }
    window.addEventListener('pagehide', function () {
      var streams = liveStreams.slice();
      for (var i = 0; i < streams.length; i++) {
        streams[i].verityFinish({ t: 'error', gone: true, msg: 'bridging page closed' });
      }
      for (var node in pools) {
        var pool = pools[node].slice();
        for (var j = 0; j < pool.length; j++) dropPeer(node, pool[j]);
      }
      try { if (sw.controller) sw.controller.postMessage({ type: 'verity-bridge-gone' }); } catch (e) { /* gone */ }
    });
    sw.register(SW_URL, { scope: '/' }).catch(function (err) {
      warn('service worker registration failed', err);
    });
  }

  // verity.stats() / verity.reports(): what the worker fetched and reported.
  function ask(type) {
    return new Promise(function (resolve, reject) {
      var c = navigator.serviceWorker && navigator.serviceWorker.controller;
      if (!c) { reject(new Error('verity: no active worker')); return; }
      var ch = new MessageChannel();
      ch.port1.onmessage = function (ev) { resolve(ev.data); };
      c.postMessage({ type: type }, [ch.port2]);
    });
  }

  try {
    window.verity = {
      bridge: bridge,
      stats: function () { return ask('verity-stats'); },
      reports: function () { return ask('verity-reports'); },
      // heldWasm(): the URL of the worker's wasm this page holds compiled
      // (holdWasm), or '' when it holds none.
      heldWasm: function () { return heldWasm(); }
    };
    start();
  } catch (err) {
    warn('loader failed', err);
  }
})();
