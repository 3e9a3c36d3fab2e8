"""`wingface data` and `wingface prepare` through `wingface.cli.main.main`, plus argument errors."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from wingface.cli.main import main
from wingface.data.cache import load_cache

from conftest import SYNTHETIC_TEST, SYNTHETIC_TRAIN


def _split_counts(out: str) -> dict[str, int]:
    """{split: faces} from the lines `wingface data` prints per split."""
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^\s+(\S+)\s+(\d+) faces", out, re.MULTILINE)}


def _damage(root: Path) -> dict[str, Path]:
    """Break three training items: a corrupt image, a 67-point .pts and a garbage .pts."""
    corrupt = root / "lfpw/trainset/synth_lfpw_00000.png"
    corrupt.write_bytes(b"\x89PNG but not really")
    short = root / "helen/trainset/synth_helen_00001.pts"
    lines = short.read_text().splitlines()
    body = lines[lines.index("{") + 1: lines.index("}")][:67]
    short.write_text("version: 1\nn_points: 67\n{\n" + "\n".join(body) + "\n}\n")
    garbage = root / "afw/synth_afw_00000.pts"
    garbage.write_text("these are not the points you are looking for\n")
    return {"corrupt": corrupt, "short": short, "garbage": garbage}


def _one_line_error(err: str, verb: str) -> str:
    """The single error line on stderr (a progress bar may precede it); no traceback."""
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if "error" in line]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"wingface {verb}: error: ")
    return lines[0]


# ----------------------------------------------------------------------------- data


def test_data_reports_splits(synthetic_300w: Path, capsys) -> None:
    assert main(["data", str(synthetic_300w)]) == 0
    out = capsys.readouterr().out
    assert "300w dataset" in out and "300w-68 (68 points)" in out
    assert _split_counts(out) == {"300w-train": SYNTHETIC_TRAIN, "300w-common": SYNTHETIC_TEST,
                                  "all": SYNTHETIC_TRAIN + SYNTHETIC_TEST}
    assert "skipped" not in out


def test_data_reports_skipped_items(synthetic_300w_copy: Path, capsys) -> None:
    bad = _damage(synthetic_300w_copy)
    assert main(["data", str(synthetic_300w_copy)]) == 0
    out = capsys.readouterr().out
    # `data` parses annotations only; the corrupt image is found when it is decoded (prepare).
    assert _split_counts(out)["300w-train"] == SYNTHETIC_TRAIN - 2
    assert "(2 skipped)" in out
    assert str(bad["short"]) in out and "67 points, expected 68" in out
    assert str(bad["garbage"]) in out and "n_points" in out


def test_data_with_format_option(synthetic_300w: Path, capsys) -> None:
    assert main(["data", str(synthetic_300w), "--format", "300w"]) == 0
    assert _split_counts(capsys.readouterr().out)["300w-common"] == SYNTHETIC_TEST


# ----------------------------------------------------------------------------- prepare


def test_prepare_writes_cache(synthetic_300w: Path, tmp_path: Path, capsys) -> None:
    out_dir = tmp_path / "cache"
    code = main(["prepare", str(synthetic_300w), "--split", "300w-common", "--out", str(out_dir),
                 "--crop-size", "32", "--context", "1.5"])
    assert code == 0
    out = capsys.readouterr().out
    assert f"wrote {SYNTHETIC_TEST} faces to {out_dir}" in out and "skipped" not in out
    cache = load_cache(out_dir)
    assert len(cache) == SYNTHETIC_TEST and cache.crop_size == 32
    assert cache.meta["context"] == 1.5
    assert cache.meta["source"] == {"dataset": str(synthetic_300w), "format": "300w", "split": "300w-common"}


def test_prepare_defaults_to_training_split(synthetic_300w: Path, tmp_path: Path, capsys) -> None:
    assert main(["prepare", str(synthetic_300w), "--out", str(tmp_path / "cache"), "--crop-size", "32"]) == 0
    assert len(load_cache(tmp_path / "cache")) == SYNTHETIC_TRAIN


def test_prepare_skips_bad_items_and_summarises(synthetic_300w_copy: Path, tmp_path: Path, capsys) -> None:
    bad = _damage(synthetic_300w_copy)
    assert main(["prepare", str(synthetic_300w_copy), "--out", str(tmp_path / "cache"), "--crop-size", "32"]) == 0
    out = capsys.readouterr().out
    assert f"wrote {SYNTHETIC_TRAIN - 3} faces" in out and "skipped 3:" in out
    skipped = [line for line in out.splitlines() if line.strip().startswith("skipped:")]
    assert len(skipped) == 3
    for path in bad.values():
        assert sum(str(path) in line for line in skipped) == 1  # each named exactly once
    cache = load_cache(tmp_path / "cache")
    assert len(cache) == SYNTHETIC_TRAIN - 3
    assert len(cache.meta["skipped"]) == 1  # the corrupt image; the reader dropped the other two
    assert np.isfinite(cache.points).all()


@pytest.mark.parametrize("which", ["corrupt", "short", "garbage"])
def test_prepare_strict_fails_naming_file(synthetic_300w: Path, synthetic_300w_copy: Path, tmp_path: Path,
                                          capsys, which: str) -> None:
    bad = _damage(synthetic_300w_copy)
    for name, path in bad.items():  # keep only one bad item
        if name != which:
            shutil.copyfile(synthetic_300w / path.relative_to(synthetic_300w_copy), path)
    out_dir = tmp_path / "cache"
    assert main(["prepare", str(synthetic_300w_copy), "--out", str(out_dir), "--crop-size", "32", "--strict"]) == 2
    line = _one_line_error(capsys.readouterr().err, "prepare")
    assert "--strict" in line and str(bad[which]) in line
    assert list(tmp_path.iterdir()) == [synthetic_300w_copy]  # no cache, no temporary


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize("verb", ["data", "prepare"])
def test_missing_path_is_a_one_line_error(tmp_path: Path, capsys, verb: str) -> None:
    missing = tmp_path / "no-such-folder"
    argv = [verb, str(missing)] + (["--out", str(tmp_path / "cache")] if verb == "prepare" else [])
    assert main(argv) == 2
    line = _one_line_error(capsys.readouterr().err, verb)
    assert str(missing) in line and "not found" in line


@pytest.mark.parametrize("verb", ["data", "prepare"])
def test_empty_folder_is_a_one_line_error(tmp_path: Path, capsys, verb: str) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    argv = [verb, str(empty)] + (["--out", str(tmp_path / "cache")] if verb == "prepare" else [])
    assert main(argv) == 2
    line = _one_line_error(capsys.readouterr().err, verb)
    assert str(empty) in line and "no known dataset format" in line
    assert not (tmp_path / "cache").exists()


def test_unknown_split_is_a_one_line_error(synthetic_300w: Path, tmp_path: Path, capsys) -> None:
    argv = ["prepare", str(synthetic_300w), "--split", "300w-tran", "--out", str(tmp_path / "cache")]
    assert main(argv) == 2
    assert "did you mean '300w-train'" in _one_line_error(capsys.readouterr().err, "prepare")


def test_unknown_format_is_a_one_line_error(synthetic_300w: Path, capsys) -> None:
    assert main(["data", str(synthetic_300w), "--format", "300W"]) == 2
    assert "did you mean '300w'" in _one_line_error(capsys.readouterr().err, "data")


@pytest.mark.parametrize(
    "argv, hint",
    [
        (["dta", "x"], "'data'"),
        (["prepar", "x", "--out", "y"], "'prepare'"),
        (["data", "x", "--fromat", "300w"], "'--format'"),
        (["prepare", "x", "--out", "y", "--crop_size", "64"], "'--crop-size'"),
        (["prepare", "x", "--out", "y", "--strictt"], "'--strict'"),
    ],
)
def test_mistyped_verb_or_option_suggests_one(argv: list[str], hint: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"did you mean {hint}?" in err and "Traceback" not in err


def test_prepare_requires_out(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["prepare", "x"])
    assert exit_info.value.code == 2
    assert "--out" in capsys.readouterr().err


# ----------------------------------------------------------------------------- real 300-W data


def test_data_on_real_300w(shared_300w: Path, capsys) -> None:
    assert main(["data", str(shared_300w)]) == 0
    out = capsys.readouterr().out
    counts = _split_counts(out)
    assert counts["300w-train"] == 2012
    assert counts["300w-common"] == 554
    assert "skipped" not in out
