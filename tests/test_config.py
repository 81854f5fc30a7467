"""A run's settings live in one RunConfig: names, folders, results columns and workers derive from it."""
from dataclasses import fields

from ablations.config import Recipe, RunConfig, Session
from ablations.results import COLUMNS, format_row
from ablations.runfolder import paths_for
from ablations.sweep import worker_argv

CFG = RunConfig("all_tricks", Recipe("cpu", 32, 5, 64, "momentum", 0.01), seed=2, lr_decay=True,
                decay_epochs=(3, 4), dataset="synthetic", data_dir="/data/x", tag="long")


def test_name_and_run_id_come_from_variant_decay_tag_dataset_size_and_seed():
    assert CFG.name == "all_tricks+lrdecay~long"
    assert CFG.run_id == "all_tricks+lrdecay~long/s2/synthetic-32px"
    assert RunConfig("gap", CFG.recipe).name == "gap"


def test_identity_holds_every_setting_but_the_data_folder_and_every_one_is_a_results_column():
    identity = CFG.identity()
    settings = {f.name for f in fields(RunConfig)} - {"recipe", "data_dir"}
    recipe = {f.name for f in fields(Recipe)} - {"name"} | {"recipe"}
    assert set(identity) == settings | recipe
    assert identity["recipe"] == "cpu" and identity["decay_epochs"] == [3, 4] and "data_dir" not in identity
    assert all(c in COLUMNS for c in identity)
    line = format_row({"run_id": CFG.run_id, "name": CFG.name, **identity})
    assert ",all_tricks+lrdecay~long," in line and ",long," in line


def test_config_json_round_trips_including_the_data_folder():
    again = RunConfig.from_json(CFG.to_json())
    assert again == CFG and again.data_dir == "/data/x"


def test_a_packed_worker_starts_from_the_runs_config_file_not_from_flags(tmp_path):
    session = Session(logdir=str(tmp_path / "logs"), checkpoint_dir=str(tmp_path / "ckpt"), threads=1)
    paths = paths_for(CFG, session)
    argv = worker_argv(paths.config, session)
    assert argv[1:4] == ["-m", "ablations.worker", paths.config]
    assert paths.config.endswith("ckpt/all_tricks+lrdecay~long/s2/synthetic-32px/config.json")
    assert not any(a.startswith("--") for a in argv)  # nothing re-parsed from flag strings
