/* Counter page: camera scan (frames are decoded on the server) and the receipt's print button.
   A USB scanner needs no script: it types into #wedge and presses Enter, which submits. */
(function () {
  "use strict";
  // The preview: the total follows the quantities as they are typed (the server prices again
  // before spending); a basket over the points available says how much is missing, never a
  // negative balance.
  var live = document.getElementById("live");
  if (live) {
    var available = parseInt(live.getAttribute("data-available"), 10) || 0;
    var update = function () {
      var total = 0;
      document.querySelectorAll("input.qty[data-price]").forEach(function (input) {
        var n = parseInt(input.value, 10);
        if (n > 0) { total += n * (parseInt(input.getAttribute("data-price"), 10) || 0); }
      });
      document.getElementById("live-total").textContent = total;
      // Confirming a changed basket first shows the server's total once (see the view).
      var confirm = document.getElementById("confirm");
      if (confirm && live.getAttribute("data-refused") !== "1") {
        confirm.disabled = !(total > 0 && total <= available);
      }
      document.getElementById("live-after").textContent = total <= available
        ? "兑换后余额 " + (available - total) + " 分"
        : "积分不足，还差 " + (total - available) + " 分";
    };
    document.querySelectorAll("input.qty[data-price]").forEach(function (input) {
      input.addEventListener("input", update);
    });
    update();
  }
  var printButton = document.getElementById("print");
  if (printButton) {
    printButton.addEventListener("click", function () { window.print(); });
  }
  var start = document.getElementById("camera-start");
  var md = navigator.mediaDevices;
  if (!start || !md || !md.getUserMedia) { return; }
  start.hidden = false;
  var form = document.getElementById("scan-form");
  var wedge = document.getElementById("wedge");
  var box = document.getElementById("camera");
  var video = document.getElementById("camera-video");
  var status = document.getElementById("camera-status");
  var token = form.querySelector("input[name=csrf_token]").value;
  var url = start.getAttribute("data-decode");
  var canvas = document.createElement("canvas");
  var ctx = canvas.getContext("2d", { willReadFrequently: true });
  var stream = null, timer = null, busy = false;

  function stop() {
    if (timer) { clearInterval(timer); timer = null; }
    if (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); stream = null; }
    box.hidden = true;
  }

  function found(text) {
    stop();
    wedge.value = text;
    status.textContent = "已识别";
    if (form.requestSubmit) { form.requestSubmit(); } else { form.submit(); }
  }

  function grab() {
    if (busy || !stream || video.readyState < 2 || !video.videoWidth) { return; }
    busy = true;
    var scale = Math.min(1, 960 / Math.max(video.videoWidth, video.videoHeight));
    canvas.width = Math.round(video.videoWidth * scale);
    canvas.height = Math.round(video.videoHeight * scale);
    ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
    canvas.toBlob(function (blob) {
      if (!blob) { busy = false; return; }
      fetch(url, {
        method: "POST", body: blob, credentials: "same-origin",
        headers: { "Content-Type": blob.type, "X-CSRF-Token": token }
      }).then(function (r) { return r.json(); }).then(function (data) {
        busy = false;
        if (data && data.text && stream) { found(data.text); }
      }).catch(function () { busy = false; });
    }, "image/jpeg", 0.92);
  }

  start.addEventListener("click", function () {
    box.hidden = false;
    status.textContent = "正在打开摄像头…";
    md.getUserMedia({ video: { facingMode: { ideal: "environment" } }, audio: false })
      .then(function (s) {
        stream = s;
        video.srcObject = s;
        return video.play();
      }).then(function () {
        status.textContent = "请把二维码对准摄像头";
        timer = setInterval(grab, 250);
      }).catch(function (e) {
        status.textContent = "无法打开摄像头（" + e.name + "），请用扫码枪或手输卡号";
        stop();
        box.hidden = false;
      });
  });
  document.getElementById("camera-stop").addEventListener("click", function () {
    stop();
    wedge.focus();
  });
}());
