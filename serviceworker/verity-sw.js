// Verity service worker. The gateway serves this file at /verity-sw.js and
// fills in the two URLs below (content-hashed, immutable).
//
// It boots the Go worker (wasm), which installs self.__verity =
// {handle(request) -> Promise<Response>, resolve(url) -> Promise<{root,
// stale, cid, type}|null>, message(data, port), root(root)} and calls
// self.__verityReady().
// Same-origin GETs are answered, in this order:
//   1. from the verified cache (below), when the current site root (for a
//      page's files: its document's root; see pages) maps the path to a
//      CID whose bytes are cached: no node, no payment, no Go;
//   2. while the Go worker is not running, from the network (the gateway
//      serves verified content as before) and the Go worker boots in the
//      background: no request waits for the wasm (a Range request gets
//      at most its first MiB this way, see bootRange);
//   3. by the Go worker, which fetches from storage nodes and verifies every
//      block; its complete 200 answers are written to the cache. A path the
//      site does not have is answered by the site's _redirects rules and
//      404.html, applied here (notFound); what no source could deliver
//      gets the worker's own error page naming the site (errorPage).
// /verity.js is answered from a cached copy refreshed in the background
// (loader). Everything else goes to the network. The browser may stop this worker at
// any time: everything here is set up again on the next event.
'use strict';

const WASM_URL = '__VERITY_WASM_URL__';
const WASM_EXEC_URL = '__VERITY_WASM_EXEC_URL__';
// The BLAKE3 WebAssembly SIMD module (internal/blake3/simd), in base64.
const BLAKE3_SIMD = '__VERITY_BLAKE3_SIMD__';
const BOOT_TIMEOUT_MS = 10000;

// Milliseconds since the worker's thread started, when this script ran.
const SCRIPT_START_MS = performance.now();

let bootError = null;
try {
  importScripts(WASM_EXEC_URL);
} catch (err) {
  bootError = err;
  console.warn('verity: cannot load wasm_exec.js', err);
}

// booting is the promise of a ready Go worker, or null when none is running.
let booting = null;
// ready is the Go worker once it has booted (undefined before).
let ready;
// bootTimes are the phases of the last boot, in ms since the worker's thread
// started (reported by {type: 'verity-cache'}), with when a request first
// asked for a boot (asked) and when the thread gave its first answer
// (answered).
const bootTimes = { script: SCRIPT_START_MS };

