"""reformer-keras: the Reformer (Kitaev, Kaiser, Levskaya, ICLR 2020) for Keras 3 / TensorFlow."""
import pathlib

from setuptools import find_packages, setup

HERE = pathlib.Path(__file__).parent


def _requirements():
    lines = (HERE / "requirements.txt").read_text().splitlines()
    return [l.split("#")[0].strip() for l in lines if l.split("#")[0].strip()]


setup(
    name="reformer-keras",
    version="0.1.0",
    description="The Reformer for Keras 3 / TensorFlow: LSH attention, reversible layers, model zoo.",
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["reformer_keras*", "trainers*", "exports*", "benchmarks*"]),
    install_requires=_requirements(),
    extras_require={
        "test": ["pytest==9.2.0", "pytest-xdist==3.8.0", "psutil==7.2.2"],
        "gpu": ["tensorflow[and-cuda]==2.21.0"],
        "serving": ["tensorflow-serving-api==2.21.0"],
    },
    entry_points={
        "console_scripts": [
            "reformer-train=trainers.train:run",
            "reformer-evaluate=trainers.evaluate:run",
            "reformer-sample=trainers.sample:run",
            "reformer-export=exports.export:run",
        ]
    },
)
