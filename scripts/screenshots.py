"""Pictures of what staff see in the Prefect UI, for the README (docs/screenshots/), taken in
headless Chromium (Debian's chromium + chromium-driver; `make tools` installs them) from a running
`make run` stack. Run it from the checkout, as the CLI runs (it reads the same settings):

    .venv/bin/python scripts/screenshots.py form return-O20261120-002 docs/screenshots/form-seller-review.png --expect 审核结果
    .venv/bin/python scripts/screenshots.py card return-O20261120-002 docs/screenshots/run-page-case-card.png
    .venv/bin/python scripts/screenshots.py login docs/screenshots/login.png
    .venv/bin/python scripts/screenshots.py queue waiting:supervisor "主管待办 Supervisor queue" docs/screenshots/queue.png

- ``form``: the case's run page with its Resume form open, as the person it waits for sees it.
- ``card``: the run page's Artifacts tab, and beside the file (``…-card.png``) the case card itself.
- ``login``: the UI's password box in a new browser, and (``…-done.png``) the runs once the line
  of ``var/prefect-auth`` is pasted into it. The other commands log in as that browser then is.
- ``queue``: the Runs page filtered by a queue tag and the state Suspended, saved as a view
  through the UI's own "Save View" (the README tells staff to do the same).

Each command checks that the page shows what it should (the case, its form, the queue's runs) and
exits non-zero naming what is missing. tests/test_unattended.py runs it at each step of the README
walkthrough on the real `make run` stack, so the pictures stay current.
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aftersales.domain.settings import apply_prefect_defaults, get_settings, prefect_auth_header  # noqa: E402

apply_prefect_defaults()  # before Prefect is imported (through the case card's module), as every entry point does

from tests.support.browser import desktop_browser  # noqa: E402

PATIENCE = 30.0  # seconds a page may take to show what it should


class NotShown(RuntimeError):
    pass


def _api() -> str:
    return get_settings().prefect_api_url.rstrip("/")


def _ui() -> str:
    return get_settings().ui_url.rstrip("/")


def _post(path: str, body: dict) -> httpx.Response:
    """A call to the Prefect API, with this installation's credentials (var/prefect-auth)."""
    answer = httpx.post(f"{_api()}{path}", json=body, headers=prefect_auth_header(), timeout=10)
    answer.raise_for_status()
    return answer


@contextmanager
def ui_browser(height: int):
    """A desktop browser logged in to the Prefect UI as a person is, once: the UI keeps the
    password (base64) in localStorage under ``prefect-password`` and sends it with every call."""
    stored = prefect_auth_header().get("Authorization", "").removeprefix("Basic ")
    with desktop_browser(height=height) as browser:
        if stored:
            browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument",
                                    {"source": f"window.localStorage.setItem('prefect-password', '{stored}');"})
        yield browser


def run_of(case_id: str) -> dict:
    """The case's flow run (named after the case)."""
    found = _post("/flow_runs/filter", {"flow_runs": {"name": {"any_": [case_id]}}, "limit": 1})
    if not found.json():
        raise NotShown(f"no flow run named {case_id}")
    return found.json()[0]


def _until(browser, shown, what: str):
    """Wait until ``shown(browser)`` is truthy (the UI loads its data after the page)."""
    deadline = time.monotonic() + PATIENCE
    while True:
        value = shown(browser)
        if value:
            return value
        if time.monotonic() > deadline:
            raise NotShown(f"the page did not show {what} within {PATIENCE:.0f} s ({browser.current_url})")
        time.sleep(0.3)


def _clickable(browser, label: str):
    from selenium.webdriver.common.by import By

    for element in browser.find_elements(By.XPATH, f"//*[normalize-space(.)={_xpath_text(label)}]"):
        if element.is_displayed() and element.text.strip() == label:
            return element
    return None


def _xpath_text(text: str) -> str:
    return "'" + text + "'" if "'" not in text else "concat('" + text.replace("'", "', \"'\", '") + "')"


def _text(browser) -> str:
    from selenium.webdriver.common.by import By

    return browser.find_element(By.TAG_NAME, "body").text


def form(case_id: str, out: Path, expect: tuple[str, ...] = ()) -> None:
    """The Resume form of the case's open wait, with the case summary above it."""
    run = run_of(case_id)
    if (run.get("state") or {}).get("type") != "PAUSED":
        raise NotShown(f"{case_id} is not waiting (its run is {(run.get('state') or {}).get('name')})")
    with ui_browser(height=1400) as browser:
        browser.get(f"{_ui()}/runs/flow-run/{run['id']}")
        _until(browser, lambda b: _clickable(b, "Resume"), "the Resume button").click()
        # the modal shows the case summary (the form's description) above the fields
        _until(browser, lambda b: case_id in _text(b) and "Submit" in _text(b), f"the Resume form of {case_id}")
        _until(browser, lambda b: all(text in _text(b) for text in expect), f"{list(expect)} on the form")
        time.sleep(0.5)  # the modal's opening transition
        browser.save_screenshot(str(out))


