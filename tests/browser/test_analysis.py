"""The study page's analysis views, warnings and lifecycle actions, and the compare page's
hypervolume curves, in headless chromium against the real app and worker."""

from __future__ import annotations

import pytest

from tests.browser.conftest import screenshot, wait_ready
from tests.browser.test_viewer import TRACE

pytestmark = pytest.mark.browser


def test_axes_colour_filter_by_dimension_log_scale_and_staircase(live, page):
    study = live.submit(live.spec("dims", trials=60, seed=3))
    live.run_queue()
    trials = live.get(f"/studies/{study['id']}/trials", limit=10000, state="complete")["data"]
    page.goto(f"{live.url}/studies/{study['id']}")
    wait_ready(page)
    # the 2-D front is a staircase: x (acc) is maximised, so it moves in y first
    assert page.evaluate("document.getElementById('scatter').data"
                         ".find(d => d.uid === 'line').line.shape") == "vh"
    # x = an architecture dimension (numeric), colour = a categorical one
    page.select_option("#x-axis", "arch:width")
    page.select_option("#c-axis", "arch:op")
    page.wait_for_function("document.getElementById('scatter').layout.xaxis.title.text"
                           " === 'arch: width'")
    dominated = page.evaluate(TRACE, ["scatter", "dominated"])
    by_number = {t["number"]: t for t in trials}
    ops = sorted({t["arch"]["op"] for t in trials})
    for n, x, colour in zip(dominated["ids"], dominated["x"], dominated["color"], strict=True):
        arch = by_number[n]["arch"]
        assert x == arch["width"] and colour == ops.index(arch["op"])
    assert page.evaluate("document.getElementById('scatter').data"
                         ".find(d => d.uid === 'front').marker.colorbar.ticktext") == ops
    assert page.evaluate(TRACE, ["scatter", "line"])["x"] == []  # no curve against a dimension
    # only the trials of one op
    page.select_option("#f-dim", "arch:op")
    page.select_option("#f-value", "conv")
    page.wait_for_function("document.getElementById('counts').textContent.includes('op = conv')")
    conv = [t for t in trials if t["arch"]["op"] == "conv"]
    assert page.locator("#scatter").get_attribute("data-plotted") == str(len(conv))
    screenshot(page, "analysis-dimension-axes")
    # log scale on latency (positive): the axis type follows the box
    page.select_option("#f-dim", "")
    page.select_option("#x-axis", "latency_ms")
    page.check("#log-x")
    page.wait_for_function("document.getElementById('scatter').layout.xaxis.type === 'log'")
    page.select_option("#x-axis", "arch:op")  # categorical: no log scale
    page.wait_for_function("document.getElementById('scatter').layout.xaxis.type"
                           " === 'category'")
    assert page.locator("#log-x").is_disabled()


def test_parallel_coordinates_scatter_matrix_and_importance(live, page):
    study = live.submit(live.spec("three objectives", trials=80, seed=4, three=True))
    live.run_queue()
    complete = live.get(f"/studies/{study['id']}/trials", limit=10000, state="complete")["data"]
    page.goto(f"{live.url}/studies/{study['id']}")
    wait_ready(page)
    page.click("#pc-panel summary")
    page.wait_for_function("document.getElementById('parcoords').data")
    pc = page.evaluate("(() => { const d = document.getElementById('parcoords').data[0];"
                       " return {labels: d.dimensions.map(x => x.label),"
                       " n: d.dimensions[0].values.length, color: d.line.color}; })()")
    assert pc["labels"][:3] == ["acc", "latency_ms", "params"]
    assert set(pc["labels"][3:]) == {"depth", "kernel", "op", "width"}
    assert pc["n"] == len(complete)
    assert sum(pc["color"]) == sum(t["on_front"] for t in complete)
    assert page.locator("#parcoords .parcoords").count() == 1
    page.click("#splom-panel summary")
    page.wait_for_function("document.getElementById('splom').data")
    dims = page.evaluate("document.getElementById('splom').data[0].dimensions.length")
    assert dims == 3
    page.click("#imp-panel summary")
    page.wait_for_function("document.getElementById('importance').dataset.dimensions === '4'",
                           timeout=60_000)
    api = live.get(f"/studies/{study['id']}/importance")
    cells = page.evaluate("[...document.querySelectorAll('#importance td')].map(td => "
                          "[td.parentElement.dataset.dim, td.dataset.objective,"
                          " Number(td.dataset.share)])")
    shown: dict = {}
    for dim, key, share in cells:
        shown.setdefault(key, {})[dim] = share
    assert set(shown) == {"acc", "latency_ms", "params"}
    for key, shares in shown.items():
        assert shares == pytest.approx(api["objectives"][key])
    heads = page.locator("#importance thead th").all_inner_texts()
    assert heads == ["dimension", "acc", "latency_ms", "params"]
    assert "fANOVA" in page.locator("#imp-note").inner_text()
    screenshot(page, "analysis-panels")


