"""The 300-W reader on a synthetic folder, the prepared training cache, and both on real 300-W data."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

import wingface.data.cache as cache_module
from wingface.cli.main import main
from wingface.data.cache import JPEG_FILE, FaceCache, compact_cache, load_cache, prepare_cache
from wingface.data.datasets import open_dataset
from wingface.data.images import read_image
from wingface.data.records import FaceRecord
from wingface.data.readers.w300 import W300Reader
from wingface.geometry import invert_affine, warp_image
from wingface.schemes import get_scheme

from conftest import SYNTHETIC_TEST, SYNTHETIC_TRAIN

SCHEME = get_scheme("300w-68")
CROP = 64  # small crops keep the synthetic tests fast; geometry does not depend on the size


def _pts_points(path: Path) -> np.ndarray:
    """float64 [L, 2] 0-based points of a .pts file, parsed independently of the reader."""
    lines = path.read_text().splitlines()
    body = lines[lines.index("{") + 1: lines.index("}")]
    return np.array([[float(v) for v in ln.split()] for ln in body]) - 1.0


def _prepare(records, out: Path, **kwargs):
    return prepare_cache(records, out, SCHEME, crop_size=CROP, progress=False, **kwargs)


def _leftovers(folder: Path) -> list[str]:
    """Hidden temporaries an atomic write may have left in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# ----------------------------------------------------------------------------- reader


def test_synthetic_folder_split_counts(synthetic_300w: Path) -> None:
    reader = open_dataset(synthetic_300w)
    assert isinstance(reader, W300Reader)
    assert reader.split_names() == ["300w-train", "300w-common", "all"]
    counts = {split: len(reader.read(split)) for split in reader.split_names()}
    assert counts == {"300w-train": SYNTHETIC_TRAIN, "300w-common": SYNTHETIC_TEST,
                      "all": SYNTHETIC_TRAIN + SYNTHETIC_TEST}
    train = reader.read("300w-train")
    assert not train.skipped
    assert {r.subset for r in train.records} == {"lfpw/trainset", "helen/trainset", "afw"}
    default = reader.read()  # the training split
    assert [r.image_path for r in default.records] == [r.image_path for r in train.records]


def test_reader_points_match_pts_files(synthetic_300w: Path) -> None:
    for record in open_dataset(synthetic_300w).read("all").records:
        assert record.points.shape == (68, 2) and record.points.dtype == np.float32
        np.testing.assert_allclose(record.points, _pts_points(record.image_path.with_suffix(".pts")), atol=1e-4)


def test_unknown_split_suggests_name(synthetic_300w: Path) -> None:
    with pytest.raises(ValueError, match="did you mean '300w-train'"):
        open_dataset(synthetic_300w).read("300w-trian")


# ----------------------------------------------------------------------------- prepare / load


def test_prepare_round_trip(synthetic_300w: Path, tmp_path: Path) -> None:
    records = open_dataset(synthetic_300w).read("300w-train").records
    summary = _prepare(records, tmp_path / "cache", source={"split": "300w-train"})
    assert summary.faces == len(records) and not summary.skipped
    cache = load_cache(tmp_path / "cache")
    n = len(records)
    assert len(cache) == n and cache.crop_size == CROP
    assert cache.images.shape == (n, CROP, CROP, 3) and cache.images.dtype == np.uint8
    assert cache.points.shape == (n, 68, 2) and cache.points.dtype == np.float32
    assert cache.visible.shape == (n, 68) and cache.visible.all()
    assert cache.to_image.shape == (n, 2, 3) and cache.to_image.dtype == np.float64
    assert cache.scheme == SCHEME
    assert cache.meta["source"] == {"split": "300w-train"}
    assert [f["image"] for f in cache.meta["faces"]] == [str(r.image_path) for r in records]
    for i, record in enumerate(records):
        pts = _pts_points(record.image_path.with_suffix(".pts"))
        assert np.abs(cache.image_points()[i] - pts).max() < 0.01
        # The crop is the original image warped by the inverse of to_image.
        expected = warp_image(read_image(record.image_path), invert_affine(cache.to_image[i]), CROP)
        np.testing.assert_array_equal(cache.images[i], expected)
    # The landmarks sit well inside the crop (context 2 around the landmark box).
    assert cache.points.min() > CROP * 0.2 and cache.points.max() < CROP * 0.8


