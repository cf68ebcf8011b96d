"""Make the repo's plugins importable the way Ansible loads them.

ansible.cfg sets ``module_utils = plugins/module_utils``, so modules import ``ansible.module_utils.<name>``.
Here the same directory is appended to that package's search path; plugins/modules and
plugins/doc_fragments go on sys.path so tests can import the module entry files and fragments.
"""

from __future__ import annotations

import sys
from pathlib import Path

import ansible.module_utils

REPO_ROOT = Path(__file__).resolve().parent.parent
PLUGINS = REPO_ROOT / "plugins"

_module_utils = str(PLUGINS / "module_utils")
if _module_utils not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(_module_utils)

for _extra in (PLUGINS / "modules", PLUGINS / "doc_fragments"):
    if str(_extra) not in sys.path:
        sys.path.append(str(_extra))
