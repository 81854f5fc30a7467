"""The results store's earlier schemas: each step brings a store's rows one schema up.

ablations.results reads an earlier store through these (read_results) and rewrites one in
today's columns with them (upgrade_store). A new schema adds its step here and bumps
results.SCHEMA.
"""
from __future__ import annotations


def _upgrade_v1(df):
    """Schema 1 (before the run's name, tag and block costs were columns) -> schema 2.

    The only place a run label is parsed: schema-1 files stored it inside run_id alone.
    """
    names = [rid.split("/")[2] if isinstance(rid, str) and rid.count("/") == 3 else v
             for rid, v in zip(df["run_id"], df["variant"])]
    df = df.assign(schema=2, name=names, tag=[n.split("~", 1)[1] if "~" in n else "" for n in names],
                   amp=False, model_revision=1, blocks="")
    return df


def _upgrade_v2(df):
    """Schema 2 (before rows named their attempt and the data's fingerprint) -> schema 3."""
    return df.assign(schema=3, attempt="", data_fingerprint="")


def _upgrade_v3(df):
    """Schema 3 (fast_layers True/False, before the oneDNN route) -> schema 4 (layers asked for and used)."""
    fast = [str(v).strip().lower() in ("true", "1") for v in df["fast_layers"]]
    used = ["fast" if f else "plain" for f in fast]
    return df.assign(schema=4, layers=used, layers_used=used).drop(columns=["fast_layers"])


def _upgrade_v4(df):
    """Schema 4 (before data parallelism and streaming) -> schema 5: every run was one process."""
    return df.assign(schema=5, stream=False, world_size=1, per_device_batch=df["batch_size"], sync_bn=False)


UPGRADES = {"1": _upgrade_v1, "2": _upgrade_v2, "3": _upgrade_v3, "4": _upgrade_v4}  # schema -> the next one


def upgrade_rows(df):
    """The rows of a store written with an earlier schema we know, in the newest schema's columns."""
    schemas = set(df["schema"].astype(str)) if "schema" in df.columns and len(df) else set()
    while len(schemas) == 1 and next(iter(schemas)) in UPGRADES:
        df = UPGRADES[next(iter(schemas))](df)
        schemas = {str(df["schema"].iloc[0])}
    return df
