# Mitogen's linear strategy, found through the project's plugin path (ansible.cfg: strategy_plugins).
# Mitogen (pinned in pyproject.toml) runs each module in a Python interpreter it keeps open on the host,
# instead of copying and starting one per task: a no-op site.yml spends most of its time in that start-up.
# Its own copy of this file lives at a path that changes with the Python version; this one does not.
# Opt out for one run with ANSIBLE_STRATEGY=linear.
from ansible_mitogen.plugins.strategy.mitogen_linear import StrategyModule

__all__ = ["StrategyModule"]
