"""Package discovery that pyproject.toml alone cannot express.

The product layout keeps ``resources/`` beside ``app/``; installed, it becomes the
``deskmind.resources`` package (icons, prompts, default config), found with importlib.resources.
Everything else is declared in pyproject.toml.
"""

from setuptools import find_packages, setup

setup(
    packages=find_packages("app") + ["deskmind.resources"],
    package_dir={"": "app", "deskmind.resources": "resources"},
)
