/* My QR code: fetch a fresh code before the current one expires (and when the phone wakes). */
(function () {
  "use strict";
  var img = document.getElementById("qr");
  var left = document.getElementById("qr-left");
  if (!img) { return; }
  var seconds = parseInt(img.getAttribute("data-seconds"), 10) || 60;
  var base = img.getAttribute("data-src");
  var shownAt = Date.now();

  function refresh() {
    img.src = base + "?t=" + Date.now();
    shownAt = Date.now();
  }
  function tick() {
    var remaining = seconds - Math.floor((Date.now() - shownAt) / 1000);
    if (remaining <= 10) { refresh(); remaining = seconds; }
    if (left) { left.textContent = String(remaining - 10); }
  }
  setInterval(tick, 1000);
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) { refresh(); }
  });
}());
