"""Any TFDS catalog dataset by name as a run's data source (pure Python; tensorflow_datasets
reads the catalog and the dataset's feature info without TensorFlow)."""
from __future__ import annotations

from reformer_keras.datasets.sources import (TASK_MODALITY, DataError, DataSource, Scan,
                                             parse_image_size)


def tfds_source(task, dataset, data_dir=None, text_feature=None, image_feature=None,
                label_feature=None, train_split=None, validation_split=None, image_size=None,
                num_classes=None):
    """A checked `Scan` of any TFDS catalog dataset `name[:version]` (features from its info).

    Raises DataError: not in the catalog, a feature that does not exist (the message lists the
    dataset's features), or a feature of the wrong kind.
    """
    import tensorflow_datasets as tfds
    modality = TASK_MODALITY.get(task) or "image"
    if task not in TASK_MODALITY:
        raise DataError("task", f"task {task!r} cannot use a TFDS catalog dataset by name")
    try:
        builder = tfds.builder(dataset, data_dir=data_dir)
    except Exception as err:  # noqa: BLE001  (DatasetNotFoundError, config / version errors)
        raise DataError("dataset", f"{dataset!r} is neither a reformer_keras dataset nor in the "
                                   f"TFDS catalog ({' '.join(str(err).split())[:160]})") from None
    features = builder.info.features
    names = sorted(features.keys()) if hasattr(features, "keys") else []
    if task == "classifier" and text_feature and not image_feature:
        modality = "text"
    wanted = {"text": ("text_feature", text_feature or "text")} if modality == "text" else {}
    if modality == "image":
        wanted = {"image": ("image_feature", image_feature or "image")}
    if modality == "music":
        raise DataError("dataset", "music from the TFDS catalog needs a MIDI bytes feature; "
                                   "use --train_files with .mid files instead")
    if task == "classifier" or (task == "image" and (label_feature or num_classes)):
        wanted["label"] = ("label_feature", label_feature or "label")
    keys = {}
    for canonical, (flag, key) in wanted.items():
        if key not in names:
            raise DataError(flag, f"{dataset!r} has no feature {key!r} (features: "
                                  f"{', '.join(names)})")
        keys[canonical] = key
    size = None
    class_names = ()
    if modality == "image":
        shape = tuple(features[keys["image"]].shape)
        try:
            size = parse_image_size(image_size) if image_size else None
        except ValueError as err:
            raise DataError("image_size", str(err)) from None
        if size is None and (len(shape) != 3 or None in shape):
            raise DataError("image_size", f"{dataset!r} images have shape {shape}; give "
                                          "--image_size")
        size = size or shape[:2]
        color = "grayscale" if shape[-1] == 1 else "rgb"
    else:
        color = "auto"
    if "label" in keys:
        label = features[keys["label"]]
        class_names = tuple(getattr(label, "names", None) or
                            map(str, range(getattr(label, "num_classes", 0) or 0)))
        if not class_names:
            raise DataError("label_feature", f"feature {keys['label']!r} of {dataset!r} is not "
                                             "a ClassLabel")
    splits = sorted(builder.info.splits.keys()) if builder.info.splits else []
    train_split = train_split or "train"
    if validation_split is None:
        validation_split = next((s for s in ("validation", "test") if s in splits), "")
    source = DataSource(kind="tfds", modality=modality, train=(train_split,),
                        validation=(validation_split,) if validation_split else (),
                        validation_fraction=0.0, image_size=size, color_mode=color,
                        dataset=dataset, features=keys, class_names=class_names,
                        layout="tfds")
    return Scan(source, [train_split], list(source.validation), data_dir=data_dir,
                split_rule=f"TFDS splits {train_split} / {validation_split or '-'}")
