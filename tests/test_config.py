"""Configuration: YAML files, dotted overrides, unknown-key and type errors, round trips."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from wingface.augmentation.config import AugmentConfig
from wingface.config import apply_overrides, from_dict, load_config, save_config, to_dict
from wingface.training.config import TrainConfig


def _yaml(tmp_path: Path, data: dict, name: str = "train.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def test_defaults_without_file_or_overrides() -> None:
    assert load_config(TrainConfig) == TrainConfig()


def test_file_then_overrides(tmp_path: Path) -> None:
    path = _yaml(tmp_path, {
        "epochs": 12, "data": "cache/300w",
        "model": {"arch": "cnn7", "input_size": 128},
        "optim": {"lr": 0.01, "step_epochs": [4, 8]},
        "augment": {"blur_sigma": [0.5, 1.0]},
    })
    config = load_config(TrainConfig, path, ["epochs=20", "optim.lr=0.005", "model.batch_norm=false"])
    assert config.epochs == 20  # the override wins over the file
    assert config.data == "cache/300w"
    assert config.model.arch == "cnn7" and config.model.input_size == 128 and config.model.batch_norm is False
    assert config.optim.lr == 0.005 and isinstance(config.optim.lr, float)
    assert config.optim.step_epochs == (4, 8)
    assert config.augment.blur_sigma == (0.5, 1.0)
    assert config.model.box_margin == TrainConfig().model.box_margin  # untouched defaults stay


def test_int_given_for_float_field_becomes_float(tmp_path: Path) -> None:
    config = load_config(TrainConfig, _yaml(tmp_path, {"optim": {"lr": 1}}))
    assert config.optim.lr == 1.0 and isinstance(config.optim.lr, float)


@pytest.mark.parametrize("override", ["optim.lr=1e-3", "optim.lr=1E-3", "optim.lr=0.001"])
def test_exponent_notation_is_a_float(override: str) -> None:
    """YAML 1.1 reads ``1e-3`` (no dot) as text; the documented example must still work."""
    assert load_config(TrainConfig, overrides=[override]).optim.lr == pytest.approx(1e-3)


def test_override_value_parsed_as_yaml() -> None:
    config = load_config(TrainConfig, overrides=[
        "model.input_size=null", "loss.params={w: 10, eps: 2}", "augment.blur_sigma=[0.1, 2]",
    ])
    assert config.model.input_size is None
    assert config.loss.params == {"w": 10, "eps": 2}
    assert config.augment.blur_sigma == (0.1, 2.0)


@pytest.mark.parametrize(
    "data, words",
    [
        ({"epoch": 3}, ["unknown key 'epoch'", "did you mean 'epochs'"]),
        ({"optim": {"lrr": 0.1}}, ["optim", "unknown key 'lrr'", "did you mean 'lr'"]),
        ({"model": {"arch": "cnn6", "input_sise": 64}}, ["model", "'input_sise'", "did you mean 'input_size'"]),
    ],
)
def test_unknown_key_in_file(tmp_path: Path, data: dict, words: list[str]) -> None:
    path = _yaml(tmp_path, data)
    with pytest.raises(ValueError) as err:
        load_config(TrainConfig, path)
    message = str(err.value)
    assert str(path) in message
    for word in words:
        assert word in message


@pytest.mark.parametrize(
    "override, words",
    [
        ("epoch=3", ["'epoch=3'", "unknown key 'epoch'", "did you mean 'epochs'"]),
        ("optim.lrr=0.1", ["'optim.lrr=0.1'", "unknown key 'lrr'", "did you mean 'lr'"]),
        ("optm.lr=0.1", ["'optm.lr=0.1'", "unknown key 'optm'", "did you mean 'optim'"]),
        ("epochs", ["'epochs'", "KEY=VALUE"]),
        ("=3", ["KEY=VALUE"]),
    ],
)
def test_bad_override(override: str, words: list[str]) -> None:
    with pytest.raises(ValueError) as err:
        load_config(TrainConfig, overrides=[override])
    for word in words:
        assert word in str(err.value)


@pytest.mark.parametrize(
    "data, field",
    [
        ({"epochs": "ten"}, "epochs"),
        ({"epochs": 1.5}, "epochs"),
        ({"optim": {"lr": "fast"}}, "optim.lr"),
        ({"model": {"arch": 7}}, "model.arch"),
        ({"pdb": {"enabled": "yes please"}}, "pdb.enabled"),
        ({"model": {"input_size": "big"}}, "model.input_size"),
        ({"optim": {"step_epochs": [1, "two"]}}, "optim.step_epochs"),
        ({"optim": 3}, "optim"),
    ],
)
def test_type_error_names_the_field(tmp_path: Path, data: dict, field: str) -> None:
    with pytest.raises(ValueError, match=rf"\b{field.replace('.', '[.]')}\b"):
        load_config(TrainConfig, _yaml(tmp_path, data))


def test_bool_is_not_an_int() -> None:
    with pytest.raises(ValueError, match="epochs"):
        load_config(TrainConfig, overrides=["epochs=true"])


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="absent.yaml"):
        load_config(TrainConfig, tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: [1, 2\n")
    with pytest.raises(ValueError, match="bad.yaml"):
        load_config(TrainConfig, bad)
    listed = tmp_path / "list.yaml"
    listed.write_text("- epochs\n")
    with pytest.raises(ValueError, match="list.yaml.*mapping"):
        load_config(TrainConfig, listed)


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert load_config(TrainConfig, empty) == TrainConfig()


def _non_default() -> TrainConfig:
    config = TrainConfig(data="cache", split="300w-train", epochs=3, threads=2, max_steps=10)
    return dataclasses.replace(
        config,
        model=dataclasses.replace(config.model, arch="cnn7", input_size=128, batch_norm=True),
        loss=dataclasses.replace(config.loss, params={"w": 10.0, "eps": 2.0}),
        augment=AugmentConfig(rotation_deg=10.0, blur_sigma=(0.2, 0.9)),
        optim=dataclasses.replace(config.optim, schedule="step", step_epochs=(2, 3), grad_clip=5.0),
    )


@pytest.mark.parametrize("config", [TrainConfig(), _non_default()], ids=["defaults", "changed"])
def test_train_config_dict_round_trip(config: TrainConfig) -> None:
    data = to_dict(config)
    assert yaml.safe_load(yaml.safe_dump(data)) == data  # plain data only
    assert from_dict(TrainConfig, data) == config


def test_save_then_load(tmp_path: Path) -> None:
    config = _non_default()
    path = tmp_path / "runs" / "config.yaml"
    save_config(config, path)
    assert load_config(TrainConfig, path) == config
    assert [p.name for p in path.parent.iterdir()] == ["config.yaml"]  # no temporary left


def test_apply_overrides_changes_dict_in_place() -> None:
    data = {"a": 1, "b": {"c": "x"}}
    assert apply_overrides(data, ["b.c=[1, 2]", "a=hello"]) is data
    assert data == {"a": "hello", "b": {"c": [1, 2]}}