def card(case_id: str, out: Path, expect: tuple[str, ...] = ()) -> None:
    """The run page's Artifacts tab (the case card; the money table beside it once money has moved), and the card itself."""
    from aftersales.tasks.case_card import card_key

    run = run_of(case_id)
    key = card_key(case_id)
    with ui_browser(height=1300) as browser:
        browser.get(f"{_ui()}/runs/flow-run/{run['id']}")
        _until(browser, lambda b: _clickable(b, "Artifacts"), "the Artifacts tab").click()
        _until(browser, lambda b: key in _text(b), f"the artifact {key}")
        browser.execute_script("window.scrollTo(0, document.body.scrollHeight)")
        time.sleep(0.5)
        browser.save_screenshot(str(out))
        # the newest version of the card (``/artifacts/<key>/latest`` answers with the collection's id)
        latest = _post("/artifacts/filter", {"artifacts": {"key": {"any_": [key]}}, "sort": "CREATED_DESC", "limit": 1})
        browser.get(f"{_ui()}/artifacts/artifact/{latest.json()[0]['id']}")
        _until(browser, lambda b: case_id in _text(b) and "Timeline" in _text(b), f"the case card of {case_id}")
        _until(browser, lambda b: all(text in _text(b) for text in expect), f"{list(expect)} on the case card")
        browser.save_screenshot(str(out.with_name(out.stem + "-card" + out.suffix)))


def login(out: Path) -> None:
    """The UI's login as a newcomer meets it: the password box, the line of var/prefect-auth pasted
    into it, and the runs behind it. The first picture is the box; the second, the Runs page after."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    credentials = get_settings().prefect_auth_file.read_text(encoding="utf-8").strip()

    def box(b):
        try:
            return [i for i in b.find_elements(By.CSS_SELECTOR, "input") if i.is_displayed()]
        except StaleElementReferenceException:  # re-rendered between finding and looking
            return []

    def logged_in(b) -> bool:  # the sidebar (Dashboard, Runs, …) is there only once logged in
        return "/login" not in b.current_url and "Dashboard" in _text(b) and "Runs" in _text(b)

    with desktop_browser(height=900) as browser:  # nothing stored: as a new browser comes
        browser.get(f"{_ui()}/runs")
        _until(browser, lambda b: "/login" in b.current_url and box(b), "the password box")
        time.sleep(1)  # the page settles (its failed first call shows a notice and may re-render the box)
        browser.save_screenshot(str(out))
        for attempt in range(3):  # a box re-rendered while typing loses the keys: type into the current one
            if attempt:
                print(f"screenshots: login: not logged in yet, typing again (attempt {attempt + 1})", file=sys.stderr)
            try:
                field = _until(browser, box, "the password box")[0]
                field.clear()
                field.send_keys(credentials, Keys.ENTER)
            except StaleElementReferenceException:
                continue
            deadline = time.monotonic() + PATIENCE / 3
            while time.monotonic() < deadline and not logged_in(browser):
                time.sleep(0.3)
            if logged_in(browser):
                break
        _until(browser, logged_in, f"the UI behind the login ({_text(browser)[:200]!r})")
        _until(browser, lambda b: " runs" in _text(b), "the runs after logging in")
        browser.save_screenshot(str(out.with_name(out.stem + "-done" + out.suffix)))


def queue(tag: str, name: str, out: Path) -> None:
    """A person's queue: Runs filtered by ``tag`` and Suspended, saved as a view named ``name``."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    with ui_browser(height=1300) as browser:
        browser.get(f"{_ui()}/runs?tag={tag}&state=Suspended")
        _until(browser, lambda b: tag in _text(b) and " runs" in _text(b), f"the runs tagged {tag}")
        if not _saved(name):
            # the page's menu (top right) → Save View → a name → Save, as the README says
            menu = [b for b in browser.find_elements(By.CSS_SELECTOR, "button.p-icon-button-menu, .p-icon-button-menu button") if b.is_displayed()]
            (menu[0] if menu else _until(browser, lambda b: b.find_element(By.CSS_SELECTOR, "button[aria-haspopup]"), "the page's menu")).click()
            _until(browser, lambda b: _clickable(b, "Save View"), "Save View in the page's menu").click()
            field = _until(browser, lambda b: [i for i in b.find_elements(By.CSS_SELECTOR, ".p-modal input") if i.is_displayed()], "the view's name field")[0]
            field.send_keys(name, Keys.ENTER)
            _until(browser, lambda b: _saved(name), f"the saved view {name!r} on the server")
            browser.get(f"{_ui()}/runs?tag={tag}&state=Suspended")
            _until(browser, lambda b: tag in _text(b) and " runs" in _text(b), f"the runs tagged {tag}")
        browser.save_screenshot(str(out))


def _saved(name: str) -> dict | None:
    """The saved view ``name`` as the Prefect server keeps it (its filters hold the tag)."""
    found = _post("/saved_searches/filter", {})
    return next((search for search in found.json() if search["name"] == name), None)


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="scripts/screenshots.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, helps in (("form", "the Resume form of the case's open wait"), ("card", "the run page's Artifacts tab and the case card")):
        command = commands.add_parser(name, help=helps)
        command.add_argument("case_id")
        command.add_argument("out", type=Path)
        command.add_argument("--expect", action="append", default=[], metavar="TEXT", help="text the page must show (repeatable)")
    command = commands.add_parser("login", help="the UI's password box, and the runs once logged in")
    command.add_argument("out", type=Path)
    command = commands.add_parser("queue", help="Runs filtered by a queue tag, saved as a view")
    command.add_argument("tag")
    command.add_argument("name")
    command.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    try:
        if args.command == "queue":
            queue(args.tag, args.name, args.out)
        elif args.command == "login":
            login(args.out)
        else:
            {"form": form, "card": card}[args.command](args.case_id, args.out, tuple(args.expect))
    except NotShown as missing:
        print(f"screenshots: {missing}", file=sys.stderr)
        return 1
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
