"""What Triton makes of the window kernel's loops for sm_90, read without a GPU (sm90_ir.log).

    python results/logs/bench/sm90_ir/sm90_ir.py attention_triton.py >> results/logs/bench/sm90_ir/sm90_ir.log

(the log holds two runs: with triton 3.6.0, the GPU runs' version, installed beside the tests'
Triton for this, and with triton 3.9.0.)

Compiles the forward (d = 128, tiles (64, 64, 4, 3)) and the dK/dV pass (d = 64, (32, 64, 4, 2)),
softmax, with the installed Triton (the log's first line names it; the GPU runs used 3.6.0), and
prints the loop's matrix products and their waits, the asynchronous copies, and the count of
warp-specialised partitions when the forward's loop asks for them (tl.range(...,
warp_specialize=True)). Compiles through registers.py's compile_sm90 (the one_loop folder).
"""
import os
import re
import sys
import tempfile
import types

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "one_loop"))
import triton  # noqa: E402
from registers import compile_sm90  # noqa: E402

LOOP = "    for n0 in range(lo, hi, BN):"  # the forward's is the first after "def _fwd_inner"


def load(src, name):
    """The kernels of src as a module. Triton reads a kernel's source back from its file, so a
    changed source is written to a file of its own first."""
    with tempfile.NamedTemporaryFile("w", suffix=f"_{name}.py", delete=False) as f:
        f.write(src.replace("swan::", f"swan_{name}::"))
    mod = types.ModuleType(name)
    exec(compile(open(f.name).read(), f.name, "exec"), mod.__dict__)
    return mod


def ttgir(kernel, D, tile):
    return compile_sm90(kernel, D, tile, alibi=False, sigmoid=False).asm["ttgir"]


def show(title, ir):
    print(f"\n{title}")
    for line in ir.splitlines():
        m = re.search(r"(ttng\.warp_group_dot_wait|ttng\.warp_group_dot|ttg\.async_copy_global_to_local|scf\.for)", line)
        if m:
            pend = re.search(r"pendings = \d+", line)
            async_ = "isAsync = true" in line
            var = re.search(r"%([A-Za-z_]+)", line)
            print(f"  {m.group(1):<34} {var.group(1) if var else '':<8} {pend.group(0) if pend else ''}{' async' if async_ else ''}")


def main(path):
    src = open(path).read()
    print(f"{path}, triton {triton.__version__}, sm_90, softmax")
    mod = load(src, "committed")
    show("_attn_fwd, D = 128, (64, 64, 4, 3): the loop's products and waits", ttgir(mod._attn_fwd, 128, (64, 64, 4, 3)))
    show("_attn_bwd_dkdv, D = 64, (32, 64, 4, 2)", ttgir(mod._attn_bwd_dkdv, 64, (32, 64, 4, 2)))
    at = src.index(LOOP, src.index("def _fwd_inner"))
    ws = load(src[:at] + "    for n0 in tl.range(lo, hi, BN, warp_specialize=True):" + src[at + len(LOOP):], "ws")
    ir = ttgir(ws._attn_fwd, 128, (64, 64, 4, 3))
    print(f"\n_attn_fwd with tl.range(..., warp_specialize=True): tt.warp_specialize attributes "
          f"{ir.count('tt.warp_specialize')}, ttg.warp_specialize ops {ir.count('ttg.warp_specialize(')}, "
          f"partitions {ir.count('partition')}")


if __name__ == "__main__":
    main(sys.argv[1])
