# Runs hermes-agent's own boot reconciler (`python -m hermes_cli.container_boot`, its `main()`)
# once per case, each in a forked child, as the image's cont-init ran it: as the hermes user, with
# the case's environment and its fake /proc. Written by hermes-testkit (upstream.rs) and run by
# the differential suite (cli/tests/upstream_diff.rs). Nothing of upstream's code is changed:
# only where `/proc` is looked up (`container_boot.Path`) points at the case's fake tree.
#
# Input (argv[1]): a JSON list of cases {"home", "scandir", "proc", "env", "out", "uid", "gid"}.
# Per case, in "out": stdout, stderr, exit (the exit code), actions.json (what
# reconcile_profile_gateways returned: [profile, str(prior_state) or null, action] each, strings
# as UTF-8 with surrogateescape, hex-encoded) and exception (the escaping exception's type name).
import json
import os
import sys
import traceback

import hermes_cli.container_boot as cb
# Imported lazily by upstream; loaded here, before the privilege drop.
import hermes_cli.service_manager  # noqa: F401
import utils  # noqa: F401
import shutil  # noqa: F401
import time  # noqa: F401

RealPath = cb.Path

# The renderers import more lazily (hundreds of modules): once here, not once per case.
_sm = hermes_cli.service_manager.S6ServiceManager
_sm._render_run_script("warmup", extra_env={})
_sm._render_finish_script()
_sm._render_log_run("warmup")


def hexs(s):
    return s.encode("utf-8", "surrogateescape").hex() if isinstance(s, str) else None


def run_case(case):
    out = case["out"]
    fd = os.open(os.path.join(out, "stdout"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    fd = os.open(os.path.join(out, "stderr"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 2)
    os.environ.clear()
    for k, v in case["env"].items():
        os.environb[bytes.fromhex(k)] = bytes.fromhex(v)
    time.tzset()
    proc = case["proc"]

    def fake_path(*parts):
        p = RealPath(*parts)
        s = str(p)
        if s == "/proc" or s.startswith("/proc/"):
            return RealPath(proc + s[5:])
        return p

    cb.Path = fake_path
    real_reconcile = cb.reconcile_profile_gateways

    def recording(**kw):
        actions = real_reconcile(**kw)
        rows = [[hexs(a.profile), None if a.prior_state is None else hexs(str(a.prior_state)), a.action] for a in actions]
        with open(os.path.join(out, "actions.json"), "w") as f:
            json.dump(rows, f)
        return actions

    cb.reconcile_profile_gateways = recording
    os.setgroups([])
    os.setgid(case["gid"])
    os.setuid(case["uid"])
    code = 0
    try:
        code = cb.main() or 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except BaseException as e:  # what `raise SystemExit(main())` would have let escape
        with open(os.path.join(out, "exception"), "w") as f:
            f.write(type(e).__name__)
        traceback.print_exc()
        code = 1
    try:
        sys.stdout.flush()
    except BaseException:
        pass
    return code


def main():
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    for case in cases:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = run_case(case)
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        with open(os.path.join(case["out"], "exit"), "w") as f:
            f.write(str(os.waitstatus_to_exitcode(status)))


if __name__ == "__main__":
    main()