def test_warnings_constraints_and_no_feasible_explanation(live, page):
    spec = live.spec("too tight", trials=12, seed=5)
    spec["constraints"] = [{"metric": "latency_ms", "max": 0.01}]
    study = live.submit(spec)
    live.run_queue()
    page.goto(f"{live.url}/studies/{study['id']}")
    wait_ready(page)
    notes = page.locator("#notes")
    assert notes.is_visible()
    text = notes.inner_text()
    assert "No feasible trial: none of 12 trials is feasible" in text
    assert "constraints.0" in text and "no row of the table meets latency_ms <= 0.01" in text
    assert "latency_ms ≤ 0.01" in page.locator("#constraints").inner_text()
    assert "ended without a feasible trial" in page.locator("#hv-empty").inner_text()
    screenshot(page, "warnings")
    # an accuracy mode that cannot screen says so instead of "accuracy surrogate"
    spec = live.spec("cannot screen", trials=12, seed=5)
    spec["constraints"] = [{"metric": "params", "max": 10**9}]  # measured for every trial
    spec["accuracy"] = {"mode": "surrogate", "initial": 4}
    study = live.submit(spec)
    assert [w["code"] for w in study["extra"]["warnings"]] == ["accuracy_not_screened"]
    live.run_queue()
    page.goto(f"{live.url}/studies/{study['id']}")
    wait_ready(page)
    assert "accuracy surrogate (not screening: every trial measured)" in \
        page.locator("#summary").inner_text()
    assert "cannot screen" in page.locator("#notes").inner_text()
    trials = live.get(f"/studies/{study['id']}/trials", state="complete")["data"]
    assert {t["info"]["accuracy"] for t in trials if "duplicate_of" not in t["info"]} == \
        {"measured"}


def test_rename_tag_resume_and_delete_from_the_page(live, page):
    study = live.submit(live.spec("to manage", trials=10, seed=6))
    live.run_queue()
    page.goto(f"{live.url}/studies/{study['id']}")
    wait_ready(page)
    page.fill("#edit-name", "managed study")
    page.fill("#edit-tags", "gnn, cora")
    page.fill("#edit-notes", "first pass")
    page.click("#edit-save")
    page.wait_for_function("document.getElementById('manage-msg').textContent === 'saved'")
    api = live.get(f"/studies/{study['id']}")
    assert (api["name"], api["tags"], api["notes"]) == ("managed study", ["gnn", "cora"],
                                                        "first pass")
    assert page.locator("#title").inner_text() == f"Study #{study['id']}: managed study"
    assert page.locator(".tag").all_inner_texts() == ["gnn", "cora"]
    page.fill("#resume-trials", "16")
    page.click("#resume")
    page.wait_for_function("document.getElementById('manage-msg').textContent === 'queued again'")
    assert live.get(f"/studies/{study['id']}")["n_trials"] == 16
    live.run_queue()
    page.wait_for_function(
        "document.getElementById('summary').textContent.includes('completed')"
        " && document.getElementById('scatter').dataset.plotted", timeout=30_000)
    assert live.get(f"/studies/{study['id']}")["n_complete"] + \
        live.get(f"/studies/{study['id']}")["n_failed"] == 16
    screenshot(page, "manage")
    page.on("dialog", lambda d: d.accept())
    page.click("#delete")
    page.wait_for_url(f"{live.url}/")
    wait_ready(page)
    assert live.http.get(f"/studies/{study['id']}").status_code == 404


