"""Checks of saved study outputs, shared by the study tests."""

import csv
import json

import numpy as np
from PIL import Image

from memjax import formatting

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def read_csv(path):
  with open(path, newline="") as f:
    reader = csv.DictReader(f)
    return reader.fieldnames, list(reader)


def assert_csv_round_trips(result, path):
  header, rows = read_csv(path)
  assert header == list(result.columns)
  assert len(rows) == len(result.rows)
  for got, want in zip(rows, result.rows):
    for k in result.columns:
      v = want[k]
      if isinstance(v, (bool, np.bool_)):
        assert got[k] == str(bool(v))
      elif isinstance(v, (int, np.integer)):
        assert int(got[k]) == v
      elif isinstance(v, (float, np.floating)):
        np.testing.assert_equal(float(got[k]), float(v))  # exact repr, NaN == NaN
      elif isinstance(v, (list, tuple, dict)):
        assert json.loads(got[k]) == formatting.jsonable(v)
      else:
        assert got[k] == str(v)


def assert_png(path, min_size=(300, 200)):
  with open(path, "rb") as f:
    assert f.read(8) == PNG_MAGIC
  with Image.open(path) as im:
    im.verify()
  with Image.open(path) as im:
    assert im.format == "PNG"
    w, h = im.size
  assert min_size[0] <= w <= 4000 and min_size[1] <= h <= 3000, im.size
