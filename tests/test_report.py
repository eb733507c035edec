"""The HTML report: content, self-containment, degraded cases, errors, and what a browser shows.

The browser test renders the report in headless Chromium (skipped when /usr/bin/chromium is
missing), reads where each section and image landed on the page, takes a full-page screenshot and
checks that the rendered pixels there are the embedded plots and images.
"""

import argparse
import base64
import io
import json
import os
import re
import shutil
import subprocess
import types

import numpy as np
import pytest
from PIL import Image

import memjax
from memjax import report

CHROMIUM = "/usr/bin/chromium"
IMG_RE = re.compile(r'<img class="([^"]*)" alt="([^"]*)" src="data:image/png;base64,([^"]*)">')
SECTIONS = ("summary", "histogram", "examples", "cscore", "epochs", "attacks", "configuration")


# ----------------------------------------------------------------------------------------------
# Fixtures: one tiny image run reloadable from its data spec, one tiny in-memory vector run
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_npz(tmp_path_factory, digits):
  """300 training / 100 test digits as an .npz with images in [0, 1]."""
  path = tmp_path_factory.mktemp("data") / "digits300.npz"
  np.savez(path, x_train=digits.raw_train[:300], y_train=digits.y_train[:300],
           x_test=digits.raw_train[300:400], y_test=digits.y_train[300:400])
  return str(path)


@pytest.fixture(scope="module")
def image_run(tmp_path_factory, digits_npz):
  """8 MLPs, 3 epochs evaluated after each, saved with data spec npz:PATH."""
  directory = str(tmp_path_factory.mktemp("runs") / "image")
  memjax.train(f"npz:{digits_npz}", model="mlp", models=8, epochs=3, eval_every=1, seed=0,
               progress=False, directory=directory)
  return directory


@pytest.fixture(scope="module")
def vector_run(tmp_path_factory, digits):
  """4 logistic regressions on 64-d vectors from in-memory arrays (no data spec), one eval."""
  x = digits.x_train[:300].reshape(300, -1)
  data = memjax.from_arrays(x, digits.y_train[:300], x[:50], digits.y_train[:50], name="vectors")
  directory = str(tmp_path_factory.mktemp("runs") / "vector")
  return memjax.train(data, model="logreg", models=4, epochs=2, progress=False,
                      directory=directory)


def _copy_run(src, tmp_path, name="copy"):
  dst = str(tmp_path / name)
  shutil.copytree(src, dst)
  for stale in ("report.html", "attacks.json", "roc.png"):
    if os.path.exists(os.path.join(dst, stale)):
      os.remove(os.path.join(dst, stale))
  return dst


def _edit_run_json(directory, **changes):
  path = os.path.join(directory, "run.json")
  with open(path) as f:
    info = json.load(f)
  info.update(changes)
  with open(path, "w") as f:
    json.dump(info, f)


def _synthetic_attacks(num_models=8, num_examples=300):
  """An attacks.json in the format of memjax.attacks.AttackResults.to_dict."""
  fpr = np.concatenate([[0.0], np.logspace(-3, 0, 40)])
  attacks = {}
  for k, name in enumerate(("lira_online", "rmia", "loss")):
    tpr = np.minimum(1.0, fpr ** (0.5 + 0.15 * k))
    attacks[name] = {
        "auc": 0.75 - 0.05 * k, "balanced_accuracy": 0.68 - 0.04 * k,
        "tpr_at_fpr": {"0.01": 0.08 - 0.02 * k, "0.001": None},
        "num_members": num_models * num_examples // 2,
        "num_nonmembers": num_models * num_examples // 2, "seconds": 0.1,
        "roc": {"fpr": fpr.tolist(), "tpr": tpr.tolist()},
        "per_target": {"auc": [0.74 - 0.05 * k, 0.76 - 0.05 * k, None]},
    }
  return {"format": "memjax.attack_results/1", "num_models": num_models,
          "num_examples": num_examples, "num_population": 100,
          "targets": list(range(num_models)), "fprs": [0.01, 0.001], "timings": {},
          "attacks": attacks}


def _images(page):
  """[(class, alt, decoded PIL image, png byte count)] of every <img> in the page."""
  out = []
  for cls, alt, data in IMG_RE.findall(page):
    raw = base64.b64decode(data, validate=True)
    assert raw.startswith(report.PNG_MAGIC), alt
    image = Image.open(io.BytesIO(raw))
    image.load()
    out.append((cls, alt, image, len(raw)))
  return out


