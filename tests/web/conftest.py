"""Browser fixtures: the real app on a fresh database served by werkzeug in a daemon thread,
and Debian's Chromium driven by playwright's sync API with a fake camera (a Y4M file)."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import threading
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
_shots: list[str] = []


def screenshot_dir() -> Path:
    """POINTS_SCREENSHOTS (tests/conftest.py names one for the run if unset, and prints it in the
    summary), or a temporary folder."""
    if not _shots:
        folder = os.environ.get("POINTS_SCREENSHOTS") or tempfile.mkdtemp(prefix="points-shots-")
        Path(folder).mkdir(parents=True, exist_ok=True)
        _shots.append(str(Path(folder).resolve()))
        print(f"\nscreenshots: {_shots[0]}")
    return Path(_shots[0])


@pytest.fixture(scope="module")
def server(databases):
    """(app, base_url): the real app on a fresh database, on 127.0.0.1 and a free port."""
    from werkzeug.serving import make_server

    from tests.api.conftest import make_app

    url = databases.fresh()
    app = make_app(url, SIGNIN_RATE_LIMIT="10000 per minute")
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield app, f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join(5)
    app.extensions["points.engine"].dispose()
    databases.drop(url)


@pytest.fixture(scope="module")
def camera_file(tmp_path_factory):
    from tests.web.camera import show_nothing

    path = tmp_path_factory.mktemp("camera") / "camera.y4m"
    show_nothing(path)  # must exist before the first getUserMedia
    return path


@pytest.fixture(scope="module")
def browser(camera_file):
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:  # pragma: no cover - the sync API refuses to run inside an event loop
        pytest.skip("playwright's sync API cannot run inside a running asyncio loop")
    from playwright.sync_api import sync_playwright

    args = [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={camera_file}",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        yield browser
        browser.close()


def chromium_missing() -> str | None:
    if not os.path.exists(CHROMIUM) or shutil.which(CHROMIUM) is None:
        return f"{CHROMIUM} is not installed (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[test]')"
    return None
