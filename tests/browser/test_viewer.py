"""The web viewer in a real browser (Debian's headless chromium) against the real app: studies
run by the real worker on a table space, pages checked against the REST API."""

from __future__ import annotations

import csv
import io
import threading

import numpy as np
import pytest

from surrogate.pareto import default_reference, hypervolume, to_loss
from tests.browser.conftest import screenshot, wait_ready

pytestmark = pytest.mark.browser

# Pixel position (page coordinates) of point i of trace t of the scatter ``plot``.
POINT_XY = """([id, uid, i]) => {
  const gd = document.getElementById(id), fl = gd._fullLayout;
  const tr = gd._fullData.find((d) => d.uid === uid);
  const box = gd.getBoundingClientRect();
  return [box.left + fl._size.l + fl.xaxis.l2p(tr.x[i]),
          box.top + fl._size.t + fl.yaxis.l2p(tr.y[i])];
}"""
TRACE = """([id, uid]) => {
  const d = document.getElementById(id).data.find((d) => d.uid === uid);
  return {x: d.x, y: d.y, color: d.marker && d.marker.color,
          ids: (d.customdata || []).map((c) => Array.isArray(c) ? c[0] : c)}; }"""


def _complete(live, study_id):
    return live.get(f"/studies/{study_id}/trials", limit=10000, state="complete")["data"]


def test_studies_page_lists_filters_and_links(live, page):
    a = live.submit(live.spec("alpha", trials=20, seed=1))
    b = live.submit(live.spec("beta", trials=15, seed=2, strategy="nsga2"))
    live.run_queue()
    queued = live.submit(live.spec("gamma (queued)", trials=10))
    page.goto(live.url + "/")
    wait_ready(page)
    rows = page.locator("#studies tbody tr")
    assert rows.count() == 3
    text = page.locator("#studies").inner_text()
    for s in (a, b, queued):
        assert s["name"] in text
    assert "completed" in text and "queued" in text
    api = {s["id"]: s for s in live.get("/studies")["data"]}
    cell = page.locator(f"#studies tbody tr[data-id='{a['id']}'] td").nth(6)
    # the list compares studies: the problem-normalised value, the own-reference one on hover
    assert 0 < api[a["id"]]["hypervolume_normalised"] <= 1
    assert float(cell.inner_text()) == pytest.approx(api[a["id"]]["hypervolume_normalised"],
                                                     rel=1e-3)
    assert cell.get_attribute("title").startswith("own reference: ")
    screenshot(page, "studies")

    page.select_option("#status-filter", "completed")
    page.wait_for_function("document.querySelectorAll('#studies tbody tr').length === 2")
    assert "gamma" not in page.locator("#studies").inner_text()
    assert "status=completed" in page.url

    # the list refreshes by itself while a study is not finished
    page.select_option("#status-filter", "")
    page.wait_for_function("document.querySelectorAll('#studies tbody tr').length === 3")
    page.evaluate("window.__samePage = true")
    live.run_queue()
    row = page.locator(f"#studies tbody tr[data-id='{queued['id']}']")
    row.locator(".badge.completed").wait_for(timeout=30_000)
    assert page.evaluate("window.__samePage") is True

    page.get_by_role("link", name="beta").click()
    page.wait_for_url(f"**/studies/{b['id']}")
    wait_ready(page)
    assert "beta" in page.locator("h1").inner_text()