def test_load_cache_mmap_and_subset(synthetic_300w: Path, tmp_path: Path) -> None:
    records = open_dataset(synthetic_300w).read("300w-common").records
    _prepare(records, tmp_path / "cache")
    full = load_cache(tmp_path / "cache")
    mapped = load_cache(tmp_path / "cache", mmap=True)
    assert isinstance(mapped.images, np.memmap)
    np.testing.assert_array_equal(mapped.images, full.images)
    part = full.subset([3, 1])
    assert isinstance(part, FaceCache) and len(part) == 2
    np.testing.assert_array_equal(part.points, full.points[[3, 1]])
    assert [f["image"] for f in part.meta["faces"]] == [str(records[3].image_path), str(records[1].image_path)]


def test_prepare_skips_and_reports_bad_items(synthetic_300w_copy: Path, tmp_path: Path) -> None:
    records = open_dataset(synthetic_300w_copy).read("300w-train").records
    corrupt = records[0].image_path
    corrupt.write_bytes(b"not a png at all")
    short = FaceRecord(records[1].image_path, records[1].points[:67])
    broken = FaceRecord(records[2].image_path, np.full((68, 2), np.nan, np.float32))
    missing = FaceRecord(tmp_path / "gone.png", records[3].points)
    summary = _prepare(records + [short, broken, missing], tmp_path / "cache")
    assert summary.faces == len(records) - 1
    reasons = dict(summary.skipped)
    assert set(reasons) == {str(corrupt), str(records[1].image_path), str(records[2].image_path),
                            str(tmp_path / "gone.png")}
    assert "67 points" in reasons[str(records[1].image_path)]
    assert "finite" in reasons[str(records[2].image_path)]
    assert "not found" in reasons[str(tmp_path / "gone.png")]
    cache = load_cache(tmp_path / "cache")
    assert len(cache) == len(records) - 1
    assert [tuple(s) for s in cache.meta["skipped"]] == summary.skipped


def test_prepare_strict_names_file_and_writes_nothing(synthetic_300w_copy: Path, tmp_path: Path) -> None:
    records = open_dataset(synthetic_300w_copy).read("300w-train").records
    records[4].image_path.write_bytes(b"")
    with pytest.raises(ValueError, match=records[4].image_path.name) as err:
        _prepare(records, tmp_path / "cache", strict=True)
    assert "strict" in str(err.value)
    assert not (tmp_path / "cache").exists() and not _leftovers(tmp_path)


