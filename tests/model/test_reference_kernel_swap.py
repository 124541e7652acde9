"""The transformers reference holds where `fla` imports.

At import, transformers replaces its torch delta rule with fla's Triton kernel whenever `fla` imports (every GPU
machine with fla-core, or fla-core + triton anywhere). On CPU those kernels fail, and they are not the reference
anyway: tests/reference.py unwraps them. This test proves it without installing fla: a fresh interpreter gets a
fake `fla` whose kernels return sevens and count their calls, checks that transformers really swapped it in (its
own swap code runs, nothing is patched), then runs the reference tests and checks the fake was never called.
"""

import subprocess
import sys
import textwrap

import pytest

from repo import ROOT

REFERENCE_TESTS = ["tests/model/test_qwen35_vs_transformers.py", "tests/ops/test_delta_rule.py::test_recurrence_matches_transformers"]

FAKE_KERNELS = '''
import torch

CALLS = 0


def _sevens(q, k, v, g=None, beta=None, scale=None, initial_state=None, output_final_state=False,
            use_qk_l2norm_in_kernel=False, **kwargs):
    global CALLS
    CALLS += 1
    return torch.full_like(v, 7.0), None


chunk_gated_delta_rule = fused_recurrent_gated_delta_rule = _sevens
'''

DRIVER = '''
import sys

import torch

from transformers.models.qwen3_5 import modeling_qwen3_5 as mod
import fla.ops.gated_delta_rule as fake

x, gate = torch.zeros(1, 3, 2, 4), torch.zeros(1, 3, 2)
for name in ("torch_chunk_gated_delta_rule", "torch_recurrent_gated_delta_rule"):
    out, _ = getattr(mod, name)(x, x, x, g=gate, beta=gate)
    if not bool((out == 7).all()):
        sys.exit(f"SWAP NOT SEEN: transformers did not route {name} to the fake fla; this test needs updating")
print("SWAP SEEN", fake.CALLS)
calls = fake.CALLS

import pytest

rc = pytest.main(["-q", "-p", "no:cacheprovider", *sys.argv[1:]])
print("FAKE FLA CALLS DURING THE REFERENCE TESTS", fake.CALLS - calls)
sys.exit(int(rc) or (3 if fake.CALLS != calls else 0))
'''


def test_reference_tests_pass_with_fla_importable(tmp_path):
    pytest.importorskip("transformers.models.qwen3_5.modeling_qwen3_5")
    pkg = tmp_path / "fla" / "ops" / "gated_delta_rule"
    pkg.mkdir(parents=True)
    (tmp_path / "fla" / "__init__.py").write_text('__version__ = "0.6.0"\n')
    (tmp_path / "fla" / "ops" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text(textwrap.dedent(FAKE_KERNELS))
    driver = tmp_path / "driver.py"
    driver.write_text(f"import sys\nsys.path.insert(0, {str(tmp_path)!r})\n" + textwrap.dedent(DRIVER))

    proc = subprocess.run([sys.executable, str(driver), *REFERENCE_TESTS], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert "SWAP SEEN 2" in out, out[-3000:]                        # transformers' swap really happened
    assert proc.returncode == 0, out[-3000:]
    assert "FAKE FLA CALLS DURING THE REFERENCE TESTS 0" in out, out[-3000:]
    assert " passed" in out and " failed" not in out and " skipped" not in out, out[-3000:]
