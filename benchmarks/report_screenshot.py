"""Render a report.html in headless Chromium and save a screenshot, to see the page as a reader does.

    python benchmarks/report_screenshot.py [REPORT_HTML] [-o PNG]

Without REPORT_HTML it runs the main scenario (2,000 trials) into a scratch folder first. Needs a
Chromium on the PATH (Debian: apt-get install chromium); the page itself needs no network.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WINDOW = "1100,3600"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", nargs="?", help="a report.html (default: run the main scenario)")
    parser.add_argument("-o", "--output", default="report_screenshot.png", help="the PNG to write")
    args = parser.parse_args()
    browser = next((name for name in ("chromium", "chromium-browser", "google-chrome") if shutil.which(name)), None)
    if browser is None:
        print("report_screenshot: no chromium on the PATH (apt-get install chromium)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(args.report) if args.report else _run_main_scenario(Path(scratch))
        subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--window-size={WINDOW}", f"--screenshot={Path(args.output).resolve()}",
                        report.resolve().as_uri()], check=True, capture_output=True, timeout=120)
    print(f"screenshot of {report.name}: {args.output}")
    return 0


def _run_main_scenario(scratch: Path) -> Path:
    out = scratch / "run"
    subprocess.run([sys.executable, "-m", "fabricsim.cli", "run", str(ROOT / "scenarios" / "tp4_ring_allgather.yaml"),
                    "--trials", "2000", "-o", str(out)], check=True, capture_output=True)
    return out / "report.html"


if __name__ == "__main__":
    sys.exit(main())
