# Microbenchmark (kept as the record of a run): the decoding attention as model.Attention ran it
# before (index_copy of k and v, RoPE and the key positions in torch, compiled by Inductor, then
# attention_decode_triton) against attention_decode_step_triton (all of it in the kernel), at a
# global cache of 32k + 256 slots and a ring of 512, batch 8, 12 heads of 64, bf16, inside CUDA
# graphs of 12 launches each on its own cache (as the step's 12 layers), for a few tiles of the
# kernel. Run from the repository root with PYTHONPATH=. As it ran in call 4, against the code of
# then: the committed _config also takes step=, which the lambdas below would need to accept.
import torch
import triton
import attention_decode_triton as adt
from model import apply_rope, rope_tables

B, H, D = 8, 12, 64
torch.manual_seed(0)
print(torch.cuda.get_device_name(), torch.__version__, triton.__version__)
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
    for _ in range(15):
        a.record(); g.replay(); b.record(); torch.cuda.synchronize()
        ts.append(a.elapsed_time(b) * 1e3 / reps)
    ts.sort()
    return ts[len(ts) // 2]


for name, S, ring in (("global 33024", 33024, False), ("ring 512", 512, True)):
    reps = 12
    caches = [(torch.randn(B, H, S, D, device="cuda", dtype=torch.bfloat16),
               torch.randn(B, H, S, D, device="cuda", dtype=torch.bfloat16)) for _ in range(reps)]
    qkv = torch.randn(B, 1, 3 * H * D, device="cuda", dtype=torch.bfloat16)
    slots = torch.arange(S, device="cuda")
    key_pos = pos_t - (pos_t - slots) % S if ring else slots

    @torch.compile(dynamic=False)
    def before_prep(qkv, k_buf, v_buf):
        q, k, v = qkv.view(B, 1, 3 * H, D).transpose(1, 2).split([H, H, H], dim=1)
        q, k = apply_rope(q, cos[pos_t], sin[pos_t]), apply_rope(k, cos[pos_t], sin[pos_t])
        slot = pos_t % S
        k_buf.index_copy_(2, slot, k)
        v_buf.index_copy_(2, slot, v)
        return q, (pos_t - (pos_t - slots) % S if ring else slots)

    def before(i):
        q, kp = before_prep(qkv, *caches[i])
        return adt._decode_op(q, *caches[i], kp, pos_t, None, False, D ** -0.5, adt.SPLIT_SLOTS)

    def step(i):
        return adt.attention_decode_step_triton(qkv, H, *caches[i], pos_t, (cos, sin), ring=ring)

    def old_kernel_only(i):
        return adt._decode_op(qkv.view(B, 3 * H, 1, D)[:, :H], *caches[i], key_pos, pos_t, None, False, D ** -0.5, adt.SPLIT_SLOTS)

    default_cfg = adt._config
    for block_s, warps in ((64, 1), (32, 1), (64, 2), (32, 2), (64, 4), (128, 4)):
        adt._config = lambda block_d=64, c=dict(BLOCK_S=block_s, num_warps=warps): c
        t_old = graph_time(old_kernel_only, reps)
        t_before = graph_time(before, reps)
        t_step = graph_time(step, reps)
        print(f"{name}: BLOCK_S={block_s} warps={warps}: old kernel alone {t_old:.2f} us, before (prep + old kernel) "
              f"{t_before:.2f} us, step kernel {t_step:.2f} us", flush=True)
    adt._config = default_cfg
    del caches
    torch.cuda.empty_cache()