def test_study_page_draws_every_trial_and_the_apis_front(live, page):
    study = live.submit(live.spec("three objectives", trials=60, seed=3, three=True))
    live.run_queue()
    complete = _complete(live, study["id"])
    front = live.get(f"/studies/{study['id']}/pareto")["data"]
    failed = live.get(f"/studies/{study['id']}/trials", state="failed")["count"]
    # the table has holes, but archs without a row are re-asked, never trials
    assert failed == 0 and len(front) >= 2

    page.goto(f"{live.url}/studies/{study['id']}")
    wait_ready(page)
    plot = page.locator("#scatter")
    assert plot.get_attribute("data-front") == str(len(front))
    traces = [page.evaluate(TRACE, ["scatter", t])
              for t in ("dominated", "infeasible", "predicted", "line", "front")]
    dominated, infeasible, predicted, line, on_front = traces
    assert predicted["x"] == []  # every accuracy measured in this study
    drawn = len(dominated["x"]) + len(infeasible["x"]) + len(on_front["x"])
    assert drawn == len(complete)
    assert sorted(on_front["ids"]) == sorted(t["number"] for t in front)
    assert line["x"] == sorted(line["x"])  # the front is joined in x order
    by_number = {t["number"]: t for t in complete}
    for n, x, y in zip(on_front["ids"], on_front["x"], on_front["y"], strict=True):
        assert (x, y) == (by_number[n]["values"]["acc"], by_number[n]["values"]["latency_ms"])
    titles = page.locator("#scatter .g-xtitle, #scatter .g-ytitle").all_text_contents()
    assert any("latency [ms]" in t and "better" in t for t in titles), titles  # unit once
    assert page.locator("#page-info").inner_text().endswith(f"({len(complete) + failed} trials)")

    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 1
    page.select_option("#c-axis", "params")
    page.wait_for_function(
        "Array.isArray(document.getElementById('scatter').data[0].marker.color)")
    colours = page.evaluate(TRACE, ["scatter", "front"])["color"]
    assert colours == [by_number[n]["values"]["params"] for n in on_front["ids"]]
    page.select_option("#x-axis", "params")
    page.wait_for_function(
        "document.querySelector('#scatter .g-xtitle').textContent.startsWith('params')")
    screenshot(page, "study")

    acc_header = page.locator("#trials thead button", has_text="acc")
    acc_header.click()
    first = float(page.locator("#trials tbody tr").first.locator("td").nth(3).inner_text())
    assert first == pytest.approx(min(t["values"]["acc"] for t in complete), abs=1e-3)
    acc_header = page.locator("#trials thead button", has_text="acc")
    acc_header.press("Enter")  # keyboard: sort descending
    first = float(page.locator("#trials tbody tr").first.locator("td").nth(3).inner_text())
    assert first == pytest.approx(max(t["values"]["acc"] for t in complete), abs=1e-3)
    page.select_option("#table-filter", "front")
    assert page.locator("#trials tbody tr").count() == len(front)


def test_hover_and_click_show_the_arch(live, page):
    study = live.submit(live.spec("hover", trials=30, seed=4))
    live.run_queue()
    by_number = {t["number"]: t for t in _complete(live, study["id"])}
    page.goto(f"{live.url}/studies/{study['id']}")
    wait_ready(page)
    trace = page.evaluate(TRACE, ["scatter", "front"])
    target = by_number[trace["ids"][0]]
    x, y = page.evaluate(POINT_XY, ["scatter", "front", 0])
    page.mouse.move(x, y)
    hover = page.locator("#scatter .hoverlayer .hovertext")
    hover.wait_for()
    text = hover.text_content()
    assert f"trial #{target['number']}" in text
    for dim, value in target["arch"].items():
        assert f"{dim}={value}" in text
    assert "latency_ms" in text and "ms" in text
    screenshot(page, "study-hover")

    page.mouse.click(x, y)
    details = page.locator("#details-body")
    details.get_by_text(f"#{target['number']}", exact=True).wait_for()
    arch_rows = details.locator("table").first.locator("tbody tr").all_inner_texts()
    assert sorted(r.split("\t")[0] for r in arch_rows) == sorted(target["arch"])
    assert "on the Pareto front" in details.inner_text()
    ring = page.evaluate(TRACE, ["scatter", "pinned"])["ids"]
    assert ring == [target["number"]]  # a ring around the pinned point
    assert page.url.endswith(f"#trial={target['number']}")
    screenshot(page, "study-pinned")

    # keyboard: tab into the table, Enter pins that row's trial and moves focus to the details
    row = page.locator("#trials tbody tr").nth(2)
    number = int(row.get_attribute("data-number"))
    row.focus()
    page.keyboard.press("Enter")
    details.get_by_text(f"#{number}", exact=True).wait_for()
    assert page.evaluate("document.activeElement.id") == "details"
    assert page.locator("#trials tbody tr.pinned").get_attribute("data-number") == str(number)


