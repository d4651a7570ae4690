from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import polars as pl
import pytest

import actors
from streamnet import Context, Network


def _network() -> Network:
    ctx = Context()
    a, b, c = (ctx.create_channel() for _ in range(3))
    return Network(
        ctx,
        [
            actors.from_polars(ctx, a, pl.DataFrame({"x": range(10)}), chunk_rows=3),
            actors.filter(ctx, a, b, pl.col("x") > 2),
            actors.groupby_agg(ctx, b, c, "x", {"x": "len"}),
            actors.collect(ctx, c),
        ],
        name="demo net",
        pushdown=False,  # the source sends every row: the counts show the filter's work
    )


def test_dot_lists_every_actor_and_channel() -> None:
    dot = _network().to_dot()
    assert dot.startswith('digraph "demo net" {')
    for name in ("from_polars#0", "filter#0", "groupby_agg#0", "collect#0"):
        assert f'"{name}"' in dot
    assert '"from_polars#0" -> "filter#0" [label="ch#0: any"]' in dot
    assert "collective, op 0" in dot


def test_svg_without_graphviz_is_valid_and_shows_counts_after_a_run() -> None:
    net = _network()
    net.run()
    svg = net.to_svg(engine="python")
    root = ET.fromstring(svg)
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "filter#0" in texts
    assert "4 msgs, 10 rows" in texts  # source -> filter
    assert "4 msgs, 7 rows" in texts  # filter -> groupby
    assert any(t and t.startswith("done, busy") for t in texts)
    assert len(list(root.iter("{http://www.w3.org/2000/svg}rect"))) == 4


def test_notebooks_get_an_svg_and_files_get_written(tmp_path: Path) -> None:
    net = _network()
    assert net._repr_svg_().lstrip().startswith(("<svg", "<?xml"))
    assert net.save_picture(tmp_path / "n.dot").read_text().startswith("digraph")
    assert "<svg" in net.save_picture(tmp_path / "n.svg", engine="python").read_text()
    with pytest.raises(ValueError, match=r"`\.svg` or `\.dot`"):
        net.save_picture(tmp_path / "n.png")


@pytest.mark.skipif(shutil.which("dot") is not None, reason="Graphviz is installed here")
def test_asking_for_graphviz_without_it_says_how_to_get_it() -> None:
    with pytest.raises(FileNotFoundError, match="apt install graphviz"):
        _network().to_svg(engine="graphviz")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_svg_with_graphviz() -> None:
    svg = _network().to_svg(engine="graphviz")
    assert "filter#0" in svg
    ET.fromstring(svg[svg.index("<svg") :])
