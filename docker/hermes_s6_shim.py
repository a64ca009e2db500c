"""hermes-s6: hermes-agent's own gateway lifecycle calls go to the image's `hermes` front.

hermes-agent starts, stops and restarts gateways from inside its own code too (the
dashboard's restart button, its webhook and onboarding flows run
``python -m hermes_cli.main gateway restart``), and its s6 path is switched off in this image
(no /run/s6/basedir: it would give the hermes user a supervise/ that root writes into). Left
alone, such a call takes the host path: it kills the supervised gateway (counted as a crash)
and starts an unsupervised one. Upstream routes every such call through two functions of
``hermes_cli.gateway`` (``_dispatch_via_service_manager_if_s6`` and its ``--all`` twin); this
module, loaded at interpreter start by a ``.pth`` file, replaces them once that module is
imported, so the call runs ``/usr/local/bin/hermes [-p P] gateway <verb>``: the core's
lifecycle, its locks and the crash policy. Written for hermes-agent 0.19.0 (the version the
image pins); a version without these names is left as it is.
"""

import importlib.abc
import importlib.machinery
import os
import subprocess
import sys

FRONT = os.environ.get("HERMES_S6_FRONT", "/usr/local/bin/hermes")
MODULE = "hermes_cli.gateway"


def _front(args):
    """Run the front; a failure ends this command with its exit code, as ours would."""
    code = subprocess.run([FRONT, *args], check=False).returncode
    if code != 0:
        sys.exit(code)
    return True


def _patch(gateway):
    if not (os.access(FRONT, os.X_OK) and hasattr(gateway, "_dispatch_via_service_manager_if_s6")):
        return

    def dispatch(action, profile=None):
        if action not in ("start", "stop", "restart"):
            return False
        if profile is None:
            suffix = getattr(gateway, "_profile_suffix", lambda: "")
            profile = suffix() or "default"
        return _front(["-p", profile, "gateway", action])

    def dispatch_all(action):
        if action not in ("stop", "restart"):
            return False
        return _front(["gateway", action, "--all"])

    gateway._dispatch_via_service_manager_if_s6 = dispatch
    if hasattr(gateway, "_dispatch_all_via_service_manager_if_s6"):
        gateway._dispatch_all_via_service_manager_if_s6 = dispatch_all


class _Hook(importlib.abc.MetaPathFinder):
    """Patches the module right after it is first executed, then steps aside."""

    def find_spec(self, name, path, target=None):
        if name != MODULE:
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            _patch(module)

        spec.loader.exec_module = exec_module
        return spec


if MODULE in sys.modules:
    _patch(sys.modules[MODULE])
else:
    sys.meta_path.insert(0, _Hook())
