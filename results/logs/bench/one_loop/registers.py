"""Registers and spills of the window kernels, compiled here for sm_90 without a GPU (registers.log).

    python results/logs/bench/one_loop/registers.py attention_triton.py 64,64,4,3 64,32,4,3 32,64,4,2

The arguments: a version of attention_triton.py, then the (BM, BN, warps, stages) of the forward,
dQ and dK/dV passes. Triton compiles each kernel to PTX for sm_90 and the ptxas it ships
(`ptxas-blackwell` in Triton 3.9, the one that reads its PTX version) reports registers and
spill stores. This is the local Triton, not necessarily the GPU machine's.
"""
import os
import re
import subprocess
import sys
import tempfile
import types

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

POINTERS_F32 = ("LSE", "DELTA", "SLOPES")
SIZES = ("H", "G", "Tq", "Tk", "W")


def compile_sm90(kernel, D, tile, alibi, sigmoid):
    """The kernel compiled for sm_90 with these constants and (BM, BN, warps, stages), its
    arguments typed and specialised as at run time with bf16 tensors."""
    names = kernel.arg_names
    consts = {"D": D, "BM": tile[0], "BN": tile[1], "HAS_ALIBI": alibi, "SIGMOID": sigmoid}
    signature, attrs = {}, {}
    for i, n in enumerate(names):
        if n in consts:
            signature[n] = "constexpr"
        elif n in POINTERS_F32 or (n[0].isupper() and n not in SIZES):
            signature[n] = "*fp32" if n in POINTERS_F32 else "*bf16"
            attrs[(i,)] = [["tt.divisibility", 16]]
        elif n in ("qk_scale", "scale"):
            signature[n] = "fp32"
        else:  # sizes and strides; strides are specialised on 16 as at run time
            signature[n] = "i32"
            if n not in SIZES:
                attrs[(i,)] = [["tt.divisibility", 16]]
    src = ASTSource(fn=kernel, signature=signature, constexprs={(names.index(k),): v for k, v in consts.items()},
                    attrs=attrs)
    return triton.compile(src, target=GPUTarget("cuda", 90, 128), options={"num_warps": tile[2], "num_stages": tile[3]})


def compile_kernel(kernel, D, tile, alibi, sigmoid):
    """(registers, spill stores) of the kernel compiled for sm_90, as ptxas reports them."""
    compiled = compile_sm90(kernel, D, tile, alibi, sigmoid)
    ptxas = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "ptxas-blackwell")
    with tempfile.NamedTemporaryFile("w", suffix=".ptx", delete=False) as f:
        f.write(compiled.asm["ptx"])
    report = subprocess.run([ptxas, "-v", "--gpu-name=sm_90a", f.name, "-o", os.devnull],
                            capture_output=True, text=True).stderr
    os.unlink(f.name)
    regs = re.search(r"Used (\d+) registers", report)
    spills = re.search(r"(\d+) bytes spill stores", report)
    return (regs.group(1) if regs else "?"), (spills.group(1) if spills else "?")


def main(argv):
    path, tiles = argv[0], [tuple(map(int, t.split(","))) for t in argv[1:4]]
    mod = types.ModuleType("version")
    exec(compile(open(path).read().replace("swan::", "swan_regs::"), path, "exec"), mod.__dict__)
    print(f"{path}, triton {triton.__version__}, sm_90")
    for name, tile in zip(("_attn_fwd", "_attn_bwd_dq", "_attn_bwd_dkdv"), tiles):
        for D in (64, 128):
            for alibi, sigmoid in [(False, False), (False, True), (True, False), (True, True)]:
                regs, spills = compile_kernel(getattr(mod, name), D, tile, alibi, sigmoid)
                mode = ("sigmoid" if sigmoid else "softmax") + ("+alibi" if alibi else "")
                print(f"{name:<15} {str(tile):<16} D={D:<4} {mode:<14} registers {regs:>4}  spill stores {spills:>4} B",
                      flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
