"""朗读 in a real browser (Debian's Chromium): the button reads the page with a Chinese voice
and stays hidden when the browser cannot speak or has no Chinese voice (issue 20). The speech
engine is replaced by a recording stub (playwright init script), so what would be spoken, in
which language and voice, is observed without a sound card."""

from __future__ import annotations

import json

import pytest

from tests.web.conftest import chromium_missing

_missing = chromium_missing()
if _missing:
    pytest.skip(_missing, allow_module_level=True)

from points.db import utcnow  # noqa: E402
from points.periods import local_date  # noqa: E402
from tests.api.conftest import auth, build_world  # noqa: E402

PHONE = {"viewport": {"width": 412, "height": 860}, "is_mobile": True}
BUTTON = "button[data-speak]"

# A speech engine that records instead of speaking. VOICES is replaced per test; voices given
# to window.__addVoices arrive later, as real engines deliver them (voiceschanged).
STUB = """
(() => {
  let voices = VOICES;
  const listeners = [];
  const pending = [];
  window.__spoken = [];
  window.SpeechSynthesisUtterance = function (text) { this.text = text; };
  const engine = {
    getVoices: () => voices,
    speak(u) {
      window.__spoken.push({ text: u.text, lang: u.lang, voice: u.voice && u.voice.name });
      pending.push(u);
    },
    cancel() { window.__spoken.push({ cancel: true }); pending.length = 0; },
    addEventListener(name, fn) { if (name === "voiceschanged") listeners.push(fn); },
  };
  Object.defineProperty(window, "speechSynthesis", { configurable: true, get: () => engine });
  window.__addVoices = (more) => { voices = voices.concat(more); listeners.forEach((f) => f()); };
  window.__finish = () => pending.splice(0).forEach((u) => u.onend && u.onend());
})();
"""
ZH = {"name": "普通话（中国大陆）", "lang": "zh-CN", "default": True, "localService": True}
EN = {"name": "English", "lang": "en-US", "default": True, "localService": True}
NO_ENGINE = """Object.defineProperty(window, "speechSynthesis", {configurable: true, get: () => undefined});"""


@pytest.fixture(scope="module")
def world(server):
    app, _ = server
    w = build_world(app)
    client = app.test_client()
    # One claim on public notice (庭院整洁 +5: no review) for the 公示栏 to read.
    response = client.post(
        f"/api/v1/villages/{w.a.code}/claims",
        json={
            "household_id": w.home1.id,
            "rule_code": "MEI-01",
            "occurred_on": local_date(utcnow()).isoformat(),
        },
        headers=auth(w.tokens["recorder"]),
    )
    assert response.status_code == 201, response.json
    return w


def _page(browser, script: str | None):
    context = browser.new_context(locale="zh-CN", **PHONE)
    if script:
        context.add_init_script(script)
    page = context.new_page()
    page.set_default_timeout(10_000)
    return page


def _stub(*voices) -> str:
    return STUB.replace("VOICES", json.dumps(list(voices)))


def _decided(page, url: str) -> str:
    page.goto(url)
    page.wait_for_selector("html[data-speak]", state="attached")
    return page.get_attribute("html", "data-speak")


def test_hidden_without_speech_or_without_a_chinese_voice(server, world, browser):
    _, base = server
    url = f"{base}/public/{world.a.code}/notices"
    for script in (NO_ENGINE, _stub(), _stub(EN)):
        page = _page(browser, script)
        assert _decided(page, url) == "none"
        assert page.locator(BUTTON).count() == 1
        assert page.locator(BUTTON).is_hidden()
        page.context.close()
    # The browser's own engine: shown only if it really has a Chinese voice.
    page = _page(browser, None)
    state = _decided(page, url)
    has_zh = page.evaluate(
        "(window.speechSynthesis ? speechSynthesis.getVoices() : [])"
        ".some(v => /^(zh|cmn)/i.test(v.lang))"
    )
    assert page.locator(BUTTON).is_visible() == has_zh == (state == "ready")
    page.context.close()


def test_the_notice_board_is_read_in_chinese_and_can_be_stopped(server, world, browser):
    _, base = server
    page = _page(browser, _stub(EN, ZH))
    assert _decided(page, f"{base}/public/{world.a.code}/notices") == "ready"
    button = page.locator(BUTTON)
    assert button.is_visible() and button.inner_text() == "朗读"
    button.click()
    spoken = [s for s in page.evaluate("window.__spoken") if "text" in s]
    text = "".join(s["text"] for s in spoken)
    assert "积分公示栏" in text and "庭院整洁" in text and "加5" in text
    assert "朗读" not in text  # the button's own label is not read
    assert {s["lang"] for s in spoken} == {"zh-CN"}
    assert {s["voice"] for s in spoken} == {ZH["name"]}
    assert all(len(s["text"]) <= 120 for s in spoken)
    assert button.inner_text() == "停止朗读"
    button.click()  # stop
    assert page.evaluate("window.__spoken.at(-1)") == {"cancel": True}
    assert button.inner_text() == "朗读"
    button.click()
    page.evaluate("window.__finish()")  # the engine finished reading
    page.wait_for_function("document.querySelector('button[data-speak]').textContent === '朗读'")
    page.context.close()


def test_rules_and_board_pages_offer_it_once_voices_arrive(server, world, browser):
    _, base = server
    page = _page(browser, _stub())
    assert _decided(page, f"{base}/public/{world.a.code}/rules") == "none"
    assert page.locator(BUTTON).is_hidden()
    page.evaluate(f"window.__addVoices([{json.dumps(ZH)}])")
    page.wait_for_selector(BUTTON, state="visible")
    page.locator(BUTTON).click()
    text = "".join(s.get("text", "") for s in page.evaluate("window.__spoken"))
    assert "积分标准" in text
    page.context.close()


def test_the_residents_own_page_and_notices_are_read_without_the_forms(server, world, browser):
    _, base = server
    page = _page(browser, _stub(ZH))
    page.goto(f"{base}/login")
    page.fill("input[name=phone]", "13800001111")
    page.fill("input[name=pin]", "123456")
    page.locator("input[name=pin]").press("Enter")
    page.wait_for_url(f"{base}/v/{world.a.code}/my/*")
    page.wait_for_selector(BUTTON, state="visible")
    page.locator(BUTTON).click()
    text = "".join(s.get("text", "") for s in page.evaluate("window.__spoken"))
    assert "户积分" in text and "积分明细" in text
    page.evaluate("window.__spoken.length = 0")
    page.goto(f"{base}/v/{world.a.code}/my/notices")
    page.wait_for_selector(BUTTON, state="visible")
    page.locator(BUTTON).click()
    text = "".join(s.get("text", "") for s in page.evaluate("window.__spoken"))
    assert "正在公示" in text and "庭院整洁" in text
    assert "异议理由" not in text and "提交异议" not in text
    page.context.close()
