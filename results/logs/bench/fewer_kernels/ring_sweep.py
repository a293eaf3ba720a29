# (As it ran in call 2, against the code of then: _config returned MERGE and a LOAD_FIRST flag, both since
# removed: the merge follows from the cache being a ring, and loading first measured slower.)
# The decoding attention kernel timed alone inside CUDA graphs (12 launches, each on its own cache,
# as a step's 12 layers): the step kernel on a ring of 512 slots (RoPE, the ring write), and the
# plain kernel on a global cache of 32k + 256 slots, batch 8, 12 heads of 64, bf16, for tiles,
# splits, the merge in the last split (MERGE) against a second kernel, and the ring's tile loaded
# first (LOAD_FIRST). Run from the repository root with PYTHONPATH=.
import torch
import triton
import attention_decode_triton as adt
from model import rope_tables

B, H, D = 8, 12, 64
torch.manual_seed(0)
print(torch.cuda.get_device_name(), torch.__version__, triton.__version__, flush=True)
cos, sin = rope_tables(40000, D, 10000.0, "cuda")
pos_t = torch.tensor([32768 + 100], device="cuda")


def graph_time(fn, reps):
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for i in range(reps):
            fn(i)
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for i in range(reps):
            fn(i)
    for _ in range(3):
        g.replay()
    torch.cuda.synchronize()
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    ts = []
    for _ in range(25):
        a.record(); g.replay(); b.record(); torch.cuda.synchronize()
        ts.append(a.elapsed_time(b) * 1e3 / reps)
    ts.sort()
    return ts[len(ts) // 2]


default_cfg = adt._config
reps = 12
for name, S, ring in (("ring 512", 512, True), ("global 33024", 33024, False)):
    caches = [(torch.randn(B, H, S, D, device="cuda", dtype=torch.bfloat16),
               torch.randn(B, H, S, D, device="cuda", dtype=torch.bfloat16)) for _ in range(reps)]
    qkv = torch.randn(B, 1, 3 * H * D, device="cuda", dtype=torch.bfloat16)
    key_pos = torch.arange(S, device="cuda")
    q = qkv.view(B, 3 * H, 1, D)[:, :H]

    def step(i):
        return adt.attention_decode_step_triton(qkv, H, *caches[i], pos_t, (cos, sin), ring=True, split_slots=split)

    def plain(i):
        return adt._decode_op(q, *caches[i], key_pos, pos_t, None, False, D ** -0.5, split)

    if ring:
        cfgs = [(32, 2, 64, False, False), (32, 2, 64, True, False), (64, 2, 64, False, True), (64, 2, 64, True, True),
                (64, 4, 64, False, True), (64, 4, 64, True, True), (64, 1, 64, True, True), (32, 1, 32, False, True),
                (32, 1, 32, True, True), (32, 2, 32, False, True), (32, 2, 32, True, True), (16, 1, 16, True, True),
                (128, 4, 128, False, True), (128, 4, 128, True, True), (32, 2, 64, False, False)]
    else:
        cfgs = [(64, 1, 64, False, False), (64, 1, 64, True, False), (64, 2, 64, True, False), (64, 1, 64, False, False)]
    ref = None
    for block_s, warps, split, merge, first in cfgs:
        adt._config = lambda block_d=64, step=False, ring=False, c=dict(BLOCK_S=block_s, num_warps=warps, MERGE=merge,
                                                                          LOAD_FIRST=first): c
        fn = step if ring else plain
        out = fn(0).float()
        ref = out if ref is None else ref
        err = (out - ref).abs().max().item()
        t = graph_time(fn, reps)
        print(f"{name}: BLOCK_S={block_s} warps={warps} split_slots={split} merge_last={merge} load_first={first}: "
              f"{t:.2f} us a launch (max |diff| to the first {err:.1e})", flush=True)
    adt._config = default_cfg
    del caches
    torch.cuda.empty_cache()