def test_prepare_with_nothing_readable(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no readable faces"):
        _prepare([FaceRecord(tmp_path / "x.png", np.zeros((68, 2), np.float32))], tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize("kwargs", [{"crop_size": 8}, {"context": 1.0}])
def test_prepare_rejects_bad_geometry(tmp_path: Path, kwargs: dict) -> None:
    with pytest.raises(ValueError, match="crop_size"):
        prepare_cache([], tmp_path / "cache", SCHEME, **kwargs)


class _SaveFailure(OSError):
    pass


def _fail_on_call(monkeypatch: pytest.MonkeyPatch, fail_at: int) -> None:
    """Make the cache's ``np.save`` fail (disk full) on call number ``fail_at``."""
    real_save = np.save
    calls = []

    def save(*args, **kwargs):
        calls.append(1)
        if len(calls) == fail_at:
            raise _SaveFailure("No space left on device")
        return real_save(*args, **kwargs)

    monkeypatch.setattr(cache_module.np, "save", save)


def test_cache_appears_whole_or_not_at_all(synthetic_300w: Path, tmp_path: Path, monkeypatch) -> None:
    records = open_dataset(synthetic_300w).read("300w-common").records
    _fail_on_call(monkeypatch, fail_at=3)
    with pytest.raises(_SaveFailure):
        _prepare(records, tmp_path / "cache")
    assert list(tmp_path.iterdir()) == []  # neither the cache nor a temporary


def test_failed_rewrite_keeps_old_cache(synthetic_300w: Path, tmp_path: Path, monkeypatch) -> None:
    reader = open_dataset(synthetic_300w)
    _prepare(reader.read("300w-common").records, tmp_path / "cache")
    before = {p.name: p.read_bytes() for p in (tmp_path / "cache").iterdir()}
    _fail_on_call(monkeypatch, fail_at=2)
    with pytest.raises(_SaveFailure):
        _prepare(reader.read("300w-train").records, tmp_path / "cache")
    assert {p.name: p.read_bytes() for p in (tmp_path / "cache").iterdir()} == before
    assert _leftovers(tmp_path) == []
    monkeypatch.undo()
    _prepare(reader.read("300w-train").records, tmp_path / "cache")  # a good rewrite replaces it
    assert len(load_cache(tmp_path / "cache")) == SYNTHETIC_TRAIN
    assert _leftovers(tmp_path) == []


def test_load_cache_on_non_cache_folders(synthetic_300w: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not a wingface cache.*wingface prepare"):
        load_cache(synthetic_300w)
    with pytest.raises(FileNotFoundError, match="not a wingface cache"):
        load_cache(tmp_path / "absent")
    (tmp_path / "meta.json").write_text("{broken")
    with pytest.raises(ValueError, match="corrupt cache metadata"):
        load_cache(tmp_path)
    (tmp_path / "meta.json").write_text(json.dumps({"format": "something-else", "version": 1}))
    with pytest.raises(ValueError, match="unsupported cache format 'something-else'"):
        load_cache(tmp_path)


# ----------------------------------------------------------------------------- compact (JPEG) caches


@pytest.fixture(scope="module")
def raw_and_jpeg(synthetic_300w: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The synthetic training faces prepared twice: raw crops and JPEG crops at quality 90."""
    records = open_dataset(synthetic_300w).read("300w-train").records
    out = tmp_path_factory.mktemp("jpeg_cache")
    _prepare(records, out / "raw")
    _prepare(records, out / "jpeg", jpeg_quality=90)
    return out / "raw", out / "jpeg"


def test_jpeg_cache_round_trip(raw_and_jpeg) -> None:
    raw_dir, jpeg_dir = raw_and_jpeg
    raw, jpeg = load_cache(raw_dir), load_cache(jpeg_dir)
    assert jpeg.images.shape == raw.images.shape == (SYNTHETIC_TRAIN, CROP, CROP, 3)
    assert jpeg.images.dtype == np.uint8
    error = np.abs(jpeg.images.astype(np.int16) - raw.images)
    # Grey levels: 3.4 on these sharp-edged 64-pixel synthetic crops (1.6 on real 256-pixel faces);
    # crops decoded in BGR order would be 27 off.
    assert error.mean() < 6.0
    for name in ("points", "visible", "to_image"):
        np.testing.assert_array_equal(getattr(jpeg, name), getattr(raw, name))
    assert jpeg.meta["images"] == {"encoding": "jpeg", "quality": 90}
    assert raw.meta["images"] == {"encoding": "raw"} and raw.meta["version"] == 1
    assert jpeg.meta["faces"] == raw.meta["faces"]
    assert not (jpeg_dir / "images.npy").exists()
    assert (jpeg_dir / JPEG_FILE).stat().st_size < (raw_dir / "images.npy").stat().st_size / 3
    assert isinstance(load_cache(jpeg_dir, mmap=True).images, np.ndarray)  # decoded, mmap or not


def test_compact_cache_equals_preparing_as_jpeg(raw_and_jpeg, tmp_path: Path) -> None:
    raw_dir, jpeg_dir = raw_and_jpeg
    assert compact_cache(raw_dir, tmp_path / "compact", 90, progress=False) == tmp_path / "compact"
    compact, prepared = load_cache(tmp_path / "compact"), load_cache(jpeg_dir)
    np.testing.assert_array_equal(compact.images, prepared.images)  # the same encoder on the same crops
    np.testing.assert_array_equal(compact.points, prepared.points)
    assert compact.meta == prepared.meta
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("quality", [0, 101, 9.5, True])
def test_jpeg_quality_is_checked(raw_and_jpeg, tmp_path: Path, quality) -> None:
    with pytest.raises(ValueError, match="jpeg_quality"):
        compact_cache(raw_and_jpeg[0], tmp_path / "compact", quality, progress=False)
    with pytest.raises(ValueError, match="jpeg_quality"):
        prepare_cache([], tmp_path / "cache", SCHEME, jpeg_quality=quality)
    assert list(tmp_path.iterdir()) == []


def _rewrite_jpegs(folder: Path, data: np.ndarray, offsets: np.ndarray) -> None:
    np.savez(folder / JPEG_FILE, data=data, offsets=offsets)


def _stored_jpegs(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(folder / JPEG_FILE) as stored:
        return stored["data"].copy(), stored["offsets"].copy()


def test_corrupt_jpeg_crop_is_named(raw_and_jpeg, tmp_path: Path) -> None:
    folder = Path(shutil.copytree(raw_and_jpeg[1], tmp_path / "cache"))
    data, offsets = _stored_jpegs(folder)
    broken = data.copy()
    broken[offsets[2] + 2:offsets[3] - 2] = 0  # crop 2: markers kept, content destroyed
    _rewrite_jpegs(folder, broken, offsets)
    with pytest.raises(ValueError, match=rf"{JPEG_FILE}: crop 2 is not a valid {CROP}x{CROP} JPEG"):
        load_cache(folder)
    short = np.concatenate([data[:offsets[-1] - 100]])  # the last crop truncated
    _rewrite_jpegs(folder, short, np.append(offsets[:-1], len(short)))
    with pytest.raises(ValueError, match=rf"crop {SYNTHETIC_TRAIN - 1} is not a valid"):
        load_cache(folder)


def test_corrupt_jpeg_file_is_named(raw_and_jpeg, tmp_path: Path) -> None:
    folder = Path(shutil.copytree(raw_and_jpeg[1], tmp_path / "cache"))
    data, offsets = _stored_jpegs(folder)
    _rewrite_jpegs(folder, data, offsets[:-1])  # one offset short
    with pytest.raises(ValueError, match=rf"{JPEG_FILE}: corrupt JPEG crops file \(offsets"):
        load_cache(folder)
    (folder / JPEG_FILE).write_bytes((folder / JPEG_FILE).read_bytes()[:1000])  # a truncated archive
    with pytest.raises(ValueError, match=rf"{JPEG_FILE}: corrupt JPEG crops file"):
        load_cache(folder)
    (folder / JPEG_FILE).unlink()
    with pytest.raises(FileNotFoundError, match=JPEG_FILE):
        load_cache(folder)
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps(dict(meta, images={"encoding": "png"})))
    with pytest.raises(ValueError, match="meta.json: unknown image encoding 'png'"):
        load_cache(folder)


def test_cli_prepare_jpeg_and_convert(synthetic_300w: Path, tmp_path: Path, capsys) -> None:
    assert main(["prepare", str(synthetic_300w), "--out", str(tmp_path / "jpeg"), "--crop-size", "32",
                 "--jpeg", "80"]) == 0
    assert load_cache(tmp_path / "jpeg").meta["images"] == {"encoding": "jpeg", "quality": 80}
    assert main(["prepare", str(synthetic_300w), "--out", str(tmp_path / "raw"), "--crop-size", "32"]) == 0
    assert (tmp_path / "raw" / "images.npy").is_file()  # raw stays the default
    capsys.readouterr()
    assert main(["prepare", str(tmp_path / "raw"), "--out", str(tmp_path / "converted"), "--jpeg", "85"]) == 0
    assert f"wrote {SYNTHETIC_TRAIN} faces to {tmp_path / 'converted'} as JPEG quality 85" in capsys.readouterr().out
    converted = load_cache(tmp_path / "converted")
    assert converted.meta["images"]["quality"] == 85 and converted.crop_size == 32


@pytest.mark.parametrize("extra, message", [([], "already a cache: pass --jpeg QUALITY"),
                                            (["--jpeg", "90", "--split", "300w-train"], "--split only apply"),
                                            (["--jpeg", "0"], "jpeg_quality")])
def test_cli_convert_errors(raw_and_jpeg, tmp_path: Path, capsys, extra, message) -> None:
    assert main(["prepare", str(raw_and_jpeg[0]), "--out", str(tmp_path / "out"), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- real 300-W data


@pytest.fixture(scope="module")
def real_caches(shared_300w: Path, tmp_path_factory: pytest.TempPathFactory):
    """Both real splits read and prepared once (default crop size): {split: (records, cache folder)}."""
    reader = open_dataset(shared_300w)
    out = tmp_path_factory.mktemp("real_cache")
    prepared = {}
    for split in ("300w-train", "300w-common"):
        result = reader.read(split)
        assert not result.skipped, result.skipped[:3]
        summary = prepare_cache(result.records, out / split, reader.scheme, progress=False)
        assert not summary.skipped, summary.skipped[:3]
        prepared[split] = (result.records, out / split)
    yield prepared
    shutil.rmtree(out, ignore_errors=True)  # ~0.5 GB of crops


def test_real_cache_maps_back_to_pts_files(real_caches, capsys) -> None:
    total = 0
    for split, expected in (("300w-train", 2012), ("300w-common", 554)):
        records, folder = real_caches[split]
        start = time.perf_counter()
        cache = load_cache(folder)
        seconds = time.perf_counter() - start
        if split == "300w-train":
            with capsys.disabled():
                print(f"\n[info] load_cache of the real {split} cache ({len(cache)} faces, "
                      f"{cache.images.nbytes / 2**20:.0f} MiB of crops): {seconds:.2f} s")
        assert len(cache) == expected
        pts = np.stack([_pts_points(Path(f["image"]).with_suffix(".pts")) for f in cache.meta["faces"]])
        error = np.abs(cache.image_points() - pts).max(axis=(1, 2))
        worst = int(error.argmax())
        assert error[worst] < 0.01, f"{cache.meta['faces'][worst]['image']}: {error[worst]:.4f} px"
        total += len(cache)
    assert total == 2566