def _num_colours(rgb, step=8):
  """Distinct colours of an [H, W, 3] 0..255 array, each channel quantised to multiples of step."""
  q = np.asarray(rgb, np.int64) // step
  return len(np.unique((q[..., 0] * 256 + q[..., 1]) * 256 + q[..., 2]))


def _read(path):
  with open(path, encoding="utf-8") as f:
    return f.read()


# ----------------------------------------------------------------------------------------------
# Content
# ----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_report_of_an_image_run_has_every_section_and_real_figures(image_run):
  path = report.write_report(image_run)
  assert path == os.path.join(image_run, "report.html")
  page = _read(path)
  for sid in SECTIONS:
    assert f'<section id="{sid}">' in page, sid
  images = _images(page)
  alts = [alt for _, alt, _, _ in images]
  assert alts == ["histogram of memorization scores", "most memorized training images",
                  "least memorized training images", "held-out accuracy against memorization",
                  "accuracy and memorization per epoch"]
  for _, alt, image, nbytes in images:
    assert image.format == "PNG" and image.width >= 500 and image.height >= 300, alt
    assert nbytes > 10_000, (alt, nbytes)
    pixels = np.asarray(image.convert("RGB"))
    assert _num_colours(pixels, step=1) > 30, alt  # a drawing, not a blank
  # Numbers a researcher reads: threshold, config, timings, the per-epoch table (3 epochs).
  assert "count as memorized" in page and "0.25" in page
  assert "learning_rate" in page and "model-epochs/s" in page and "jax version" in page
  assert page.count("<tr><td class=\"num\">") >= 3
  assert "memjax attack DIR" in page  # no attack results yet: the page says how to get them


@pytest.mark.slow
def test_report_is_self_contained(image_run):
  page = _read(report.write_report(image_run, os.path.join(image_run, "self.html")))
  assert "<script" not in page and "<link" not in page and "@import" not in page
  assert not re.search(r'(src|href)="(?!data:image/png;base64,|#)', page)
  assert "url(" not in page


@pytest.mark.slow
def test_most_memorized_are_ranked_by_score(image_run):
  run = memjax.Run.load(image_run)
  scores = run.scores()
  most, least = report.ranked_examples(scores, 10)
  mem = scores["memorization"]
  assert np.all(np.diff(mem[most]) <= 0) and np.all(np.diff(mem[least]) >= 0)
  assert mem[most[0]] == np.nanmax(mem) and mem[least[0]] == np.nanmin(mem)


@pytest.mark.slow
def test_epoch_table_matches_the_estimators(image_run):
  run = memjax.Run.load(image_run)
  table = report.epoch_table(run.records)
  assert table["epoch"].tolist() == [1, 2, 3]
  final = memjax.memorization(run.correct, run.keep)
  assert table["memorized"][-1] == memjax.count_memorized(final)
  np.testing.assert_allclose(table["mean_memorization"][-1], np.nanmean(final))
  np.testing.assert_allclose(table["test_accuracy"], run.records.test_accuracy().mean(-1))


def test_epoch_table_equals_the_per_epoch_loop():
  # The vectorised table against the loop it replaced: one estimators.memorization per epoch.
  rng = np.random.default_rng(0)
  t, m, n = 4, 10, 30
  keep = rng.random((m, n)) < 0.5
  keep[:, 0], keep[:, 1] = True, False  # NaN scores for examples 0 and 1
  correct = rng.random((t, m, n)) < np.where(keep, 0.8, 0.5)
  records = types.SimpleNamespace(
      keep=keep, eval_epochs=np.arange(1, t + 1), train_correct=correct,
      train_accuracy=lambda: np.ones((t, m)), heldout_accuracy=lambda: np.ones((t, m)),
      test_accuracy=lambda: np.ones((t, m)))
  for threshold in (0.25, 0.1):
    table = report.epoch_table(records, threshold)
    mems = [memjax.memorization(correct[e], keep) for e in range(t)]
    np.testing.assert_array_equal(table["mean_memorization"], [np.nanmean(x) for x in mems])
    np.testing.assert_array_equal(table["memorized"],
                                  [memjax.count_memorized(x, threshold) for x in mems])
    assert table["memorized"].dtype == np.int64
  # No example with both IN and OUT models: every score NaN, the mean n/a, nothing memorized.
  records.keep = np.ones((m, n), bool)
  table = report.epoch_table(records)
  assert np.isnan(table["mean_memorization"]).all() and table["memorized"].tolist() == [0] * t


