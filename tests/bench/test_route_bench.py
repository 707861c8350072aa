import json

import pytest

from loramem.cli import main


def test_bench_route_on_a_small_catalogue(capsys, monkeypatch):
    monkeypatch.setattr("sys.argv", ["loramem", "bench", "route", "--memories", "500", "--json", "--top-k", "3"])
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code in (0, None)
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["memories"] == 500 and result["top_k"] == 3
    assert 0 < result["route_p50_ms"] <= result["route_p99_ms"] and result["open_s"] > 0