def test_running_study_updates_without_reload(live, page):
    study = live.submit(live.spec("live", trials=80, seed=5, strategy="nsga2"))
    page.goto(f"{live.url}/studies/{study['id']}")
    wait_ready(page)
    assert "queued" in page.locator("#summary").inner_text()
    page.evaluate("""() => {
      window.__samePage = true; window.__seen = [];
      new MutationObserver(() => window.__seen.push(
        Number(document.getElementById('scatter').dataset.plotted || 0)))
        .observe(document.getElementById('scatter'), {attributes: true,
                 attributeFilter: ['data-plotted']});
    }""")
    worker = threading.Thread(target=live.run_queue)
    worker.start()
    worker.join(timeout=120)
    assert not worker.is_alive()
    complete = _complete(live, study["id"])
    front = live.get(f"/studies/{study['id']}/pareto")["data"]
    page.wait_for_function(
        f"document.getElementById('scatter').dataset.plotted === '{len(complete)}'"
        " && document.getElementById('summary').textContent.includes('completed')",
        timeout=30_000)
    assert page.evaluate("window.__samePage") is True  # updated in place, never reloaded
    assert page.locator("#scatter").get_attribute("data-front") == str(len(front))
    assert page.evaluate("window.__seen")[-1] == len(complete)
    hv = live.get(f"/studies/{study['id']}/hypervolume")["data"]
    last = max(t["number"]
               for t in live.get(f"/studies/{study['id']}/trials", limit=10000)["data"])
    drawn = page.evaluate("document.getElementById('hypervolume').data[0].x")
    assert drawn[:len(hv)] == [p["trial_number"] for p in hv]
    assert drawn[-1] == last  # held at its last value up to the last trial
    screenshot(page, "study-live")


def test_compare_shows_two_fronts(live, page):
    a = live.submit(live.spec("random search", trials=40, seed=6))
    b = live.submit(live.spec("nsga2 search", trials=40, seed=7, strategy="nsga2"))
    live.run_queue()
    fronts = {s["id"]: live.get(f"/studies/{s['id']}/pareto")["data"] for s in (a, b)}
    page.goto(f"{live.url}/compare?ids={a['id']},{b['id']}")
    wait_ready(page)
    data = page.evaluate("document.getElementById('compare').data.map(d => "
                         "({name: d.name, n: d.x.length, ids: d.customdata}))")
    assert len(data) == 2
    for trace, s in zip(data, (a, b), strict=True):
        assert s["name"] in trace["name"]
        assert sorted(trace["ids"]) == sorted(t["number"] for t in fronts[s["id"]])
    assert page.locator("#compare .legend .traces").count() == 2
    assert page.locator("#fronts tbody tr").count() == 2
    # hypervolume of both fronts against one shared reference, checked with surrogate.pareto
    loss = {i: to_loss(np.array([[t["values"]["acc"], t["values"]["latency_ms"]]
                                 for t in fronts[i]]), ["maximize", "minimize"]) for i in fronts}
    reference = default_reference(np.vstack(list(loss.values())))
    for s in (a, b):
        shown = page.locator(f"#fronts tr[data-id='{s['id']}'] .shared-hv").inner_text()
        assert float(shown) == pytest.approx(hypervolume(loss[s["id"]], reference), rel=1e-3)
        problem = page.locator(f"#fronts tr[data-id='{s['id']}'] .problem-hv").inner_text()
        expect = live.get(f"/studies/{s['id']}")["hypervolume_normalised"]
        assert 0 < expect <= 1 and float(problem) == pytest.approx(expect, rel=1e-3)
    screenshot(page, "compare")
    page.goto(f"{live.url}/compare?ids={a['id']},x7,{b['id']}")
    wait_ready(page)
    assert page.evaluate("document.getElementById('compare').data.length") == 2
    assert '"x7" ignored; expected study numbers' in page.locator("#error").inner_text()
    page.locator(f"#picker input[value='{b['id']}']").uncheck()
    page.wait_for_function("document.getElementById('compare').data.length === 1")
    assert page.url.endswith(f"/compare?ids={a['id']}")
    assert page.locator("#error").inner_text() == ""  # a good refresh clears the message


