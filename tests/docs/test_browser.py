"""The built site in a real browser: headless Debian Chromium driven by Playwright, the site served on 127.0.0.1.

What on-call does at 3 a.m.: open the home page, reach a runbook in two clicks from the first-incident checklist,
read its decision tree (Mermaid, rendered from the site's own copy), and search by a symptom word. No page may log
a console error, and no request may leave 127.0.0.1: every other address is aborted and recorded.
"""

from __future__ import annotations

import functools
import http.server
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from recsys_checks.runbooks.spec import load_all

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

if not CHROMIUM.exists():  # first: without a browser, collecting the module does not import Playwright
    pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (make test-tools does it with apt-get)",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright's Python package is not installed "
                               "(it is a dev dependency: make install)")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


@pytest.fixture(scope="module")
def site_url(built_site: Path) -> Iterator[str]:
    """The built site over HTTP on 127.0.0.1 (a free port), stopped after the module."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(built_site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


class Browser:
    """One page of a fresh context, with the requests sent off the host and the console errors collected."""

    def __init__(self, context, origin: str) -> None:
        self.outside: list[str] = []
        self.errors: list[str] = []
        context.route("**/*", self._route)
        self.page = context.new_page()
        self.page.on("console", lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.page.on("requestfailed", self._failed)
        self._origin = origin

    def _route(self, route) -> None:
        url = route.request.url
        host = urlsplit(url).hostname
        if url.startswith(("data:", "blob:")) or host == "127.0.0.1":
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def _failed(self, request) -> None:
        if urlsplit(request.url).hostname == "127.0.0.1":
            self.errors.append(f"request failed: {request.url} ({request.failure})")


@pytest.fixture
def browser(site_url: str) -> Iterator[Browser]:
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        context = chromium.new_context(service_workers="block")
        try:
            b = Browser(context, site_url)
            yield b
            assert not b.outside, f"requests tried to leave 127.0.0.1: {b.outside}"
            assert not b.errors, f"the browser reported errors: {b.errors}"
        finally:
            context.close()
            chromium.close()


def test_home_page_loads(browser: Browser, site_url: str) -> None:
    response = browser.page.goto(site_url)
    assert response is not None and response.ok
    assert "RecSys operations handbook" in browser.page.title()
    assert browser.page.locator("h1").first.inner_text().startswith("RecSys operations handbook")


def test_a_runbook_is_two_clicks_from_the_home_page_and_its_decision_tree_renders(browser: Browser,
                                                                                   site_url: str) -> None:
    page = browser.page
    page.goto(site_url)
    page.locator("article a[href*='operational-reliability/#first-incident-checklist']").first.click()
    page.wait_for_url(re.compile(r".*/explanation/operational-reliability/(#first-incident-checklist)?$"))
    checklist = page.locator("xpath=//h2[@id='first-incident-checklist']/following::table[1]")
    checklist.locator("a[href*='how-to/runbooks/empty-recs/']").first.click()
    page.wait_for_url(re.compile(r".*/how-to/runbooks/empty-recs/$"))
    assert page.locator("h1").first.inner_text().startswith("Runbook:")
    # Material replaces the diagram's source with a host element whose closed shadow root holds the rendered svg;
    # the DevTools protocol sees closed shadow roots, page scripts do not.
    cdp = page.context.new_cdp_session(page)
    deadline = time.monotonic() + 15
    while not _rendered_diagrams(cdp.send("DOM.getDocument", {"depth": -1, "pierce": True})["root"]):
        assert time.monotonic() < deadline, "no .mermaid element holds a rendered svg diagram"
        page.wait_for_timeout(250)


def _classes(node: dict) -> list[str]:
    attrs = node.get("attributes") or []
    pairs = dict(zip(attrs[::2], attrs[1::2], strict=False))
    return pairs.get("class", "").split()


def _descendants(node: dict):
    for child in (node.get("children") or []) + (node.get("shadowRoots") or []):
        yield child
        yield from _descendants(child)


def _rendered_diagrams(root: dict) -> int:
    """How many .mermaid elements hold an svg with at least one flowchart node (in light or shadow DOM)."""
    count = 0
    for node in _descendants(root):
        if node.get("nodeName", "").lower() in ("div", "pre") and "mermaid" in _classes(node):
            svgs = [n for n in _descendants(node) if n.get("nodeName", "").lower() == "svg"]
            if any("node" in _classes(g) for svg in svgs for g in _descendants(svg)):
                count += 1
    return count


@pytest.mark.parametrize(("word", "runbook"), [("empty", "empty-recs"), ("stale", "stale-manifest")])
def test_search_finds_a_runbook_by_a_symptom_word(browser: Browser, site_url: str, word: str, runbook: str) -> None:
    page = browser.page
    page.goto(site_url)
    search = page.locator("input.md-search__input")
    search.click()
    result = page.locator(f".md-search-result a[href*='how-to/runbooks/{runbook}/']").first
    # The search index is built in a web worker after the page loads; a query typed before it is ready shows
    # nothing, so type it again (as a reader would) until results appear or the time is up.
    deadline = time.monotonic() + 30
    while True:
        search.fill("")
        search.type(word)
        try:
            result.wait_for(state="attached", timeout=3000)
            break
        except sync_api.TimeoutError:
            if time.monotonic() > deadline:
                shown = page.evaluate("() => [...document.querySelectorAll('.md-search-result a')].map(a => a.href)")
                pytest.fail(f"search for {word!r} did not list {runbook}; it listed {shown[:12]}")
    result.click()
    page.wait_for_url(re.compile(rf".*/how-to/runbooks/{runbook}/([?#].*)?$"))
    assert page.locator("h1").first.inner_text().startswith("Runbook:")


def test_a_request_to_another_host_is_aborted_and_recorded(site_url: str) -> None:
    """The guard the other tests rely on: a page that asks for another address gets nothing, and it is recorded."""
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        context = chromium.new_context(service_workers="block")
        try:
            b = Browser(context, site_url)
            b.page.goto(site_url)
            b.page.evaluate("() => new Promise(done => { const img = new Image(); img.onerror = img.onload = done; "
                            "img.src = 'http://192.0.2.1/pixel.png'; })")
            assert b.outside == ["http://192.0.2.1/pixel.png"]
        finally:
            context.close()
            chromium.close()


# What a diagram's labels look like on screen, read through the DevTools protocol (the svg is in a closed shadow
# root): the scale the page draws the svg at, and for every node its box, its label's box, the label's font size in
# screen pixels, and whether the label's text overflows its box.
_DIAGRAM_METRICS = """function () {
  const svg = this, box = svg.getBoundingClientRect(), scale = box.width / svg.viewBox.baseVal.width;
  const nodes = [...svg.querySelectorAll('g.node')].map(g => {
    const r = g.getBoundingClientRect(), label = g.querySelector('foreignObject div') || g.querySelector('text');
    const inner = label ? label.getBoundingClientRect() : r;
    return {text: g.textContent.trim(), x: r.x, y: r.y, right: r.right, bottom: r.bottom,
            px: label ? parseFloat(getComputedStyle(label).fontSize) * scale : 0,
            overflows: !!label && label.tagName === 'DIV' &&
                       (label.scrollWidth > label.clientWidth + 1 || label.scrollHeight > label.clientHeight + 1),
            inside: inner.x >= r.x - 1 && inner.right <= r.right + 1 && inner.y >= r.y - 1 && inner.bottom <= r.bottom + 1};
  });
  return {scale, width: box.width, nodes};
}"""
MIN_LABEL_PX = 11  # the smallest text the site prints is about 12 px (code in tables); below 11 labels are a squint


def diagram_metrics(page) -> list[dict]:
    """The metrics above for every rendered flowchart of the page."""
    cdp = page.context.new_cdp_session(page)
    root = cdp.send("DOM.getDocument", {"depth": -1, "pierce": True})["root"]
    found = []
    for node in _descendants(root):
        if node.get("nodeName", "").lower() == "svg" and any("node" in _classes(g) for g in _descendants(node)):
            handle = cdp.send("DOM.resolveNode", {"backendNodeId": node["backendNodeId"]})["object"]
            result = cdp.send("Runtime.callFunctionOn", {"objectId": handle["objectId"], "returnByValue": True,
                                                          "functionDeclaration": _DIAGRAM_METRICS})
            found.append(result["result"]["value"])
    return found


@pytest.mark.parametrize("runbook", [s.id for s in load_all()])
def test_every_decision_tree_is_readable_at_1280_px(browser: Browser, site_url: str, runbook: str) -> None:
    """At a 1280 px window each runbook's tree labels are drawn at a readable size, none overlaps another, and no
    label's text spills out of its box. (Fifteen causes side by side were drawn at 2 px.) The table above it is the
    primary view; the diagram opens from its collapsed block."""
    page = browser.page
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(site_url + f"how-to/runbooks/{runbook}/")
    table = page.locator("xpath=//h2[@id='decision-tree']/following-sibling::*[1]")
    assert table.evaluate("e => e.querySelector('table') !== null || e.tagName === 'TABLE'"), "the table comes first"
    page.locator("xpath=//h2[@id='decision-tree']/following::details[1]/summary").click()
    deadline = time.monotonic() + 15
    while not (found := diagram_metrics(page)):
        assert time.monotonic() < deadline, "the decision tree did not render"
        page.wait_for_timeout(250)
    (tree,) = found
    nodes = tree["nodes"]
    assert len(nodes) >= 3, nodes
    small = [(n["text"], round(n["px"], 1)) for n in nodes if n["px"] < MIN_LABEL_PX]
    assert not small, f"labels drawn below {MIN_LABEL_PX} px at 1280 px (svg scaled to {tree['scale']:.2f}): {small}"
    spilled = [n["text"] for n in nodes if n["overflows"] or not n["inside"]]
    assert not spilled, f"label text outside its box: {spilled}"
    overlapping = [(a["text"], b["text"]) for i, a in enumerate(nodes) for b in nodes[i + 1:]
                   if a["x"] < b["right"] and b["x"] < a["right"] and a["y"] < b["bottom"] and b["y"] < a["bottom"]]
    assert not overlapping, f"label boxes overlap: {overlapping}"


def _typed(text: str) -> str:
    """A symptom as a reader types it into the search box: the words, without Markdown or search operators."""
    return " ".join(re.sub(r"[`:^~*+]", " ", text).split())


def _search_results(page, query: str) -> list[str]:
    """The page paths the site's search lists for ``query``, best first, once the list has settled."""
    box = page.locator("input.md-search__input")
    box.fill(query)
    box.press("End")  # Material searches on keyup
    last: list[str] = []
    stable = 0
    deadline = time.monotonic() + 10
    while stable < 3 and time.monotonic() < deadline:
        page.wait_for_timeout(100)
        now = page.evaluate("() => [...document.querySelectorAll('.md-search-result__list > li > a')]"
                            ".map(a => new URL(a.href).pathname)")
        stable = stable + 1 if now and now == last else 0
        last = now
    return last


def test_each_runbook_ranks_first_in_search_for_its_own_symptoms(browser: Browser, site_url: str) -> None:
    """Every symptom of every spec, typed into the built site's search (Material's own index and ranking, in the
    browser), lists that runbook's page first; and "recommendations look wrong" lists a runbook with that symptom
    first, not an evaluation page."""
    specs = load_all()
    queries = [(_typed(symptom), {spec.id}) for spec in specs for symptom in spec.symptoms]
    phrase = "recommendations look wrong"
    queries.append((phrase, {s.id for s in specs if any(phrase in _typed(x) for x in s.symptoms)}))
    assert queries[-1][1], f"no runbook lists a symptom with {phrase!r}"
    page = browser.page
    page.goto(site_url)
    page.locator("input.md-search__input").click()
    page.locator(".md-search-result__meta", has_text="Type to start").wait_for()
    wrong = []
    for query, expected in queries:
        results = _search_results(page, query)
        first = results[0].removeprefix("/").removesuffix("/") if results else None
        if first not in {f"how-to/runbooks/{rid}" for rid in expected}:
            wrong.append(f"{query!r}: expected {sorted(expected)}, got {results[:3]}")
    assert not wrong, "search does not list the runbook first for:\n" + "\n".join(wrong)
