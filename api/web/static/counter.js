/* Counter page: camera scan (frames are decoded on the server) and the receipt's print button.
   A USB scanner needs no script: it types into #wedge and presses Enter, which submits. */
(function () {
  "use strict";
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
