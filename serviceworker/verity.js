// Verity loader: the one script tag a site adds
//   <script src="/verity.js" async></script>
// It registers the Verity service worker, which from then on fetches the
// site's assets from storage nodes and verifies every byte. It never breaks
// the page: any failure is logged and the page keeps loading from the
// gateway as before.
(function () {
  'use strict';
  var SW_URL = '/verity-sw.js';

  function warn(msg, err) {
    try { console.warn('verity: ' + msg, err || ''); } catch (e) { /* no console */ }
  }

  // Bridge: the worker can ask the page for a MessagePort (RTCPeerConnection
  // exists only in pages, so a future WebRTC transport lives here and is
  // bridged to the worker over this channel). The worker posts
  // {type: 'verity-bridge'}; the page answers with a port the worker keeps.
  var bridge = {
    handlers: {},
    // relayed counts the data bytes this page has posted to the worker,
    // direct the streams it moved to its relay worker (see rtcStream).
    relayed: 0,
    direct: 0,
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
  // MessagePort. The page keeps one RTCPeerConnection per node (signaled by
  // posting its offer to url), opens one data channel per stream and relays
  // bytes both ways; the worker verifies everything.
  //   page → worker: {t:'ack', credit: true}, {t:'data', b}, {t:'reset', code},
  //                  {t:'end'}, {t:'error', msg[, gone:true | held:true]}
  //   worker → page: {t:'data', b}, {t:'credit', n}, {t:'close'}
  //   page → worker, to a request with direct:true: {t:'direct', port},
  //                  after which the relay worker speaks on port.
  // Credit: the request carries the bytes the worker will take ('credit');
  // the page posts data only within the credit granted so far (splitting a
  // message at the credit) and holds the rest (in order, with the end or
  // reset that follows it) until the worker
  // grants more; a worker that lets more than RTC_HOLD_MAX bytes pile up
  // here gets the stream failed instead. Without 'credit' in the request
  // (an older worker) data is posted as it comes.
  var RTC_CONNECT_MS = 10000;
  var RTC_HOLD_MAX = 8 << 20;
  var RTC_GATHER_MS = 2000;
  var peers = {};

  function gathered(pc) {
    return new Promise(function (resolve) {
      if (pc.iceGatheringState === 'complete') { resolve(); return; }
      var t = setTimeout(resolve, RTC_GATHER_MS);
      pc.addEventListener('icegatheringstatechange', function () {
        if (pc.iceGatheringState === 'complete') { clearTimeout(t); resolve(); }
      });
    });
  }

  function peerFor(node, url) {
    var known = peers[node];
    if (known) {
      // A connection closed here (pc.close) announces no state change.
      return known.then(function (pc) {
        if (pc.signalingState !== 'closed') return pc;
        if (peers[node] === known) delete peers[node];
        return peerFor(node, url);
      });
    }
    var p = new Promise(function (resolve, reject) {
      var pc = new RTCPeerConnection({ iceServers: [] });
      // An offer needs a data channel; this one closes once connected.
      var init = pc.createDataChannel('verity-init');
      var settled = false;
      var timer = setTimeout(function () { fail(new Error('webrtc connect timeout')); }, RTC_CONNECT_MS);
      function fail(err) {
        if (peers[node] === p) delete peers[node];
        try { pc.close(); } catch (e) { /* closed */ }
        if (!settled) { settled = true; clearTimeout(timer); reject(err); }
      }
      pc.addEventListener('connectionstatechange', function () {
        var st = pc.connectionState;
        if (st === 'connected' && !settled) {
          settled = true;
          clearTimeout(timer);
          try { init.close(); } catch (e) { /* closed */ }
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
    peers[node] = p;
    return p;
  }

  // Streams this page relays; when it goes away they fail at once, so the
  // worker moves to another source without waiting for a timeout.
  var liveStreams = [];

  // pipe relays one data channel to one port: dc's messages, within the
  // credit granted on port, as {t:'data'}; then {t:'end'}, {t:'reset'} or
  // {t:'error'}. Messages from port go to dc ({t:'data'}), grant credit or
  // close the channel. out holds request bytes that came before dc opened.
  // It runs on the page, or in the relay worker (see relayWorker), where
  // it is rebuilt from its source: it may use only its arguments.
  //   o: {credit: number | undefined, out: [ArrayBuffer], holdMax,
  //       posted(n), finished()}
  function pipe(dc, port, o) {
    var done = false;
    var limited = typeof o.credit === 'number';
    var credit = limited ? o.credit : 0;
    var out = o.out || [];
    var held = [];      // data beyond the credit, oldest first
    var heldBytes = 0;
    var last = null;    // end or reset, posted after the held data
    function finish(msg) {
      if (done) return;
      done = true;
      held = [];
      try { port.postMessage(msg); } catch (e) { /* worker gone */ }
      if (o.finished) o.finished();
    }
    // ends the stream after whatever is still held.
    function finishAfterHeld(msg) {
      if (heldBytes > 0) { if (!last) last = msg; return; }
      finish(msg);
    }
    function post(b) {
      if (o.posted) o.posted(b.byteLength);
      port.postMessage({ t: 'data', b: b }, [b]);
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
    function onPort(m) {
      if (m.t === 'credit') {
        credit += m.n > 0 ? m.n : 0;
        flush();
      } else if (m.t === 'data') {
        if (dc.readyState === 'open') dc.send(m.b); else out.push(m.b);
      } else if (m.t === 'close') {
        finish({ t: 'end' });
        try { dc.close(); } catch (e) { /* closed */ }
        port.close();
      }
    }
    port.onmessage = function (ev) { onPort(ev.data || {}); };
    dc.binaryType = 'arraybuffer';
    function opened() {
      for (var i = 0; i < out.length; i++) dc.send(out[i]);
      out = [];
    }
    if (dc.readyState === 'open') opened(); else dc.onopen = opened;
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
      if (heldBytes > o.holdMax) {
        finish({ t: 'error', held: true, msg: 'worker reads too slowly: over ' + o.holdMax + ' bytes held' });
        try { dc.close(); } catch (e) { /* closed */ }
      }
    };
    dc.onclose = function () { finishAfterHeld({ t: 'end' }); };
    return { onPort: onPort, finish: finish };
  }

  // The relay worker: a dedicated worker this page starts (from a blob of
  // pipe's source), to which it transfers each data channel together with
  // a port to the service worker, so the bytes go from the channel to the
  // service worker without waiting on this page's main thread. It tells
  // the page {id, n} for bytes posted and {id, done:true} at the end.
  function relayMain(pipe) {
    var streams = {};
    self.onmessage = function (ev) {
      var d = ev.data || {};
      if (d.dc) {
        var id = d.id;
        streams[id] = pipe(d.dc, d.port, {
          credit: d.credit, out: d.out, holdMax: d.holdMax,
          posted: function (n) { self.postMessage({ id: id, n: n }); },
          finished: function () { delete streams[id]; self.postMessage({ id: id, done: true }); }
        });
      } else if (d.m && streams[d.id]) {
        streams[d.id].onPort(d.m);
      }
    };
  }

  var relay;        // the relay worker, null when none can run here
  var relayIds = 0;
  var relayDone = {};
  function relayWorker() {
    if (relay !== undefined) return relay;
    relay = null;
    try {
      var src = '(' + relayMain + ')(' + pipe + ');';
      relay = new Worker(URL.createObjectURL(new Blob([src], { type: 'text/javascript' })));
      relay.onmessage = function (ev) {
        var d = ev.data || {};
        if (d.n) bridge.relayed += d.n;
        if (d.done && relayDone[d.id]) { relayDone[d.id](); delete relayDone[d.id]; }
      };
    } catch (e) { relay = null; } // no workers from blobs here (CSP)
    return relay;
  }

  // rtcStream serves {type: 'verity-rtc-stream'}. A worker that says
  // direct:true gets the data channel through the relay worker: the page
  // posts it {t:'direct', port} on the stream's port, and from then on
  // the worker talks to the relay on that port; what it still sends on
  // the stream's port the page passes on. Otherwise (an older worker, or
  // no relay worker here) the page relays on its main thread.
  function rtcStream(d, _bridgePort, ports) {
    var sp = ports && ports[0];
    if (!sp || typeof RTCPeerConnection !== 'function') return;
    sp.postMessage({ t: 'ack', credit: true });
    liveStreams.push(sp);
    var out = [];
    var closed = false;
    var gone = false;
    function drop() {
      var i = liveStreams.indexOf(sp);
      if (i >= 0) liveStreams.splice(i, 1);
    }
    // Until the channel exists, the page answers on the stream's port.
    sp.onmessage = function (ev) {
      var m = ev.data || {};
      if (m.t === 'data') out.push(m.b);
      else if (m.t === 'close') { closed = true; drop(); sp.close(); }
    };
    sp.verityFinish = function (msg) {
      if (gone) return;
      gone = true;
      drop();
      try { sp.postMessage(msg); } catch (e) { /* worker gone */ }
    };
    peerFor(d.node, d.url).then(function (pc) {
      if (closed || gone) return;
      var dc = pc.createDataChannel('verity', { ordered: true });
      var o = { credit: d.credit, out: out, holdMax: RTC_HOLD_MAX };
      var w = d.direct ? relayWorker() : null;
      if (w) {
        var id = ++relayIds;
        var ch = new MessageChannel();
        try {
          w.postMessage({ id: id, dc: dc, port: ch.port1, credit: o.credit, out: out, holdMax: o.holdMax }, [dc, ch.port1]);
        } catch (e) { w = null; } // the channel cannot move: relay here
        if (w) {
          bridge.direct++;
          relayDone[id] = drop;
          sp.postMessage({ t: 'direct', port: ch.port2 }, [ch.port2]);
          sp.onmessage = function (ev) {
            var m = ev.data || {};
            if (m.t === 'close') { drop(); sp.close(); }
            var tr = m.t === 'data' ? [m.b] : [];
            w.postMessage({ id: id, m: m }, tr);
          };
          return;
        }
      }
      o.posted = function (n) { bridge.relayed += n; };
      o.finished = function () { gone = true; drop(); };
      var p = pipe(dc, sp, o);
      sp.verityFinish = p.finish;
    }).catch(function (err) { sp.verityFinish({ t: 'error', msg: String(err) }); });
  }
  bridge.on('verity-rtc-stream', rtcStream);

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
    window.addEventListener('pagehide', function () {
      var streams = liveStreams.slice();
      for (var i = 0; i < streams.length; i++) {
        streams[i].verityFinish({ t: 'error', gone: true, msg: 'bridging page closed' });
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
      reports: function () { return ask('verity-reports'); }
    };
    start();
  } catch (err) {
    warn('loader failed', err);
  }
})();