def test_display_images_scales_to_unit_range():
  u8 = np.array([[[[0], [255]]]], np.uint8)
  np.testing.assert_allclose(report.display_images(u8)[..., 0], [[[0.0, 1.0]]])
  unit = np.full((1, 2, 2, 3), 0.5, np.float32)
  np.testing.assert_array_equal(report.display_images(unit), unit)
  standardised = np.array([[[[-2.0], [2.0]]]])
  np.testing.assert_allclose(report.display_images(standardised)[..., 0], [[[0.0, 1.0]]])


@pytest.mark.slow
def test_attack_results_from_json_without_roc_png(image_run, tmp_path):
  run_dir = _copy_run(image_run, tmp_path)
  with open(os.path.join(run_dir, "attacks.json"), "w") as f:
    json.dump(_synthetic_attacks(), f)
  page = _read(report.write_report(run_dir))
  alts = [alt for _, alt, _, _ in _images(page)]
  assert "membership inference ROC (log-log)" in alts  # drawn from the JSON curves
  attacks = page[page.index('<section id="attacks">'):page.index('<section id="configuration">')]
  for name in ("lira_online", "rmia", "loss"):
    assert f"<td>{name}</td>" in attacks
  assert "TPR @ 1% FPR" in attacks and "8.00%" in attacks and "n/a" in attacks
  assert "0.7500" in attacks  # the AUC of lira_online


@pytest.mark.slow
def test_attack_results_of_memjax_attack_are_embedded(image_run, tmp_path):
  audit = pytest.importorskip("memjax.audit", reason="memjax.audit (memjax attack) not present")
  run_dir = _copy_run(image_run, tmp_path)
  results = audit.audit(run_dir)
  page = _read(report.write_report(run_dir))
  with open(os.path.join(run_dir, "roc.png"), "rb") as f:
    roc = f.read()
  assert base64.b64encode(roc).decode() in page  # roc.png itself, not a redrawing
  for name in results.attacks:
    assert f"<td>{name}</td>" in page
  alts = [alt for _, alt, _, _ in _images(page)]
  assert "memorization against per-example attack AUC" in alts  # scores.csv gained mia_auc_*


# ----------------------------------------------------------------------------------------------
# Degraded cases
# ----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_report_without_reloadable_data_lists_examples_and_says_why(image_run, tmp_path,
                                                                    digits_npz):
  run_dir = _copy_run(image_run, tmp_path)
  _edit_run_json(run_dir, data_spec="npz:/nonexistent/moved.npz")
  page = _read(report.write_report(run_dir))
  assert "Could not reload the training data" in page and "--data SPEC" in page
  alts = [alt for _, alt, _, _ in _images(page)]
  assert "most memorized training images" not in alts
  assert "histogram of memorization scores" in alts
  assert "<h3>Most memorized</h3>" in page  # the examples as a table instead
  # --data points the report at the moved file: the images come back.
  page = _read(report.write_report(run_dir, data=f"npz:{digits_npz}"))
  assert "most memorized training images" in [alt for _, alt, _, _ in _images(page)]
  # Data of another size is refused with a note, not drawn with wrong labels.
  page = _read(report.write_report(run_dir, data="digits"))
  assert "does not match the run" in page


@pytest.mark.slow
def test_vector_run_gets_tables_and_no_epoch_curves(vector_run):
  page = _read(report.write_report(vector_run.directory))
  assert "in-memory arrays" in page  # no data spec: says how to pass the data
  assert "<h3>Most memorized</h3>" in page and "<h3>Least memorized</h3>" in page
  assert "--eval-every" in page  # a single evaluation: no per-epoch curves, a hint instead
  alts = [alt for _, alt, _, _ in _images(page)]
  assert "accuracy and memorization per epoch" not in alts
  # Given the Run object the report takes its in-memory data: not images, so still a table.
  page = _read(report.write_report(vector_run))
  assert "in-memory arrays" not in page and "The data is not images" in page


