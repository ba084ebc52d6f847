"""Build hook: the example config travels inside the wheel as ``mailgate/example.toml``.

``config/mailgate.toml`` stays the one source (the repository's example, what
``make run`` uses); ``mailgate config example`` prints the packaged copy, so an
installed gateway has it without the checkout. Everything else is in pyproject.toml.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

EXAMPLE = Path(__file__).resolve().parent / "config" / "mailgate.toml"


class BuildWithExample(build_py):  # type: ignore[misc]
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "mailgate" / "example.toml"
        target.parent.mkdir(parents=True, exist_ok=True)
        self.copy_file(str(EXAMPLE), str(target))


setup(cmdclass={"build_py": BuildWithExample})
