"""What Triton makes of the window kernel's loops for sm_90, read without a GPU (sm90_ir.log).

    python results/logs/bench/sm90_ir/sm90_ir.py attention_triton.py >> results/logs/bench/sm90_ir/sm90_ir.log

(the log holds two runs: with triton 3.6.0, the GPU runs' version, installed beside the tests'
Triton for this, and with triton 3.9.0.)

Compiles the forward (d = 128, tiles (64, 64, 4, 3)) and the dK/dV pass (d = 64, (32, 64, 4, 2)),
softmax, with the installed Triton (the log's first line names it; the GPU runs used 3.6.0), and
prints the loop's matrix products and their waits, the asynchronous copies, and the count of
warp-specialised partitions when the forward's loop asks for them (tl.range(...,
warp_specialize=True)). Last, the forward with its loop pipelined by hand (NEXT_QK below): the
next block's q k^T issued before this block's softmax, so that the product could run while the
softmax does, if Triton left it in flight. Compiles through registers.py's compile_sm90 (the
one_loop folder).
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

# _fwd_inner (softmax, no ALiBi) with the next key block's logits computed before this block's
# softmax: s_next is carried to the next iteration, which is where it is first used.
NEXT_QK = '''@triton.jit
def _fwd_inner(acc, m_i, l_i, q, K, V, skt, svt, fi, offs_d, lo, mid, mid_end, hi, Tk, W, qk_scale, slope,
               BN: tl.constexpr, HAS_ALIBI: tl.constexpr, SIGMOID: tl.constexpr):
    k = _load_rows(K, lo + tl.arange(0, BN), skt, offs_d, Tk)
    s = tl.dot(q, tl.trans(k), input_precision="ieee")
    for n0 in range(lo, hi, BN):
        offs_j = n0 + tl.arange(0, BN)
        v = _load_rows(V, offs_j, svt, offs_d, Tk)
        k_next = _load_rows(K, offs_j + BN, skt, offs_d, tl.minimum(hi, Tk))
        s_next = tl.dot(q, tl.trans(k_next), input_precision="ieee")
        p = s * qk_scale
        if (n0 < mid) | (n0 >= mid_end):
            dist = fi[:, None] - offs_j[None, :].to(tl.float32)
            p = tl.where((dist >= 0) & (dist < W), p, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(p, 1))
        p = tl.exp2(p - m_new[:, None])
        alpha = tl.exp2(m_i - m_new)
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None]
        m_i = m_new
        acc = tl.dot(p.to(v.dtype), v, acc, input_precision="ieee")
        s = s_next
    return acc, m_i, l_i


'''


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
    start, end = src.index("@triton.jit\ndef _fwd_inner"), src.index("@_jit_kernel\ndef _attn_fwd")
    piped = load(src[:start] + NEXT_QK + src[end:], "next_qk")
    show("_attn_fwd pipelined by hand (the next block's q k^T before this block's softmax), D = 128, (64, 64, 4, 3)",
         ttgir(piped._attn_fwd, 128, (64, 64, 4, 3)))


if __name__ == "__main__":
    main(sys.argv[1])