# ----------------------------------------------------------------------------------------------
# Errors and the command line
# ----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_bad_directories_raise_clear_errors(image_run, tmp_path):
  with pytest.raises(memjax.MemjaxError, match="is not a directory"):
    report.write_report(str(tmp_path / "missing"))
  with pytest.raises(memjax.MemjaxError, match="no run.json"):
    report.write_report(str(tmp_path))
  unfinished = _copy_run(image_run, tmp_path, "unfinished")
  with open(os.path.join(unfinished, "progress.json"), "w") as f:
    json.dump({"completed_models": 4}, f)
  with pytest.raises(memjax.MemjaxError, match=r"not finished \(4 of 8.*--resume"):
    report.write_report(unfinished)
  _edit_run_json(unfinished, finished=False)
  os.remove(os.path.join(unfinished, "progress.json"))
  with pytest.raises(memjax.MemjaxError, match="not finished"):
    report.write_report(unfinished)
  with pytest.raises(memjax.MemjaxError, match="does not exist"):
    report.write_report(image_run, str(tmp_path / "no" / "such" / "dir" / "r.html"))
  with pytest.raises(memjax.MemjaxError, match="top=0"):
    report.write_report(image_run, top=0)


@pytest.mark.slow
def test_cmd_report(image_run, tmp_path, capsys):
  parser = argparse.ArgumentParser(prog="memjax")
  report.add_report_parser(parser.add_subparsers(dest="command"))
  out = str(tmp_path / "r.html")
  args = parser.parse_args(["report", image_run, "--out", out, "--top", "8"])
  assert args.func(args) == 0
  assert f"wrote {out}" in capsys.readouterr().out
  assert len(_images(_read(out))) == 5


@pytest.mark.slow
def test_memjax_report_command_line(image_run, tmp_path, capsys):
  from memjax import cli
  if "report" not in getattr(cli, "COMMANDS", {}):
    pytest.skip("memjax.cli does not wire `memjax report` yet (see memjax/report.py "
                "add_report_parser / cmd_report)")
  out = str(tmp_path / "cli.html")
  assert cli.main(["report", image_run, "--out", out]) == 0
  assert os.path.exists(out)
  assert cli.main(["report", str(tmp_path)]) == 2
  assert "no run.json" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------
# In a browser
# ----------------------------------------------------------------------------------------------

