# Mitogen's linear strategy, found through the project's plugin path (ansible.cfg: strategy_plugins).
# Mitogen (pinned in pyproject.toml) runs each module in a Python interpreter it keeps open on the host,
# instead of copying and starting one per task: a no-op site.yml spends most of its time in that start-up.
# Its own copy of this file lives at a path that changes with the Python version; this one does not.
# Opt out for one run with ANSIBLE_STRATEGY=linear.
from ansible.collections.list import list_collection_dirs
from ansible_mitogen import planner
from ansible_mitogen.plugins.strategy.mitogen_linear import StrategyModule

# Before the first run of each collection module in a task's worker process, Mitogen lists the directory of
# every installed collection (planner._load_collections). The `ansible` package installs about 100, so
# that walk cost about a quarter of a second per such task. The list cannot change during a run: it is
# taken once here, in the controller's main process, and every worker inherits it.
_COLLECTION_DIRS = frozenset(path.decode("utf-8") for path in list_collection_dirs())


def _load_collections(invocation):
    invocation._extra_sys_paths.update(_COLLECTION_DIRS)


planner._load_collections = _load_collections

__all__ = ["StrategyModule"]
