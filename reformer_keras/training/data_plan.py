"""A run's data behind one interface: a registry dataset, own files, or a TFDS catalog name.

  plan.info            `pipelines.DataInfo` (vocabulary, input length, classes)
  plan.tokenizer       the text tokenizer (None for images / music)
  plan.prepare()       prepares offline builders (registry datasets)
  plan.dataset(split, training=..., repeat=..., input_context=...)  batched tf.data (or None)
  plan.record()        the "data" entry of run.json

`registry_plan(cfg)` keeps the registry path; `source_plan(scan, cfg, tokenizer)` reads a checked
`sources.Scan` through `datasets.files`; `plan_from_record(record, ...)` rebuilds either from a
run.json (the files are checked again).
"""
from reformer_keras.datasets import pipelines


class _Plan:
    tokenizer = None

    def renew_tokenizer(self):
        """Rebuilds the tokenizer from its config (its TF resources are per session)."""
        if self.tokenizer is not None:
            self.tokenizer = type(self.tokenizer).from_config(self.tokenizer.get_config())


class RegistryPlan(_Plan):
    """A dataset of the registry table (pipelines.make_dataset)."""

    def __init__(self, cfg, tokenizer=None):
        self.cfg, self.tokenizer = cfg, tokenizer
        self.info = pipelines.describe(cfg.dataset, cfg.task, cfg.seq_len, tokenizer)
        if self.info.spec.modality not in ("text", "translation"):
            self.tokenizer = None
        self.splits = {"train": getattr(cfg, "train_split", None),
                       "validation": getattr(cfg, "validation_split", None)}

    def prepare(self):
        from reformer_keras.training.loop import prepare_data
        prepare_data(self.cfg.dataset, self.cfg.data_dir)

    def dataset(self, split="train", training=True, repeat=None, input_context=None,
                batch_size=None, shuffle_buffer=None):
        from reformer_keras.datasets.files import pipeline_tokenizer
        cfg = self.cfg
        defaults = {"train": self.info.spec.splits[0], "validation": self.info.spec.splits[1]}
        name = self.splits.get(split) or defaults.get(split, split)
        return pipelines.make_dataset(
            cfg.dataset, name, task=cfg.task, seq_len=cfg.seq_len,
            batch_size=batch_size or cfg.batch_size, data_dir=cfg.data_dir, seed=cfg.seed,
            training=training, repeat=repeat, tokenizer=pipeline_tokenizer(self.tokenizer),
            input_context=input_context, shuffle_buffer=shuffle_buffer or cfg.shuffle_buffer)

    def record(self):
        return {"kind": "registry", "dataset": self.cfg.dataset, "data_dir": self.cfg.data_dir,
                "train_split": self.splits["train"], "validation_split": self.splits["validation"]}


class SourcePlan(_Plan):
    """Own files or a TFDS catalog dataset (`sources.Scan`, read by `datasets.files`)."""

    def __init__(self, scan, cfg, tokenizer=None, num_classes=None):
        from reformer_keras.datasets import files
        self.scan, self.cfg, self.num_classes = scan, cfg, num_classes
        self.tokenizer = tokenizer if scan.source.modality == "text" else None
        self.info = files.data_info(scan.source, cfg.task, cfg.seq_len, self.tokenizer,
                                    num_classes)

    def prepare(self):
        if self.scan.source.kind == "tfds":
            import tensorflow_datasets as tfds
            tfds.builder(self.scan.source.dataset,
                         data_dir=self.scan.data_dir).download_and_prepare()

    def dataset(self, split="train", training=True, repeat=None, input_context=None,
                batch_size=None, shuffle_buffer=None):
        from reformer_keras.datasets import files
        cfg = self.cfg
        return files.make_source_dataset(
            self.scan, split, task=cfg.task, seq_len=cfg.seq_len,
            batch_size=batch_size or cfg.batch_size, seed=cfg.seed, training=training,
            repeat=repeat, tokenizer=self.tokenizer, num_classes=self.num_classes,
            input_context=input_context, shuffle_buffer=shuffle_buffer or cfg.shuffle_buffer)

    def check(self):
        """DataError if the training or validation split gives no element."""
        from reformer_keras.datasets import files
        for split in ("train", "validation"):
            files.check_nonempty(self.scan, split, self.cfg.task, self.cfg.seq_len,
                                 self.tokenizer, self.num_classes)

    def record(self):
        return {"kind": self.scan.source.kind, "source": self.scan.source.to_dict(),
                "data_dir": self.scan.data_dir, "split_rule": self.scan.split_rule,
                "train_items": len(self.scan.train), "validation_items": len(self.scan.validation),
                "skipped": [list(s) for s in self.scan.skipped], "notes": list(self.scan.notes)}


def rescan(record, task):
    """The `sources.Scan` a run.json "data" record describes (files are checked again)."""
    from reformer_keras.datasets import catalog, sources
    source = sources.DataSource.from_dict(record["source"])
    if source.kind == "tfds":
        feats = source.features
        return catalog.tfds_source(
            task, source.dataset, record.get("data_dir"), feats.get("text"), feats.get("image"),
            feats.get("label"), source.train[0], source.validation[0] if source.validation
            else "", source.image_size)
    return sources.scan(source, task)


def plan_from_run(run, model_dir, **explicit):
    """(TrainConfig, plan) of a run.json record; `explicit` (flag values the user gave:
    task, dataset, seq_len, batch_size, data_dir, split names) override the record."""
    from reformer_keras.training.run_tokenizer import load_tokenizer
    from reformer_keras.training.loop import TrainConfig
    fields = {f for f in TrainConfig.__dataclass_fields__}
    values = {k: v for k, v in run.get("training", {}).items() if k in fields}
    values.update({k: v for k, v in explicit.items() if k in fields and v is not None})
    values["model_dir"] = model_dir
    cfg = TrainConfig(**values)
    tokenizer = load_tokenizer(run.get("tokenizer"), model_dir)
    data = run["data"]
    if data["kind"] == "registry" or "dataset" in explicit and explicit["dataset"]:
        return cfg, RegistryPlan(cfg, tokenizer)
    num_classes = (run.get("model", {}).get("config", {}).get("num_classes")
                   if cfg.task == "image" else None)
    return cfg, SourcePlan(rescan(data, cfg.task), cfg, tokenizer, num_classes)