_LAYOUT_SCRIPT = """<script>
addEventListener('load', () => {
  const box = e => { const r = e.getBoundingClientRect();
    return [r.left + scrollX, r.top + scrollY, r.width, r.height]; };
  const out = {height: document.documentElement.scrollHeight, sections: {}, images: []};
  document.querySelectorAll('section[id]').forEach(s => out.sections[s.id] = box(s));
  document.querySelectorAll('img').forEach(i => out.images.push(
      {alt: i.alt, box: box(i), natural: [i.naturalWidth, i.naturalHeight]}));
  const pre = document.createElement('pre');
  pre.id = 'layout'; pre.style.display = 'none'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""
_CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                   "--no-first-run", "--disable-background-networking",
                   "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                   "--force-device-scale-factor=1")


def _chromium(tmp_path, name, *args):
  profile = tmp_path / f"profile-{name}"
  profile.mkdir()
  result = subprocess.run([CHROMIUM, *_CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]
  return result.stdout


def _region_stats(shot, box):
  x, y, w, h = (int(round(v)) for v in box)
  crop = shot[y:y + h, x:x + w]
  non_white = float((crop.min(-1) < 235).mean())
  colours = _num_colours(crop)
  return crop, non_white, colours


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists(CHROMIUM),
                    reason=f"{CHROMIUM} missing: install Chromium (apt-get install -y chromium) "
                    "to check the rendered report")
def test_report_renders_in_chromium(image_run, tmp_path):
  run_dir = _copy_run(image_run, tmp_path)
  with open(os.path.join(run_dir, "attacks.json"), "w") as f:
    json.dump(_synthetic_attacks(), f)
  page = _read(report.write_report(run_dir))
  embedded = {alt: image for _, alt, image, _ in _images(page)}
  probe = tmp_path / "probe.html"
  probe.write_text(page.replace("</body>", _LAYOUT_SCRIPT + "</body>"), encoding="utf-8")
  dom = _chromium(tmp_path, "dom", "--window-size=1200,900", "--virtual-time-budget=10000",
                  "--dump-dom", probe.as_uri())
  layout = json.loads(re.search(r'<pre id="layout"[^>]*>(.*?)</pre>', dom, re.S).group(1))
  assert set(SECTIONS) <= set(layout["sections"])
  assert len(layout["images"]) == len(embedded) == 6
  for image in layout["images"]:  # every image decoded by the browser at its full size
    assert image["natural"] == list(embedded[image["alt"]].size), image["alt"]
    assert image["box"][2] > 300 and image["box"][3] > 200, image
  height = min(int(layout["height"]) + 10, 16000)
  shot_path = tmp_path / "report.png"
  _chromium(tmp_path, "shot", f"--window-size=1200,{height}", f"--screenshot={shot_path}",
            probe.as_uri())
  shot = np.asarray(Image.open(shot_path).convert("RGB")).astype(np.int16)
  assert shot.shape[0] >= layout["height"] - 1 and shot.shape[1] == 1200
  assert shot.std() > 20 and _num_colours(shot) > 200
  for image in layout["images"]:
    crop, non_white, colours = _region_stats(shot, image["box"])
    assert non_white > 0.02 and colours > 30, (image["alt"], non_white, colours)
    # The pixels on screen are the embedded figure, scaled to its box.
    source = embedded[image["alt"]].convert("RGB").resize(crop.shape[1::-1], Image.BILINEAR)
    diff = np.abs(crop - np.asarray(source, np.int16)).mean()
    assert diff < 6, (image["alt"], diff)
  grid = next(i for i in layout["images"] if i["alt"] == "most memorized training images")
  _, non_white, colours = _region_stats(shot, grid["box"])
  assert non_white > 0.3 and colours > 12  # dark digit tiles with many grey levels
  # The histogram section sits near the top of the page, above the example grid.
  assert layout["sections"]["histogram"][1] < layout["sections"]["examples"][1] < 3000
  if os.environ.get("MEMJAX_REPORT_SCREENSHOT"):
    shutil.copy(shot_path, os.environ["MEMJAX_REPORT_SCREENSHOT"])


def test_privacy_section_shows_theoretical_beside_empirical_epsilon():
  privacy = {"epsilon": 2.5, "delta": 1e-5, "noise_multiplier": 1.1, "clip_norm": 1.0,
             "sampling_rate": 0.01, "steps": 1000, "sampling": "poisson", "accountant": "pld",
             "epsilon_rdp": 2.9, "covered": True}
  audit = {"delta": 1e-5, "delta_source": "run", "confidence": 0.95,
           "method": "clopper_pearson", "canaries": {"count": 50, "kind": "mislabeled"},
           "theoretical": privacy, "best": {"attack": "lira_online", "epsilon": 0.8},
           "attacks": {"lira_online": {"epsilon": 0.8}, "loss": {"epsilon": 0.3}}}
  canaries = {"count": 50, "kind": "mislabeled", "seed": 0, "indices": [300, 349]}

  def section(info, attacks):
    return report._privacy_section(types.SimpleNamespace(info=info, attacks=attacks))

  assert section({"data": {}}, None) == ""  # neither a guarantee nor an audit: no section
  page = section({"data": {"canaries": canaries}, "privacy": privacy}, {"privacy_audit": audit})
  assert 'id="privacy"' in page and "epsilon = 2.5 at delta = 1e-05 (pld accountant" in page
  assert "epsilon ≥ 0.800 (lira_online, 95% confidence" in page and "loss 0.300" in page
  assert "exceeds" not in page
  # Only the guarantee (no canaries), only the audit, and a bound above the guarantee.
  assert "the run has no canaries" in section({"data": {}, "privacy": privacy}, None)
  assert "not yet computed" in section({"data": {"canaries": canaries}, "privacy": privacy},
                                       {"attacks": {}})
  only_audit = section({"data": {"canaries": canaries}}, {"privacy_audit": audit | {
      "theoretical": None}})
  assert "not trained with DP" in only_audit
  too_high = section({"data": {}, "privacy": privacy | {"epsilon": 0.5}},
                     {"privacy_audit": audit})
  assert "exceeds the theoretical epsilon" in too_high
