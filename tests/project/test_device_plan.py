"""The prepared device call (bench/DEVICE_PLAN.md, bench/device_run.sh) fits the device time it is given: the GPU
tests compile no Triton kernels they do not test, only fla-core is carried, and the steps' limits leave room for one
rerun inside 15 minutes of device time."""

import ast
import re

from repo import ROOT

DEVICE_MINUTES = 15
START_ALLOWANCE_S = 180          # a cold machine start ("minutes"; 1-2 observed in the plan's notes)


def _cuda_device_arg(call: ast.Call) -> bool:
    args = list(call.args[1:2]) + [k.value for k in call.keywords if k.arg == "device"]
    return any(isinstance(a, ast.Constant) and isinstance(a.value, str) and a.value.startswith("cuda") for a in args)


def test_gpu_tests_pin_their_delta_rule_kernel():
    """kernel='auto' picks fla on a GPU with fla installed, and fla's first call autotunes ~60 configs per kernel:
    a GPU test that does not test fla must ask for the chunked kernel, or the test step spends its time compiling."""
    unpinned = []
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        expected_to_fail = {id(n) for w in ast.walk(tree) if isinstance(w, ast.With) and "raises" in ast.dump(w)
                            for n in ast.walk(w)}          # `with pytest.raises(...)`: no encoder gets built
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None))
                    in ("load_encoder", "Encoder") and _cuda_device_arg(node) and id(node) not in expected_to_fail
                    and "kernel" not in {k.arg for k in node.keywords}):
                unpinned.append(f"{path.name}:{node.lineno}")
    assert not unpinned, f"GPU encoders without kernel=: {unpinned}"


def test_device_call_fits_twice_in_the_device_time():
    script = (ROOT / "bench" / "device_run.sh").read_text(encoding="utf-8")
    plan = (ROOT / "bench" / "DEVICE_PLAN.md").read_text(encoding="utf-8")
    limits = {name: int(value) for name, value in re.findall(r"^(\w+_S)=\$\{\w+:-(\d+)\}", script, re.M)}
    assert set(limits) == {"TESTS_S", "BENCH_S", "FLA_TEST_S"}, limits
    call_timeout = int(re.search(r"timeout_s[`\s:]+(\d+)", plan).group(1))
    setup_s = 15                 # wheel install + versions, measured ~9 s on the CPU build machine
    assert sum(limits.values()) + setup_s <= call_timeout, (limits, call_timeout)
    assert START_ALLOWANCE_S + 2 * call_timeout <= DEVICE_MINUTES * 60 - 60, call_timeout   # one rerun + a minute
    assert "bash bench/device_run.sh" in plan
    assert "--budget-s $((BENCH_S - 40))" in script


def test_only_fla_core_is_carried():
    """flash-linear-attention pins transformers and would upgrade Forge's; fla-core has the kernels and needs only
    einops (and triton, which CUDA builds of torch bring)."""
    for name in ("bench/DEVICE_PLAN.md", "bench/device_run.sh", "bench/RESULTS.md", "README.md"):
        text = (ROOT / name).read_text(encoding="utf-8")
        for line in text.splitlines():
            command = line.split("#")[0]           # a comment may explain why not
            if re.search(r"pip3? (install|download)|python3? -m pip (install|download)", command):
                assert "flash-linear-attention" not in command, f"{name}: {line.strip()}"
