// The record page: filter households without reloading, count the ticked ones in the sticky
// submit bar, say what the chosen item needs, and submit in place so a refusal keeps everything
// (photos included) on the page. Without JavaScript the form still posts and comes back filled.
// Without a connection offline.js keeps the record on the phone instead.
(function () {
  var form = document.getElementById("record-form");
  if (!form) return;
  var search = document.getElementById("search");
  var rows = Array.prototype.slice.call(document.querySelectorAll("#households tr[data-search]"));
  var none = document.getElementById("no-match");
  var count = document.getElementById("chosen-count");
  var rule = document.getElementById("rule");
  var needs = document.getElementById("rule-needs");

  function filter() {
    var q = search.value.trim().toLowerCase();
    var shown = 0;
    rows.forEach(function (tr) {
      var hit = !q || tr.getAttribute("data-search").indexOf(q) !== -1;
      tr.hidden = !hit;
      if (hit) shown += 1;
    });
    none.hidden = shown > 0;
  }

  function counted() {
    count.textContent = form.querySelectorAll("input[name=household_id]:checked").length;
  }

  function explain() {
    var o = rule.options[rule.selectedIndex];
    var text = [];
    if (o && o.getAttribute("data-evidence") === "1") text.push("本项需附照片（签到表、现场照片等）");
    if (o && o.getAttribute("data-review") === "1") text.push("提交后先由评议小组审核，再进入公示");
    if (o && o.getAttribute("data-ranged") === "1") text.push("请填写分值");
    needs.textContent = text.join("；");
  }

  search.addEventListener("input", filter);
  search.addEventListener("keydown", function (e) { if (e.key === "Enter") e.preventDefault(); });
  form.addEventListener("change", counted);
  rule.addEventListener("change", explain);
  counted();
  explain();

  form.addEventListener("submit", function (e) {
    if (!window.fetch || !window.FormData) return;
    e.preventDefault();
    // No signal: the record is kept on the phone and sent later (offline.js).
    var offline = window.pointsOffline;
    if (offline && !navigator.onLine) { offline.keep(); return; }
    var button = document.getElementById("submit-record");
    button.disabled = true;
    // The last result's message goes: what shows next is about this submission.
    document.querySelectorAll("main .flash").forEach(function (f) { f.remove(); });
    // redirect "manual": the success page is loaded by the browser itself, so its message
    // (kept in the session until shown) is shown there, not swallowed by this request.
    fetch(window.location.href, { method: "POST", body: new FormData(form), credentials: "same-origin", redirect: "manual" })
      .then(function (r) {
        if (r.type === "opaqueredirect" || r.ok) {
          window.location.href = window.location.pathname + "?scheme=" + form.getAttribute("data-scheme");
          return null;
        }
        return r.text().then(function (html) {
          var doc = new DOMParser().parseFromString(html, "text/html");
          var main = document.querySelector("main");
          doc.querySelectorAll(".flash").forEach(function (f) { main.insertBefore(f, main.firstChild); });
          window.scrollTo(0, 0);
        });
      })
      .catch(function () { if (offline) offline.keep(); else form.submit(); })
      .finally(function () { button.disabled = false; });
  });
})();
