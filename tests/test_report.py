"""report.html: one self-contained page per run and per comparison, its structure read back with
the standard library's HTML parser (sections, inline pictures, tables, nothing from the network)."""

import base64
from html.parser import HTMLParser
from pathlib import Path

from fabricsim.cli import main

SCENARIO_YAML = """\
name: report_test
seed: 2
fabric: {hosts: 4}
workload: {rule: data_sizes, data_sizes: [256KiB], trials: 30}
impairments:
  jitter: {distribution: lognormal, median: 5us, sigma: 1.0}
  loss: {rate: 2.0e-2, timeout_exponent: 12, retry_count: 0}
"""


class Page(HTMLParser):
    """What a page holds: its headings, images, table rows and every link or source it names."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.headings, self.images, self.rows, self.references, self.pre = [], [], [], [], []
        self._in = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.references += [value for key, value in attrs.items() if key in ("src", "href")]
        if tag == "img":
            self.images.append(attrs["src"])
        if tag == "tr":
            self.rows.append(attrs.get("class"))
        self._in = tag

    def handle_endtag(self, tag):
        self._in = None

    def handle_data(self, data):
        if self._in == "h2":
            self.headings.append(data)
        if self._in == "pre":
            self.pre.append(data)


def test_run_report_is_one_self_contained_page(tmp_path):
    scenario = tmp_path / "report_test.yaml"
    scenario.write_text(SCENARIO_YAML)
    assert main(["run", str(scenario), "-o", str(tmp_path / "run")]) == 0
    text = (tmp_path / "run" / "report.html").read_text()
    page = Page(text)
    assert page.headings == ["Summary", "Pictures", "The 20 slowest trials", "Scenario"]
    assert len(page.images) == 4 and all(src.startswith("data:image/png;base64,") for src in page.images)
    first_png = base64.b64decode(page.images[0].split(",", 1)[1])
    assert first_png == (tmp_path / "run" / "cdf.png").read_bytes()
    assert all(ref.startswith("data:") for ref in page.references)  # nothing to fetch: opens offline
    summary, scenario_text = page.pre
    assert "median trial" in summary and "p99 trial: needs 100 trials, got" in summary
    assert scenario_text == (tmp_path / "run" / "scenario.resolved.yaml").read_text()
    failed = sum(line.split(",")[5] == "1" for line in (tmp_path / "run" / "trials.csv").read_text().splitlines()[1:])
    assert 0 < failed and page.rows.count("failed") == min(failed, 20)  # failed ones are among the slowest
    assert len(page.rows) == 1 + 20


def test_compare_report_holds_the_table_verdicts_and_pictures(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    slow, fast = tmp_path / "slow.yaml", tmp_path / "fast.yaml"
    slow.write_text(SCENARIO_YAML.replace("report_test", "slow"))
    fast.write_text(SCENARIO_YAML.replace("report_test", "fast").replace("fabric: {hosts: 4}",
                                                                         "fabric: {hosts: 4, nic: {bandwidth: 400Gbps}}"))
    assert main(["compare", str(slow), str(fast), "-o", "cmp"]) == 0
    page = Page(Path("cmp/report.html").read_text())
    assert page.headings == ["Comparison", "Pictures"] and len(page.images) == 3
    assert len(page.rows) == 3 and all(ref.startswith("data:") for ref in page.references)
    assert "p99 of fast vs slow: needs 100 successful trials each" in page.pre[0]
