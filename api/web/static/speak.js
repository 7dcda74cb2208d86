// 朗读: read a page's text aloud with the phone's own speech engine (Web Speech API), for
// residents who read with difficulty. A button stays hidden unless the browser can speak and has
// a Chinese voice. It reads what the page shows (a closed group of rules is not read; forms and
// buttons never are), in short pieces: some engines stop a long utterance part-way.
(function () {
  var buttons = document.querySelectorAll("button[data-speak]");
  if (!buttons.length) return;
  var synth = window.speechSynthesis;
  var root = document.documentElement;
  var SKIP = "form, button, script, style, .noprint, [data-speak-skip]";
  var PIECE = 120; // characters per utterance
  var current = null; // the button whose text is being read

  function chineseVoice() {
    var voices = synth.getVoices() || [];
    var pick = function (re) {
      for (var i = 0; i < voices.length; i++) if (re.test(voices[i].lang || "")) return voices[i];
      return null;
    };
    return pick(/^zh[-_]CN/i) || pick(/^(zh|cmn)([-_]Hans)?/i);
  }

  // The shown text of the target, without its forms and buttons: they are hidden for the moment
  // innerText is read (no paint happens in between), so the layout's line breaks are kept.
  function shownText(target) {
    var skipped = Array.prototype.slice.call(target.querySelectorAll(SKIP));
    var before = skipped.map(function (el) { return el.getAttribute("style"); });
    skipped.forEach(function (el) { el.style.setProperty("display", "none", "important"); });
    var text = target.innerText;
    skipped.forEach(function (el, n) {
      if (before[n] === null) el.removeAttribute("style"); else el.setAttribute("style", before[n]);
    });
    // Signs read as words: "+5" is 加5, "-10" is 减10 (dates such as 2026-11 stay as they are).
    return text.replace(/(^|[\s（(])\+(\d)/g, "$1加$2").replace(/(^|[\s（(])[-−](\d)/g, "$1减$2");
  }

  function pieces(text) {
    var parts = text.replace(/([。！？；\n])/g, "$1\u0000").split("\u0000");
    var out = [];
    var buf = "";
    parts.forEach(function (p) {
      p = p.replace(/\s+/g, " ").trim();
      if (!p) return;
      if (buf && (buf + p).length > PIECE) { out.push(buf); buf = ""; }
      while (p.length > PIECE) { out.push(p.slice(0, PIECE)); p = p.slice(PIECE); }
      buf = buf ? buf + "，" + p : p;
    });
    if (buf) out.push(buf);
    return out;
  }

  function label(button, speaking) {
    button.textContent = speaking ? "停止朗读" : "朗读";
    button.setAttribute("aria-pressed", speaking ? "true" : "false");
  }

  function stop() {
    synth.cancel();
    if (current) label(current, false);
    current = null;
  }

  function read(button) {
    var voice = chineseVoice();
    var target = document.querySelector(button.getAttribute("data-speak"));
    if (!voice || !target) return;
    stop();
    current = button;
    label(button, true);
    var all = pieces(shownText(target));
    all.forEach(function (text, n) {
      var u = new SpeechSynthesisUtterance(text);
      u.lang = "zh-CN";
      u.voice = voice;
      u.rate = 0.9; // a little slower than the default, for older listeners
      if (n === all.length - 1) {
        u.onend = function () { if (current === button) { label(button, false); current = null; } };
      }
      synth.speak(u);
    });
  }

  function offer() {
    var ok = Boolean(synth && window.SpeechSynthesisUtterance && chineseVoice());
    buttons.forEach(function (b) { b.hidden = !ok; });
    root.setAttribute("data-speak", ok ? "ready" : "none");
  }

  if (!synth || !window.SpeechSynthesisUtterance || typeof synth.getVoices !== "function") {
    root.setAttribute("data-speak", "none");
    return;
  }
  buttons.forEach(function (b) {
    b.addEventListener("click", function () { if (current === b) stop(); else read(b); });
  });
  // Voices often arrive a moment after the page loads.
  if (synth.addEventListener) synth.addEventListener("voiceschanged", offer);
  window.addEventListener("pagehide", function () { if (current) synth.cancel(); });
  offer();
})();
