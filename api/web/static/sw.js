// The service worker of the grid worker's record page (docs/decisions/0016-offline-recording.md).
// It only ever answers GET requests for the record page and the site's static files: from the
// network when there is one (keeping a copy), else from that copy. Everything else (the API,
// other pages, every POST) goes to the network untouched. Records made offline are not kept
// here but in IndexedDB by offline.js, which sends them when the connection is back.
var CACHE = "points-record-v1";
var WAIT_MS = 6000; // a weak signal: after this long, the kept copy is better than nothing

self.addEventListener("install", function () { self.skipWaiting(); });

self.addEventListener("activate", function (event) {
  event.waitUntil(
    caches.keys().then(function (names) {
      return Promise.all(names.filter(function (n) {
        return n.indexOf("points-record-") === 0 && n !== CACHE;
      }).map(function (n) { return caches.delete(n); }));
    }).then(function () { return self.clients.claim(); })
  );
});

function kept(request) {
  return caches.open(CACHE).then(function (cache) {
    return cache.match(request).then(function (hit) {
      // The page after a submission is the same page with ?scheme=…: any copy of it will do.
      return hit || cache.match(request, { ignoreSearch: true });
    });
  });
}

function networkFirst(request) {
  return new Promise(function (resolve, reject) {
    var settled = false;
    var timer = setTimeout(function () {
      kept(request).then(function (hit) { if (hit && !settled) { settled = true; resolve(hit); } });
    }, WAIT_MS);
    fetch(request).then(function (response) {
      // Only a real page of ours is kept: never a redirect to the sign-in page or an error.
      if (response.ok && response.type === "basic" && !response.redirected) {
        var copy = response.clone();
        caches.open(CACHE).then(function (cache) { cache.put(request, copy); });
      }
      clearTimeout(timer);
      if (!settled) { settled = true; resolve(response); }
    }).catch(function (error) {
      clearTimeout(timer);
      kept(request).then(function (hit) {
        if (settled) return;
        settled = true;
        if (hit) resolve(hit); else reject(error);
      });
    });
  });
}

self.addEventListener("fetch", function (event) {
  var request = event.request;
  if (request.method !== "GET") return;
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  var isRecordPage = request.mode === "navigate" && /^\/v\/[^/]+\/record$/.test(url.pathname);
  var isStatic = url.pathname.indexOf("/static/") === 0;
  if (!isRecordPage && !isStatic) return;
  event.respondWith(networkFirst(request));
});
