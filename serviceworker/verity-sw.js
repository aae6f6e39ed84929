// Verity service worker. The gateway serves this file at /verity-sw.js and
// fills in the two URLs below (content-hashed, immutable).
//
// It boots the Go worker (wasm), which installs self.__verity =
// {handle(request) -> Promise<Response>, message(data, port)} and calls
// self.__verityReady(). Same-origin GETs go through the Go worker, which
// fetches from storage nodes and verifies every block; everything else, and
// every request while the Go worker cannot start, goes to the network, where
// the gateway serves verified content as before. The browser may stop this
// worker at any time: everything here is set up again on the next event.
'use strict';

const WASM_URL = '__VERITY_WASM_URL__';
const WASM_EXEC_URL = '__VERITY_WASM_EXEC_URL__';
const BOOT_TIMEOUT_MS = 10000;

let bootError = null;
try {
  importScripts(WASM_EXEC_URL);
} catch (err) {
  bootError = err;
  console.warn('verity: cannot load wasm_exec.js', err);
}

// booting is the promise of a ready Go worker, or null when none is running.
let booting = null;

function boot() {
  if (booting) return booting;
  booting = new Promise((resolve, reject) => {
    if (bootError || typeof Go !== 'function') {
      reject(bootError || new Error('verity: Go runtime missing'));
      return;
    }
    const timer = setTimeout(() => reject(new Error('verity: wasm boot timed out')), BOOT_TIMEOUT_MS);
    self.__verityReady = () => { clearTimeout(timer); resolve(self.__verity); };
    self.__verityFailed = (msg) => { clearTimeout(timer); reject(new Error('verity: ' + msg)); };
    const go = new Go();
    instantiate(go.importObject).then((instance) => {
      // The Go heap's linear memory (it only grows: its size is the peak),
      // reported with the node scores ({type:'verity-scores'}).
      self.__verityMemory = instance.exports.mem;
      go.run(instance).then(() => {
        // The Go program exited: boot again on the next request.
        self.__verity = undefined;
        booting = null;
      });
    }).catch((err) => { clearTimeout(timer); reject(err); });
  });
  booting.catch((err) => {
    console.warn('verity: worker unavailable, using the network', err);
    booting = null; // retry on a later request
  });
  return booting;
}

async function instantiate(importObject) {
  const resp = await fetch(WASM_URL);
  if (!resp.ok) throw new Error('verity: wasm fetch failed: ' + resp.status);
  if (WebAssembly.instantiateStreaming) {
    try {
      const res = await WebAssembly.instantiateStreaming(resp.clone(), importObject);
      return res.instance;
    } catch (err) {
      // A proxy may have changed the Content-Type; fall through.
    }
  }
  const res = await WebAssembly.instantiate(await resp.arrayBuffer(), importObject);
  return res.instance;
}

function handled(request) {
  if (request.method !== 'GET') return false;
  let url;
  try { url = new URL(request.url); } catch (e) { return false; }
  if (url.origin !== self.location.origin) return false;
  const p = url.pathname;
  return p !== '/verity.js' && p !== '/verity-sw.js' && !p.startsWith('/.verity/');
}

self.addEventListener('install', (event) => {
  event.waitUntil(self.skipWaiting());
});

self.addEventListener('activate', (event) => {
  event.waitUntil(self.clients.claim());
  boot().catch(() => {});
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (!handled(request)) return; // the network, as without the worker
  event.respondWith(
    boot()
      .then((v) => v.handle(request))
      .catch((err) => {
        console.warn('verity: falling back to the network for', request.url, err);
        return fetch(request);
      })
  );
});

// Bridges to pages: page-only transports (WebRTC: RTCPeerConnection does not
// exist in workers) run in the page and reach the worker over a
// MessageChannel. requestBridge(client) asks a page for one; the page answers
// with {type: 'verity-bridge'} and a port, kept here by client id.
const bridges = new Map();

function requestBridge(client) {
  client.postMessage({ type: 'verity-bridge-request' });
}
self.__verityRequestBridge = requestBridge;
self.__verityBridges = bridges;

self.addEventListener('message', (event) => {
  const data = event.data || {};
  if (data.type === 'verity-bridge') {
    if (event.source && event.ports && event.ports[0]) {
      // Re-inserted so the newest page's bridge comes last (the one used).
      bridges.delete(event.source.id);
      bridges.set(event.source.id, event.ports[0]);
    }
    return;
  }
  if (data.type === 'verity-bridge-gone') {
    if (event.source) bridges.delete(event.source.id);
    return;
  }
  const port = (event.ports && event.ports[0]) || event.source;
  if (!port || typeof data.type !== 'string' || !data.type.startsWith('verity-')) return;
  event.waitUntil(
    boot()
      .then((v) => v.message(data, port))
      .catch((err) => {
        try { port.postMessage({ type: data.type, error: String(err) }); } catch (e) { /* gone */ }
      })
  );
});
