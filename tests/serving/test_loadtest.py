"""The load test, at a tiny size: three modes in interleaved rounds, no errors, ratios, a JSON report."""

import argparse
import json

from keras_tasks.serving import loadtest, options


def test_loadtest_reports_three_modes_with_ratios(tmp_path, install, capsys):
    install(tmp_path / "models", "toy", 1, "text")
    report_path = tmp_path / "serving.json"
    report_path.write_text(json.dumps({"runs": {"other": {"model": "other"}}}))
    parser = options.loadtest_arguments(argparse.ArgumentParser())
    args = parser.parse_args(
        ["--model-base-path", str(tmp_path / "models"), "--model", "toy", "--requests", "40", "--concurrency", "4",
         "--max-batch-size", "4", "--rounds", "2", "--json", str(report_path)]
    )
    assert loadtest.main(args) == 0

    printed = capsys.readouterr().out
    assert "| in-process | 40 | 0 |" in printed and "| server + batching | 40 | 0 |" in printed
    runs = json.loads(report_path.read_text())["runs"]
    assert sorted(runs) == ["other", "toy"]
    report = runs["toy"]
    assert [result["mode"] for result in report["results"]] == ["in-process", "server", "server + batching"]
    for result in report["results"]:
        assert result["requests"] == 40 and result["errors"] == 0
        assert result["throughput_rps"] > 0 and 0 < result["p50_ms"] <= result["p99_ms"]
    for result in report["results"][1:]:
        assert result["server_exit_status"] == 0 and result["examples_per_model_call"] >= 1
        assert {"throughput_ratio", "p50_ratio", "p99_ratio"} <= set(result)
    assert report["server_matches_in_process"] == {"server": True, "server + batching": True}
