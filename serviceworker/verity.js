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
    // on(type, fn): fn(message, port) handles messages of that type that
    // the worker sends over the bridge.
    on: function (type, fn) { bridge.handlers[type] = fn; },
    connect: function (worker) {
      var ch = new MessageChannel();
      ch.port1.onmessage = function (ev) {
        var d = ev.data || {};
        var fn = bridge.handlers[d.type];
        if (fn) {
          try { fn(d, ch.port1); } catch (e) { warn('bridge handler failed', e); }
        }
      };
      worker.postMessage({ type: 'verity-bridge' }, [ch.port2]);
    }
  };

  function start() {
    if (!('serviceWorker' in navigator)) return;
    var sw = navigator.serviceWorker;
    sw.addEventListener('message', function (ev) {
      var d = ev.data || {};
      if (d.type === 'verity-bridge-request' && ev.source) {
        try { bridge.connect(ev.source); } catch (e) { warn('bridge failed', e); }
      }
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
