"""Settings layering refuses what it does not know: a mistyped config-file key or section,
or a ``DEEPFOLDER_*`` variable deepfolder never reads, is an error naming the key, where it
came from and the nearest valid key; the CLI prints it and exits 2 without a traceback."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from deepfolder.cli import main
from deepfolder.settings import (
    ENV_OVERRIDES,
    OTHER_ENV_VARS,
    Settings,
    SettingsError,
    load_settings,
)

ROOT = Path(__file__).resolve().parents[1]


def config(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "deepfolder.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def error_of(**kwargs: object) -> str:
    kwargs.setdefault("environ", {})
    with pytest.raises(SettingsError) as exc:
        load_settings(**kwargs)  # type: ignore[arg-type]
    return str(exc.value)


def flat(text: str) -> str:
    """Rich wraps long lines; compare with single spaces."""
    return " ".join(text.split())


def test_every_documented_key_is_accepted(tmp_path: Path) -> None:
    path = config(tmp_path, Settings().to_json_dict())
    assert load_settings(config_path=path, environ={}) == Settings()


def test_config_key_typo_names_key_file_and_nearest_key(tmp_path: Path) -> None:
    path = config(tmp_path, {"retrieval": {"rerank_dept": 5, "k": 4}})
    assert error_of(config_path=path) == (
        f"settings: unknown key 'retrieval.rerank_dept' in {path} — "
        "did you mean 'retrieval.rerank_depth'?"
    )


def test_config_key_in_the_wrong_section_points_to_the_right_one(tmp_path: Path) -> None:
    message = error_of(config_path=config(tmp_path, {"model": {"n_threads": 2}}))
    assert "unknown key 'model.n_threads'" in message
    assert message.endswith("did you mean 'embedded.n_threads'?")
    message = error_of(config_path=config(tmp_path, {"max_turns": 40}))
    assert message.endswith("did you mean 'agent.max_turns'?")
    message = error_of(config_path=config(tmp_path, {"retrieval.k": 5}))
    assert message.endswith('nest it: {"retrieval": {"k": …}}')


def test_config_key_without_a_near_one_lists_the_section_keys(tmp_path: Path) -> None:
    message = error_of(config_path=config(tmp_path, {"agent": {"zzz": 1}}))
    assert "unknown key 'agent.zzz'" in message
    assert "(the keys of 'agent' are: policy, max_turns," in message


def test_unknown_config_section(tmp_path: Path) -> None:
    path = config(tmp_path, {"retreival": {"k": 4}})
    assert error_of(config_path=path) == (
        f"settings: unknown section 'retreival' in {path} — did you mean 'retrieval'?"
    )
    path = config(tmp_path, {"cache-dir": "/tmp/c"})  # not a section: a key
    assert error_of(config_path=path) == (
        f"settings: unknown key 'cache-dir' in {path} — did you mean 'cache_dir'?"
    )


def test_every_unknown_key_is_reported_at_once(tmp_path: Path) -> None:
    path = config(tmp_path, {"agent": {"max_turn": 3}, "validate": {"max_revision": 1}})
    lines = error_of(config_path=path).splitlines()
    assert [line.split("'")[1] for line in lines] == ["agent.max_turn", "validate.max_revision"]


def test_config_file_that_is_not_an_object(tmp_path: Path) -> None:
    path = config(tmp_path, [{"agent": {}}])
    assert error_of(config_path=path) == f"config file {path} must hold a JSON object of settings"
    assert "cannot be read" in error_of(config_path=tmp_path)


def test_config_file_from_the_environment_names_that_file(tmp_path: Path) -> None:
    path = config(tmp_path, {"agent": {"polcy": "agent"}})
    message = error_of(environ={"DEEPFOLDER_CONFIG": str(path)})
    assert message.startswith(f"settings: unknown key 'agent.polcy' in {path}")
    assert message.endswith("did you mean 'agent.policy'?")


def test_unknown_key_in_overrides() -> None:
    message = error_of(overrides={"agent": {"max_turnz": 3}})
    assert message == (
        "settings: unknown key 'agent.max_turnz' in the command-line settings — "
        "did you mean 'agent.max_turns'?"
    )


def test_environment_variable_typo_names_the_variable_and_the_nearest() -> None:
    message = error_of(environ={"DEEPFOLDER_MODLE": "openai:gpt-4o-mini"})
    assert message == (
        "settings: unknown environment variable DEEPFOLDER_MODLE — did you mean DEEPFOLDER_MODEL?"
    )
    message = error_of(environ={"DEEPFOLDER_CAHCE": "/tmp/c"})
    assert message.endswith("did you mean DEEPFOLDER_CACHE?")


def test_environment_variable_for_a_setting_without_one() -> None:
    message = error_of(environ={"DEEPFOLDER_MAX_TURNS": "40"})
    assert message.endswith("no variable sets 'agent.max_turns'; put it in the config file")
    message = error_of(environ={"DEEPFOLDER_RETRIEVAL__K": "4"})
    assert "the settings variables are DEEPFOLDER_MODEL, DEEPFOLDER_BASE_URL" in message


def test_non_settings_variables_are_accepted(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = {var: "1" for var in OTHER_ENV_VARS} | {"DEEPFOLDER_CONFIG": "", "DEEPFOLDER_X": ""}
    env["DEEPFOLDER_CACHE"] = str(tmp_path / "cache")
    env["DEEPFOLDER_THREADS"] = "2"  # the ingest workers set it in their processes
    settings = load_settings(environ=env)
    assert settings.embedded.n_threads == 2
    monkeypatch.setenv("DEEPFOLDER_CACHE", str(tmp_path / "cache"))
    assert load_settings().cache_path() == tmp_path / "cache"


def test_key_variable_named_by_a_setting_is_accepted(tmp_path: Path) -> None:
    env = {"DEEPFOLDER_API_KEY_ENV": "DEEPFOLDER_TEAM_KEY", "DEEPFOLDER_TEAM_KEY": "sk-x"}
    assert load_settings(environ=env).model.api_key_env == "DEEPFOLDER_TEAM_KEY"
    path = config(tmp_path, {"model": {"vision_api_key_env": "DEEPFOLDER_VISION_KEY"}})
    load_settings(config_path=path, environ={"DEEPFOLDER_VISION_KEY": "sk-y"})
    assert "DEEPFOLDER_TEAM_KEY" in error_of(environ={"DEEPFOLDER_TEAM_KEY": "sk-x"})


def test_every_deepfolder_variable_the_code_reads_is_known() -> None:
    """A new DEEPFOLDER_* variable read anywhere must join ENV_OVERRIDES or OTHER_ENV_VARS,
    or load_settings would refuse it."""
    known = set(ENV_OVERRIDES) | set(OTHER_ENV_VARS)
    used: dict[str, str] = {}
    for folder in ("src", "scripts", "benchmarks", "tests"):
        for path in (ROOT / folder).rglob("*.py"):
            if path.resolve() == Path(__file__).resolve():
                continue
            for var in re.findall(r"DEEPFOLDER_[A-Z0-9_]*[A-Z0-9]", path.read_text("utf-8")):
                used.setdefault(var, str(path.relative_to(ROOT)))
    assert {var: where for var, where in used.items() if var not in known} == {}


def test_cli_reports_a_config_typo_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config(tmp_path, {"retrieval": {"rerank_dept": 5}})
    assert main(["ingest", str(tmp_path), "--config", str(path)]) == 2
    err = flat(capsys.readouterr().err)
    assert err == (
        f"error: settings: unknown key 'retrieval.rerank_dept' in {path} — "
        "did you mean 'retrieval.rerank_depth'?"
    )


def test_cli_reports_an_environment_typo_without_a_traceback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEEPFOLDER_")}
    env |= {"PYTHONPATH": str(ROOT / "src"), "NO_COLOR": "1", "DEEPFOLDER_POLCY": "agent"}
    env |= {"DEEPFOLDER_CACHE": str(tmp_path / "cache"), "DEEPFOLDER_ALLOW_MODEL_REQUESTS": "0"}
    command = [sys.executable, "-m", "deepfolder.cli", "ingest", str(tmp_path)]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert flat(proc.stderr) == (
        "error: settings: unknown environment variable DEEPFOLDER_POLCY — "
        "did you mean DEEPFOLDER_POLICY?"
    )
    assert not (tmp_path / "cache").exists()  # refused before any work