def test_downloads(live, page):
    study = live.submit(live.spec("downloads", trials=25, seed=8))
    live.run_queue()
    trials = live.get(f"/studies/{study['id']}/trials", limit=10000)["data"]
    front = live.get(f"/studies/{study['id']}/pareto")["data"]
    page.goto(f"{live.url}/studies/{study['id']}")
    wait_ready(page)
    with page.expect_download() as dl:
        page.click("#dl-trials-csv")
    rows = list(csv.DictReader(io.StringIO(open(dl.value.path()).read())))
    assert [int(r["number"]) for r in rows] == sorted(t["number"] for t in trials)
    assert {"depth", "width", "op", "kernel", "acc", "latency_ms"} <= set(rows[0])
    with page.expect_download() as dl:
        page.click("#dl-front-csv")
    front_rows = list(csv.DictReader(io.StringIO(open(dl.value.path()).read())))
    assert len(front_rows) == len(front)


def test_narrow_window_and_missing_study(live, browser):
    study = live.submit(live.spec("narrow", trials=20, seed=9))
    live.run_queue()
    context = browser.new_context(viewport={"width": 390, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live.url}/studies/{study['id']}")
    wait_ready(page)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"page is {overflow}px wider than a 390px window"
    plot = page.locator("#scatter").bounding_box()
    details = page.locator("#details").bounding_box()
    assert details["y"] >= plot["y"] + plot["height"]  # one column: details below the plot
    screenshot(page, "study-narrow")

    for path, name in ((f"/compare?ids={study['id']}", "compare-narrow"), ("/", "studies-narrow")):
        page.goto(live.url + path)
        wait_ready(page)
        assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 1
        screenshot(page, name)

    page.goto(f"{live.url}/studies/999999")
    wait_ready(page)
    assert "study 999999 not found" in page.locator("#error").inner_text()
    context.close()
    assert not errors, errors


def test_pinned_trial_shows_device_measurements_and_predictions(live, page):
    """A device study written through the ORM (the table space has no device metrics)."""
    import datetime as dt

    from service.persistence.models import Study, Trial

    spec = live.spec("device study", trials=3)
    spec["objectives"][1]["device"] = "cpu"
    now = dt.datetime.now(dt.UTC)
    with live.db.session() as s, s.begin():
        study = Study(name="device study", search_space="table", spec=spec, status="completed",
                      n_trials=3, n_complete=3, n_failed=0, extra={})
        s.add(study)
        s.flush()
        for n, (acc, lat) in enumerate([(0.9, 3.0), (0.8, 1.0), (0.7, 2.0)]):
            s.add(Trial(
                study_id=study.id, number=n, arch={"depth": n + 1, "width": 8}, arch_key=f"k{n}",
                values={"acc": acc, "latency_ms@cpu": lat}, state="complete", on_front=n < 2,
                started_at=now, finished_at=now, worker="w", info={
                    "sources": {"acc": "predicted", "latency_ms@cpu": "measured"},
                    "predicted": {"acc": {"mean": acc + 0.01, "std": 0.02}},
                    "devices": {"cpu": {"metrics": {"latency_ms": lat, "peak_rss_mb": 12.5},
                                        "samples_ms": [lat - 0.1, lat, lat + 0.2],
                                        "details": {"threads": 1}, "profiler": "torch-cpu",
                                        "profiler_version": "3"}}}))
        study_id = study.id
    page.goto(f"{live.url}/studies/{study_id}#trial=1")
    wait_ready(page)
    details = page.locator("#details-body")
    details.get_by_text("Device cpu").wait_for()
    text = details.inner_text()
    assert "torch-cpu 3" in text and "3 (median 1 ms)" in text and "peak_rss_mb" in text
    metrics = details.locator("table").nth(1).locator("tbody tr").all_inner_texts()
    acc_row = next(r for r in metrics if r.startswith("acc"))
    assert "predicted" in acc_row and "0.81 ± 0.02" in acc_row
    titles = page.locator("#scatter .g-ytitle").all_text_contents()
    assert titles == ["latency on cpu [ms] ↓ better"]  # the unit once, not "latency ms [ms]"
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 1
    assert page.locator("#hypervolume").is_hidden()  # no reference point yet: no empty axes
    assert page.locator("#hv-empty").is_visible()
    screenshot(page, "study-device-details")


def test_two_stage_study_can_be_coloured_by_stage(live, page):
    spec = live.spec("two stages", trials=24, seed=10)
    spec.update(stages=2, stage1_dims=["depth", "width"], stage1_fraction=0.25)
    study = live.submit(spec)
    live.run_queue()
    complete = {t["number"]: t for t in _complete(live, study["id"])}
    assert {t["stage"] for t in complete.values()} == {1, 2}
    page.goto(f"{live.url}/studies/{study['id']}")
    wait_ready(page)
    page.select_option("#c-axis", "@stage")
    page.wait_for_function(
        "Array.isArray(document.getElementById('scatter').data[0].marker.color)")
    for uid in ("dominated", "front"):
        trace = page.evaluate(TRACE, ["scatter", uid])
        assert trace["color"] == [complete[n]["stage"] for n in trace["ids"]]
    assert "search stage" in page.locator("#scatter .colorbar").text_content()
    screenshot(page, "study-stages")


def _js_fmt(v: float) -> str:
    """The viewer's fmt() for non-integers in [1e-3, 1e6): 4 significant digits, trimmed."""
    text = repr(float(f"{v:.4g}"))
    return text[:-2] if text.endswith(".0") else text


def test_screened_study_shows_measured_vs_predicted_and_predictor_quality(live, page):
    spec = live.spec("screened", trials=40, seed=11)
    spec["accuracy"] = {"mode": "hybrid", "initial": 10, "audit_fraction": 0.3, "kappa": 0.0}
    study = live.submit(spec)
    live.run_queue()
    trials = live.get(f"/studies/{study['id']}/trials", limit=100)["data"]
    audited = [t for t in trials if t["state"] == "complete"
               and t["info"].get("accuracy") == "measured"
               and "acc" in t["info"].get("screening", {}).get("predicted", {})]
    assert audited, "the hybrid screen measured none of its predictions"
    t = audited[0]
    mean = t["info"]["screening"]["predicted"]["acc"]["mean"]
    quality = live.get(f"/studies/{study['id']}")["extra"].get("predictor_quality")

    page.goto(f"{live.url}/studies/{study['id']}#trial={t['number']}")
    wait_ready(page)
    details = page.locator("#details-body")
    details.get_by_text("pred. − value").wait_for()
    acc_row = next(r for r in details.locator("table").nth(1).locator("tbody tr")
                   .all_inner_texts() if r.startswith("acc"))
    assert "measured" in acc_row and _js_fmt(mean) in acc_row
    assert "accuracy\tmeasured" in details.inner_text().replace("\n", "\t")
    assert "hybrid" in page.locator("#summary").inner_text()
    only_predicted = sorted(x["number"] for x in trials if x["state"] == "complete"
                            and x["info"].get("accuracy") == "predicted" and not x["on_front"])
    assert only_predicted, "the screen kept no prediction unmeasured"
    assert sorted(page.evaluate(TRACE, ["scatter", "predicted"])["ids"]) == only_predicted
    assert "accuracy predicted, not measured" in page.locator("#scatter .legend").text_content()
    if quality:
        assert page.locator("#quality").is_visible()
        assert "Kendall τ" in page.locator("#quality").inner_text()
    else:
        assert page.locator("#quality").is_hidden()
    screenshot(page, "study-screened")
