"""Package discovery for the one `catalogvlm` distribution (everything else is in pyproject.toml).

Each top-level folder with an `__init__.py` is one subpackage with one job (`pipeline/` is
`catalogvlm.pipeline`; `catalogvlm/` itself is the root package). Every package below them is found, so
the wheel ships whatever the checkout has and no list is kept by hand.
"""

from pathlib import Path

from setuptools import find_packages, setup

ROOT_PACKAGE = "catalogvlm"
NOT_SHIPPED = {"tests"}


def package_folders() -> dict[str, str]:
    folders = sorted(p.parent.name for p in Path(__file__).parent.glob("*/__init__.py"))
    mapping = {}
    for folder in (f for f in folders if f not in NOT_SHIPPED):
        package = ROOT_PACKAGE if folder == ROOT_PACKAGE else f"{ROOT_PACKAGE}.{folder}"
        mapping[package] = folder
        for child in find_packages(folder):
            mapping[f"{package}.{child}"] = f"{folder}/{child.replace('.', '/')}"
    return mapping


folders = package_folders()
setup(package_dir=folders, packages=list(folders))
