"""The MLflow UI, for real: a real ``mlflow server`` on a loopback port, a real run logged to it
over HTTP, its metrics and artifacts read back through the REST API, and the run page opened
in headless Chromium (Debian's ``chromium``, driven by Playwright with the system binary).

Also checks that ``dlbench ui`` serves the default store with its artifacts. Every server is
started in its own process group and killed with it (MLflow forks uvicorn workers).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest

from dlbench.testing import fake_distribution, run_cli
from support import COURSE, MlflowServer, free_port

# One worker runs this module (and every other user of the mlflow_server fixture), so the
# server and the logged run are made once per session.
pytestmark = pytest.mark.xdist_group("mlflow-server")

CHROMIUM_ARGS = [
    "--no-sandbox", "--headless=new", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]
# Without the course data the browser check still runs, on this plugin's wav and png.
AUDIO_PLUGIN = '''
from dlbench import Experiment, Param, hookimpl


def tone(ctx):
    import numpy as np
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.arange(16000) / 16000
    wave = 0.3 * np.sin(2 * np.pi * 440 * t)
    for epoch in range(1, ctx.params["epochs"] + 1):
        ctx.log_metric("loss", 1.0 / epoch, step=epoch)
    ctx.log_audio(wave, 16000, "audio/tone.wav")
    fig, ax = plt.subplots()
    ax.plot(t[:400], wave[:400])
    ctx.log_figure(fig, "tone.png")


@hookimpl
def dlbench_experiments():
    return [Experiment(name="tone_check", summary="Logs a tone and its plot.", run=tone,
                       params=(Param("epochs", int, 5, "steps", low=1),), quick={"epochs": 3},
                       logs=("loss",), tensorflow=False)]
'''


@pytest.fixture(scope="module")
def logged_run(mlflow_server, tmp_path_factory):
    """A --quick run logged over HTTP: denoise_dense on the course data when it is here."""
    run_name = f"browser-check-{uuid.uuid4().hex[:8]}"
    args = ["run", "--quick", "--tracking-uri", mlflow_server.url, "--run-name", run_name, "--json"]
    env = {}
    listed = json.loads(run_cli(["list", "--json"]).stdout)
    if COURSE.is_dir() and any(row["name"] == "denoise_dense" for row in listed):
        args[1:1] = ["denoise_dense", "--data", str(COURSE)]
    else:
        site = fake_distribution(tmp_path_factory.mktemp("site"), "tone_plugin", AUDIO_PLUGIN)
        env.update(PYTHONPATH=str(site), DLBENCH_LOAD_PLUGINS="tone_plugin")
        args[1:1] = ["tone_check"]
    out = run_cli(args, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    summary = json.loads(out.stdout)
    return {**summary, "run_name": run_name, "experiment": args[1]}


def test_rest_api_shows_run_metrics_and_artifacts(mlflow_server, logged_run):
    run = mlflow_server.api("runs/get", run_id=logged_run["run_id"])["run"]
    assert run["info"]["run_name"] == logged_run["run_name"]
    assert run["info"]["status"] == "FINISHED"
    assert run["info"]["artifact_uri"].startswith("mlflow-artifacts:")  # proxied by the server
    latest = {m["key"]: m["value"] for m in run["data"]["metrics"]}
    system = {k for k in latest if k.startswith("system/")}
    assert "system/cpu_utilization_percentage" in system  # the System metrics tab's
    assert {k: v for k, v in latest.items() if k not in system} == pytest.approx(
        logged_run["metrics"])

    history = mlflow_server.api("metrics/get-history", run_id=logged_run["run_id"],
                                metric_key="loss")["metrics"]
    steps = [m["step"] for m in history]
    assert steps == sorted(steps) and len(steps) >= 1
    assert history[-1]["value"] == pytest.approx(latest["loss"])

    files = mlflow_server.artifact_files(logged_run["run_id"])
    wavs = [f for f in files if f.endswith(".wav")]
    pngs = [f for f in files if f.endswith(".png")]
    assert wavs and pngs, files
    wav = mlflow_server.get("/get-artifact", path=wavs[0], run_uuid=logged_run["run_id"])
    assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE" and len(wav) > 1000
    png = mlflow_server.get("/get-artifact", path=pngs[0], run_uuid=logged_run["run_id"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_reads_an_http_server(mlflow_server, logged_run):
    out = run_cli(["compare", logged_run["experiment"], "-m", "loss", "--json",
                   "--tracking-uri", mlflow_server.url])
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [r["run_name"] for r in rows] == [logged_run["run_name"]]
    assert rows[0]["metrics"]["loss"] == pytest.approx(logged_run["metrics"]["loss"])


@pytest.fixture(scope="module")
def chromium():
    binary = os.environ.get("DLBENCH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(binary).is_file():
        pytest.skip(f"no Chromium at {binary} (Debian: apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install playwright; no browser download needed)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=binary, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def _keep(path: Path) -> None:
    """Copy a screenshot where CI collects test artifacts, when it says where."""
    folder = os.environ.get("DLBENCH_TEST_ARTIFACTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, Path(folder) / path.name)


def test_run_page_in_headless_chromium(chromium, mlflow_server, logged_run, tmp_path):
    page = chromium.new_page(viewport={"width": 1400, "height": 900})
    try:
        base = f"{mlflow_server.url}/#/experiments/{logged_run['experiment_id']}/runs/{logged_run['run_id']}"
        page.goto(base, wait_until="domcontentloaded", timeout=120_000)
        page.get_by_text(logged_run["run_name"]).first.wait_for(timeout=120_000)
        assert logged_run["run_id"] in page.title()
        shot = tmp_path / "mlflow-run-page.png"
        page.screenshot(path=str(shot), full_page=True)
        _keep(shot)

        # The artifacts tab lists the logged figure: artifacts are reachable from the UI.
        png = next(f for f in mlflow_server.artifact_files(logged_run["run_id"]) if f.endswith(".png"))
        page.goto(base + "/artifacts", wait_until="domcontentloaded", timeout=120_000)
        entry = page.get_by_text(Path(png).name).first
        entry.wait_for(timeout=120_000)
        # Opening it makes the page fetch the image through the server: it must come back.
        with page.expect_response(lambda r: Path(png).name in urllib.parse.unquote(r.url),
                                  timeout=120_000) as fetched:
            entry.click()
        reply = fetched.value
        assert reply.status == 200 and int(reply.headers["content-length"]) > 1000, reply.url
        # Playwright does not keep bodies the page reads as blobs: fetch the same URL again.
        with urllib.request.urlopen(reply.url, timeout=60) as again:
            assert again.read(8) == b"\x89PNG\r\n\x1a\n"
        shot = tmp_path / "mlflow-run-artifacts.png"
        page.screenshot(path=str(shot), full_page=True)
        _keep(shot)
    finally:
        page.close()
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_dlbench_ui_serves_default_store_with_artifacts(tmp_path, toy_env):
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(toy_env)
    out = run_cli(["run", "toy_fit", "--quick", "--json"], cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    run_id = json.loads(out.stdout)["run_id"]

    port = free_port()
    server = MlflowServer([sys.executable, "-m", "dlbench", "ui", "--port", str(port)], port=port,
                          cwd=tmp_path, log=tmp_path / "ui.log", env=env)
    try:
        server.wait_healthy()
        run = server.api("runs/get", run_id=run_id)["run"]
        assert run["info"]["status"] == "FINISHED"
        assert run["info"]["artifact_uri"].startswith((tmp_path / "mlruns" / "artifacts").as_uri())
        assert server.artifact_files(run_id) == ["notes/fit.txt"]
        assert server.get("/get-artifact", path="notes/fit.txt", run_uuid=run_id).startswith(b"slope ")
    finally:
        server.stop()
    assert "MLflow UI on http://127.0.0.1:%d" % port in (tmp_path / "ui.log").read_text()


def test_training_view_logged_model_and_wav_player(chromium, mlflow_server, logged_run, tmp_path):
    """The experiment as the page receives it is a model-training one; in MLflow 3.17 the
    UI's own GenAI / Model training switch picks the view (``workflowType``), and in the
    training view the experiment opens on its runs table. The run's logged model has its
    page; a .wav artifact opens in an audio player."""
    exp = logged_run["experiment_id"]
    page = chromium.new_page(viewport={"width": 1400, "height": 900})
    try:
        replies = []
        page.on("response", lambda r: replies.append(r) if "api" in r.url or "graphql" in r.url else None)
        page.goto(f"{mlflow_server.url}/#/experiments/{exp}?workflowType=machine_learning",
                  wait_until="domcontentloaded", timeout=120_000)
        page.get_by_text(logged_run["run_name"]).first.wait_for(timeout=120_000)
        assert f"/experiments/{exp}/runs" in page.url
        # What the page was told about the experiment: its kind among its tags.
        kinds = {text.count('"custom_model_development"') for text in _bodies(replies)
                 if '"mlflow.experimentKind"' in text}
        assert kinds and 0 not in kinds, [r.url for r in replies]
        _shot(page, tmp_path / "mlflow-training-view.png")

        outputs = mlflow_server.api("runs/get", run_id=logged_run["run_id"])["run"].get("outputs", {})
        models = outputs.get("model_outputs", [])
        if logged_run["experiment"] == "denoise_dense":  # the tone plugin logs no model
            (model,) = models
            page.goto(f"{mlflow_server.url}/#/experiments/{exp}/models/{model['model_id']}",
                      wait_until="domcontentloaded", timeout=120_000)
            page.get_by_text(logged_run["run_name"]).first.wait_for(timeout=120_000)
            page.get_by_text("snr_db", exact=True).first.wait_for(timeout=60_000)
            _shot(page, tmp_path / "mlflow-logged-model.png")

        wav = next(f for f in mlflow_server.artifact_files(logged_run["run_id"]) if f.endswith(".wav"))
        page.goto(f"{mlflow_server.url}/#/experiments/{exp}/runs/{logged_run['run_id']}/artifacts",
                  wait_until="domcontentloaded", timeout=120_000)
        for part in wav.split("/"):  # open the folders down to the file
            entry = page.get_by_text(part, exact=True).first
            entry.wait_for(timeout=120_000)
            entry.click()
        player = page.locator("audio").first
        player.wait_for(state="attached", timeout=60_000)
        assert player.get_attribute("src")
        _shot(page, tmp_path / "mlflow-wav-player.png")
    finally:
        page.close()


def _shot(page, path: Path) -> None:
    page.screenshot(path=str(path), full_page=True)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    _keep(path)


def _bodies(replies) -> list[str]:
    texts = []
    for reply in replies:
        try:
            texts.append(reply.text())
        except Exception:  # redirects and bodies the browser did not keep
            pass
    return texts