function boot() {
  if (booting) return booting;
  bootTimes.start = performance.now();
  booting = new Promise((resolve, reject) => {
    if (bootError || typeof Go !== 'function') {
      reject(bootError || new Error('verity: Go runtime missing'));
      return;
    }
    const timer = setTimeout(() => reject(new Error('verity: wasm boot timed out')), BOOT_TIMEOUT_MS);
    self.__verityReady = (warm) => {
      clearTimeout(timer);
      bootTimes.ready = performance.now();
      bootTimes.warm = warm === true ? 1 : 0;
      ready = self.__verity;
      resolve(self.__verity);
    };
    self.__verityFailed = (msg) => { clearTimeout(timer); reject(new Error('verity: ' + msg)); };
    const go = new Go();
    blake3Compile();
    instantiate(go.importObject).then((instance) => {
      // The Go heap's linear memory (it only grows: its size is the peak),
      // reported with the node scores ({type:'verity-scores'}).
      self.__verityMemory = instance.exports.mem;
      return blake3SIMD(instance.exports.mem).then(() => instance);
    }).then((instance) => {
      bootTimes.run = performance.now();
      go.run(instance).then(() => {
        // The Go program exited: boot again on the next request.
        self.__verity = undefined;
        ready = undefined;
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

// blake3SIMD instantiates the BLAKE3 SIMD module on the Go instance's memory
// and sets self.__verityBlake3Group, which Go looks up when it starts: Go
// passes the address of a 16 KiB group in its own memory, the module hashes
// its 16 chunks four at a time (internal/blake3). Without WebAssembly SIMD
// (the module does not compile) or without the module, Go hashes alone.
// The module is compiled once per worker, while the Go wasm is fetched and
// compiled (blake3Compile, called as a boot starts).
let blake3Module = null;
function blake3Compile() {
  if (!blake3Module) {
    blake3Module = (async () => {
      if (!BLAKE3_SIMD) return null;
      const bin = atob(BLAKE3_SIMD);
      const bytes = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
      return WebAssembly.compile(bytes);
    })().catch((err) => {
      console.warn('verity: no BLAKE3 SIMD module, hashing in Go', err);
      return null;
    });
  }
  return blake3Module;
}

async function blake3SIMD(mem) {
  self.__verityBlake3Group = undefined;
  const mod = await blake3Compile();
  if (!mod) return;
  try {
    const simd = await WebAssembly.instantiate(mod, { go: { mem } });
    self.__verityBlake3Group = simd.exports.group;
  } catch (err) {
    console.warn('verity: BLAKE3 SIMD module not instantiated, hashing in Go', err);
  }
}

// bootWhenIdle boots the Go worker once no request has come or been
// answered for BOOT_IDLE_MS (lastActivity), or after BOOT_MAX_WAIT_MS:
// while the cache or the network answers a page, the wasm's read,
// compile and hash and the Go runtime's start (tens to hundreds of ms of
// this thread) would delay the answers still to come, and the requests
// made before the boot ends go to the network anyway. A page asks in
// waves (its stylesheets' fonts and images come once they are parsed):
// a moment with nothing in flight between two waves is not the end.
// A Range request boots it soon (bootAfter), a message at once.
const BOOT_IDLE_MS = 100;
const BOOT_MAX_WAIT_MS = 2000;
let bootTimer = null;
let lastActivity = 0; // when a request last came or was answered
function bootWhenIdle() {
  if (booting || bootTimer) return;
  const first = performance.now();
  if (bootTimes.asked === undefined) bootTimes.asked = first;
  const check = () => {
    bootTimer = null;
    if (booting) return;
    const now = performance.now();
    const quiet = now - lastActivity;
    if ((answering || quiet < BOOT_IDLE_MS) && now - first < BOOT_MAX_WAIT_MS) {
      bootTimer = setTimeout(check, answering ? BOOT_IDLE_MS : BOOT_IDLE_MS - quiet);
      return;
    }
    boot().catch(() => {});
  };
  bootTimer = setTimeout(check, BOOT_IDLE_MS);
}

// bootAfter boots the Go worker ms from now, whatever comes meanwhile: a
// media player asks for the next piece of a range as soon as one ends, so
// waiting for a quiet moment (bootWhenIdle) would leave a whole video to
// the gateway. The delay lets the player's first frame, in the first
// piece, go before the boot takes this thread.
let bootSoon = null;
function bootAfter(ms) {
  if (booting || bootSoon) return;
  bootSoon = setTimeout(() => {
    bootSoon = null;
    boot().catch(() => {});
  }, ms);
}

// instantiate fetches and compiles the wasm (streaming when it can) and
// instantiates it, timing each phase in bootTimes.
async function instantiate(importObject) {
  const resp = await wasmResponse();
  bootTimes.fetched = performance.now();
  if (!resp.ok) throw new Error('verity: wasm fetch failed: ' + resp.status);
  let mod = null;
  if (WebAssembly.compileStreaming) {
    try {
      mod = await WebAssembly.compileStreaming(resp.clone());
    } catch (err) {
      // A proxy may have changed the Content-Type; fall through.
    }
  }
  if (!mod) mod = await WebAssembly.compile(await resp.arrayBuffer());
  bootTimes.compiled = performance.now();
  const instance = await WebAssembly.instantiate(mod, importObject);
  bootTimes.instantiated = performance.now();
  return instance;
}

// wasmResponse answers the wasm from the worker's own Cache Storage
// (WASM_CACHE), where the install of each version stores it, so a cold
// start neither waits for the gateway when the HTTP cache lost the wasm
// nor competes with the page's requests for its connections. The wasm is
// immutable under its content-hashed URL; older versions are deleted
// (keepWasm).
// verity.js reads it too (holdWasm, WASM_CURRENT): the same names in both.
const WASM_CACHE = 'verity-wasm-v1';
// wasmFrom says where the last boot's wasm came from: 'cache' or 'network'.
let wasmFrom = '';
async function wasmResponse() {
  let c = null;
  try {
    c = await caches.open(WASM_CACHE);
    const hit = await c.match(WASM_URL);
    if (hit) {
      // Cache Storage is the origin's: any script of the site can write
      // it. The bytes run only if they hash to the name the gateway gave
      // them (/.verity/wasm/<first 16 hex digits of their SHA-256>.wasm).
      // The hash reads a copy: the stored Response itself goes to
      // compileStreaming, where a browser that keeps compiled code beside
      // a Cache Storage entry would find it (a Response built from the
      // bytes has no URL and no code cache; Chromium 156 keeps none for
      // this entry: docs/benchmarks.md, "The largest line"). V8 checks
      // cached code against the SHA-256 of the bytes it compiles, which
      // are the ones hashed here.
      const buf = await hit.clone().arrayBuffer();
      const sum = hex(await crypto.subtle.digest('SHA-256', buf)).slice(0, 16);
      if (WASM_URL.indexOf('/' + sum + '.wasm') >= 0) {
        wasmFrom = 'cache';
        return hit;
      }
      console.warn('verity: the stored wasm does not match its hash; fetching it again');
      counters.corrupt++;
      await c.delete(WASM_URL);
    }
  } catch (err) {
    c = null;
  }
  const resp = await fetch(WASM_URL, { priority: 'high' });
  wasmFrom = 'network';
  if (resp.ok && c) c.put(WASM_URL, resp.clone()).catch((err) => console.warn('verity: wasm not kept', err));
  return resp;
}

// keepWasm stores the wasm in WASM_CACHE while the worker installs (the
// install event waits for it, so a worker stopped right after still finds
// it) and deletes the other versions. A failure only leaves the boot to
// fetch it.
function keepWasm() {
  return caches.open(WASM_CACHE).then(async (c) => {
    if (!(await c.match(WASM_URL))) await c.add(WASM_URL);
    const keep = new URL(WASM_URL, self.location.href).href;
    const mark = new URL(WASM_CURRENT, self.location.href).href;
    for (const k of await c.keys()) if (k.url !== keep && k.url !== mark) await c.delete(k);
  }).catch((err) => console.warn('verity: wasm not kept', err));
}

// WASM_CURRENT is an entry of WASM_CACHE (never fetched) whose body is the
// URL of the wasm the active worker runs: the pages read it to hold that
// wasm compiled (verity.js, holdWasm), whatever other entries the cache
// has meanwhile. markWasm writes it as the worker activates.
const WASM_CURRENT = '/.verity/wasm/current';
function markWasm() {
  return caches.open(WASM_CACHE)
    .then((c) => c.put(WASM_CURRENT, new Response(new URL(WASM_URL, self.location.href).href, { headers: { 'Content-Type': 'text/plain' } })))
    .catch((err) => console.warn('verity: wasm not marked', err));
}

function handled(request) {
  if (request.method !== 'GET') return false;
  let url;
  try { url = new URL(request.url); } catch (e) { return false; }
  if (url.origin !== self.location.origin) return false;
  const p = url.pathname;
  return p !== '/verity.js' && p !== '/verity-sw.js' && !p.startsWith('/.verity/');
}

// ---------------------------------------------------------------------------
// The verified cache (docs/architecture.md, "The worker's cache").
//
// Content-addressed bytes never change, so a file's bytes are kept by their
// CID in Cache Storage (CACHE_NAME, one entry per CID under a synthetic URL
// that is never fetched). Only bytes the Go worker verified are written: a
// 200 answer of the Go worker is stored once its body has ended without
// error (the body errors on any block that fails verification) with exactly
// Content-Length bytes. Each entry's SHA-256 is kept in the index and checked
// on every read, so a corrupted or truncated entry is dropped and fetched
// again, never served. Paths are never cached across deploys: the index maps
// (site root, path) to a CID, and the root is the current session's, so a
// new deploy misses every path; the Go worker then resolves a path that was
// cached under an earlier root against the new root's verified directory
// blocks (resolve), and a file whose CID did not change is served from the
// cache. Entries are evicted least recently used beyond the size bound.
const CACHE_NAME = 'verity-blocks-v1';
const CACHE_PREFIX = '/.verity/cache/';
const INDEX_KEY = CACHE_PREFIX + 'index';
// The cache's size bound: MAX_CACHE_BYTES, or QUOTA_FRACTION of the origin's
// quota when that is smaller. One file above ENTRY_FRACTION of the bound is
// not cached, nor one above MAX_ENTRY_BYTES (a file is held in memory whole
// while it is checked and written).
const MAX_CACHE_BYTES = 256 << 20;
const QUOTA_FRACTION = 0.1;
const ENTRY_FRACTION = 0.25;
const MAX_ENTRY_BYTES = 16 << 20;
// Path maps of this many roots are kept (the current one and the ones before
// it, which tell which paths are worth resolving after a deploy).
const MAX_ROOTS = 4;
// Each root's path map keeps the MAX_PATHS paths mapped last: a site whose
// rewrites answer any path (a single-page app's catch-all) would otherwise
// add an entry per path visited to an index written whole on every store.
const MAX_PATHS = 2048;
const SESSION_URL = '/.verity/v1/session';
const LOADER_PATH = '/verity.js';
const INDEX_WRITE_DELAY_MS = 200;

// The index, persisted as JSON under INDEX_KEY:
//   files: {cid: {size, sha (hex SHA-256), used (ms since epoch)}}
//   roots: [{root, paths: {path: {c: cid, t: content type}}}], newest first
//   session: {root, expires (ms since epoch)}
let indexP = null;
let bound = MAX_CACHE_BYTES;
// counters answer {type: 'verity-cache'}; hits counts all answers from the
// cache, memoryHits those from memory (hot), sliceHits the ranges answered
// from a checked Blob (checked); hitMs is the time spent reading
// and checking cached files.
const counters = { hits: 0, memoryHits: 0, sliceHits: 0, misses: 0, stored: 0, evicted: 0, corrupt: 0, network: 0, hitMs: 0, swept: 0, reloaded: 0, staleNavs: 0 };

// hot keeps the bytes of recently served files in memory while this worker
// runs (least recently used first, at most HOT_BYTES): they were checked
// when read or written, and a hit costs no storage read.
const HOT_BYTES = 8 << 20;
const hot = new Map();
let hotBytes = 0;

function hotPut(cid, buf) {
  if (buf.byteLength > HOT_BYTES / 4) return;
  if (hot.has(cid)) hotBytes -= hot.get(cid).byteLength;
  hot.delete(cid);
  hot.set(cid, buf);
  hotBytes += buf.byteLength;
  for (const [k, b] of hot) {
    if (hotBytes <= HOT_BYTES) break;
    hot.delete(k);
    hotBytes -= b.byteLength;
  }
}

function hotGet(cid) {
  const b = hot.get(cid);
  if (b) { hot.delete(cid); hot.set(cid, b); }
  return b;
}

// checked keeps, for files too large for hot, the Blob of a Cache Storage
// entry whose bytes were checked while this worker runs (the last
// CHECKED_MAX): a range of such a file is answered from a slice of its
// Blob, read from storage as the page reads it, instead of reading and
// hashing the whole file again (a player asks for a file in many ranges).
const CHECKED_MAX = 8;
const checked = new Map();

function checkedPut(cid, blob) {
  checked.delete(cid);
  checked.set(cid, blob);
  while (checked.size > CHECKED_MAX) checked.delete(checked.keys().next().value);
}

// unkeep drops what this worker holds in memory of the file cid (hot,
// checked).
function unkeep(cid) {
  if (hot.has(cid)) { hotBytes -= hot.get(cid).byteLength; hot.delete(cid); }
  checked.delete(cid);
}

// openCache opens the cache anew each time: a handle kept across events
// would outlive a deletion of the cache (site data cleared).
function openCache() { return caches.open(CACHE_NAME); }

function keyURL(name) { return self.location.origin + CACHE_PREFIX + name; }

function loadIndex() {
  if (indexP) return indexP;
  indexP = (async () => {
    let idx = null;
    try {
      const c = await openCache();
      const r = await c.match(keyURL('index'));
      if (r) idx = await r.json();
    } catch (err) {
      console.warn('verity: cache index unreadable, starting empty', err);
    }
    if (!idx || typeof idx !== 'object' || !idx.files || !Array.isArray(idx.roots)) {
      idx = { files: {}, roots: [], session: null };
    }
    // The kept session's header rules, before a reload replaces it: a page
    // answered from its root (see pages) still needs them.
    if (idx.session && Array.isArray(idx.session.headers)) rootHeaders(idx.session.root, idx.session.headers);
    // Entries no index names (the browser stopped between a file's write
    // and the index's) are deleted once the start's work is done.
    setTimeout(() => sweep(idx).catch(() => {}), SWEEP_DELAY_MS);
    // The quota is asked for off the request path; the bound applies from
    // the next write on.
    Promise.resolve().then(() => navigator.storage.estimate()).then((est) => {
      if (est && est.quota > 0) bound = Math.min(MAX_CACHE_BYTES, Math.floor(est.quota * QUOTA_FRACTION));
    }).catch(() => { /* keep the default */ });
    return idx;
  })();
  return indexP;
}

// sweep deletes the cached files the index does not name (nor a write in
// progress): bytes written just before the browser stopped the worker,
// whose index write never happened. They would otherwise hold storage
// that eviction, which goes by the index, never frees.
const SWEEP_DELAY_MS = 5000;
const storing = new Set();
async function sweep(idx) {
  const c = await openCache();
  const prefix = keyURL('ipfs/');
  for (const req of await c.keys()) {
    if (!req.url.startsWith(prefix)) continue;
    const cid = req.url.slice(prefix.length);
    if (idx.files[cid] || storing.has(cid)) continue;
    await c.delete(req);
    counters.swept++;
  }
}

let writeTimer = null;
let writing = Promise.resolve();
// lazyP ends when the pending lazy write is written; lazyDone ends it.
let lazyP = null;
let lazyDone = null;

// saveIndex persists the index: now, or after INDEX_WRITE_DELAY_MS when
// lazy, so the files stored and used within that delay (a page's burst of
// subresources) cost one index write. The promise ends when the index is
// written.
function saveIndex(idx, lazy) {
  if (lazy) {
    if (!writeTimer) {
      lazyP = new Promise((resolve) => { lazyDone = resolve; });
      writeTimer = setTimeout(() => { writeTimer = null; saveIndex(idx, false); }, INDEX_WRITE_DELAY_MS);
    }
    return lazyP;
  }
  if (writeTimer) { clearTimeout(writeTimer); writeTimer = null; }
  const done = lazyDone;
  lazyDone = null;
  writing = writing.then(async () => {
    const c = await openCache();
    await c.put(keyURL('index'), new Response(JSON.stringify(idx), { headers: { 'Content-Type': 'application/json' } }));
  }).catch((err) => console.warn('verity: cache index not written', err));
  if (done) done(writing);
  return writing;
}

function rootPaths(idx, root, create) {
  for (const r of idx.roots) if (r.root === root) return r.paths;
  if (!create) return null;
  const paths = {};
  idx.roots.unshift({ root, paths });
  idx.roots.length = Math.min(idx.roots.length, MAX_ROOTS);
  return paths;
}

// setPath maps path to e in paths, as the newest entry, dropping the
// oldest beyond MAX_PATHS (object keys that are paths keep their order).
function setPath(paths, path, e) {
  if (path in paths) delete paths[path];
  paths[path] = e;
  let over = Object.keys(paths).length - MAX_PATHS;
  for (const k in paths) {
    if (over-- <= 0) break;
    delete paths[k];
  }
}

// seenBefore reports whether an earlier root mapped path to a cached file.
function seenBefore(idx, path, root) {
  for (const r of idx.roots) {
    const e = r.root !== root && r.paths[path];
    if (e && idx.files[e.c]) return true;
  }
  return false;
}

// sessionRoot is the current site root: the session's, kept for its ttl.
// Within maxStale (default SESSION_MAX_STALE_MS) past the ttl the expired
// root still answers while the session reloads in the background, so a
// cache hit never waits for the gateway's round trip; a navigation allows
// NAVIGATION_MAX_STALE_MS (see pages). maxStale 0 waits for a session
// within its ttl.
const SESSION_MAX_STALE_MS = 60000;
let sessionP = null;
async function sessionRoot(idx, maxStale = SESSION_MAX_STALE_MS) {
  const s = idx.session;
  const now = Date.now();
  if (s && s.expires > now) return s.root;
  const stale = s && s.expires + maxStale > now ? s.root : null;
  const loading = loadSession(idx);
  return stale || loading;
}

// loadSession loads the session now (one load at a time), whatever the
// held one's ttl, and returns its root (null when it failed).
function loadSession(idx) {
  if (!sessionP) {
    sessionP = (async () => {
      try {
        const r = await fetch(SESSION_URL, { cache: 'no-store', credentials: 'same-origin' });
        if (!r.ok) return null;
        const doc = await r.json();
        if (!doc || typeof doc.root !== 'string' || !doc.root) return null;
        const ttl = doc.ttl > 0 ? doc.ttl : 30;
        idx.session = {
          root: doc.root, expires: Date.now() + ttl * 1000,
          headers: Array.isArray(doc.headers) ? doc.headers : [],
          // Absent when the gateway could not fetch the file: missing
          // paths then go to the gateway, which applies the rules.
          redirects: Array.isArray(doc.redirects) ? doc.redirects : undefined,
        };
        rootHeaders(doc.root, idx.session.headers);
        // The Go worker keeps its own session past its ttl while it
        // reloads it: told of this root, it reloads first when it holds
        // another, so this root's pages get none of that one's files.
        try { if (ready && typeof ready.root === 'function') ready.root(doc.root); } catch (e) { /* the Go worker exited */ }
        saveIndex(idx, true);
        return doc.root;
      } catch (e) {
        return null;
      } finally {
        sessionP = null;
      }
    })();
  }
  return sessionP;
}

function hex(buf) {
  return Array.from(new Uint8Array(buf), (x) => x.toString(16).padStart(2, '0')).join('');
}

// fromCache answers request from the cached file e ({c, t}), or returns null
// when the file is not cached or its bytes fail the integrity check (the
// entry is then dropped), or when the request's Range is one cacheRange
// leaves to the Go worker.
async function fromCache(idx, e, request) {
  const f = idx.files[e.c];
  if (!f) return null;
  const rangeHeader = request.headers.get('Range');
  const rng = rangeHeader === null ? null : cacheRange(rangeHeader, request.headers.get('If-Range'), f.size);
  if (rng === null && rangeHeader !== null) return null;
  const etag = '"' + e.c + '"';
  const headers = {
    'ETag': etag,
    'Accept-Ranges': 'bytes',
    'Server-Timing': 'verity;desc="cache"',
  };
  if (e.t) headers['Content-Type'] = e.t;
  const inm = request.headers.get('If-None-Match');
  if (inm && inm.split(',').some((t) => { t = t.trim().replace(/^W\//, ''); return t === etag || t === '*'; })) {
    f.used = Date.now();
    saveIndex(idx, true);
    return new Response(null, { status: 304, headers });
  }
  const t0 = performance.now();
  let buf = hotGet(e.c);
  const blob = !buf && rng ? checked.get(e.c) : undefined;
  if (buf) {
    counters.memoryHits++;
  } else if (blob) {
    counters.sliceHits++;
  } else {
    let b;
    const gen = cacheGen;
    try {
      const c = await openCache();
      const r = await c.match(keyURL('ipfs/' + e.c));
      if (!r) { forget(idx, e.c); return null; }
      b = await r.blob();
      buf = await b.arrayBuffer();
    } catch (err) {
      return null;
    }
    if (buf.byteLength !== f.size || hex(await crypto.subtle.digest('SHA-256', buf)) !== f.sha) {
      console.warn('verity: cached ' + e.c + ' is corrupt; fetching it again');
      counters.corrupt++;
      forget(idx, e.c);
      return null;
    }
    // Not kept when the file was dropped meanwhile (forget, clearCache).
    if (gen === cacheGen && idx.files[e.c] === f) {
      hotPut(e.c, buf);
      if (buf.byteLength > HOT_BYTES / 4) checkedPut(e.c, b);
    }
  }
  f.used = Date.now();
  saveIndex(idx, true);
  counters.hits++;
  counters.hitMs += performance.now() - t0;
  if (rng) {
    headers['Content-Range'] = 'bytes ' + rng.start + '-' + rng.end + '/' + f.size;
    headers['Content-Length'] = String(rng.end - rng.start + 1);
    const body = buf ? once(new Uint8Array(buf, rng.start, rng.end - rng.start + 1)) : blob.slice(rng.start, rng.end + 1);
    return new Response(body, { status: 206, headers });
  }
  headers['Content-Length'] = String(buf.byteLength);
  return new Response(once(buf), { status: 200, headers });
}

// cacheRange returns the bytes {start, end} (inclusive) of a size-byte
// cached file that a Range header value of the form bytes=S- or bytes=S-E
// asks for, as the gateway and the Go worker answer it (an end past the
// file is cut at its last byte). Anything else gives null and is left to
// the Go worker: If-Range, a suffix or several ranges, a start at or past
// the end (416), a malformed or reversed range.
function cacheRange(value, ifRange, size) {
  if (ifRange !== null) return null;
  const m = /^bytes=(\d{1,15})-(\d{0,15})$/.exec(String(value).trim());
  if (!m) return null;
  const start = Number(m[1]);
  let end = size - 1;
  if (m[2] !== '') {
    const e = Number(m[2]);
    if (e < start) return null;
    end = Math.min(end, e);
  }
  if (start >= size) return null;
  return { start, end };
}

// forget drops the file cid from the cache and the index.
function forget(idx, cid) {
  delete idx.files[cid];
  unkeep(cid);
  openCache().then((c) => c.delete(keyURL('ipfs/' + cid))).catch(() => {});
  saveIndex(idx, false);
}

// cacheGen counts the cache's clears (clearCache): a store begun before
// one is dropped, so the index never lists a file the cleared cache had.
let cacheGen = 0;

// store writes the verified bytes of cid, then evicts the least recently
// used files beyond the bound.
async function store(idx, root, path, cid, type, chunks, size) {
  const gen = cacheGen;
  const buf = new Uint8Array(size);
  let off = 0;
  for (const ch of chunks) { buf.set(ch, off); off += ch.byteLength; }
  const sha = hex(await crypto.subtle.digest('SHA-256', buf));
  const c = await openCache();
  if (gen !== cacheGen) return;
  if (!idx.files[cid]) {
    storing.add(cid);
    try {
      await c.put(keyURL('ipfs/' + cid), new Response(buf, { headers: { 'Content-Type': 'application/octet-stream' } }));
    } finally {
      storing.delete(cid);
    }
    if (gen !== cacheGen) {
      // Cleared meanwhile: the file went into the cache that was
      // deleted, or into the new one, which the index does not list.
      c.delete(keyURL('ipfs/' + cid)).catch(() => {});
      return;
    }
    counters.stored++;
  }
  idx.files[cid] = { size, sha, used: Date.now() };
  hotPut(cid, buf.buffer);
  setPath(rootPaths(idx, root, true), path, { c: cid, t: type });
  let total = 0;
  const files = Object.entries(idx.files);
  for (const [, f] of files) total += f.size;
  if (total > bound) {
    files.sort((a, b) => a[1].used - b[1].used);
    for (const [k, f] of files) {
      if (total <= bound) break;
      if (k === cid) continue;
      delete idx.files[k];
      unkeep(k);
      total -= f.size;
      counters.evicted++;
      await c.delete(keyURL('ipfs/' + k));
    }
  }
  // The fetch event waits for this write (waitUntil in tee).
  await saveIndex(idx, true);
}

// Cache writes wait until this worker has answered every request it was
// handling, and STORE_IDLE_MS more for the page's next wave of them (its
// images, once it parsed its stylesheets): a write costs this thread
// (Cache.put copies the file, the index is rewritten), and the answers
// still to come would wait behind it. The files waiting are held in
// memory: beyond STORE_QUEUE_BYTES of them, or after STORE_MAX_WAIT_MS,
// they are written even while requests are in flight.
const STORE_IDLE_MS = 100;
const STORE_MAX_WAIT_MS = 2000;
const STORE_QUEUE_BYTES = 16 << 20;
let answering = 0; // handled requests whose answer is not given yet
let storeQueue = []; // {size, write, done}
let queuedBytes = 0;
let storeTimer = null;
let storeDue = 0;
let storesRunning = Promise.resolve();

// storeLater queues write (one file's store) and returns a promise that
// ends once it ran (or was dropped by clearCache).
function storeLater(size, write) {
  return new Promise((done) => {
    storeQueue.push({ size, write, done });
    queuedBytes += size;
    scheduleStores();
  });
}

function scheduleStores() {
  if (!storeQueue.length) return;
  const delay = queuedBytes > STORE_QUEUE_BYTES ? 0 : answering ? STORE_MAX_WAIT_MS : STORE_IDLE_MS;
  const due = performance.now() + delay;
  if (storeTimer && storeDue <= due) return;
  clearTimeout(storeTimer);
  storeDue = due;
  storeTimer = setTimeout(runStores, delay);
}

// runStores writes every queued file; the promise ends when all queued so
// far are written.
function runStores() {
  clearTimeout(storeTimer);
  storeTimer = null;
  const batch = storeQueue;
  storeQueue = [];
  queuedBytes = 0;
  const run = Promise.all(batch.map((s) => s.write().catch(() => { /* not cached */ }).then(s.done)));
  storesRunning = Promise.all([storesRunning, run]).then(() => {}); // no nesting of results
  return storesRunning;
}

// dropStores forgets the queued files (the cache is being cleared).
function dropStores() {
  for (const s of storeQueue) s.done();
  storeQueue = [];
  queuedBytes = 0;
}

// teeing holds the stores of streamed files whose bodies are still being
// read (tee): cacheStats waits for them.
const teeing = new Set();

// WHOLE_MAX is the largest file the Go worker verifies whole before it
// answers (wholeBodyMax in wasmclient): its body is in memory already.
const WHOLE_MAX = 64 << 10;

// once returns a stream of the one chunk bytes (an ArrayBuffer or a
// Uint8Array), the body this script gives an answer it holds whole: in
// Chromium an answer with a buffer as its body cost a visit from the
// cache about a third more time than a stream (docs/benchmarks.md,
// "Answers whole, as a stream of one chunk"). The Go worker's io.once
// (wasmclient/jsio_js.go) is the same, for its answers: it cannot reach
// this script's functions, nor this script its helpers before it boots.
function once(bytes) {
  const v = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  return new ReadableStream({ start(c) { if (v.byteLength) c.enqueue(v); c.close(); } });
}

// tee returns resp for the page and, when it is a complete verified file
// (a 200, or a 206 whose range is the whole file: a media player's first
// request), writes its bytes to the cache once the body has ended without
// error. A file of at most WHOLE_MAX bytes is read at once and answered in
// one piece, so its bytes do not go to the page through a stream this
// thread pumps.
function tee(idx, event, path, resp) {
  const etag = resp.headers.get('ETag') || '';
  const root = resp.headers.get('X-Verity-Root') || '';
  const len = Number(resp.headers.get('Content-Length'));
  const m = /^"([A-Za-z0-9]+)"$/.exec(etag);
  const whole = resp.status === 200 || (resp.status === 206 && len > 0 && resp.headers.get('Content-Range') === 'bytes 0-' + (len - 1) + '/' + len);
  if (!whole || !m || !root || !resp.body || !(len >= 0) || len > Math.min(bound * ENTRY_FRACTION, MAX_ENTRY_BYTES)) return resp;
  const type = resp.headers.get('Content-Type') || '';
  if (len <= WHOLE_MAX) {
    // The Go worker hands over the bytes it answered with (verityBody: the
    // Response holds its own copy): cached as they are, the answer given
    // as it is.
    const whole = resp.verityBody;
    if (whole instanceof Uint8Array && whole.byteLength === len) {
      event.waitUntil(storeLater(len, () => store(idx, root, path, m[1], type, [whole], len)));
      return resp;
    }
    return resp.arrayBuffer().then((buf) => { // rejects on a failed block
      if (buf.byteLength !== len) throw new Error('verity: ' + path + ': ' + buf.byteLength + ' bytes, want ' + len);
      event.waitUntil(storeLater(len, () => store(idx, root, path, m[1], type, [new Uint8Array(buf)], len)));
      return new Response(once(buf), { status: resp.status, statusText: resp.statusText, headers: resp.headers });
    });
  }
  if (resp.status === 206) return recordRange(idx, event, root, path, resp, m[1], type, len);
  const [page, mine] = resp.body.tee();
  const done = (async () => {
    const reader = mine.getReader();
    const chunks = [];
    let size = 0;
    for (;;) {
      const { done, value } = await reader.read(); // rejects on a failed block
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
      if (size > len) return;
    }
    if (size !== len) return;
    await storeLater(size, () => store(idx, root, path, m[1], type, chunks, size));
  })().catch(() => { /* not verified to the end: not cached */ });
  teeing.add(done);
  done.then(() => teeing.delete(done));
  event.waitUntil(done);
  return new Response(page, { status: resp.status, statusText: resp.statusText, headers: resp.headers });
}

// RECORD_IDLE_MS: a whole-file range answer the page has not read from
// for this long is no longer recorded (recordRange).
const RECORD_IDLE_MS = 10000;

// recordRange answers the page with a whole-file range answer resp (of the
// file cid under root) and keeps its chunks as they pass, to store them as
// the file once all len bytes came; unlike a tee, the page stopping (a
// player that seeks or has enough) stops the Go worker's stream and drops
// the chunks: the nodes send no byte the page did not want.
function recordRange(idx, event, root, path, resp, cid, type, len) {
  const reader = resp.body.getReader();
  let chunks = [];
  let size = 0;
  let end;
  const done = new Promise((resolve) => { end = resolve; });
  // The worker is kept for the store while the page reads; a page that
  // keeps the answer open without reading (a paused player) gives up the
  // store after RECORD_IDLE_MS (the answer itself goes on).
  event.waitUntil(done);
  let idle = null;
  const stop = () => { chunks = null; clearTimeout(idle); end(); };
  const page = new ReadableStream({
    async pull(ctl) {
      clearTimeout(idle);
      if (chunks) idle = setTimeout(stop, RECORD_IDLE_MS);
      let r;
      try {
        r = await reader.read(); // rejects on a failed block
      } catch (err) {
        stop();
        throw err;
      }
      if (r.done) {
        ctl.close();
        if (chunks && size === len) {
          const cs = chunks;
          clearTimeout(idle);
          storeLater(size, () => store(idx, root, path, cid, type, cs, size)).then(end);
        } else {
          stop();
        }
        return;
      }
      if (chunks) {
        chunks.push(r.value);
        size += r.value.byteLength;
        if (size > len) chunks = null;
      }
      ctl.enqueue(r.value);
    },
    cancel(reason) {
      stop();
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
  return new Response(page, { status: resp.status, statusText: resp.statusText, headers: resp.headers });
}

// cached answers request from the cache under root (default: the current
// root), or null.
async function cached(idx, path, request, root) {
  root = root || await sessionRoot(idx);
  const paths = root && rootPaths(idx, root, false);
  return paths && paths[path] ? fromCache(idx, paths[path], request) : null;
}

// Pages and their root (docs/architecture.md, "The worker's cache"). A
// page is answered from one root: its document's. The cache answers its
// subresources under that root, not the session's, so a session that
// changes while the page loads does not mix two deploys in it.
//
// A navigation may be answered from the cache under the last root this
// worker knew up to NAVIGATION_MAX_STALE_MS past that session's ttl,
// while the session reloads in the background: a repeat visit waits for
// no gateway round trip, and a deploy is seen by the first navigation
// after that reload. Such a page is stale until a session confirms its
// root. A file it needs that its root's cache lacks is not fetched from
// another root: once the session is known, a page whose root was replaced
// is reloaded (at most once per page; the reload waits for the session),
// so the old page never gets a new deploy's file.
const NAVIGATION_MAX_STALE_MS = 60 * 60 * 1000;
const MAX_PAGES = 64;
const pages = new Map(); // client id -> {root, stale}
let navWaits = false; // the next navigation waits for the session

// confirmed says whether a session within its ttl names root.
function confirmed(idx, root) {
  const s = idx.session;
  return !!s && s.expires > Date.now() && s.root === root;
}

// goStale says whether a navigation the Go worker answered under root is
// stale: it was answered from the Go worker's session past its ttl
// (X-Verity-Stale, or resolve's stale), and no session within its ttl
// held here names root.
function goStale(idx, root, past) {
  return !!root && !!past && !(idx && confirmed(idx, root));
}

function pin(id, root, stale) {
  if (!id) return;
  if (stale) counters.staleNavs++;
  pages.delete(id);
  if (!root) return;
  pages.set(id, { root, stale });
  while (pages.size > MAX_PAGES) pages.delete(pages.keys().next().value);
}

// staleMiss handles a file a stale page needs that its root's cache lacks
// (see pages): it waits for the session and answers whether the page is
// being reloaded for a newer root (the file is then refused: the page is
// replaced, and gets no file of another deploy meanwhile).
async function staleMiss(idx, event) {
  const page = event.clientId && pages.get(event.clientId);
  if (!page || !page.stale) return false;
  // A page being replaced keeps its root: its files come from its root's
  // cache or not at all until the reload replaces it.
  if (page.replaced) return true;
  const root = await sessionRoot(idx, 0);
  if (!root || root === page.root) {
    if (root) page.stale = false;
    return false;
  }
  if (page.replaced) return true;
  page.replaced = true;
  navWaits = true;
  const forget = () => { if (pages.get(event.clientId) === page) pages.delete(event.clientId); };
  const c = await self.clients.get(event.clientId);
  if (!c || !c.navigate) { forget(); return false; }
  counters.reloaded++;
  event.waitUntil(c.navigate(c.url).catch((err) => {
    forget();
    console.warn('verity: cannot reload a page of an earlier deploy', err);
  }));
  return true;
}

// localRoot is the root a request can be answered from without the
// gateway: its page's, or for a navigation the last session's up to
// NAVIGATION_MAX_STALE_MS past its ttl, or the session's within its ttl;
// else null. The navigation that reloads a replaced page (staleMiss)
// waits for the session instead.
async function localRoot(idx, event, nav) {
  const page = !nav && event.clientId && pages.get(event.clientId);
  if (page) return page.wait ? await page.wait : page.root;
  if (nav && navWaits) {
    navWaits = false;
    return sessionRoot(idx, 0);
  }
  const s = idx.session;
  if (!s) return null;
  if (s.expires > Date.now()) return s.root;
  return nav ? sessionRoot(idx, NAVIGATION_MAX_STALE_MS) : null;
}

// cachedFor answers a request the Go worker would otherwise answer from
// the cache: a page's file under its page's root, a navigation under the
// root localRoot allows (pinning the new page to it), else under the
// current root.
async function cachedFor(idx, event, path, nav) {
  const request = event.request;
  const root = await localRoot(idx, event, nav) || await sessionRoot(idx);
  const r = root ? await cached(idx, path, request, root) : null;
  if (nav && r) pin(event.resultingClientId, root, !confirmed(idx, root));
  return r;
}

// race answers from the cache if it can before the network answers, else
// from the network (whose fetch is then aborted if the cache wins). Only for
// requests without Range: a Request rebuilt with a signal loses a no-cors
// request's Range header.
function race(request, cachedP) {
  const ctl = new AbortController();
  const netP = fetch(request, { signal: ctl.signal });
  return new Promise((resolve, reject) => {
    let done = false;
    const settle = (r, err) => {
      if (done) return;
      done = true;
      if (r) resolve(r); else reject(err);
    };
    cachedP.then((r) => { if (r) { settle(r); ctl.abort(); } }, () => {});
    netP.then((r) => { counters.network++; settle(r); },
      (err) => cachedP.then((r) => settle(r, err), () => settle(null, err)));
  });
}

// siteHeaders applies the site's _headers rules (the session's "headers",
// parsed and checked by the gateway; protocol.md §6.2) to resp, an answer
// for path made here (cache or Go worker), as the gateway applies them to
// its own answers: every matching rule in order, values joined with ', ',
// '! Name' detaching; Cache-Control only on 200, 206 and 304.
const patterns = new Map(); // pattern -> RegExp, for this worker's life
// headersOf maps the last few roots seen in sessions to their rules; asked
// lists the roots a session was fetched for once, to learn their rules.
const headersOf = new Map();
const asked = new Set();
function rootHeaders(root, rules) {
  headersOf.delete(root);
  headersOf.set(root, rules);
  while (headersOf.size > MAX_ROOTS) headersOf.delete(headersOf.keys().next().value);
}
async function siteHeaders(resp, path, pageRoot) {
  // A network answer is the gateway's, which applied the rules itself.
  if (resp.url) return resp;
  if (resp.status !== 200 && resp.status !== 206 && resp.status !== 304) return resp;
  let rules = null;
  try {
    const idx = await loadIndex();
    if (idx.session && Array.isArray(idx.session.headers) && !headersOf.has(idx.session.root)) {
      rootHeaders(idx.session.root, idx.session.headers);
    }
    // The answer's root (the Go worker's session, or its page's, or the
    // last session's, which a cache answer does not wait to reload): its
    // rules, learnt from a session fetched once for a root not seen yet.
    const root = resp.headers.get('X-Verity-Root') || pageRoot || await sessionRoot(idx, NAVIGATION_MAX_STALE_MS);
    if (root && !headersOf.has(root) && !asked.has(root)) {
      asked.add(root);
      if (idx.session) idx.session.expires = 0;
      await sessionRoot(idx);
    }
    rules = root && headersOf.get(root);
  } catch (e) {
    rules = null;
  }
  if (!rules || !rules.length) return resp;
  const set = new Map();
  const remove = new Set();
  for (const r of rules) {
    let re = patterns.get(r.pattern);
    if (re === undefined) {
      try { re = new RegExp(r.pattern); } catch (e) { re = null; }
      if (patterns.size > 4096) patterns.clear();
      patterns.set(r.pattern, re);
    }
    const m = re && re.exec(path);
    if (!m) continue;
    for (const n of r.detach || []) { set.delete(n.toLowerCase()); remove.add(n.toLowerCase()); }
    for (const h of r.set || []) {
      const v = substitute(h.value, r.names || [], m.slice(1));
      const k = h.name.toLowerCase();
      set.set(k, set.has(k) ? set.get(k) + ', ' + v : v);
    }
  }
  if (!set.size && !remove.size) return resp;
  // The answers this script or the Go worker made have headers of their
  // own to change in place; any other gets a copy.
  let headers = resp.headers;
  try { headers.delete('x-verity-probe'); } catch (e) { headers = new Headers(resp.headers); }
  for (const n of remove) headers.delete(n);
  for (const [n, v] of set) { try { headers.set(n, v); } catch (e) { /* not a valid value */ } }
  if (headers === resp.headers) return resp;
  return new Response(resp.body, { status: resp.status, statusText: resp.statusText, headers });
}

// substitute replaces the placeholders (':slug', ':splat') of a header
// value by what they matched, longest names first (internal/headers).
function substitute(v, names, values) {
  if (!names.length || v.indexOf(':') < 0) return v;
  let out = '';
  for (let i = 0; i < v.length;) {
    let best = -1;
    if (v[i] === ':') {
      names.forEach((n, j) => { if (v.startsWith(n, i) && (best < 0 || n.length > names[best].length)) best = j; });
    }
    if (best >= 0) { out += values[best] || ''; i += names[best].length; } else { out += v[i]; i++; }
  }
  return out;
}

// Traffic: the requests this worker answered, by where the answer came
// from, reported to the gateway (TRAFFIC_URL, docs/protocol.md §6.9) at
// most every TRAFFIC_DELAY_MS, each count at most TRAFFIC_MAX per report
// (the gateway refuses more). The site's owner sees them in the console
// as reported by visitors' browsers.
const TRAFFIC_URL = '/.verity/v1/traffic';
const TRAFFIC_DELAY_MS = 5000;
const TRAFFIC_MAX = 1000;
const traffic = { nodes: 0, cache: 0, fallback: 0 };
let trafficTimer = null;

// countAnswer counts resp, this worker's answer to a page's request: from
// the cache, from nodes (the Go worker's transports), or through the
// gateway (its CAR fallback, or the network).
function countAnswer(event, resp) {
  const m = /verity;desc="([a-z]+)"/.exec(resp.headers.get('Server-Timing') || '');
  const from = m ? m[1] : (resp.url ? 'network' : '');
  if (from === 'cache') traffic.cache++;
  else if (from === 'webtransport' || from === 'webrtc') traffic.nodes++;
  else if (from === 'gateway' || from === 'network') traffic.fallback++;
  else return;
  if (!trafficTimer) trafficTimer = new Promise((resolve) => setTimeout(resolve, TRAFFIC_DELAY_MS)).then(reportTraffic);
  try { event.waitUntil(trafficTimer); } catch (e) { /* the event is over: the timer still runs while the worker does */ }
}

// reportTraffic posts the counts gathered so far (at most TRAFFIC_MAX
// each; the rest waits for the next report).
async function reportTraffic() {
  const body = {};
  for (const k of Object.keys(traffic)) { body[k] = Math.min(traffic[k], TRAFFIC_MAX); traffic[k] -= body[k]; }
  trafficTimer = null;
  try {
    const r = await fetch(TRAFFIC_URL, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body), credentials: 'same-origin', cache: 'no-store' });
    if (r.status === 429) for (const k of Object.keys(body)) traffic[k] += body[k]; // told to wait: next time
  } catch (e) { /* counts are best effort */ }
}

// answer serves one handled request (see the top of this file).
async function answer(event) {
  const path = new URL(event.request.url).pathname;
  answering++;
  lastActivity = performance.now();
  try {
    const raw = await answerRaw(event);
    const page = pages.get(event.clientId) || pages.get(event.resultingClientId);
    const resp = await siteHeaders(raw, path, page && page.root);
    countAnswer(event, resp);
    return resp;
  } finally {
    answering--;
    lastActivity = performance.now();
    if (bootTimes.answered === undefined) bootTimes.answered = performance.now();
    if (!answering) scheduleStores();
  }
}

// BOOT_RANGE_BYTES bounds the piece of a range the gateway serves while
// the Go worker boots (see answerRaw).
const BOOT_RANGE_BYTES = 1 << 20;

// bootRange rewrites one Range header value of the form bytes=S- or
// bytes=S-E to at most BOOT_RANGE_BYTES from S; anything else (a suffix
// range, several ranges, a malformed value) gives '' and waits for the Go
// worker, which answers it as the gateway would.
function bootRange(value) {
  const m = /^bytes=(\d{1,15})-(\d{0,15})$/.exec(String(value).trim());
  if (!m) return '';
  const start = Number(m[1]);
  let end = start + BOOT_RANGE_BYTES - 1;
  if (m[2] !== '') {
    const e = Number(m[2]);
    if (e < start) return '';
    end = Math.min(end, e);
  }
  return 'bytes=' + start + '-' + end;
}

// answerRaw is answer before the site's headers.
async function answerRaw(event) {
  const request = event.request;
  const path = new URL(request.url).pathname;
  const nav = request.mode === 'navigate';
  // 'no-store' and 'reload' skip the cache as they skip the HTTP cache. A
  // Range the cache cannot answer (cacheRange) goes on to the Go worker; a
  // range answer that is the whole file is stored as the file (tee).
  const useCache = request.cache !== 'no-store' && request.cache !== 'reload';
  const storeIt = request.cache !== 'no-store';
  if (!ready && request.headers.has('Range')) {
    // A range of a cached file is answered from the cache, from the root
    // the page names, or the session's up to a minute past its ttl while
    // it reloads (sessionRoot): no gateway round trip.
    if (useCache) {
      let idx = null;
      try { idx = await loadIndex(); } catch (e) { idx = null; }
      const s = idx && idx.session;
      const root = idx && (await localRoot(idx, event, false) ||
        (s && s.expires + SESSION_MAX_STALE_MS > Date.now() ? await sessionRoot(idx) : null));
      const r = root ? await cached(idx, path, request, root).catch(() => null) : null;
      if (r) {
        bootAfter(BOOT_IDLE_MS);
        return r;
      }
      // A stale page whose root's cache lacks the file is reloaded, as
      // for any other request (staleMiss), not given the new deploy's.
      if (root && await staleMiss(idx, event).catch(() => false)) return Response.error();
    }
    // A range (a media stream) does not wait for the wasm either: the
    // gateway serves at most BOOT_RANGE_BYTES of it while the Go worker
    // boots; the player asks for the rest once that piece ends, by then
    // from the Go worker. The answer is rebuilt as the Go worker's are
    // (a Response made here, with no URL): Chromium's media player fails
    // a stream whose pieces come from different origins, and it counts a
    // fetched answer's URL as one and a made one's absence as another.
    // A conditional range (If-Range, If-None-Match) waits for the Go
    // worker: the gateway's piece would drop the condition.
    const conditional = request.headers.has('If-Range') || request.headers.has('If-None-Match');
    const bounded = conditional ? '' : bootRange(request.headers.get('Range'));
    if (bounded) {
      counters.network++;
      const r = await fetch(new Request(request.url, {
        headers: { 'Range': bounded },
        credentials: 'same-origin',
        cache: request.cache === 'only-if-cached' ? 'default' : request.cache,
      }));
      bootAfter(BOOT_IDLE_MS);
      return new Response(r.body, { status: r.status, statusText: r.statusText, headers: r.headers });
    }
  }
  if (!ready && !request.headers.has('Range')) {
    // Never wait for the wasm: the network answers while it is stopped.
    // The cache answers first when it can without the network (the index
    // is local, loaded when the worker starts); when the session must be
    // fetched first, the cache races the network. The boot starts once
    // the page's requests are answered (bootWhenIdle): it competes with
    // them for this thread.
    bootWhenIdle();
    if (!useCache) {
      counters.network++;
      return fetch(request);
    }
    let idx = null;
    try { idx = await loadIndex(); } catch (e) { idx = null; }
    const root = idx && await localRoot(idx, event, nav);
    if (!root) {
      const cachedP = idx ? cached(idx, path, request).catch(() => null) : Promise.resolve(null);
      if (nav) pin(event.resultingClientId, '');
      return race(request, cachedP);
    }
    const r = await cached(idx, path, request, root).catch(() => null);
    if (r) {
      if (nav) pin(event.resultingClientId, root, !confirmed(idx, root));
      return r;
    }
    if (nav) {
      // The gateway answers this document from its current root, which
      // may be newer than the session held here: the page's files are
      // taken under a session loaded now, not under the held one's root.
      const id = event.resultingClientId;
      pin(id, '');
      if (id) {
        const wait = loadSession(idx);
        pages.set(id, { root: '', wait });
        wait.then((r) => {
          const p = pages.get(id);
          if (p && p.wait === wait) { if (r) pin(id, r); else pages.delete(id); }
        });
      }
    } else if (await staleMiss(idx, event).catch(() => false)) return Response.error();
    counters.network++;
    return fetch(request);
  }
  let idx = null;
  if (useCache || storeIt) {
    try { idx = await loadIndex(); } catch (e) { idx = null; }
  }
  const hit = idx && useCache ? await cachedFor(idx, event, path, nav) : null;
  if (hit) return hit;
  if (idx && !nav && useCache && await staleMiss(idx, event).catch(() => false)) return Response.error();
  const v = ready || await boot();
  const root = idx && idx.session && idx.session.root;
  if (useCache && root && seenBefore(idx, path, root) && typeof v.resolve === 'function') {
    // Deployed again since: the current root's directory says whether the
    // cached file is still this path's.
    try {
      const res = await v.resolve(request.url);
      if (res && res.cid && idx.files[res.cid]) {
        const e = { c: res.cid, t: res.type || '' };
        const r = await fromCache(idx, e, request);
        if (r) {
          if (nav) pin(event.resultingClientId, res.root, goStale(idx, res.root, res.stale));
          setPath(rootPaths(idx, res.root, true), path, e);
          saveIndex(idx, true);
          return r;
        }
      }
    } catch (err) {
      // Resolving is an optimisation: fetch the file.
    }
  }
  counters.misses++;
  const resp = await v.handle(request);
  if (nav) {
    const r = resp.ok ? resp.headers.get('X-Verity-Root') : '';
    pin(event.resultingClientId, r, goStale(idx, r, resp.headers.has('X-Verity-Stale')));
  }
  if (resp.status === 404) return notFound(v, idx, event, request, storeIt);
  if (resp.status >= 400 && resp.status !== 412 && resp.status !== 416) return failed(request, resp);
  return idx && storeIt ? tee(idx, event, path, resp) : resp;
}

// notFound answers a path the site does not have as the gateway does
// (gateway/redirects.go): the first matching rule of the site's
// _redirects redirects, or serves its target (fetched and verified by the
// Go worker like any file) with 200 (a rewrite) or its 404, 410 or 451;
// with no rule, the site's /404.html with 404; with none, the worker's
// own 404 page. When the session could not say the site's rules, the
// gateway answers (it applies them itself).
async function notFound(v, idx, event, request, storeIt) {
  const url = new URL(request.url);
  let rules;
  try {
    idx = idx || await loadIndex();
    const root = await sessionRoot(idx);
    rules = root && idx.session && idx.session.root === root ? idx.session.redirects : undefined;
  } catch (e) {
    rules = undefined;
  }
  if (!Array.isArray(rules)) {
    counters.network++;
    return fetch(request);
  }
  let m = matchRedirects(rules, url.pathname);
  if (m && m.status >= 300 && m.status < 400) {
    let to = m.to;
    if (url.search && to.indexOf('?') < 0) to += url.search;
    return new Response(null, { status: m.status, headers: { 'Location': new URL(to, url).href, 'Cache-Control': 'no-cache' } });
  }
  if (!m) m = { to: '/404.html', status: 404 };
  const target = new URL(m.to.split('?')[0], url);
  const headers = new Headers(request.headers);
  if (m.status !== 200) {
    // The page stands for an error: served whole, unconditionally.
    for (const h of ['Range', 'If-Range', 'If-None-Match', 'If-Modified-Since']) headers.delete(h);
  }
  const resp = await v.handle(new Request(target.href, { headers }));
  if (request.mode === 'navigate') {
    // The page is the target's, of the root it was resolved in: its files
    // come from that root (answerRaw pinned the navigation's 404 to none).
    const r = resp.ok ? resp.headers.get('X-Verity-Root') : '';
    pin(event.resultingClientId, r, goStale(idx, r, resp.headers.has('X-Verity-Stale')));
  }
  if (resp.status === 404) return errorPage(404, request);
  if (resp.status >= 400 && resp.status !== 412 && resp.status !== 416) return failed(request, resp);
  if (m.status === 200) return idx && storeIt ? tee(idx, event, url.pathname, resp) : resp;
  return new Response(resp.body, { status: m.status, headers: resp.headers });
}

// matchRedirects is internal/redirects' Rules.Match, line for line (with
// matchRule and substitute): internal/redirects' tests run these three
// functions against the Go code on the same rules and paths.
function matchRedirects(rules, path) {
  for (const r of rules) {
    const to = matchRule(r, path);
    if (to !== null) return { to, status: r.status };
  }
  return null;
}

function matchRule(r, path) {
  let from = r.from;
  let splat = '';
  const hasSplat = from.endsWith('*');
  if (hasSplat) from = from.slice(0, -1);
  let fs = from.split('/');
  let ps = path.split('/');
  if (hasSplat) {
    // from ends with '/' (or is '/'): the last, empty segment stands for
    // the rest of the path, which may be empty.
    fs = fs.slice(0, -1);
    if (ps.length < fs.length || (ps.length === fs.length && !from.endsWith('/'))) return null;
    if (ps.length === fs.length) ps.push('');
    splat = ps.slice(fs.length).join('/');
    ps = ps.slice(0, fs.length);
  } else if (ps.length === fs.length + 1 && ps[ps.length - 1] === '') {
    ps = ps.slice(0, -1); // a trailing slash matches too
  }
  if (ps.length !== fs.length) return null;
  const names = [];
  const values = [];
  for (let i = 0; i < fs.length; i++) {
    const seg = fs[i];
    if (seg.length > 1 && seg[0] === ':') {
      if (ps[i] === '') return null;
      names.push(seg);
      values.push(ps[i]);
      continue;
    }
    if (seg !== ps[i]) return null;
  }
  if (hasSplat) {
    names.push(':splat');
    values.push(splat);
  }
  let to = substitute(r.to, names, values);
  // A path stays a path on this origin: '//host' or a backslash after the
  // first slash would send the browser to another one.
  if (r.to.startsWith('/')) to = '/' + to.replace(/^[\/\\]+/, '');
  return to;
}

// failed logs the Go worker's error answer resp (its text names what
// failed, for the site's developers) and answers with the worker's own
// error page.
async function failed(request, resp) {
  let detail = '';
  try { detail = (await resp.text()).trim(); } catch (e) { /* none */ }
  console.warn('verity: ' + request.url + ': ' + detail);
  return errorPage(resp.status, request);
}

// errorPage is the worker's own answer when it cannot serve a request: a
// small page that names the site (its host) and says what happened, never
// the worker's internals (they go to the console).
const ERROR_TEXT = {
  400: ['Bad request', 'This address cannot name a page of the site.'],
  404: ['Page not found', 'The site has no page at this address.'],
  501: ['Not supported', 'This address names something the site cannot serve.'],
  502: ['Temporarily unavailable', 'No storage node and no gateway could deliver this page just now. Try again in a moment.'],
  503: ['Temporarily unavailable', 'The site cannot be reached just now. Try again in a moment.'],
};

function errorPage(status, request) {
  const [title, text] = ERROR_TEXT[status] || ERROR_TEXT[502];
  const esc = (v) => String(v).replace(/[&<>"']/g, (c) => '&#' + c.charCodeAt(0) + ';');
  const host = esc(self.location.host);
  let path = '';
  try { path = esc(decodeURIComponent(new URL(request.url).pathname)); } catch (e) { path = ''; }
  const body = '<!doctype html><html lang="en"><head><meta charset="utf-8">' +
    '<meta name="viewport" content="width=device-width, initial-scale=1">' +
    '<title>' + status + ' ' + title + ' \u2014 ' + host + '</title>' +
    '<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}' +
    'h1{font-size:1.4rem}code{background:#f3f3f3;padding:0 .2em}a{color:#0645ad}</style></head><body>' +
    '<h1>' + title + '</h1><p>' + text + '</p>' +
    (path ? '<p><code>' + path + '</code> on <a href="/">' + host + '</a></p>' : '<p><a href="/">' + host + '</a></p>') +
    '<p><small>' + status + '</small></p></body></html>';
  return new Response(body, {
    status,
    headers: {
      'Content-Type': 'text/html; charset=utf-8',
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
      'Server-Timing': 'verity;desc="error"',
    },
  });
}

// loader answers /verity.js from the cache and refreshes the cached copy
// from the gateway in the background (stale-while-revalidate), so a
// controlled page's load event does not wait for a round trip to the
// gateway: a new loader takes effect one page load later. Without a cached
// copy the gateway answers, as for an uncontrolled page.
//
// While this worker runs the cached copy is also kept in memory (loaderHot:
// {body, headers}), so the answer waits for no Cache Storage read, which
// queues behind the other storage work of a page load.
let loaderHot = null;
async function loader(event) {
  const key = keyURL('loader');
  const refresh = fetch(LOADER_PATH, { cache: 'no-cache' }).then(async (r) => {
    if (r.status === 200) {
      const body = await r.clone().arrayBuffer();
      loaderHot = { body, headers: [...r.headers] };
      await (await openCache()).put(key, r.clone());
    }
    return r;
  });
  let hot = loaderHot;
  if (!hot) {
    const hit = await (await openCache()).match(key);
    if (!hit) return refresh;
    hot = { body: await hit.arrayBuffer(), headers: [...hit.headers] };
  }
  event.waitUntil(refresh.catch(() => {}));
  const headers = new Headers(hot.headers);
  headers.set('Server-Timing', 'verity;desc="cache"');
  return new Response(once(hot.body), { status: 200, headers });
}

function isLoader(request) {
  if (request.method !== 'GET') return false;
  try {
    const url = new URL(request.url);
    return url.origin === self.location.origin && url.pathname === LOADER_PATH;
  } catch (e) {
    return false;
  }
}

self.addEventListener('install', (event) => {
  event.waitUntil(Promise.all([self.skipWaiting(), keepWasm()]));
});

self.addEventListener('activate', (event) => {
  // The mark first: claiming the pages tells them to read it.
  event.waitUntil(markWasm().then(() => self.clients.claim()));
  boot().catch(() => {});
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (isLoader(request)) {
    event.respondWith(loader(event).catch(() => fetch(request)));
    return;
  }
  if (!handled(request)) return; // the network, as without the worker
  event.respondWith(
    answer(event).catch((err) => {
      console.warn('verity: falling back to the network for', request.url, err);
      return fetch(request).then((r) => { countAnswer(event, r); return r; }, () => errorPage(503, request));
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

// cacheStats answers {type: 'verity-cache'}: the cache's size and counters
// and the phases of the last boot. The files still being read for the
// cache, the stores waiting and a pending index write are written first,
// so what the answer counts is what a restarted worker finds.
async function cacheStats() {
  const idx = await loadIndex();
  // The Go worker's last session load, as the browser timed it: asked,
  // sent on a connection, answered.
  const se = performance.getEntriesByType('resource').filter((r) => r.name.includes(SESSION_URL + '?key=')).pop();
  if (se) Object.assign(bootTimes, { sessionAsked: se.startTime, sessionSent: se.requestStart, sessionDone: se.responseEnd });
  await Promise.all([...teeing]);
  await runStores();
  if (writeTimer) await saveIndex(idx, false);
  let bytes = 0;
  const files = Object.keys(idx.files);
  for (const k of files) bytes += idx.files[k].size;
  return {
    type: 'verity-cache', files: files.length, bytes, bound, ...counters,
    root: idx.session ? idx.session.root : '', running: !!ready, boot: bootTimes, wasmFrom,
  };
}

// clearCache empties the cache (memory, index and Cache Storage); it
// answers {type: 'verity-cache-clear'}.
async function clearCache() {
  const idx = await loadIndex();
  cacheGen++;
  dropStores();
  hot.clear();
  hotBytes = 0;
  checked.clear();
  for (const k of Object.keys(idx.files)) delete idx.files[k];
  idx.roots.length = 0;
  await writing;
  await caches.delete(CACHE_NAME);
  return { type: 'verity-cache-clear', ok: true };
}

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
  if (data.type === 'verity-keepalive') {
    // A page the visitor is on (verity.js): the event itself keeps this
    // worker running; a worker the browser had stopped boots its Go side
    // once the page's requests leave it idle.
    if (!ready) bootWhenIdle();
    return;
  }
  const port = (event.ports && event.ports[0]) || event.source;
  if (!port || typeof data.type !== 'string' || !data.type.startsWith('verity-')) return;
  if (data.type === 'verity-cache' || data.type === 'verity-cache-clear') {
    event.waitUntil((data.type === 'verity-cache' ? cacheStats() : clearCache())
      .then((s) => port.postMessage(s))
      .catch((err) => { try { port.postMessage({ type: data.type, error: String(err) }); } catch (e) { /* gone */ } }));
    return;
  }
  event.waitUntil(
    boot()
      .then((v) => v.message(data, port))
      .catch((err) => {
        try { port.postMessage({ type: data.type, error: String(err) }); } catch (e) { /* gone */ }
      })
  );
});

// The index loads as soon as the worker starts, alongside the event that
// started it.
loadIndex().catch(() => {});
