"""polars is loaded through ``gaitedge._polars``: its allocator on huge pages (polars' own
``POLARS_THP`` switch) unless the user decided, and nothing said on stderr (a unit error must
not follow allocator noise)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

READ = (
    "import os\n"
    "from pathlib import Path\n"
    "from gaitedge.recording import read_recording\n"
    "p = Path({path!r})\n"
    "p.write_text('timestamp_s,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z\\n' + ''.join(\n"
    "    f'{{i / 50}},0,0,9.8,0,0,{{i}}\\n' for i in range(2000)))\n"
    "rec = read_recording(p)\n"
    "print(len(rec), os.environ['_RJEM_MALLOC_CONF'])\n"
)


@pytest.mark.parametrize("users", [None, "0"])
def test_polars_loads_with_huge_pages_unless_the_user_decided(tmp_path, users):
    env = {k: v for k, v in os.environ.items() if k not in ("POLARS_THP", "_RJEM_MALLOC_CONF")}
    if users is not None:
        env["POLARS_THP"] = users
    script = READ.format(path=str(tmp_path / "r.csv"))
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    rows, conf = out.stdout.split()
    assert rows == "2000"
    # What polars gave jemalloc when it loaded.
    assert ("thp:always" in conf.split(",")) == (users is None)
    assert out.stderr == ""
