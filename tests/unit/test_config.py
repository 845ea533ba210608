from pathlib import Path

import pytest

from tarn import config
from tarn.exceptions import ConfigError


def test_defaults_are_the_embedded_stack(tmp_path: Path) -> None:
    cfg = config.load({"TARN_HOME": str(tmp_path)})
    assert cfg.storage.kind == "local"
    assert cfg.catalog_uri == f"sqlite:///{tmp_path / 'data' / 'catalog.db'}"
    assert cfg.warehouse == (tmp_path / "data" / "warehouse").as_uri()
    assert cfg.query.engine == "duckdb"


def test_environment_overrides_yaml_which_overrides_defaults(tmp_path: Path) -> None:
    f = tmp_path / "tarn.yaml"
    f.write_text(
        "storage:\n  kind: s3\n  raw_bucket: from-yaml\n  lake_bucket: lake-yaml\nbroker:\n  port: 1234\n"
    )
    cfg = config.load({"TARN_STORAGE__RAW_BUCKET": "from-env"}, file=f)
    assert cfg.storage.raw_bucket == "from-env"
    assert cfg.storage.lake_bucket == "lake-yaml"
    assert cfg.broker.port == 1234
    assert cfg.warehouse == "s3://lake-yaml/warehouse"


def test_destinations_come_from_the_environment() -> None:
    cfg = config.load(
        {"TARN_DESTINATIONS__SOC__TYPE": "webhook", "TARN_DESTINATIONS__SOC__URL": "http://hook"}
    )
    assert cfg.destinations["soc"].type == "webhook"
    assert cfg.destinations["soc"].url == "http://hook"


def test_unknown_key_is_an_error_naming_the_key() -> None:
    with pytest.raises(ConfigError, match="storage.kindd"):
        config.load({"TARN_STORAGE__KINDD": "s3"})


def test_bad_value_is_an_error_naming_the_key() -> None:
    with pytest.raises(ConfigError, match="broker.port"):
        config.load({"TARN_BROKER__PORT": "eighty"})


def test_named_config_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        config.load({"TARN_CONFIG_FILE": str(tmp_path / "nope.yaml")})


def test_config_is_frozen() -> None:
    cfg = config.load({})
    with pytest.raises(Exception, match="frozen"):
        cfg.storage.kind = "s3"  # type: ignore[misc]


def test_ingest_token_is_created_once_and_kept_private(tmp_path: Path) -> None:
    cfg = config.load({"TARN_HOME": str(tmp_path)})
    token = cfg.ingest_token()
    assert len(token) >= 24
    assert cfg.ingest_token() == token
    assert (tmp_path / "ingest-token").stat().st_mode & 0o077 == 0
    assert (
        config.load({"TARN_HOME": str(tmp_path), "TARN_INGEST__TOKEN": "x"}).ingest_token() == "x"
    )
