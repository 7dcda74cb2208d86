// On a wide screen there is room for the whole staff menu: unfold 管理设置.
(function () {
  if (window.matchMedia && window.matchMedia("(min-width: 60em)").matches) {
    document.querySelectorAll("details.more-menu").forEach(function (d) { d.open = true; });
  }
})();
