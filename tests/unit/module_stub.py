"""Just enough of AnsibleModule for the module_utils helpers that fail the module: fail_json stops like
the real one, so a test can catch it and read the keyword arguments."""

from __future__ import annotations


class FailJson(Exception):
    pass


class FakeModule:
    def fail_json(self, **kwargs: object) -> None:
        raise FailJson(kwargs)
