// Recording without signal (docs/decisions/0016-offline-recording.md). The service worker
// (/sw.js) keeps a copy of this page, with the grid's households and the adopted items in it.
// A record made while offline is kept in IndexedDB (it survives a reload, a closed tab and a
// restarted phone) with an Idempotency-Key made here, and the rule and grid it was made
// against; when the connection is back the queue is sent in the order it was made, one record
// at a time, and each shows its state: waiting, sent, or refused and why. Sending one twice
// records it once: the server answers a repeated key with the first answer.
(function () {
  var form = document.getElementById("record-form");
  if (!form || !window.indexedDB || !window.fetch || !window.Promise) return;
  var village = form.getAttribute("data-village");
  // Records are sent only by whoever made them: on a shared phone, another recorder's session
  // must not put its name to them.
  var user = form.getAttribute("data-user");
  var userName = form.getAttribute("data-user-name");
  var queueUrl = form.getAttribute("data-queue");
  var section = document.getElementById("offline-queue");
  var list = document.getElementById("queue-items");
  var netState = document.getElementById("net-state");
  var CACHE = "points-record-v1"; // the service worker's cache (sw.js)
  var MAX_SIDE = 1600; // photos are scaled down on the phone: a few hundred KB to send later
  var KEEP_SENT_DAYS = 7;
  var STATE = { waiting: "等待发送", sending: "正在发送", sent: "已发送", refused: "未被接受" };
  var CLAIM_STATUS = { pending_review: "待审核", in_notice: "已进入公示", posted: "已入账" };
  var counter = 0;

  // --- IndexedDB: one store of items keyed by their Idempotency-Key, ordered by seq --------
  function openDb() {
    return new Promise(function (resolve, reject) {
      var req = indexedDB.open("points-offline", 1);
      req.onupgradeneeded = function () {
        req.result.createObjectStore("queue", { keyPath: "key" }).createIndex("seq", "seq");
      };
      req.onsuccess = function () { resolve(req.result); };
      req.onerror = function () { reject(req.error); };
    });
  }

  function withStore(mode, fn) {
    return openDb().then(function (db) {
      return new Promise(function (resolve, reject) {
        var t = db.transaction("queue", mode);
        var req = fn(t.objectStore("queue"));
        t.oncomplete = function () { db.close(); resolve(req ? req.result : undefined); };
        t.onerror = t.onabort = function () { db.close(); reject(t.error); };
      });
    });
  }

  function items() {
    return withStore("readonly", function (s) { return s.index("seq").getAll(); })
      .then(function (all) { return all.filter(function (i) { return i.village === village; }); });
  }
  function put(item) { return withStore("readwrite", function (s) { return s.put(item); }); }
  function drop(key) { return withStore("readwrite", function (s) { return s.delete(key); }); }

  function newKey() {
    if (window.crypto && crypto.randomUUID) return "rec-" + crypto.randomUUID();
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return "rec-" + Array.prototype.map.call(bytes, function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }

  // --- what the page shows -------------------------------------------------------------------
  function say(text, kind) {
    var main = document.querySelector("main");
    main.querySelectorAll(".flash").forEach(function (f) { f.remove(); });
    var p = document.createElement("p");
    p.className = "flash " + kind;
    p.setAttribute("role", "status");
    p.textContent = text;
    main.insertBefore(p, main.firstChild);
    window.scrollTo(0, 0);
  }

  function render() {
    return items().then(function (all) {
      section.hidden = all.length === 0 && navigator.onLine;
      netState.textContent = navigator.onLine ? "（已联网）" : "（没有网络：登记保存在本机，联网后自动发送）";
      list.innerHTML = "";
      all.forEach(function (item) {
        var li = document.createElement("li");
        li.className = "queue-item " + item.state;
        li.setAttribute("data-state", item.state);
        li.setAttribute("data-key", item.key);
        var text = item.label + " — " + STATE[item.state];
        if (item.state === "sent" && item.claim_id) text += "（事项 #" + item.claim_id + "）";
        if (item.reason) text += "：" + item.reason;
        if (item.user !== user && item.state === "waiting") text += "（" + item.user_name + " 登录后发送）";
        li.appendChild(document.createTextNode(text));
        if (item.state === "sent" || item.state === "refused") {
          var remove = document.createElement("button");
          remove.type = "button";
          remove.className = "link";
          remove.textContent = "移除";
          remove.addEventListener("click", function () { drop(item.key).then(render); });
          li.appendChild(remove);
        }
        list.appendChild(li);
      });
    });
  }

  // --- making a record without signal --------------------------------------------------------
  function resize(file) {
    return new Promise(function (resolve) {
      var url = URL.createObjectURL(file);
      var img = new Image();
      img.onload = function () {
        var scale = Math.min(1, MAX_SIDE / Math.max(img.naturalWidth, img.naturalHeight));
        var canvas = document.createElement("canvas");
        canvas.width = Math.max(1, Math.round(img.naturalWidth * scale));
        canvas.height = Math.max(1, Math.round(img.naturalHeight * scale));
        canvas.getContext("2d").drawImage(img, 0, 0, canvas.width, canvas.height);
        URL.revokeObjectURL(url);
        // Re-drawn pixels carry no EXIF (no GPS position leaves the phone).
        canvas.toBlob(function (blob) { resolve(blob || file); }, "image/jpeg", 0.82);
      };
      img.onerror = function () { URL.revokeObjectURL(url); resolve(file); };
      img.src = url;
    });
  }

  function intValue(name) {
    var v = form.elements[name] ? form.elements[name].value : "";
    return v === "" ? null : parseInt(v, 10);
  }

  // Read the form into a queue item, or throw an Error whose message the recorder reads.
  function fromForm() {
    var ticked = form.querySelectorAll("input[name=household_id]:checked");
    if (ticked.length !== 1 || form.elements.title.value.trim()) {
      throw new Error("没有网络时每次只能登记一户（批量登记、活动名称请联网后提交）");
    }
    var rule = form.elements.rule_code;
    var option = rule.options[rule.selectedIndex];
    if (!option || !option.value) throw new Error("请选择积分项目");
    var files = Array.prototype.slice.call(form.elements.photos.files || [], 0, 3);
    if (option.getAttribute("data-evidence") === "1" && files.length === 0) {
      throw new Error("本项需附照片，请拍照或选照片后再保存");
    }
    var box = ticked[0];
    var row = box.closest("tr");
    var householdId = parseInt(box.value, 10);
    var member = form.querySelector("select[name=member_" + householdId + "]");
    var data = {
      scheme: form.getAttribute("data-scheme"),
      household_id: householdId,
      resident_id: member && member.value ? parseInt(member.value, 10) : null,
      rule_code: option.value,
      occurred_on: form.elements.occurred_on.value,
      quantity: intValue("quantity") || 1,
      proposed_points: intValue("proposed_points"),
      description: form.elements.description.value,
      expected_rule_id: parseInt(option.getAttribute("data-rule-id"), 10),
      expected_group_id: parseInt(row.getAttribute("data-group"), 10),
    };
    var who = row.getAttribute("data-number") + " " + (member && member.value
      ? member.options[member.selectedIndex].text : row.getAttribute("data-names"));
    return { data: data, files: files, label: who + " · " + option.text };
  }

  function keep() {
    var made;
    try {
      made = fromForm();
    } catch (error) {
      say(error.message, "error");
      return Promise.resolve(false);
    }
    return Promise.all(made.files.map(resize)).then(function (photos) {
      var item = {
        key: newKey(),
        village: village,
        user: user,
        user_name: userName,
        seq: Date.now() * 1000 + (counter++ % 1000),
        made_at: new Date().toISOString(),
        label: made.label,
        data: made.data,
        photos: photos,
        state: "waiting",
        reason: "",
      };
      return put(item);
    }).then(function () {
      // A blank form for the next record, as the page is after an online submission.
      form.reset();
      document.getElementById("search").dispatchEvent(new Event("input"));
      form.dispatchEvent(new Event("change"));
      form.elements.rule_code.dispatchEvent(new Event("change"));
      say("没有网络：本条登记已保存在本机，联网后会自动发送", "ok");
      return render().then(function () { if (navigator.onLine) sync(); return true; });
    }).catch(function () {
      say("无法保存在本机（存储空间不足？），请联网后再登记", "error");
      return false;
    });
  }

  // --- sending the queue, in order -----------------------------------------------------------
  function csrf() {
    var field = form.elements.csrf_token;
    return field ? field.value : "";
  }

  // Send one item; resolve true to go on with the next, false to stop (no network, signed
  // out, server busy): what follows waits, so the queue is always sent in the order made.
  function send(item) {
    item.state = "sending";
    return put(item).then(render).then(function () {
      var body = new FormData();
      body.append("data", JSON.stringify(item.data));
      (item.photos || []).forEach(function (blob, n) {
        body.append("photos", blob, "photo-" + (n + 1) + ".jpg");
      });
      return fetch(queueUrl, {
        method: "POST",
        body: body,
        credentials: "same-origin",
        redirect: "manual",
        headers: { "Idempotency-Key": item.key, "X-CSRF-Token": csrf() },
      });
    }).then(function (r) {
      var isJson = (r.headers.get("Content-Type") || "").indexOf("application/json") === 0;
      if (r.status === 201 && isJson) {
        return r.json().then(function (claim) {
          item.state = "sent";
          item.claim_id = claim.id;
          item.reason = CLAIM_STATUS[claim.status] || "";
          item.sent_at = new Date().toISOString();
          return put(item).then(function () { return true; });
        });
      }
      var retry = !isJson || r.status === 401 || r.status === 408 || r.status === 429 || r.status >= 500;
      if (!retry) {
        return r.json().then(function (e) {
          item.state = "refused";
          item.reason = e.message + (e.errors ? "（" + JSON.stringify(e.errors) + "）" : "");
          item.code = e.error;
          return put(item).then(function () { return true; });
        });
      }
      item.state = "waiting";
      item.reason = r.status >= 500 || r.status === 429 ? "服务器繁忙，稍后自动重试"
        : "请重新登录（或刷新本页）后自动发送";
      return put(item).then(function () { return false; });
    }, function () {
      item.state = "waiting";
      item.reason = "";
      return put(item).then(function () { return false; });
    });
  }

  var syncing = null;
  function sync() {
    if (syncing) return syncing;
    syncing = items().then(function (all) {
      var todo = all.filter(function (i) {
        return i.user === user && (i.state === "waiting" || i.state === "sending");
      });
      return todo.reduce(function (going, item) {
        return going.then(function (go) { return go ? send(item) : false; });
      }, Promise.resolve(true));
    }).catch(function () { return false; }).then(function () {
      syncing = null;
      return render();
    }).then(planRetry);
    return syncing;
  }

  // After a send that did not go through (the signal came back weak, the server was busy),
  // try again soon, then less and less often: 5 s, 10 s, 20 s … at most a minute. With nothing
  // waiting the queue is still looked at every 30 s (another tab may have added to it).
  var FIRST_RETRY = 5000, LAST_RETRY = 60000, IDLE_CHECK = 30000;
  var retryIn = FIRST_RETRY, nextTry = Date.now() + IDLE_CHECK;
  function planRetry() {
    return items().then(function (all) {
      var waiting = all.some(function (i) { return i.user === user && i.state === "waiting"; });
      if (waiting) {
        nextTry = Date.now() + retryIn;
        retryIn = Math.min(retryIn * 2, LAST_RETRY);
      } else {
        retryIn = FIRST_RETRY;
        nextTry = Date.now() + IDLE_CHECK;
      }
    }).catch(function () {});
  }

  function pruneSent() {
    var limit = Date.now() - KEEP_SENT_DAYS * 86400000;
    return items().then(function (all) {
      return Promise.all(all.filter(function (i) {
        return i.state === "sent" && i.sent_at && Date.parse(i.sent_at) < limit;
      }).map(function (i) { return drop(i.key); }));
    });
  }

  // --- keeping this page for offline use -----------------------------------------------------
  function keepPage() {
    if (!("serviceWorker" in navigator) || !window.caches) return Promise.resolve();
    var swUrl = form.getAttribute("data-sw");
    return navigator.serviceWorker.register(swUrl, { scope: "/v/" + village + "/" })
      .then(function () { return navigator.serviceWorker.ready; })
      .then(function () { return caches.open(CACHE); })
      .then(function (cache) {
        var urls = [location.pathname + location.search];
        document.querySelectorAll("link[rel=stylesheet], link[rel=icon], script[src]").forEach(function (el) {
          urls.push(el.getAttribute("href") || el.getAttribute("src"));
        });
        return Promise.all(urls.map(function (u) {
          return cache.match(u).then(function (hit) {
            return hit || cache.add(u).catch(function () {});
          });
        }));
      });
  }

  // A copy of the page kept from an earlier day says that day is "today": the phone's date is
  // the better guess (the server still refuses a date in the future).
  var day = form.elements.occurred_on;
  var now = new Date();
  var today = [now.getFullYear(), now.getMonth() + 1, now.getDate()].map(function (n) {
    return n < 10 ? "0" + n : String(n);
  }).join("-");
  if (day && day.max && today > day.max) {
    day.max = today;
    day.defaultValue = today;
    day.value = today;
  }
  // A copy of the page kept from an earlier visit may carry that visit's messages.
  if (!navigator.onLine) document.querySelectorAll("main .flash").forEach(function (f) { f.remove(); });
  // Signing out of a shared phone drops the kept copy (names of the grid); unsent records stay.
  document.querySelectorAll("form[action$='/logout']").forEach(function (f) {
    f.addEventListener("submit", function () { if (window.caches) caches.delete(CACHE); });
  });
  document.getElementById("sync-now").addEventListener("click", sync);
  window.addEventListener("online", sync);
  window.addEventListener("offline", render);
  // The signal coming back is also noticed without the "online" event (a phone waking up may
  // not fire it): a check every few seconds costs nothing while offline.
  var wasOnline = navigator.onLine;
  setInterval(function () {
    var online = navigator.onLine;
    if (online && (!wasOnline || Date.now() >= nextTry)) sync();
    wasOnline = online;
  }, 2500);

  window.pointsOffline = { keep: keep, sync: sync, ready: false };
  var started = navigator.onLine ? pruneSent().then(sync) : render();
  var kept = navigator.onLine ? keepPage() : Promise.resolve();
  Promise.all([started, kept]).catch(function () {}).then(function () {
    window.pointsOffline.ready = true;
  });
})();