def test_missing_study_shows_only_the_message(live, page):
    page.goto(f"{live.url}/studies/999")
    page.wait_for_selector("body[data-ready='1']", state="attached")
    page.js_errors.clear()  # the 404 itself is reported by the browser console
    assert "study 999 not found" in page.locator("#error").inner_text()
    assert page.locator("#summary").is_hidden() and page.locator("#scatter").is_hidden()
    assert page.locator(".panel:visible").count() == 0


def test_compare_overlays_normalised_hypervolume_curves(live, page):
    a = live.submit(live.spec("random", trials=30, seed=1))
    b = live.submit(live.spec("nsga2", trials=30, seed=2, strategy="nsga2"))
    live.run_queue()
    page.goto(f"{live.url}/compare?ids={a['id']},{b['id']}")
    wait_ready(page)
    page.wait_for_function("document.getElementById('hv-compare').dataset.curves === '2'")
    curves = page.evaluate("document.getElementById('hv-compare').data.map(d => "
                           "({x: d.x, y: d.y, name: d.name}))")
    for curve, s in zip(curves, (a, b), strict=True):
        api = live.get(f"/studies/{s['id']}/hypervolume", reference="problem")
        assert curve["y"][: len(api["data"])] == [p["hypervolume"] for p in api["data"]]
        assert curve["x"][-1] == api["last_trial"] == 29 and 0 < max(curve["y"]) <= 1
        assert curve["y"][-1] == pytest.approx(live.get(f"/studies/{s['id']}")[
            "hypervolume_normalised"])
    screenshot(page, "compare-curves")


def test_nothing_cut_off_at_1400px(live, browser):
    study = live.submit(live.spec("a study with a rather long name to test the list layout",
                                  trials=20, seed=9))
    live.run_queue()
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    try:
        page.goto(f"{live.url}/studies/{study['id']}#trial=3")
        wait_ready(page)
        page.locator("#details-body table").first.wait_for()
        cut = page.evaluate("""[...document.querySelectorAll('#details-body table')].filter(
            t => t.getBoundingClientRect().right > document.getElementById('details')
                 .getBoundingClientRect().right + 0.5).length""")
        assert cut == 0, "a pinned-trial table sticks out of its panel"
        durations = page.locator("#trials tbody td").all_inner_texts()
        assert not [d for d in durations if "e-" in d]  # "0.19 ms", not "1.908e-4"
        screenshot(page, "study-1400")
        page.goto(live.url + "/")
        wait_ready(page)
        box = page.evaluate("""(() => { const s = document.querySelector('#studies').parentElement;
            return [s.scrollWidth, s.clientWidth]; })()""")
        assert box[0] <= box[1], f"the studies table needs horizontal scrolling: {box}"
        created = page.locator("#studies tbody tr td").last
        assert "UTC" in created.inner_text() and created.is_visible()
        screenshot(page, "studies-1400")
    finally:
        context.close()


def test_hypervolume_curve_on_the_problem_box(live, page):
    study = live.submit(live.spec("box", trials=25, seed=12))
    live.run_queue()
    page.goto(f"{live.url}/studies/{study['id']}")
    wait_ready(page)
    page.select_option("#hv-ref", "problem")
    api = live.get(f"/studies/{study['id']}/hypervolume", reference="problem")
    page.wait_for_function("document.getElementById('hypervolume').layout.annotations[0].text"
                           ".startsWith(\"the problem's box\")")
    y = page.evaluate("document.getElementById('hypervolume').data[0].y")
    assert y[: len(api["data"])] == [p["hypervolume"] for p in api["data"]]
    assert max(y) <= 1 and y[-1] == pytest.approx(
        live.get(f"/studies/{study['id']}")["hypervolume_normalised"])
